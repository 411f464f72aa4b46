//! Datasets and minibatch iterators (neon's `neon.data`).
//!
//! * [`idx`]: the IDX file format of the MNIST release, raw or gzipped, strictly validated.
//! * [`Mnist`]: MNIST from a directory of IDX files, or the 9,000-digit subset bundled with
//!   Xenon ([`Mnist::bundled`], the offline default), pixels scaled to `[0, 1]`.
//! * [`Dataset`]: `N` examples as an `N × F` f32 matrix with class labels.
//!
//! ```
//! use xenon_frontend::data::Mnist;
//! let mnist = Mnist::bundled().unwrap();
//! assert_eq!(mnist.train.x.len(), 8000 * 784);
//! ```

mod dataset;
mod error;
pub mod idx;
mod mnist;

pub use dataset::{Dataset, onehot};
pub use error::DataError;
pub use mnist::{
    BUNDLED_MNIST_DIR, MNIST_CLASSES, Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
