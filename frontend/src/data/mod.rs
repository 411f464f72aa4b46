//! Datasets and minibatch iterators (neon's `neon.data`).
//!
//! * [`idx`]: the IDX file format of the MNIST release, raw or gzipped, strictly validated.
//! * [`Mnist`]: MNIST from a directory of IDX files, or the 9,000-digit subset bundled with
//!   Xenon ([`Mnist::bundled`], the offline default), pixels scaled to `[0, 1]`.
//! * [`Cifar10`]: CIFAR-10 from a local copy of the binary or the Python (pickle) release,
//!   with neon's options, ZCA whitening ([`Zca`]) included.
//! * [`Dataset`]: `N` examples as an `N × F` f32 matrix with class labels or real-valued
//!   targets.
//! * [`npy`]: NumPy `.npy` files and `.npz` archives as data sets (neon's `ArrayIterator`).
//! * [`DataSource`]: what a model file's `dataset:` entry and `--data` name, resolved to
//!   files and loaded.
//! * [`text`], [`ptb`], [`enwik8`], [`imdb`], [`babi`]: text as token ids (characters,
//!   words or bytes over a sorted vocabulary), neon's `Text` data sets
//!   ([`text::text_dataset`]), and readers of local copies of PTB, enwik8, IMDB and bAbI.
//! * [`BatchIterator`]: full batch-major minibatches (`x: [batch, F]`, one-hot
//!   `t: [batch, nclass]`), optionally reshuffled per epoch from a seed, with neon's
//!   wrap-around of the last partial batch by default.
//!
//! ```
//! use xenon_frontend::data::{BatchIterator, BatchOptions, Mnist};
//! let mnist = Mnist::bundled().unwrap();
//! let mut train = BatchIterator::new(&mnist.train, BatchOptions::new(128).shuffle(0)).unwrap();
//! assert_eq!(train.batches_per_epoch(), 63);
//! let first = train.next_epoch().next().unwrap();
//! assert_eq!(first.x.shape(), &[128, 784]);
//! assert_eq!(first.t.shape(), &[128, 10]);
//! ```

mod batch;
mod cifar;
mod cifar_pickle;
mod dataset;
mod error;
pub mod idx;
mod mnist;
pub mod npy;
mod source;
mod zca;

pub mod babi;
pub mod enwik8;
pub mod imdb;
pub mod ptb;
pub mod text;

pub use batch::{
    Augment, Batch, BatchIterator, BatchOptions, Epoch, LastBatch, batches_per_epoch,
    contiguous_order, shuffled_order,
};
pub use cifar::{
    CIFAR10_CLASSES, CIFAR10_PIXELS, CIFAR10_PY_TEST_FILE, CIFAR10_PY_TRAIN_FILES,
    CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, Cifar10, CifarFormat, CifarOptions,
    global_contrast_normalize,
};
pub use cifar_pickle::MAX_PICKLE_BYTES;
pub use dataset::{Dataset, onehot};
pub use error::DataError;
pub use mnist::{
    BUNDLED_MNIST_DIR, MNIST_CLASSES, Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
pub use source::{ArrayRef, ArraySplit, DataSource};
pub use zca::{ZCA_BLOCK, ZCA_FILTER_BIAS, Zca};

pub use babi::{Babi, BabiExample, BabiSplit};
pub use enwik8::{ByteVocabulary, Enwik8, Enwik8Vocab};
pub use imdb::{Imdb, ImdbOptions};
pub use ptb::{Ptb, PtbLevel};
pub use text::{Tokenizer, Vocabulary, text_dataset};
