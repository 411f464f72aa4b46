//! CIFAR-10 (neon's `CIFAR10` dataset): 32×32 colour images in 10 classes, 50,000 for
//! training and 10,000 for testing, read from a local copy of the binary release
//! (`cifar-10-batches-bin`: `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`; each
//! record one label byte and 3,072 pixel bytes, the red, green and blue planes in row-major
//! order). Nothing is downloaded.

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
    /// ZCA whitening fitted on the training set (default false; not supported yet, an
    /// error when true).
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
}

impl Cifar10 {
    /// Loads the binary release from `dir` (or from its `cifar-10-batches-bin`
    /// subdirectory), preprocessed by `opts`. Every missing file, a file whose size is not
    /// a whole number of 3,073-byte records, and a label outside `0..10` is an error naming
    /// the file.
    pub fn load(dir: &Path, opts: &CifarOptions) -> Result<Cifar10, DataError> {
        if opts.whiten {
            return Err(DataError::InvalidDataset(
                "cifar10: ZCA whitening (whiten: true) is not supported yet".into(),
            ));
        }
        let dir = locate(dir)?;
        let mut train = (Vec::new(), Vec::new());
        for name in CIFAR10_TRAIN_FILES {
            read_batch(&dir.join(name), &mut train.0, &mut train.1)?;
        }
        let mut test = (Vec::new(), Vec::new());
        read_batch(&dir.join(CIFAR10_TEST_FILE), &mut test.0, &mut test.1)?;
        let make = |(pixels, labels): (Vec<u8>, Vec<i32>)| {
            let x = preprocess(&pixels, opts);
            Dataset::new(x, labels, opts.nclass(), vec![3, 32, 32])
        };
        Ok(Cifar10 {
            train: make(train)?,
            test: make(test)?,
        })
    }
}

/// `dir`, or its `cifar-10-batches-bin` subdirectory, whichever holds the first training
/// file; an error naming what is missing otherwise (and pointing out the Python version).
fn locate(dir: &Path) -> Result<PathBuf, DataError> {
    for d in [dir.to_path_buf(), dir.join("cifar-10-batches-bin")] {
        if d.join(CIFAR10_TRAIN_FILES[0]).is_file() {
            return Ok(d);
        }
    }
    let python = dir.join("data_batch_1").is_file() || dir.join("cifar-10-batches-py").is_dir();
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        name: format!(
            "{}{}",
            CIFAR10_TRAIN_FILES[0],
            if python {
                " (this is the Python pickle version; Xenon reads the binary version, cifar-10-binary.tar.gz)"
            } else {
                ""
            }
        ),
    })
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

/// neon's order: contrast normalization, then division by 255.
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
