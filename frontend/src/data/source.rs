//! The data a model file's `dataset:` entry (and `--data`) names, resolved to files:
//! MNIST in IDX format or the user's NumPy arrays, with class, real-valued or
//! input-as-target targets. [`DataSource::shapes`] reads only what the shapes need (the
//! `.npy` headers, and class ids when `nclass` must be inferred); [`DataSource::load`]
//! reads the training and test sets.

use super::imdb::ImdbOptions;
use super::npy::{Array, Targets, array_shape, named_dataset, read_npy, read_npz};
use super::{
    Augment, CIFAR10_PIXELS, Cifar10, CifarOptions, DataError, Dataset, MNIST_CLASSES, Mnist,
};
use crate::layer::Sequential;
use crate::model_file::{DatasetName, DatasetSpec, SplitSpec, TargetKind, TextSpec};
use std::path::{Path, PathBuf};

/// Inferred class ids must lie below this (2^24: f32, which arrays are read as, holds
/// every whole number up to it exactly; a class id of 1e30 overflowed the class count).
const MAX_CLASS_ID_EXCLUSIVE: f32 = 16_777_216.0;

/// One array: a `.npy` file, or an array of a `.npz` archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayRef {
    /// The file.
    pub path: PathBuf,
    /// The array's name inside a `.npz` archive; `None` for a `.npy` file.
    pub array: Option<String>,
}

impl ArrayRef {
    /// Resolves `spec` (`file.npy`, `archive.npz:array`, or `archive.npz`, which takes
    /// `default_array`) against `base`.
    pub fn parse(spec: &str, base: &Path, default_array: &str) -> ArrayRef {
        let (file, array) = match spec.rsplit_once(':') {
            Some((f, a)) if f.ends_with(".npz") && !a.is_empty() => (f, Some(a.to_string())),
            _ if spec.ends_with(".npz") => (spec, Some(default_array.to_string())),
            _ => (spec, None),
        };
        ArrayRef {
            path: base.join(file),
            array,
        }
    }

    /// Reads the whole array.
    pub fn read(&self) -> Result<Array, DataError> {
        match &self.array {
            Some(a) => read_npz(&self.path, a),
            None => read_npy(&self.path),
        }
    }

    /// The array's shape, from its header.
    pub fn shape(&self) -> Result<Vec<usize>, DataError> {
        array_shape(&self.path, self.array.as_deref())
    }

    fn name(&self) -> &str {
        self.array.as_deref().unwrap_or("the array")
    }
}

/// The features and (unless the targets are the inputs) the targets of one split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArraySplit {
    /// The features, `[N, feature…]`: one array, or one per input stream (at least one).
    pub x: Vec<ArrayRef>,
    /// The targets; `None` for [`TargetKind::Inputs`].
    pub y: Option<ArrayRef>,
}

/// Where the training and test sets come from.
// One value per run: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// MNIST from an IDX directory, or the bundled subset when `dir` is `None`.
    Mnist {
        dir: Option<PathBuf>,
        targets: TargetKind,
        /// Input streams, each a copy of the example (`streams:`; 1 by default).
        copies: usize,
    },
    /// CIFAR-10 from a local copy of the binary or the Python release (`None`: not given,
    /// an error when loading; CIFAR-10 is not bundled).
    Cifar10 {
        dir: Option<PathBuf>,
        opts: CifarOptions,
        targets: TargetKind,
        /// Random crops and flips of the training images.
        augment: Option<Augment>,
        /// Input streams, each a copy of the example (`streams:`; 1 by default).
        copies: usize,
    },
    /// ImageNet's input shape (3×224×224, 1,000 classes) without a reader: loading is an
    /// error.
    Imagenet,
    /// A text file read as neon's `Text` reads it.
    Text {
        /// The file (raw or gzipped).
        path: PathBuf,
        /// Sequence length, validation split, tokens, one-hot inputs.
        spec: TextSpec,
    },
    /// neon's IMDB reviews (`None`: no file given, an error when loading).
    Imdb {
        /// The pickle, `.npz` or directory.
        path: Option<PathBuf>,
        /// Vocabulary size and review length.
        opts: ImdbOptions,
    },
    /// NumPy arrays.
    Arrays {
        train: ArraySplit,
        test: ArraySplit,
        targets: TargetKind,
        /// Classes for [`TargetKind::Classes`] (`None`: the largest id plus one).
        nclass: Option<usize>,
        /// The shape of one example (`None`: `x`'s shape without its first axis); with
        /// several `x` arrays, of each stream's example.
        lshape: Option<Vec<usize>>,
        /// Copies of the example's streams (`streams:`; 1 by default).
        copies: usize,
    },
}

impl DataSource {
    /// The data `spec` names (MNIST when `None`). `data` is the command line's `--data`:
    /// for MNIST the IDX directory; for arrays a directory that relative paths are taken
    /// from, or one `.npz` archive replacing the entry's `file`; without an entry, a
    /// `.npz` archive of `x_train`, `y_train`, `x_test`, `y_test` with class ids. Relative
    /// paths are otherwise taken from `base` (the model file's directory).
    pub fn new(
        spec: Option<&DatasetSpec>,
        data: Option<&Path>,
        base: &Path,
    ) -> Result<DataSource, DataError> {
        if let Some(d) = data
            && std::fs::metadata(d).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            return Err(DataError::NotFound {
                path: d.to_path_buf(),
            });
        }
        let data_file = data.filter(|d| d.is_file());
        let default;
        let spec = match (spec, data_file) {
            (Some(s), _) => s,
            (None, Some(_)) => {
                default = DatasetSpec::new(DatasetName::Arrays);
                &default
            }
            (None, None) => {
                return Ok(DataSource::Mnist {
                    dir: data.map(Path::to_path_buf),
                    targets: TargetKind::Classes,
                    copies: 1,
                });
            }
        };
        let copies = spec.streams.max(1);
        match spec.name {
            DatasetName::Mnist => {
                return Ok(DataSource::Mnist {
                    dir: data.map(Path::to_path_buf),
                    targets: spec.targets,
                    copies,
                });
            }
            DatasetName::Cifar10 => {
                return Ok(DataSource::Cifar10 {
                    dir: data.map(Path::to_path_buf),
                    opts: spec.cifar,
                    targets: spec.targets,
                    augment: spec.augment,
                    copies,
                });
            }
            DatasetName::Imagenet if copies > 1 => {
                return Err(DataError::InvalidDataset(format!(
                    "dataset imagenet: streams: {copies} needs examples to copy, and Xenon has no ImageNet reader"
                )));
            }
            DatasetName::Imagenet => return Ok(DataSource::Imagenet),
            DatasetName::Imdb => {
                let i = spec.imdb.clone().unwrap_or_default();
                let path = match (data_file, &i.path, data) {
                    (Some(f), _, _) => Some(f.to_path_buf()),
                    (None, Some(p), Some(d)) => Some(d.join(p)),
                    (None, Some(p), None) => Some(base.join(p)),
                    (None, None, d) => d.map(Path::to_path_buf),
                };
                let opts = ImdbOptions {
                    vocab_size: i.vocab_size,
                    max_len: i.max_len,
                    ..ImdbOptions::default()
                };
                return Ok(DataSource::Imdb { path, opts });
            }
            DatasetName::Text => {
                let spec = spec.text.clone().ok_or_else(|| {
                    DataError::InvalidDataset("dataset text: no time_steps given".into())
                })?;
                let path = match (data_file, &spec.path, data) {
                    (Some(f), _, _) => f.to_path_buf(),
                    (None, Some(p), Some(d)) => d.join(p),
                    (None, Some(p), None) => base.join(p),
                    (None, None, _) => PathBuf::from(super::text::BUNDLED_TEXT),
                };
                return Ok(DataSource::Text { path, spec });
            }
            DatasetName::Arrays => {}
        }
        let a = &spec.arrays;
        let base = match data {
            Some(d) if d.is_dir() => d.to_path_buf(),
            _ => base.to_path_buf(),
        };
        let file = match data_file {
            Some(f) => Some(f.to_string_lossy().into_owned()),
            None => a.file.clone(),
        };
        let invalid = |m: String| DataError::InvalidDataset(m);
        let split = |s: Option<&SplitSpec>, which: &str| -> Result<ArraySplit, DataError> {
            let (x_def, y_def) = (format!("x_{which}"), format!("y_{which}"));
            let (x, y) = match (s, &file) {
                (Some(s), _) => (s.x.names().to_vec(), s.y.clone()),
                (None, Some(f)) => (vec![f.clone()], Some(f.clone())),
                (None, None) => {
                    return Err(invalid(format!(
                        "dataset (arrays): no {which} split (give `{which}: {{x: ..., y: ...}}` or a `file` holding {x_def} and {y_def})"
                    )));
                }
            };
            let y = match (spec.targets, y) {
                (TargetKind::Inputs, _) => None,
                (_, Some(y)) => Some(ArrayRef::parse(&y, &base, &y_def)),
                (t, None) => {
                    return Err(invalid(format!(
                        "dataset (arrays): the {which} split has no `y` (targets: {}; only `targets: inputs` needs none)",
                        t.as_str()
                    )));
                }
            };
            if x.is_empty() {
                return Err(invalid(format!(
                    "dataset (arrays): the {which} split's `x` is an empty list; give one array, or one per input stream"
                )));
            }
            Ok(ArraySplit {
                x: x.iter()
                    .map(|x| ArrayRef::parse(x, &base, &x_def))
                    .collect(),
                y,
            })
        };
        let (train, test) = (
            split(a.train.as_ref(), "train")?,
            split(a.test.as_ref(), "test")?,
        );
        if train.x.len() != test.x.len() {
            return Err(invalid(format!(
                "dataset (arrays): the training split has {} input streams (`x` arrays), the test split {}",
                train.x.len(),
                test.x.len()
            )));
        }
        Ok(DataSource::Arrays {
            train,
            test,
            targets: spec.targets,
            nclass: a.nclass,
            lshape: a.lshape.clone(),
            copies,
        })
    }

    /// The augmentation of the training batches (crops and flips), if any.
    pub fn augment(&self) -> Option<Augment> {
        match self {
            DataSource::Cifar10 { augment, .. } => *augment,
            _ => None,
        }
    }

    /// What the model learns to output.
    pub fn targets(&self) -> TargetKind {
        match self {
            DataSource::Mnist { targets, .. }
            | DataSource::Cifar10 { targets, .. }
            | DataSource::Arrays { targets, .. } => *targets,
            DataSource::Imagenet | DataSource::Text { .. } | DataSource::Imdb { .. } => {
                TargetKind::Classes
            }
        }
    }

    /// True when the inputs are token ids fed one-hot (text with `onehot: true`): the last
    /// axis of [`DataSource::shapes`]' example shape is the one-hot width, and a model can
    /// take the ids themselves ([`Model::with_token_ids`](crate::model::Model::with_token_ids)).
    pub fn token_ids(&self) -> bool {
        matches!(self, DataSource::Text { spec, .. } if spec.onehot)
    }

    /// The shape of one example and the width of the targets (the model's output width).
    /// With several input streams ([`DataSource::streams`]) the example is their features
    /// side by side, `[Σ features]`.
    pub fn shapes(&self) -> Result<(Vec<usize>, usize), DataError> {
        let streams = self.all_streams()?;
        let (one, width) = self.stream_shapes()?;
        if streams.len() == 1 {
            return Ok((one, width));
        }
        let total: usize = streams.iter().map(|s| s.iter().product::<usize>()).sum();
        // An autoencoder's targets are every stream's inputs.
        let width = match self.targets() {
            TargetKind::Inputs => total,
            _ => width,
        };
        Ok((vec![total], width))
    }

    /// The example shape of each input stream when there are several (empty for one): a
    /// list of `x` arrays, or `streams: K` copies.
    pub fn streams(&self) -> Result<Vec<Vec<usize>>, DataError> {
        let all = self.all_streams()?;
        Ok(if all.len() > 1 { all } else { Vec::new() })
    }

    /// The example shape of every input stream, one or more, copies included.
    fn all_streams(&self) -> Result<Vec<Vec<usize>>, DataError> {
        let (copies, each) = match self {
            DataSource::Arrays {
                train,
                lshape,
                copies,
                ..
            } => {
                let mut each = Vec::with_capacity(train.x.len());
                for x in &train.x {
                    each.push(example_shape(x, &x.shape()?, lshape.as_deref())?);
                }
                (*copies, each)
            }
            DataSource::Mnist { copies, .. } | DataSource::Cifar10 { copies, .. } => {
                (*copies, vec![self.stream_shapes()?.0])
            }
            DataSource::Imagenet | DataSource::Text { .. } | DataSource::Imdb { .. } => {
                (1, vec![self.stream_shapes()?.0])
            }
        };
        Ok(each
            .iter()
            .cycle()
            .take(each.len() * copies)
            .cloned()
            .collect())
    }

    /// `layers` as this data feeds them: a first `MergeMultistream` takes the input
    /// streams ([`Sequential::fed_streams`] with [`DataSource::streams`]). Build models of
    /// a model file's layers through this, so that multistream data sets work.
    pub fn feed(&self, layers: &Sequential) -> Result<Sequential, DataError> {
        Ok(layers.fed_streams(&self.streams()?))
    }

    /// The shape of one stream's example (the first `x` array's), and the targets' width
    /// for that one stream ([`DataSource::shapes`] widens an autoencoder's to all).
    fn stream_shapes(&self) -> Result<(Vec<usize>, usize), DataError> {
        match self {
            DataSource::Mnist { targets, .. } => {
                let width = match targets {
                    TargetKind::Inputs => 28 * 28,
                    _ => MNIST_CLASSES,
                };
                Ok((vec![1, 28, 28], width))
            }
            DataSource::Cifar10 { opts, targets, .. } => {
                let width = match targets {
                    TargetKind::Inputs => CIFAR10_PIXELS,
                    _ => opts.nclass(),
                };
                Ok((vec![3, 32, 32], width))
            }
            DataSource::Imagenet => Ok((vec![3, 224, 224], 1000)),
            // Positive or negative.
            DataSource::Imdb { opts, .. } => Ok((vec![opts.max_len], 2)),
            DataSource::Text { spec, .. } => {
                let v = self.text_split()?.vocab.len();
                let shape = match spec.onehot {
                    true => vec![spec.time_steps, v],
                    false => vec![spec.time_steps],
                };
                Ok((shape, v))
            }
            DataSource::Arrays {
                train,
                targets,
                lshape,
                ..
            } => {
                let x = &train.x[0];
                let shape = example_shape(x, &x.shape()?, lshape.as_deref())?;
                let width = match (targets, &train.y) {
                    (TargetKind::Classes, _) => self.nclass()?,
                    (TargetKind::Real, Some(y)) => {
                        y.shape()?.iter().skip(1).product::<usize>().max(1)
                    }
                    _ => shape.iter().product(),
                };
                Ok((shape, width))
            }
        }
    }

    /// A `text` source's file, split and encoded (for any other source, an error).
    pub fn text_split(&self) -> Result<super::text::TextSplit, DataError> {
        let DataSource::Text { path, spec } = self else {
            return Err(DataError::InvalidDataset("the data set is no text".into()));
        };
        super::text::load_split(path, spec.tokens.tokenizer(), spec.valid_split)
    }

    /// The class count of an `arrays` source with class targets: given, or inferred.
    fn nclass(&self) -> Result<usize, DataError> {
        let DataSource::Arrays {
            train,
            test,
            nclass,
            ..
        } = self
        else {
            return Ok(MNIST_CLASSES);
        };
        if let Some(n) = nclass {
            return Ok(*n);
        }
        let mut largest = -1.0f32;
        for y in [&train.y, &test.y].into_iter().flatten() {
            let (_, v) = y.read()?;
            for (i, &c) in v.iter().enumerate() {
                if !(c >= 0.0 && c.fract() == 0.0) {
                    return Err(DataError::Array {
                        path: y.path.clone(),
                        array: y.name().to_string(),
                        reason: format!(
                            "element {i}: {c} is not a class id (a whole number ≥ 0); use `targets: real` for real-valued targets"
                        ),
                    });
                }
                if c >= MAX_CLASS_ID_EXCLUSIVE {
                    return Err(DataError::Array {
                        path: y.path.clone(),
                        array: y.name().to_string(),
                        reason: format!(
                            "element {i}: class id {c} is not below 2^24 (class ids are read as f32, exact only up to there); use `targets: real` for real-valued targets"
                        ),
                    });
                }
                largest = largest.max(c);
            }
        }
        Ok(largest as usize + 1)
    }

    /// Reads the training and test sets.
    pub fn load(&self) -> Result<(Dataset, Dataset), DataError> {
        // Copies of each example for `streams: K`, then (an autoencoder) the inputs as
        // targets.
        let finish = |(tr, te): (Dataset, Dataset), copies: usize, targets: TargetKind| {
            let (tr, te) = (tr.copied_to_streams(copies)?, te.copied_to_streams(copies)?);
            Ok(match targets {
                TargetKind::Inputs => (tr.autoencoder(), te.autoencoder()),
                _ => (tr, te),
            })
        };
        match self {
            DataSource::Imdb { path: None, .. } => Err(DataError::InvalidDataset(
                "dataset imdb: IMDB is not bundled with Xenon; give `path:` in the model file or --data PATH (neon's imdb.pkl, or an .npz of x_train, y_train, x_test, y_test)".into(),
            )),
            DataSource::Imdb {
                path: Some(path),
                opts,
            } => super::imdb::Imdb::load(path, opts)?.datasets(),
            DataSource::Text { spec, .. } => {
                let split = self.text_split()?;
                let v = split.vocab.len();
                let part = |ids: &[u32], which: &str| {
                    super::text::text_dataset(ids, v, spec.time_steps, spec.onehot).map_err(|e| {
                        DataError::InvalidDataset(format!("dataset text, {which} part: {e}"))
                    })
                };
                Ok((part(&split.train, "training")?, part(&split.valid, "validation")?))
            }
            DataSource::Imagenet => Err(DataError::InvalidDataset(
                "dataset imagenet: Xenon has no ImageNet reader; the name only gives the input shape (3×224×224, 1000 classes) to summary, compile and bench".into(),
            )),
            DataSource::Cifar10 {
                dir,
                opts,
                targets,
                augment,
                copies,
            } => {
                let Some(dir) = dir else {
                    return Err(DataError::InvalidDataset(
                        "dataset cifar10: CIFAR-10 is not bundled with Xenon; give --data DIR, a local copy of the binary release (cifar-10-batches-bin) or the Python release (cifar-10-batches-py)".into(),
                    ));
                };
                if *targets == TargetKind::Real {
                    return Err(DataError::InvalidDataset(
                        "dataset cifar10: `targets: real` needs real-valued targets; CIFAR-10 has classes or the images themselves (targets: inputs)".into(),
                    ));
                }
                if augment.is_some() && *copies > 1 {
                    return Err(DataError::InvalidDataset(format!(
                        "dataset cifar10: augment crops and flips single images; it cannot be combined with streams: {copies}"
                    )));
                }
                let c = Cifar10::load(dir, opts)?;
                finish((c.train, c.test), *copies, *targets)
            }
            DataSource::Mnist {
                dir,
                targets,
                copies,
            } => {
                if *targets == TargetKind::Real {
                    return Err(DataError::InvalidDataset(
                        "dataset mnist: `targets: real` needs real-valued targets; MNIST has classes (targets: classes) or the images themselves (targets: inputs)".into(),
                    ));
                }
                let m = match dir {
                    Some(d) => Mnist::load(d)?,
                    None => Mnist::bundled()?,
                };
                finish((m.train, m.test), *copies, *targets)
            }
            DataSource::Arrays {
                train,
                test,
                targets,
                lshape,
                copies,
                ..
            } => {
                let kind = match targets {
                    TargetKind::Classes => Targets::Classes {
                        nclass: self.nclass()?,
                    },
                    _ => Targets::Real,
                };
                let read = |s: &ArraySplit| -> Result<Dataset, DataError> {
                    let (xs, xd, streams) = read_streams(&s.x, lshape.as_deref())?;
                    let shape = match &streams[..] {
                        [one] => one.clone(),
                        _ => vec![xs[1..].iter().product()],
                    };
                    let d = match &s.y {
                        Some(y) => named_dataset(
                            (xs, xd),
                            y.read()?,
                            [s.x[0].name(), y.name()],
                            kind,
                            Some(shape),
                            &y.path,
                        )?,
                        None => Dataset::new(xd, vec![0; xs[0]], 1, shape)?,
                    };
                    match streams.len() {
                        1 => Ok(d),
                        _ => d.with_streams(streams),
                    }
                };
                let (tr, te) = (read(train)?, read(test)?);
                if tr.feature_shape != te.feature_shape
                    || tr.nclass != te.nclass
                    || tr.streams != te.streams
                {
                    return Err(DataError::Array {
                        path: test.x[0].path.clone(),
                        array: test.x[0].name().to_string(),
                        reason: format!(
                            "the test examples (shape {:?}, streams {:?}, targets {} wide) do not match the training examples (shape {:?}, streams {:?}, targets {} wide)",
                            te.feature_shape,
                            te.streams,
                            te.nclass,
                            tr.feature_shape,
                            tr.streams,
                            tr.nclass
                        ),
                    });
                }
                finish((tr, te), *copies, *targets)
            }
        }
    }
}

/// Reads the `x` arrays of a split, one per stream, as one array of their examples side by
/// side (`[N, Σ features]`, or the one array as it is), with each stream's example shape.
fn read_streams(
    xs: &[ArrayRef],
    lshape: Option<&[usize]>,
) -> Result<(Vec<usize>, Vec<f32>, StreamShapes), DataError> {
    let mut arrays = Vec::with_capacity(xs.len());
    let mut streams = Vec::with_capacity(xs.len());
    for x in xs {
        let (shape, data) = x.read()?;
        streams.push(example_shape(x, &shape, lshape)?);
        if let Some((first, first_shape)) = arrays.first().map(|(s, _): &(Vec<usize>, _)| (s[0], s))
            && shape[0] != first
        {
            return Err(DataError::Array {
                path: x.path.clone(),
                array: x.name().to_string(),
                reason: format!(
                    "shape {shape:?} has {} examples, the first stream's array (shape {first_shape:?}) {first}",
                    shape[0]
                ),
            });
        }
        arrays.push((shape, data));
    }
    if arrays.len() == 1 {
        let (shape, data) = arrays.pop().expect("one array");
        return Ok((shape, data, streams));
    }
    let n = arrays[0].0[0];
    let widths: Vec<usize> = arrays
        .iter()
        .map(|(s, _)| s[1..].iter().product())
        .collect();
    let total: usize = widths.iter().sum();
    let mut data = Vec::with_capacity(n * total);
    for i in 0..n {
        for ((_, d), &w) in arrays.iter().zip(&widths) {
            data.extend_from_slice(&d[i * w..(i + 1) * w]);
        }
    }
    Ok((vec![n, total], data, streams))
}

/// The example shape of each input stream.
type StreamShapes = Vec<Vec<usize>>;

/// The shape of one example of `x` (shape `xs`): `lshape`, when its element count fits,
/// else `xs` without its first axis.
fn example_shape(
    x: &ArrayRef,
    xs: &[usize],
    lshape: Option<&[usize]>,
) -> Result<Vec<usize>, DataError> {
    let err = |reason: String| DataError::Array {
        path: x.path.clone(),
        array: x.name().to_string(),
        reason,
    };
    if xs.len() < 2 {
        return Err(err(format!(
            "shape {xs:?}: features need at least two axes, [examples, features…]"
        )));
    }
    let per_example = &xs[1..];
    match lshape {
        Some(l) if l.iter().product::<usize>() != per_example.iter().product::<usize>() => {
            Err(err(format!(
                "examples of shape {per_example:?} do not fit lshape {l:?}"
            )))
        }
        Some(l) => Ok(l.to_vec()),
        None => Ok(per_example.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_file::ArraysSpec;

    #[test]
    fn array_references_name_files_and_archive_members() {
        let base = Path::new("/d");
        let r = ArrayRef::parse("x.npy", base, "x_train");
        assert_eq!((r.path, r.array), (PathBuf::from("/d/x.npy"), None));
        let r = ArrayRef::parse("a.npz:feat", base, "x_train");
        assert_eq!(
            (r.path, r.array.as_deref()),
            (PathBuf::from("/d/a.npz"), Some("feat"))
        );
        let r = ArrayRef::parse("sub/a.npz", base, "y_test");
        assert_eq!(r.array.as_deref(), Some("y_test"));
        assert_eq!(r.path, PathBuf::from("/d/sub/a.npz"));
        // An absolute path stays; a colon elsewhere is part of the name.
        let r = ArrayRef::parse("/e/odd:name.npy", base, "x_train");
        assert_eq!((r.path, r.array), (PathBuf::from("/e/odd:name.npy"), None));
    }

    #[test]
    fn specs_resolve_to_sources() {
        let base = Path::new("/models");
        // No entry: MNIST, from `--data` when given.
        assert_eq!(
            DataSource::new(None, None, base).unwrap(),
            DataSource::Mnist {
                dir: None,
                targets: TargetKind::Classes,
                copies: 1,
            }
        );
        // `file` gives all four arrays; `train` overrides its split.
        let mut spec = DatasetSpec::new(DatasetName::Arrays);
        spec.arrays = ArraysSpec {
            file: Some("d.npz".into()),
            train: Some(SplitSpec {
                x: "xt.npy".into(),
                y: Some("yt.npy".into()),
            }),
            ..ArraysSpec::default()
        };
        let DataSource::Arrays { train, test, .. } =
            DataSource::new(Some(&spec), None, base).unwrap()
        else {
            panic!("arrays expected")
        };
        assert_eq!(train.x[0].path, PathBuf::from("/models/xt.npy"));
        assert_eq!(test.x[0].array.as_deref(), Some("x_test"));
        assert_eq!(test.y.unwrap().array.as_deref(), Some("y_test"));
        // An autoencoder needs no targets.
        spec.targets = TargetKind::Inputs;
        let DataSource::Arrays { train, .. } = DataSource::new(Some(&spec), None, base).unwrap()
        else {
            panic!("arrays expected")
        };
        assert_eq!(train.y, None);
        // Without `file`, a missing test split is an error naming it.
        spec.arrays.file = None;
        let e = DataSource::new(Some(&spec), None, base).unwrap_err();
        assert!(e.to_string().contains("no test split"), "{e}");
    }
}
