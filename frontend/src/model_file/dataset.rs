//! The `dataset:` entry: the data set names Xenon can load, and reading and writing the entry.

use super::de::typed;
use super::error::ModelFileError;
use super::tree::Node;
use crate::data::{Augment, CifarOptions};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A data set Xenon can load by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// `mnist`: 28×28 grey digits, 60,000 training and 10,000 test images (the bundled
    /// subset: 8,000 and 1,000).
    Mnist,
    /// `arrays`: the user's NumPy arrays, `.npy` files or `.npz` archives (neon's
    /// `ArrayIterator`); see [`ArraysSpec`].
    Arrays,
    /// `cifar10`: 3×32×32 colour images in 10 classes, from a local copy of the binary or
    /// the Python release (`--data DIR`); see [`CifarOptions`] for the preprocessing keys.
    Cifar10,
    /// `imagenet`: 3×224×224 images in 1,000 classes. Xenon has no ImageNet reader: the
    /// name gives model files their input shape (`summary`, `compile`, `bench`), and
    /// training on it is an error.
    Imagenet,
    /// `text`: a text file read as neon's `Text` reads it (the bundled tinyshakespeare
    /// unless `path` is given); see [`TextSpec`].
    Text,
    /// `imdb`: movie reviews as word ids, positive or negative, from a local copy of neon's
    /// `imdb.pkl` or an `.npz` (`path:` or `--data`); see [`ImdbSpec`].
    Imdb,
}

impl DatasetName {
    /// Every accepted name.
    pub const NAMES: [&'static str; 6] = ["mnist", "arrays", "cifar10", "imagenet", "text", "imdb"];

    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::Arrays => "arrays",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Imagenet => "imagenet",
            DatasetName::Text => "text",
            DatasetName::Imdb => "imdb",
        }
    }

    /// The data set with this name (case-sensitive).
    pub fn from_name(name: &str) -> Option<DatasetName> {
        match name {
            "mnist" => Some(DatasetName::Mnist),
            "arrays" => Some(DatasetName::Arrays),
            "cifar10" => Some(DatasetName::Cifar10),
            "imagenet" => Some(DatasetName::Imagenet),
            "text" => Some(DatasetName::Text),
            "imdb" => Some(DatasetName::Imdb),
            _ => None,
        }
    }
}

/// What a model learns to output for each example (the `targets:` key of `dataset:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// `classes` (the default): class ids, made one-hot (neon's `make_onehot=True`);
    /// evaluated by misclassification.
    #[default]
    Classes,
    /// `real`: real-valued targets, one row per example (regression, neon's
    /// `make_onehot=False`); evaluated by the model's cost.
    Real,
    /// `inputs`: the inputs themselves (an autoencoder); evaluated by the model's cost.
    Inputs,
}

impl TargetKind {
    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Classes => "classes",
            TargetKind::Real => "real",
            TargetKind::Inputs => "inputs",
        }
    }
}

/// One split (training or test) of an `arrays` data set: the features `x` and the targets
/// `y` (absent for `targets: inputs`). Each names a `.npy` file, or an array of a `.npz`
/// archive as `archive.npz:array` (`archive.npz` alone takes the split's default array,
/// `x_train`, `y_train`, `x_test` or `y_test`). A list of `x` arrays gives one input stream
/// each (neon's multistream `ArrayIterator`, for a model starting with a
/// `MergeMultistream`): `x: [a.npz:image, a.npz:text]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// The features, `[N, feature…]`: one array, or one per input stream.
    pub x: Streams,
    /// The targets: class ids `[N]` or `[N, 1]`, or real values `[N, width…]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// One array name, or a list of them (one per input stream).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Streams {
    One(String),
    Many(Vec<String>),
}

impl Streams {
    /// The names, in stream order.
    pub fn names(&self) -> &[String] {
        match self {
            Streams::One(s) => std::slice::from_ref(s),
            Streams::Many(v) => v,
        }
    }
}

impl From<&str> for Streams {
    fn from(s: &str) -> Streams {
        Streams::One(s.to_string())
    }
}

/// Where the arrays of `name: arrays` are. Relative paths are taken from the `--data`
/// directory when one is given, else from the model file's directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArraysSpec {
    /// One `.npz` archive holding `x_train`, `y_train`, `x_test` and `y_test` (the layout
    /// of Keras' `mnist.npz`); `train` and `test` override its splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The training split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<SplitSpec>,
    /// The test (validation) split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<SplitSpec>,
    /// The number of classes for `targets: classes` (default: the largest class id in
    /// either split, plus one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nclass: Option<usize>,
    /// The shape of one example (neon's `lshape`, e.g. `[1, 28, 28]`; default: `x`'s
    /// shape without its first axis). Must hold as many elements as an example of `x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lshape: Option<Vec<usize>>,
}

/// The keys of `dataset: {name: text, ...}`: a text file as neon's `Text` data set
/// ([`text_dataset`](crate::data::text::text_dataset)): examples of `time_steps` tokens with
/// next-token targets, batched in contiguous columns for stateful recurrent layers.
///
/// ```yaml
/// dataset: {name: text, time_steps: 50}                # the bundled tinyshakespeare
/// dataset: {name: text, path: ptb.train.txt, time_steps: 20, tokens: words, onehot: false}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// The text file, raw or gzipped, relative to the `--data` directory or the model
    /// file's; `--data FILE` replaces it. Default: the bundled tinyshakespeare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Tokens per example: the length the recurrent layers are unrolled to (required).
    pub time_steps: usize,
    /// The fraction of the text, at its end, held out for validation (neon's
    /// `Text.create_valid_file`); default 0.1. The vocabulary is the training part's.
    #[serde(default = "tenth", skip_serializing_if = "is_tenth")]
    pub valid_split: f64,
    /// `chars` (default: every character is a token) or `words` (split on whitespace).
    #[serde(default, skip_serializing_if = "is_chars")]
    pub tokens: TokenKind,
    /// Inputs one-hot (default true, neon's `onehot_input`), or token ids for a model
    /// starting with a `LookupTable`.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub onehot: bool,
}

/// What a text's tokens are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Every character (neon's default).
    #[default]
    Chars,
    /// Whitespace-separated words.
    Words,
}

impl TokenKind {
    /// The tokenizer that splits text into these tokens.
    pub fn tokenizer(self) -> crate::data::text::Tokenizer {
        match self {
            TokenKind::Chars => crate::data::text::Tokenizer::Chars,
            TokenKind::Words => crate::data::text::Tokenizer::Words { eos: false },
        }
    }
}

fn tenth() -> f64 {
    0.1
}

fn is_tenth(v: &f64) -> bool {
    *v == 0.1
}

fn is_chars(t: &TokenKind) -> bool {
    *t == TokenKind::Chars
}

fn is_yes(b: &bool) -> bool {
    *b
}

/// The keys of `dataset: {name: imdb, ...}`: neon's IMDB reviews
/// ([`Imdb`](crate::data::imdb::Imdb)), each the word ids of its last `max_len` words
/// (zeros first when shorter), labelled 0 (negative) or 1 (positive).
///
/// ```yaml
/// dataset: {name: imdb, path: imdb.pkl}            # vocab_size 20000, max_len 128
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImdbSpec {
    /// neon's `imdb.pkl`, an `.npz` of `x_train`, `y_train`, `x_test`, `y_test`, or a
    /// directory holding either, relative to the `--data` directory or the model file's;
    /// `--data FILE` replaces it. IMDB is not bundled: one of the two is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Word ids from this one on are out of the vocabulary (default 20,000, neon's).
    #[serde(default = "twenty_thousand")]
    pub vocab_size: usize,
    /// Words per review (default 128, neon's `imdb_lstm`).
    #[serde(default = "one_twenty_eight")]
    pub max_len: usize,
}

impl Default for ImdbSpec {
    /// No path, neon's vocabulary of 20,000 and reviews of 128 words.
    fn default() -> ImdbSpec {
        ImdbSpec {
            path: None,
            vocab_size: twenty_thousand(),
            max_len: one_twenty_eight(),
        }
    }
}

fn twenty_thousand() -> usize {
    20_000
}

fn one_twenty_eight() -> usize {
    128
}

/// Every key of `dataset: {name: imdb, ...}`, checked as a whole.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImdbEntry {
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "twenty_thousand")]
    vocab_size: usize,
    #[serde(default = "one_twenty_eight")]
    max_len: usize,
}

/// Every key of `dataset: {name: text, ...}`, checked as a whole.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextEntry {
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    path: Option<String>,
    time_steps: usize,
    #[serde(default = "tenth")]
    valid_split: f64,
    #[serde(default)]
    tokens: TokenKind,
    #[serde(default = "yes")]
    onehot: bool,
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `dataset:` entry.
///
/// ```yaml
/// dataset: {name: mnist}                    # class labels (the default)
/// dataset: {name: mnist, targets: inputs}   # an autoencoder
/// dataset: {name: mnist, shuffle: true}     # a new order of the examples every epoch
/// dataset:
///   name: arrays
///   train: {x: train_x.npy, y: train_y.npy}
///   test: {x: data.npz:x_val, y: data.npz:y_val}
///   targets: real                           # classes (default) | real | inputs
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// `name:` (required).
    pub name: DatasetName,
    /// `targets:` (default `classes`).
    pub targets: TargetKind,
    /// The arrays of `name: arrays` (empty for other data sets).
    pub arrays: ArraysSpec,
    /// The preprocessing of `name: cifar10` (neon's defaults for other data sets).
    pub cifar: CifarOptions,
    /// The text of `name: text` (`None` for other data sets).
    pub text: Option<TextSpec>,
    /// The reviews of `name: imdb` (`None` for other data sets).
    pub imdb: Option<ImdbSpec>,
    /// Random crops and flips of the training images (`augment: {pad: 4, flip: true,
    /// seed: 0}`; `cifar10` only); default none.
    pub augment: Option<Augment>,
    /// `shuffle: true` visits the training examples in a new order every epoch, drawn from
    /// the model's seed (what aeon's `shuffle_enable` does for neon's image loaders, and
    /// what `cifar10_conv` trains with); default `false`, the fixed order of neon's
    /// `ArrayIterator`. The test split is never shuffled.
    pub shuffle: bool,
    /// `streams: K` gives every example to `K` input streams, one copy each, for a model
    /// starting with a `MergeMultistream` of `K` branches (neon's `mnist_merge` example
    /// feeds `[X, X]`); default 1. An `arrays` set gets streams of its own from a list of
    /// `x` arrays.
    pub streams: usize,
    /// Every other key of a named data set (neon's `train_config`, `test_config`, ...),
    /// uninterpreted, as JSON values. Never contains `name`, `targets`, `shuffle` or
    /// `streams`; empty for
    /// `arrays`, whose keys are all checked.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl DatasetSpec {
    /// A spec with only a name.
    pub fn new(name: DatasetName) -> DatasetSpec {
        DatasetSpec {
            name,
            targets: TargetKind::Classes,
            arrays: ArraysSpec::default(),
            cifar: CifarOptions::default(),
            text: None,
            imdb: None,
            augment: None,
            shuffle: false,
            streams: 1,
            extra: BTreeMap::new(),
        }
    }
}

/// Every key of `dataset: {name: cifar10, ...}`, checked as a whole.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CifarEntry {
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    targets: TargetKind,
    #[serde(default = "yes")]
    normalize: bool,
    #[serde(default)]
    contrast_normalize: bool,
    #[serde(default)]
    whiten: bool,
    #[serde(default)]
    pad_classes: bool,
    #[serde(default)]
    augment: Option<Augment>,
    #[serde(default)]
    shuffle: bool,
    #[serde(default = "one")]
    streams: usize,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// Every key of `dataset: {name: arrays, ...}`, checked as a whole.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArraysEntry {
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    targets: TargetKind,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    train: Option<SplitSpec>,
    #[serde(default)]
    test: Option<SplitSpec>,
    #[serde(default)]
    nclass: Option<usize>,
    #[serde(default)]
    lshape: Option<Vec<usize>>,
    #[serde(default)]
    shuffle: bool,
    #[serde(default = "one")]
    streams: usize,
}

/// Reads the `dataset:` mapping: `name` (required), `targets`, and for `arrays` its keys;
/// every other key of a named data set is kept as JSON.
pub(super) fn read(node: &Node) -> Result<DatasetSpec, ModelFileError> {
    let entries = node.entries("dataset", "a mapping such as {name: mnist}")?;
    let Some(name_entry) = entries.iter().find(|e| e.key == "name") else {
        return Err(ModelFileError::MissingKey {
            at: "dataset".into(),
            key: "name".into(),
            pos: node.pos,
        });
    };
    let s: String = typed(&name_entry.value, "dataset.name")?;
    let name = DatasetName::from_name(&s).ok_or(ModelFileError::UnknownDataset {
        name: s,
        pos: name_entry.value.pos,
    })?;
    let mut spec = DatasetSpec::new(name);
    if name == DatasetName::Cifar10 {
        let e: CifarEntry = typed(node, "dataset")?;
        spec.targets = e.targets;
        spec.cifar = CifarOptions {
            normalize: e.normalize,
            contrast_normalize: e.contrast_normalize,
            whiten: e.whiten,
            pad_classes: e.pad_classes,
        };
        spec.augment = e.augment;
        spec.shuffle = e.shuffle;
        spec.streams = e.streams;
        check_streams(&spec, node)?;
        return Ok(spec);
    }
    if name == DatasetName::Imdb {
        let e: ImdbEntry = typed(node, "dataset")?;
        if e.vocab_size < 4 || e.max_len == 0 || e.max_len > MAX_SEQUENCE {
            return Err(ModelFileError::Invalid {
                at: "dataset".into(),
                message: format!(
                    "vocab_size must be at least 4 (ids 0-2 are reserved) and max_len from 1 to {MAX_SEQUENCE}"
                ),
                pos: node.pos,
            });
        }
        spec.imdb = Some(ImdbSpec {
            path: e.path,
            vocab_size: e.vocab_size,
            max_len: e.max_len,
        });
        return Ok(spec);
    }
    if name == DatasetName::Text {
        let e: TextEntry = typed(node, "dataset")?;
        if e.time_steps == 0 || e.time_steps > MAX_SEQUENCE || !(0.0..1.0).contains(&e.valid_split)
        {
            return Err(ModelFileError::Invalid {
                at: "dataset".into(),
                message: format!(
                    "time_steps must be from 1 to {MAX_SEQUENCE} and valid_split in [0, 1)"
                ),
                pos: node.pos,
            });
        }
        spec.text = Some(TextSpec {
            path: e.path,
            time_steps: e.time_steps,
            valid_split: e.valid_split,
            tokens: e.tokens,
            onehot: e.onehot,
        });
        return Ok(spec);
    }
    if name == DatasetName::Arrays {
        let e: ArraysEntry = typed(node, "dataset")?;
        spec.targets = e.targets;
        spec.arrays = ArraysSpec {
            file: e.file,
            train: e.train,
            test: e.test,
            nclass: e.nclass,
            lshape: e.lshape,
        };
        spec.shuffle = e.shuffle;
        spec.streams = e.streams;
        check_streams(&spec, node)?;
        if spec.arrays.file.is_none() && spec.arrays.train.is_none() {
            return Err(ModelFileError::MissingKey {
                at: "dataset (arrays)".into(),
                key: "file\" or \"train".into(),
                pos: node.pos,
            });
        }
        return Ok(spec);
    }
    for e in entries {
        match e.key.as_str() {
            "name" => {}
            "targets" => spec.targets = typed(&e.value, "dataset.targets")?,
            "shuffle" => spec.shuffle = typed(&e.value, "dataset.shuffle")?,
            "streams" => spec.streams = typed(&e.value, "dataset.streams")?,
            _ => {
                spec.extra.insert(e.key.clone(), e.value.to_json());
            }
        }
    }
    check_streams(&spec, node)?;
    Ok(spec)
}

/// The longest sequence a model file's data set may give (text `time_steps`, IMDB
/// `max_len`): recurrent layers are unrolled step by step into the graph, and a mutated
/// `time_steps: 1000000` made an LSTM's graph ask for a 3.5 GB node table.
pub const MAX_SEQUENCE: usize = 10_000;

/// The most input streams `streams: K` may ask for (each is a copy of every example).
pub const MAX_STREAMS: usize = 64;

/// `streams: 0` is an error, and so is more than [`MAX_STREAMS`] (a mutated file's
/// `streams: 2147483647` made 2³¹ copies of the example's shape: 51 GB).
fn check_streams(spec: &DatasetSpec, node: &Node) -> Result<(), ModelFileError> {
    if spec.streams == 0 || spec.streams > MAX_STREAMS {
        return Err(ModelFileError::Invalid {
            at: "dataset.streams".into(),
            message: format!(
                "{} streams: give 1 (the default) to {MAX_STREAMS}",
                spec.streams
            ),
            pos: node.pos,
        });
    }
    Ok(())
}

impl Serialize for DatasetSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra: Vec<_> = self
            .extra
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "name" | "targets" | "shuffle" | "streams"))
            .collect();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", self.name.as_str())?;
        if self.targets != TargetKind::Classes {
            map.serialize_entry("targets", self.targets.as_str())?;
        }
        let a = &self.arrays;
        if let Some(f) = &a.file {
            map.serialize_entry("file", f)?;
        }
        if let Some(t) = &a.train {
            map.serialize_entry("train", t)?;
        }
        if let Some(t) = &a.test {
            map.serialize_entry("test", t)?;
        }
        if let Some(n) = &a.nclass {
            map.serialize_entry("nclass", n)?;
        }
        if let Some(l) = &a.lshape {
            map.serialize_entry("lshape", l)?;
        }
        if self.name == DatasetName::Cifar10 {
            let (c, d) = (&self.cifar, CifarOptions::default());
            if c.normalize != d.normalize {
                map.serialize_entry("normalize", &c.normalize)?;
            }
            for (key, v) in [
                ("contrast_normalize", c.contrast_normalize),
                ("whiten", c.whiten),
                ("pad_classes", c.pad_classes),
            ] {
                if v {
                    map.serialize_entry(key, &v)?;
                }
            }
        }
        if let Some(t) = &self.text {
            map.serialize_entry("time_steps", &t.time_steps)?;
            if let Some(p) = &t.path {
                map.serialize_entry("path", p)?;
            }
            if !is_tenth(&t.valid_split) {
                map.serialize_entry("valid_split", &t.valid_split)?;
            }
            if !is_chars(&t.tokens) {
                map.serialize_entry("tokens", &t.tokens)?;
            }
            if !t.onehot {
                map.serialize_entry("onehot", &false)?;
            }
        }
        if let Some(i) = &self.imdb {
            if let Some(p) = &i.path {
                map.serialize_entry("path", p)?;
            }
            if i.vocab_size != twenty_thousand() {
                map.serialize_entry("vocab_size", &i.vocab_size)?;
            }
            if i.max_len != one_twenty_eight() {
                map.serialize_entry("max_len", &i.max_len)?;
            }
        }
        if let Some(a) = &self.augment {
            map.serialize_entry("augment", a)?;
        }
        if self.shuffle {
            map.serialize_entry("shuffle", &true)?;
        }
        if self.streams != 1 {
            map.serialize_entry("streams", &self.streams)?;
        }
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
