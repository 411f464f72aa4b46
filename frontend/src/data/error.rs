//! The one error type of the data module.
//!
//! Every message is a single line, and every message about a file names the file's path, so
//! it can be printed as is.

use std::path::PathBuf;

/// Why a dataset could not be read, validated or batched.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read (not found, permission denied, ...).
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file starts with the gzip magic bytes `1f 8b` but does not decompress: a bad
    /// header, a corrupt deflate stream, a CRC mismatch or a stream cut short.
    #[error("{}: gzip decompression failed: {source}", path.display())]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The IDX header (4 magic bytes, then 4 bytes per dimension) is cut short. For a
    /// gzipped file, byte counts here and in `TruncatedData` are after decompression.
    #[error(
        "{}: truncated IDX header: need {expected} bytes, found only {got}",
        path.display()
    )]
    TruncatedHeader {
        path: PathBuf,
        expected: usize,
        got: usize,
    },

    /// The first two bytes are not zero, so this is not an IDX file.
    #[error(
        "{}: not an IDX file: magic number 0x{magic:08x} should start with two zero bytes",
        path.display()
    )]
    BadMagic { path: PathBuf, magic: u32 },

    /// The IDX element type is not unsigned bytes (`0x08`), the only type Xenon reads.
    #[error(
        "{}: unsupported IDX element type 0x{type_code:02x} ({type_name}); only unsigned \
         bytes (0x08) are supported",
        path.display()
    )]
    UnsupportedType {
        path: PathBuf,
        type_code: u8,
        type_name: &'static str,
    },

    /// The IDX file has the wrong number of dimensions for what it should hold
    /// (images: 3, labels: 1).
    #[error(
        "{}: expected {what} (an IDX file of rank {expected}), found rank {got} \
         (magic 0x{magic:08x})",
        path.display()
    )]
    WrongRank {
        path: PathBuf,
        what: &'static str,
        expected: u8,
        got: u8,
        magic: u32,
    },

    /// The product of the dimensions does not fit in memory addresses.
    #[error("{}: IDX dimensions {dims:?} are too large", path.display())]
    TooLarge { path: PathBuf, dims: Vec<u32> },

    /// Fewer data bytes than the dimensions promise.
    #[error(
        "{}: truncated IDX data: dimensions {dims:?} need {expected} bytes, found only \
         {got}",
        path.display()
    )]
    TruncatedData {
        path: PathBuf,
        dims: Vec<usize>,
        expected: usize,
        got: usize,
    },

    /// More bytes than the dimensions promise.
    #[error(
        "{}: {extra} bytes of trailing garbage after the IDX data (dimensions {dims:?} \
         need {expected} bytes)",
        path.display()
    )]
    TrailingData {
        path: PathBuf,
        dims: Vec<usize>,
        expected: usize,
        extra: u64,
    },

    /// The data directory or file given (the command line's `--data`) does not exist.
    #[error("{}: no such directory or file", path.display())]
    NotFound { path: PathBuf },

    /// A required file is absent (neither the raw nor the `.gz` name exists).
    #[error("{}: no {name} or {name}.gz in this directory", dir.display())]
    MissingFile { dir: PathBuf, name: String },

    /// The copy of the MNIST subset bundled in the repository is not where the build
    /// recorded it.
    #[error(
        "bundled MNIST subset not found: looked in {} (the repository's data/mnist-subset, \
         located at compile time; use Mnist::load with a directory instead)",
        dir.display()
    )]
    BundledMissing { dir: PathBuf },

    /// An image file and its label file hold different numbers of items.
    #[error(
        "image and label counts disagree: {images} images in {} but {labels} labels in {}",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },

    /// A label is outside `0..nclass`.
    #[error(
        "{}: label {label} of item {index} is outside 0..={}",
        path.display(),
        nclass - 1
    )]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        nclass: usize,
    },

    /// The training and test images have different sizes.
    #[error(
        "image sizes disagree: {}x{} in {} but {}x{} in {}",
        a_hw.0, a_hw.1, a_path.display(), b_hw.0, b_hw.1, b_path.display()
    )]
    ImageSizeMismatch {
        a_path: PathBuf,
        a_hw: (usize, usize),
        b_path: PathBuf,
        b_hw: (usize, usize),
    },

    /// An in-memory [`Dataset`](super::Dataset) breaks one of its invariants.
    #[error("invalid dataset: {0}")]
    InvalidDataset(String),

    /// The batch size does not suit the dataset (it must be in `1..=N`).
    #[error("batch size {batch_size} is not in 1..={n} for a dataset of {n} samples")]
    BatchSize { batch_size: usize, n: usize },

    /// A NumPy array is unreadable or does not fit the data set.
    #[error("{}: array {array:?}: {reason}", path.display())]
    Array {
        path: PathBuf,
        array: String,
        reason: String,
    },

    /// A batching position to resume from does not fit this dataset and batch size.
    #[error("cannot resume batching: {0}")]
    Resume(String),
}
