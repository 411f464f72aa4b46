//! MNIST from IDX files: the full release or the subset bundled with Xenon.

use super::idx::{self, IdxArray};
use super::{DataError, Dataset};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the repository's copy of the 9,000-digit MNIST subset lies (8,000 training and
/// 1,000 test digits, gzipped IDX; see its README for provenance and license). The path
/// is fixed at compile time from this crate's source directory, so it is valid while the
/// repository checkout the crate was built from exists.
pub const BUNDLED_MNIST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist-subset");

/// The number of MNIST classes (digits 0–9).
pub const MNIST_CLASSES: usize = 10;

/// The training images' file name (raw IDX; the loader also accepts it with `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// The training labels' file name.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// The test images' file name.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// The test labels' file name.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The MNIST training and test sets, as neon's `MNIST` dataset prepares them.
///
/// * Inputs: each image flattened to `H·W` features (row-major, `feature_shape = [1, H, W]`),
///   pixel bytes divided by 255 to lie in `[0, 1]` as f32 (neon's `normalize=True`).
/// * Targets: `labels` in `0..=9`, `nclass = 10`; one-hot targets come from
///   [`Dataset::onehot`] or from the batches of [`BatchIterator`](super::BatchIterator).
/// * Images are 28×28 in MNIST; other sizes are accepted (and reported by
///   [`Mnist::image_size`] and by `Display`) as long as training and test agree.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// The training set (60,000 digits in the full release, 8,000 in the bundled subset).
    pub train: Dataset,
    /// The test set (10,000 in the full release, 1,000 in the bundled subset).
    pub test: Dataset,
}

impl Mnist {
    /// Loads the four MNIST files from `dir`: `train-images-idx3-ubyte`,
    /// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`,
    /// each either raw or with a `.gz` suffix (the raw name is tried first; gzip is detected
    /// from the content either way).
    ///
    /// Fails with a [`DataError`] naming the offending file when a file is missing or is not
    /// a valid IDX file of the right rank, when an image file and its label file hold
    /// different numbers of items, when a label is outside `0..=9`, or when training and test
    /// images differ in size.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        let train = load_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let test = load_split(dir, TEST_IMAGES, TEST_LABELS)?;
        if train.hw != test.hw {
            return Err(DataError::ImageSizeMismatch {
                a_path: train.images_path,
                a_hw: train.hw,
                b_path: test.images_path,
                b_hw: test.hw,
            });
        }
        Ok(Mnist {
            train: train.data,
            test: test.data,
        })
    }

    /// Loads the subset bundled in the repository, at [`BUNDLED_MNIST_DIR`]: 8,000 training
    /// and 1,000 test digits of 28×28.
    ///
    /// ```
    /// use xenon_frontend::data::Mnist;
    /// let mnist = Mnist::bundled().unwrap();
    /// assert_eq!((mnist.train.len(), mnist.test.len()), (8000, 1000));
    /// assert_eq!(mnist.train.feature_shape, vec![1, 28, 28]);
    /// assert_eq!(mnist.to_string(), "MNIST: 8000 training and 1000 test images of 28x28, 10 classes");
    /// ```
    pub fn bundled() -> Result<Mnist, DataError> {
        let dir = Path::new(BUNDLED_MNIST_DIR);
        if !dir.is_dir() {
            return Err(DataError::BundledMissing {
                dir: dir.to_path_buf(),
            });
        }
        Mnist::load(dir)
    }

    /// The image height and width (28×28 for MNIST).
    pub fn image_size(&self) -> (usize, usize) {
        match self.train.feature_shape[..] {
            [.., h, w] => (h, w),
            [w] => (1, w),
            [] => (1, 1),
        }
    }
}

impl fmt::Display for Mnist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, w) = self.image_size();
        write!(
            f,
            "MNIST: {} training and {} test images of {h}x{w}, {} classes",
            self.train.len(),
            self.test.len(),
            self.train.nclass
        )
    }
}

/// One loaded split and where its images came from.
struct Split {
    data: Dataset,
    images_path: PathBuf,
    hw: (usize, usize),
}

fn load_split(dir: &Path, images_name: &str, labels_name: &str) -> Result<Split, DataError> {
    let images_path = find(dir, images_name)?;
    let labels_path = find(dir, labels_name)?;
    let images = idx::read_idx_images(&images_path)?;
    let labels = idx::read_idx_labels(&labels_path)?;
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if n != labels.count() {
        return Err(DataError::CountMismatch {
            images_path,
            images: n,
            labels_path,
            labels: labels.count(),
        });
    }
    let labels = check_labels(labels, &labels_path)?;
    let x = images.data.iter().map(|&b| f32::from(b) / 255.0).collect();
    // Only an image file with a zero height or width can fail here.
    let data = Dataset::new(x, labels, MNIST_CLASSES, vec![1, h, w]).map_err(|e| match e {
        DataError::InvalidDataset(m) => {
            DataError::InvalidDataset(format!("{}: {m}", images_path.display()))
        }
        e => e,
    })?;
    Ok(Split {
        data,
        images_path,
        hw: (h, w),
    })
}

fn check_labels(labels: IdxArray, path: &Path) -> Result<Vec<i32>, DataError> {
    if let Some((index, &label)) = labels
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= MNIST_CLASSES)
    {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label,
            nclass: MNIST_CLASSES,
        });
    }
    Ok(labels.data.iter().map(|&l| i32::from(l)).collect())
}

/// `dir/name` if it exists, else `dir/name.gz`.
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        name: name.to_string(),
    })
}
