//! CIFAR-10 (neon's `CIFAR10` dataset): 32×32 colour images in 10 classes, 50,000 for
//! training and 10,000 for testing, read from a local copy of either release. Nothing is
//! downloaded.
//!
//! * The binary release (`cifar-10-batches-bin`: `data_batch_1.bin` … `data_batch_5.bin`,
//!   `test_batch.bin`): each record one label byte and 3,072 pixel bytes, the red, green
//!   and blue planes in row-major order.
//! * The Python release that neon reads (`cifar-10-batches-py`: `data_batch_1` …
//!   `data_batch_5`, `test_batch`): pickled dicts of a numpy uint8 array `data`
//!   `(N, 3072)`, in the same pixel order, and a list `labels` (see `cifar_pickle.rs` for
//!   the pickles read: Python 2's `cPickle` and Python 3's protocols 2 to 5).
//!
//! The format is told by the files in the directory given (or in its
//! `cifar-10-batches-bin` or `cifar-10-batches-py` subdirectory); both give the same
//! tensors. The images are then preprocessed as neon does: global contrast normalization,
//! division by 255, ZCA whitening (see [`CifarOptions`] and [`Zca`]).

use super::cifar_pickle::read_pickle_batch;
use super::zca::{ZCA_FILTER_BIAS, Zca};
use super::{DataError, Dataset};
use std::path::{Path, PathBuf};

/// Classes in CIFAR-10.
pub const CIFAR10_CLASSES: usize = 10;
/// Bytes per image (3 × 32 × 32).
pub const CIFAR10_PIXELS: usize = 3 * 32 * 32;
/// The training files of the binary release, in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file of the binary release.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";
/// The training files of the Python release (pickles, no extension), in order.
pub const CIFAR10_PY_TRAIN_FILES: [&str; 5] = [
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
];
/// The test file of the Python release.
pub const CIFAR10_PY_TEST_FILE: &str = "test_batch";

/// Which release a CIFAR-10 directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarFormat {
    /// `cifar-10-batches-bin`: [`CIFAR10_TRAIN_FILES`] and [`CIFAR10_TEST_FILE`].
    Binary,
    /// `cifar-10-batches-py`: [`CIFAR10_PY_TRAIN_FILES`] and [`CIFAR10_PY_TEST_FILE`].
    Pickle,
}

impl CifarFormat {
    /// The training files, in order, and the test file.
    pub fn files(self) -> ([&'static str; 5], &'static str) {
        match self {
            CifarFormat::Binary => (CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE),
            CifarFormat::Pickle => (CIFAR10_PY_TRAIN_FILES, CIFAR10_PY_TEST_FILE),
        }
    }

    /// Reads one batch file of this format: its pixels (`N × 3072` bytes, each image's
    /// red, green and blue planes) and its `N` labels.
    pub fn read_batch(self, path: &Path) -> Result<(Vec<u8>, Vec<i32>), DataError> {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        match self {
            CifarFormat::Binary => read_batch(path, &mut pixels, &mut labels)?,
            CifarFormat::Pickle => read_pickle_batch(path, &mut pixels, &mut labels)?,
        }
        Ok((pixels, labels))
    }
}

/// neon's `CIFAR10` preprocessing options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CifarOptions {
    /// Divide the pixel bytes by 255 (default true).
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Global contrast normalization, applied first: per image, subtract its mean and
    /// divide by its L2 norm / 55 (a norm below 1e-8 counts as 1e-8). Default false.
    #[serde(default)]
    pub contrast_normalize: bool,
    /// ZCA whitening, applied last: fitted on the training set (its mean, its covariance
    /// with neon's `filter_bias` of 0.1 on the diagonal), applied to both sets; see [`Zca`].
    /// Not cached: about 30 s for the full release on 2 cores. Default false.
    #[serde(default)]
    pub whiten: bool,
    /// Report 16 classes instead of 10 (neon's `pad_classes`, for nets whose last layer has
    /// 16 outputs). Default false.
    #[serde(default)]
    pub pad_classes: bool,
}

fn yes() -> bool {
    true
}

impl Default for CifarOptions {
    fn default() -> CifarOptions {
        CifarOptions {
            normalize: true,
            contrast_normalize: false,
            whiten: false,
            pad_classes: false,
        }
    }
}

impl CifarOptions {
    /// The number of classes reported (10, or 16 with `pad_classes`).
    pub fn nclass(&self) -> usize {
        if self.pad_classes {
            16
        } else {
            CIFAR10_CLASSES
        }
    }
}

/// The CIFAR-10 training and test sets: features `[3, 32, 32]` (CHW), labels `0..10`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cifar10 {
    /// The training set (50,000 images in the release).
    pub train: Dataset,
    /// The test set (10,000 images in the release).
    pub test: Dataset,
    /// The release the images were read from.
    pub format: CifarFormat,
}

impl Cifar10 {
    /// Loads the release in `dir` (or in its `cifar-10-batches-bin` or
    /// `cifar-10-batches-py` subdirectory; see [`Cifar10::locate`]), preprocessed by
    /// `opts`. Every missing or unreadable file, a binary file whose size is not a whole
    /// number of 3,073-byte records, a pickle that is not a dict of a uint8 `(N, 3072)`
    /// array and `N` labels, and a label outside `0..10` is an error naming the file.
    pub fn load(dir: &Path, opts: &CifarOptions) -> Result<Cifar10, DataError> {
        let (dir, format) = Cifar10::locate(dir)?;
        let read = |name: &str, pixels: &mut Vec<u8>, labels: &mut Vec<i32>| match format {
            CifarFormat::Binary => read_batch(&dir.join(name), pixels, labels),
            CifarFormat::Pickle => read_pickle_batch(&dir.join(name), pixels, labels),
        };
        let (train_files, test_file) = format.files();
        let mut train = (Vec::new(), Vec::new());
        for name in train_files {
            read(name, &mut train.0, &mut train.1)?;
        }
        let mut test = (Vec::new(), Vec::new());
        read(test_file, &mut test.0, &mut test.1)?;
        let mut train_x = preprocess(&train.0, opts);
        drop(train.0);
        let mut test_x = preprocess(&test.0, opts);
        if opts.whiten {
            let zca = Zca::fit(&train_x, CIFAR10_PIXELS, ZCA_FILTER_BIAS)?;
            zca.apply(&mut train_x)?;
            zca.apply(&mut test_x)?;
        }
        let make =
            |x: Vec<f32>, labels: Vec<i32>| Dataset::new(x, labels, opts.nclass(), vec![3, 32, 32]);
        Ok(Cifar10 {
            train: make(train_x, train.1)?,
            test: make(test_x, test.1)?,
            format,
        })
    }

    /// The directory holding the batch files, and their format: the first of `dir`,
    /// `dir/cifar-10-batches-bin` and `dir/cifar-10-batches-py` that holds the first
    /// training file of either release (the binary one first, should a directory hold
    /// both). Neither is an error listing the files of both releases.
    pub fn locate(dir: &Path) -> Result<(PathBuf, CifarFormat), DataError> {
        for d in [
            dir.to_path_buf(),
            dir.join("cifar-10-batches-bin"),
            dir.join("cifar-10-batches-py"),
        ] {
            for format in [CifarFormat::Binary, CifarFormat::Pickle] {
                if d.join(format.files().0[0]).is_file() {
                    return Ok((d, format));
                }
            }
        }
        Err(DataError::InvalidDataset(format!(
            "{}: no CIFAR-10 batches here or in its cifar-10-batches-bin or cifar-10-batches-py \
             subdirectory: expected the binary release ({} … {}, {}) or the Python release \
             ({} … {}, {})",
            dir.display(),
            CIFAR10_TRAIN_FILES[0],
            CIFAR10_TRAIN_FILES[4],
            CIFAR10_TEST_FILE,
            CIFAR10_PY_TRAIN_FILES[0],
            CIFAR10_PY_TRAIN_FILES[4],
            CIFAR10_PY_TEST_FILE,
        )))
    }
}

/// Appends the records of one binary batch file.
fn read_batch(path: &Path, pixels: &mut Vec<u8>, labels: &mut Vec<i32>) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let record = CIFAR10_PIXELS + 1;
    let invalid = |m: String| DataError::InvalidDataset(format!("{}: {m}", path.display()));
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(invalid(format!(
            "{} bytes is not a whole number of {record}-byte records (1 label byte and {CIFAR10_PIXELS} pixel bytes)",
            bytes.len()
        )));
    }
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        if r[0] as usize >= CIFAR10_CLASSES {
            return Err(invalid(format!(
                "record {i}: label {} is outside 0..=9",
                r[0]
            )));
        }
        labels.push(r[0] as i32);
        pixels.extend_from_slice(&r[1..]);
    }
    Ok(())
}

/// neon's order: contrast normalization, then division by 255 (whitening follows, in
/// [`Cifar10::load`]).
fn preprocess(pixels: &[u8], opts: &CifarOptions) -> Vec<f32> {
    let mut out = Vec::with_capacity(pixels.len());
    for img in pixels.chunks_exact(CIFAR10_PIXELS) {
        let v: Vec<f64> = img.iter().map(|&p| p as f64).collect();
        let v = if opts.contrast_normalize {
            global_contrast_normalize(&v)
        } else {
            v
        };
        let scale = if opts.normalize { 1.0 / 255.0 } else { 1.0 };
        out.extend(v.iter().map(|&p| (p * scale) as f32));
    }
    out
}

/// neon's global contrast normalization of one image: `(x − mean) / max(‖x − mean‖₂ / 55,
/// 1e-8)`.
pub fn global_contrast_normalize(x: &[f64]) -> Vec<f64> {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let centered: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let norm = centered.iter().map(|v| v * v).sum::<f64>().sqrt() / 55.0;
    let norm = norm.max(1e-8);
    centered.iter().map(|v| v / norm).collect()
}
