//! Model description files: neon's YAML schema (`neon/util/yaml_parse.py`, `bin/neon`), and
//! the same shape in JSON.
//!
//! A model file describes a whole training run: the network, its cost, the optimizer and
//! the data. Xenon reads neon's files unchanged:
//!
//! ```yaml
//! backend: mkl
//! epochs: 10
//! batchsize: 128
//! wt_init: &wt_init
//!   type: Gaussian
//!   config: {loc: 0.0, scale: 0.01}
//! layers:
//!   - type: Linear
//!     config: {nout: 100, init: *wt_init}
//!   - type: Activation
//!     config: {transform: {type: Rectlin}}
//!   - type: Linear
//!     config: {nout: 10, init: *wt_init}
//!   - type: Activation
//!     config: {transform: {type: Logistic, config: {shortcut: true}}}
//! cost: CrossEntropyBinary
//! optimizer:
//!   type: GradientDescentMomentum
//!   config: {learning_rate: 0.1, momentum_coef: 0.9}
//! dataset: {name: mnist}
//! ```
//!
//! # Top-level keys
//!
//! | Key | Required | Meaning |
//! |---|---|---|
//! | `layers` | yes | A non-empty list of layers, read into a [`Sequential`] (the only container neon's files support). |
//! | `cost` | yes | The cost, a bare class name (`CrossEntropyBinary`) or a `{type, config}` object; see [`Cost`]. neon wraps it in `GeneralizedCost`. |
//! | `optimizer` | no | A `{type, config}` object; see [`Optimizer`]. [`ModelFile::optimizer`] is `None` when absent. |
//! | `epochs` | no | Number of epochs, a non-negative integer; `None` when absent. In neon the command line's `-e` wins over it, and `bin/neon` trains 1 epoch when neither is given. |
//! | `batchsize` | no | Minibatch size, a non-negative integer; `None` when absent. In neon it **overrides** the command line's `-z`. |
//! | `backend` | no | `cpu`, `mkl` or `gpu` (see [`BackendName`]); `None` when absent. neon uses it only when `-b` is not given. |
//! | `dataset` | no | `{name: mnist, ...}`: `name` is required and must be one of [`DatasetName::NAMES`]; every other key (neon's `train_config`, `test_config`, ...) is kept, uninterpreted, in [`DatasetSpec::extra`]. |
//!
//! Any other top-level key is ignored: neon's files use dummy keys such as `wt_init:` to
//! hold YAML anchors (`&wt_init`) that the layers then reference with aliases
//! (`*wt_init`). Aliases are resolved while reading, so every use of an anchor gets an
//! equal copy of the anchored value.
//!
//! # Typed objects
//!
//! Every layer, and every nested object inside a layer or optimizer (an initializer such as
//! `init` or `bias`, an activation such as `transform` or `activation`, an optimizer's
//! `schedule`), is a `{type, config}` mapping, as in neon:
//!
//! * `type` is the neon class name. The known names are those of the Rust enums:
//!   [`LAYER_TYPES`](crate::layer::LAYER_TYPES), [`Activation::NAMES`](crate::activation::Activation::NAMES),
//!   [`Initializer::NAMES`](crate::init::Initializer::NAMES), [`Cost::NAMES`],
//!   [`Optimizer::NAMES`], [`Schedule::NAMES`](crate::optimizer::Schedule::NAMES).
//! * `config` holds the constructor's keyword arguments, with neon's names. Arguments left
//!   out take the defaults documented on each enum variant (which are neon's). `config` may
//!   be omitted (or be empty, or null) when every argument takes its default, for example
//!   `{type: Tanh}` or `{type: Rectlin}`.
//! * No other key is allowed next to `type` and `config`, and no argument the class does
//!   not accept is allowed inside `config`: a misspelt argument is an error, never silently
//!   ignored.
//! * A bare class name stands for `{type: Name}` wherever a typed object is expected (this
//!   is how neon writes `cost`; Xenon accepts it everywhere, for example `init: GlorotUniform`).
//!
//! # JSON
//!
//! The same document in JSON has the same shape (`{"layers": [{"type": "Linear",
//! "config": {...}}], "cost": "CrossEntropyBinary", ...}`); JSON has no anchors, so shared
//! values are written out at each use. [`ModelFile::to_json`] writes a model file in this
//! form, with every argument spelled out (defaults included), and
//! [`ModelFile::from_json_str`] reads it back to an equal [`ModelFile`].
//!
//! # Errors
//!
//! Reading never panics. Each problem is one [`ModelFileError`] whose message is one line
//! naming the place (`layers[1] (Linear)`, with line and column where the source has them)
//! and, for unknown names, the accepted ones:
//!
//! ```text
//! unknown layer type "Dense" at layers[1] (line 4, column 12); known types: Linear, Bias, Affine, Activation
//! layers[0] (Linear): unknown argument "nouts" (line 2, column 29); accepted: nout, init, bsum, name
//! layers[0] (Linear).nout: invalid type: string "many", expected usize (line 4, column 13)
//! invalid YAML at line 3, column 1: duplicate key "layers"
//! ```
//!
//! Numbers must be finite (`.nan` and `.inf` are rejected), and a mapping may not repeat a
//! key.

use crate::cost::Cost;
use crate::layer::{Layer, Sequential};
use crate::optimizer::Optimizer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------

/// A parsed model description file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// The requested backend (`backend:`); `None` when absent.
    pub backend: Option<BackendName>,
    /// Number of training epochs (`epochs:`); `None` when absent.
    pub epochs: Option<usize>,
    /// Minibatch size (`batchsize:`); `None` when absent.
    pub batchsize: Option<usize>,
    /// The network (`layers:`, required, at least one layer).
    pub layers: Sequential,
    /// The cost (`cost:`, required).
    pub cost: Cost,
    /// The optimizer (`optimizer:`); `None` when absent.
    pub optimizer: Option<Optimizer>,
    /// The data set (`dataset:`); `None` when absent.
    pub dataset: Option<DatasetSpec>,
}

/// A backend name as neon's files and `-b` flag spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendName {
    /// `cpu`: neon's numpy backend.
    Cpu,
    /// `mkl`: neon's MKL-accelerated CPU backend.
    Mkl,
    /// `gpu`: neon's CUDA backend.
    Gpu,
}

impl BackendName {
    /// Every accepted name, in the order neon's `-b` flag lists them.
    pub const NAMES: [&'static str; 3] = ["cpu", "mkl", "gpu"];

    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Cpu => "cpu",
            BackendName::Mkl => "mkl",
            BackendName::Gpu => "gpu",
        }
    }

    /// The backend with this name (case-sensitive, as in neon).
    pub fn from_name(name: &str) -> Option<BackendName> {
        match name {
            "cpu" => Some(BackendName::Cpu),
            "mkl" => Some(BackendName::Mkl),
            "gpu" => Some(BackendName::Gpu),
            _ => None,
        }
    }

    /// The Xenon backend that serves it: `cpu` and `mkl` run on Xenon's `"cpu"` backend,
    /// `gpu` on its `"opencl"` backend.
    pub fn xenon_backend(self) -> &'static str {
        match self {
            BackendName::Cpu | BackendName::Mkl => "cpu",
            BackendName::Gpu => "opencl",
        }
    }
}

impl fmt::Display for BackendName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data set Xenon can load by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// `mnist`: 28×28 grey digits, 60,000 training and 10,000 test images.
    Mnist,
}

impl DatasetName {
    /// Every accepted name.
    pub const NAMES: [&'static str; 1] = ["mnist"];

    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
        }
    }

    /// The data set with this name (case-sensitive).
    pub fn from_name(name: &str) -> Option<DatasetName> {
        match name {
            "mnist" => Some(DatasetName::Mnist),
            _ => None,
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `dataset:` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// `name:` (required).
    pub name: DatasetName,
    /// Every other key (neon's `train_config`, `test_config`, ...), uninterpreted, as JSON
    /// values. Never contains `name`.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl DatasetSpec {
    /// A spec with only a name.
    pub fn new(name: DatasetName) -> DatasetSpec {
        DatasetSpec {
            name,
            extra: BTreeMap::new(),
        }
    }
}

/// A place in a model file's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Why a model file could not be read. Each message is one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelFileError {
    /// The file could not be read.
    #[error("cannot read model file {}: {message}", .path.display())]
    Io { path: PathBuf, message: String },
    /// The text is not a well-formed YAML (or JSON) document, or holds what no model file
    /// may: a repeated key in a mapping, a non-finite number.
    #[error("invalid {format}{}: {message}", at_pos(.pos))]
    Syntax {
        /// `"YAML"` or `"JSON"`.
        format: &'static str,
        pos: Option<Position>,
        message: String,
    },
    /// A `type` names no known class.
    #[error(
        "unknown {kind} type \"{name}\" at {at}{}; known types: {}",
        in_parens(.pos),
        .known.join(", ")
    )]
    UnknownType {
        /// `layer`, `activation`, `initializer`, `cost`, `optimizer` or `schedule`.
        kind: &'static str,
        name: String,
        /// Where the object is, for example `layers[1]`.
        at: String,
        known: &'static [&'static str],
        pos: Option<Position>,
    },
    /// A `config` has an argument the class does not take.
    #[error(
        "{at}: unknown argument \"{arg}\"{}; accepted: {}",
        in_parens(.pos),
        list_or_none(.accepted)
    )]
    UnknownArgument {
        /// The object, for example `layers[0] (Linear)`.
        at: String,
        arg: String,
        accepted: &'static [&'static str],
        pos: Option<Position>,
    },
    /// A mapping has a key that is not allowed there (next to `type` and `config`, say).
    #[error(
        "{at}: unknown key \"{key}\"{}; accepted: {}",
        in_parens(.pos),
        list_or_none(.accepted)
    )]
    UnknownKey {
        at: String,
        key: String,
        accepted: &'static [&'static str],
        pos: Option<Position>,
    },
    /// A `config` lacks an argument that has no default.
    #[error("{at}: missing required argument \"{arg}\"{}", in_parens(.pos))]
    MissingArgument {
        at: String,
        arg: String,
        pos: Option<Position>,
    },
    /// A mapping lacks a required key (`layers`, `cost`, `type`, a dataset's `name`).
    #[error("{at}: missing required key \"{key}\"{}", in_parens(.pos))]
    MissingKey {
        at: String,
        key: String,
        pos: Option<Position>,
    },
    /// A value has the wrong type or an invalid value (for example a string for `nout`).
    #[error("{at}: {message}{}", in_parens(.pos))]
    Invalid {
        /// The value's place, for example `layers[0] (Linear).nout`.
        at: String,
        message: String,
        pos: Option<Position>,
    },
    /// `backend:` names no known backend.
    #[error(
        "unknown backend \"{name}\"{}; known backends: {}",
        in_parens(.pos),
        BackendName::NAMES.join(", ")
    )]
    UnknownBackend { name: String, pos: Option<Position> },
    /// `dataset: {name: ...}` names no known data set.
    #[error(
        "unknown dataset \"{name}\"{}; known datasets: {}",
        in_parens(.pos),
        DatasetName::NAMES.join(", ")
    )]
    UnknownDataset { name: String, pos: Option<Position> },
}

impl ModelFileError {
    /// Where in the text the problem is, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            ModelFileError::Io { .. } => None,
            ModelFileError::Syntax { pos, .. }
            | ModelFileError::UnknownType { pos, .. }
            | ModelFileError::UnknownArgument { pos, .. }
            | ModelFileError::UnknownKey { pos, .. }
            | ModelFileError::MissingArgument { pos, .. }
            | ModelFileError::MissingKey { pos, .. }
            | ModelFileError::Invalid { pos, .. }
            | ModelFileError::UnknownBackend { pos, .. }
            | ModelFileError::UnknownDataset { pos, .. } => *pos,
        }
    }
}

fn at_pos(pos: &Option<Position>) -> String {
    match pos {
        Some(p) => format!(" at line {}, column {}", p.line, p.column),
        None => String::new(),
    }
}

fn in_parens(pos: &Option<Position>) -> String {
    match pos {
        Some(p) => format!(" (line {}, column {})", p.line, p.column),
        None => String::new(),
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none (this class takes no arguments)".to_string()
    } else {
        names.join(", ")
    }
}

// ------------------------------------------------------------------------------------------
// Reading
// ------------------------------------------------------------------------------------------

impl ModelFile {
    /// Reads a model file from YAML text (neon's format). YAML is a superset of JSON, so this
    /// also reads JSON text.
    ///
    /// ```
    /// use xenon_frontend::model_file::{BackendName, ModelFile};
    /// use xenon_frontend::cost::Cost;
    ///
    /// let m = ModelFile::from_yaml_str(
    ///     "backend: cpu
    /// epochs: 2
    /// init: &init {type: Gaussian, config: {scale: 0.01}}
    /// layers:
    ///   - {type: Linear, config: {nout: 10, init: *init}}
    ///   - {type: Activation, config: {transform: {type: Softmax}}}
    /// cost: CrossEntropyMulti
    /// ",
    /// )
    /// .unwrap();
    /// assert_eq!(m.backend, Some(BackendName::Cpu));
    /// assert_eq!(m.epochs, Some(2));
    /// assert_eq!(m.batchsize, None);
    /// assert_eq!(m.layers.layers.len(), 2);
    /// assert_eq!(m.cost, Cost::by_name("CrossEntropyMulti").unwrap());
    ///
    /// let err = ModelFile::from_yaml_str("layers: [{type: Dense}]\ncost: SumSquared\n").unwrap_err();
    /// assert!(err.to_string().starts_with("unknown layer type \"Dense\" at layers[0]"));
    /// ```
    pub fn from_yaml_str(text: &str) -> Result<ModelFile, ModelFileError> {
        let root = parse_yaml(text)?;
        ModelFile::from_node(&root)
    }

    /// Reads a model file from JSON text, with the same shape as the YAML schema.
    ///
    /// Errors carry line and column numbers where the text also reads as the same YAML
    /// document (which well-formed JSON practically always does).
    pub fn from_json_str(text: &str) -> Result<ModelFile, ModelFileError> {
        let Tree(root) = serde_json::from_str::<Tree<false>>(text).map_err(|e| {
            let pos = (e.line() > 0).then(|| Position {
                line: e.line(),
                column: e.column(),
            });
            ModelFileError::Syntax {
                format: "JSON",
                pos,
                message: strip_position(&e.to_string()),
            }
        })?;
        // serde_json does not report where values are; YAML does. Valid JSON is YAML, so
        // read it again as YAML, and use that tree (for its positions) when it is the same.
        let root = match parse_yaml(text) {
            Ok(spanned) if spanned.same(&root) => spanned,
            _ => root,
        };
        ModelFile::from_node(&root)
    }

    /// Reads the model file at `path`: JSON when the extension is `.json`, YAML otherwise
    /// (`.yaml`, `.yml`, or anything else, as YAML also reads JSON).
    pub fn load(path: impl AsRef<Path>) -> Result<ModelFile, ModelFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ModelFileError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let is_json = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            ModelFile::from_json_str(&text)
        } else {
            ModelFile::from_yaml_str(&text)
        }
    }

    fn from_node(root: &Node) -> Result<ModelFile, ModelFileError> {
        let Value::Map(entries) = &root.value else {
            return Err(ModelFileError::Invalid {
                at: "model file".into(),
                message: format!(
                    "expected a mapping of top-level keys (layers, cost, ...), found {}",
                    root.describe()
                ),
                pos: root.pos,
            });
        };
        let get = |key: &str| entries.iter().find(|e| e.key == key).map(|e| &e.value);
        let missing = |key: &str| ModelFileError::MissingKey {
            at: "model file".into(),
            key: key.into(),
            pos: None,
        };

        let backend = match get("backend") {
            None => None,
            Some(node) => {
                let name: String = typed(node, "backend")?;
                Some(
                    BackendName::from_name(&name).ok_or(ModelFileError::UnknownBackend {
                        name,
                        pos: node.pos,
                    })?,
                )
            }
        };
        let epochs = get("epochs").map(|n| typed(n, "epochs")).transpose()?;
        let batchsize = get("batchsize")
            .map(|n| typed(n, "batchsize"))
            .transpose()?;

        let layers_node = get("layers").ok_or_else(|| missing("layers"))?;
        let layers: Vec<Layer> = typed(layers_node, "layers")?;
        if layers.is_empty() {
            return Err(ModelFileError::Invalid {
                at: "layers".into(),
                message: "the list of layers is empty".into(),
                pos: layers_node.pos,
            });
        }
        let cost: Cost = typed(get("cost").ok_or_else(|| missing("cost"))?, "cost")?;
        let optimizer = get("optimizer")
            .map(|n| typed::<Optimizer>(n, "optimizer"))
            .transpose()?;
        let dataset = get("dataset").map(dataset_spec).transpose()?;

        Ok(ModelFile {
            backend,
            epochs,
            batchsize,
            layers: Sequential::new(layers),
            cost,
            optimizer,
            dataset,
        })
    }
}

fn parse_yaml(text: &str) -> Result<Node, ModelFileError> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        // Let the tree reader reject non-finite numbers, with a plainer message.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
    };
    serde_saphyr::from_str_with_options::<Tree<true>>(text, options)
        .map(|t| t.0)
        .map_err(|e| {
            let pos = e.location().and_then(location);
            let message = match &e {
                serde_saphyr::Error::DuplicateMappingKey { key: Some(k), .. } => {
                    format!("duplicate key \"{k}\"")
                }
                _ => strip_position(
                    &e.to_string()
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            };
            ModelFileError::Syntax {
                format: "YAML",
                pos,
                message,
            }
        })
}

/// The parsers end their messages with " at line L, column C"; the error shows the place
/// itself, first.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn dataset_spec(node: &Node) -> Result<DatasetSpec, ModelFileError> {
    let Value::Map(entries) = &node.value else {
        return Err(ModelFileError::Invalid {
            at: "dataset".into(),
            message: format!(
                "expected a mapping such as {{name: mnist}}, found {}",
                node.describe()
            ),
            pos: node.pos,
        });
    };
    let mut name = None;
    let mut extra = BTreeMap::new();
    for e in entries {
        if e.key == "name" {
            let s: String = typed(&e.value, "dataset.name")?;
            name = Some(
                DatasetName::from_name(&s).ok_or(ModelFileError::UnknownDataset {
                    name: s,
                    pos: e.value.pos,
                })?,
            );
        } else {
            extra.insert(e.key.clone(), e.value.to_json());
        }
    }
    let name = name.ok_or(ModelFileError::MissingKey {
        at: "dataset".into(),
        key: "name".into(),
        pos: node.pos,
    })?;
    Ok(DatasetSpec { name, extra })
}

/// Deserializes `node` (the value of top-level key `key`) into `T`, turning the structured
/// deserialization error into a located [`ModelFileError`].
fn typed<T: de::DeserializeOwned>(node: &Node, key: &str) -> Result<T, ModelFileError> {
    T::deserialize(NodeDe::new(node)).map_err(|e| e.prefix(Seg::Key(key.to_string())).finish())
}

// ------------------------------------------------------------------------------------------
// The generic tree, with positions
// ------------------------------------------------------------------------------------------

/// A YAML/JSON value with where it starts in the text (`None` when the parser gave none).
#[derive(Clone, Debug)]
struct Node {
    value: Value,
    pos: Option<Position>,
}

#[derive(Clone, Debug)]
enum Value {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug)]
struct Entry {
    key: String,
    key_pos: Option<Position>,
    value: Node,
}

fn location(loc: serde_saphyr::Location) -> Option<Position> {
    (loc.line() > 0).then(|| Position {
        line: loc.line() as usize,
        column: loc.column() as usize,
    })
}

impl Node {
    /// Equal values, ignoring positions.
    fn same(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::UInt(a), Value::UInt(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| x.key == y.key && x.value.same(&y.value))
            }
            _ => false,
        }
    }

    /// A short description for "found ..." messages.
    fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::UInt(n) => format!("integer `{n}`"),
            Value::Int(n) => format!("integer `{n}`"),
            Value::Float(x) => format!("floating point `{x}`"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Seq(_) => "a sequence".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::UInt(n) => J::from(*n),
            Value::Int(n) => J::from(*n),
            // Finite by construction, so from_f64 gives Some.
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Reads a [`Node`] tree; with `SPANNED` (for serde-saphyr) every node and key records where
/// it is, without (for serde_json, which cannot report it) positions are `None`.
struct Tree<const SPANNED: bool>(Node);

impl<'de, const SPANNED: bool> Deserialize<'de> for Tree<SPANNED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Tree(if SPANNED {
            let s = serde_saphyr::Spanned::<Plain<SPANNED>>::deserialize(d)?;
            Node {
                value: s.value.0,
                pos: location(s.referenced),
            }
        } else {
            Node {
                value: Plain::<SPANNED>::deserialize(d)?.0,
                pos: None,
            }
        }))
    }
}

struct Plain<const SPANNED: bool>(Value);

impl<'de, const SPANNED: bool> Deserialize<'de> for Plain<SPANNED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor::<SPANNED>).map(Plain)
    }
}

struct ValueVisitor<const SPANNED: bool>;

impl<'de, const SPANNED: bool> Visitor<'de> for ValueVisitor<SPANNED> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(u64::try_from(v).map_or(Value::Int(v), Value::UInt))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::UInt(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if v.is_finite() {
            Ok(Value::Float(v))
        } else {
            Err(E::custom(format!("non-finite number {v} is not allowed")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Plain::<SPANNED>::deserialize(d).map(|p| p.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Tree(node)) = seq.next_element::<Tree<SPANNED>>()? {
            items.push(node);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let (key, key_pos) = if SPANNED {
                match map.next_key::<serde_saphyr::Spanned<String>>()? {
                    Some(k) => (k.value, location(k.referenced)),
                    None => break,
                }
            } else {
                match map.next_key::<String>()? {
                    Some(k) => (k, None),
                    None => break,
                }
            };
            if entries.iter().any(|e| e.key == key) {
                return Err(de::Error::custom(format!("duplicate key \"{key}\"")));
            }
            let Tree(value) = map.next_value::<Tree<SPANNED>>()?;
            entries.push(Entry {
                key,
                key_pos,
                value,
            });
        }
        Ok(Value::Map(entries))
    }
}

// ------------------------------------------------------------------------------------------
// Deserializing the typed structs from the tree, with structured, located errors
// ------------------------------------------------------------------------------------------

/// One step of the path to a failing value.
#[derive(Clone, Debug)]
enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
    /// A `{type, config}` object: the Rust enum's name (`Layer`, `Activation`, ...) and the
    /// class name in `type`.
    Typed {
        enum_name: &'static str,
        name: String,
    },
}

#[derive(Debug)]
enum DeKind {
    UnknownVariant {
        name: String,
        known: &'static [&'static str],
    },
    UnknownField {
        name: String,
        accepted: &'static [&'static str],
    },
    MissingField(String),
    Message(String),
}

/// The error of [`NodeDe`]: what went wrong, the path to it (outermost first) and where.
#[derive(Debug)]
struct DeError {
    kind: DeKind,
    path: Vec<Seg>,
    pos: Option<Position>,
}

impl DeError {
    fn new(kind: DeKind) -> DeError {
        DeError {
            kind,
            path: Vec::new(),
            pos: None,
        }
    }

    /// Records `pos` unless a more precise (inner) position is already known.
    fn at(mut self, pos: Option<Position>) -> DeError {
        if self.pos.is_none() {
            self.pos = pos;
        }
        self
    }

    fn prefix(mut self, seg: Seg) -> DeError {
        self.path.insert(0, seg);
        self
    }

    /// Whether the path ends inside a typed object's `config`.
    fn in_config(&self) -> bool {
        matches!(
            self.path.as_slice(),
            [.., Seg::Typed { .. }, Seg::Key(k)] if k == "config"
        )
    }

    fn finish(self) -> ModelFileError {
        let pos = self.pos;
        let in_config = self.in_config();
        match self.kind {
            DeKind::UnknownVariant { name, known } => {
                match self
                    .path
                    .iter()
                    .rposition(|s| matches!(s, Seg::Typed { .. }))
                {
                    Some(t) => {
                        let Seg::Typed { enum_name, .. } = &self.path[t] else {
                            unreachable!("rposition found a Typed segment")
                        };
                        ModelFileError::UnknownType {
                            kind: kind_word(enum_name),
                            name,
                            at: render(&self.path[..t]),
                            known,
                            pos,
                        }
                    }
                    None => ModelFileError::Invalid {
                        at: render(&self.path),
                        message: format!(
                            "unknown variant \"{name}\"; expected one of: {}",
                            known.join(", ")
                        ),
                        pos,
                    },
                }
            }
            DeKind::UnknownField { name, accepted } if in_config => {
                ModelFileError::UnknownArgument {
                    at: render(&self.path),
                    arg: name,
                    accepted,
                    pos,
                }
            }
            DeKind::UnknownField { name, accepted } => ModelFileError::UnknownKey {
                at: render(&self.path),
                key: name,
                accepted,
                pos,
            },
            DeKind::MissingField(name) if in_config => ModelFileError::MissingArgument {
                at: render(&self.path),
                arg: name,
                pos,
            },
            DeKind::MissingField(name) => ModelFileError::MissingKey {
                at: render(&self.path),
                key: name,
                pos,
            },
            DeKind::Message(message) => ModelFileError::Invalid {
                at: render(&self.path),
                message,
                pos,
            },
        }
    }
}

/// The word for a typed object's kind, from its Rust enum's name.
fn kind_word(enum_name: &str) -> &'static str {
    match enum_name {
        "Layer" => "layer",
        "Activation" => "activation",
        "Initializer" => "initializer",
        "Cost" => "cost",
        "Optimizer" => "optimizer",
        "Schedule" => "schedule",
        _ => "object",
    }
}

/// `layers[0] (Linear).init (Gaussian)`: keys joined by dots, indices in brackets, each
/// typed object's class in parentheses, and its `config` level left out.
fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Seg::Key(k) => {
                let after_typed = i > 0 && matches!(path[i - 1], Seg::Typed { .. });
                if k == "config" && after_typed {
                    continue;
                }
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(n) => {
                let _ = write!(s, "[{n}]");
            }
            Seg::Typed { name, .. } => {
                let _ = write!(s, " ({name})");
            }
        }
    }
    if s.is_empty() { "model file".into() } else { s }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {}", self.kind, render(&self.path))
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> DeError {
        DeError::new(DeKind::Message(msg.to_string()))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(DeKind::UnknownVariant {
            name: variant.to_string(),
            known: expected,
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(DeKind::UnknownField {
            name: field.to_string(),
            accepted: expected,
        })
    }

    fn missing_field(field: &'static str) -> DeError {
        DeError::new(DeKind::MissingField(field.to_string()))
    }
}

/// The keys of a typed object, as the derived adjacently-tagged `Deserialize` impls of the
/// frontend enums name them.
const TYPED_KEYS: &[&str] = &["type", "config"];

/// A [`Deserializer`] over a [`Node`] whose errors say what and where.
#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    /// The node is the `config` of a typed object: null or an empty mapping is accepted as
    /// "no arguments" by unit variants (`{type: Tanh, config: {}}`).
    config: bool,
}

impl<'a> NodeDe<'a> {
    fn new(node: &'a Node) -> NodeDe<'a> {
        NodeDe {
            node,
            config: false,
        }
    }

    fn any<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.config && wants_unit_variant(&visitor) {
            return match &self.node.value {
                Value::Null => visitor.visit_unit(),
                Value::Map(entries) if entries.is_empty() => visitor.visit_unit(),
                Value::Map(entries) => Err(DeError::new(DeKind::UnknownField {
                    name: entries[0].key.clone(),
                    accepted: &[],
                })
                .at(entries[0].key_pos)),
                _ => Err(de::Error::custom(format!(
                    "expected no arguments, found {}",
                    self.node.describe()
                ))),
            };
        }
        match &self.node.value {
            Value::Null if self.config => visitor.visit_map(MapAcc::new(&[])),
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::UInt(n) => visitor.visit_u64(*n),
            Value::Int(n) => visitor.visit_i64(*n),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqAcc {
                items: items.iter().enumerate(),
            }),
            Value::Map(entries) => visitor.visit_map(MapAcc::new(entries)),
        }
    }

    /// A `{type, config}` object (or a bare class name) for an adjacently tagged enum.
    fn typed_object<'de, V: Visitor<'de>>(
        self,
        enum_name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let node = self.node;
        let (tag, config) = match &node.value {
            Value::Str(_) => (node, None),
            Value::Map(entries) => {
                let mut tag = None;
                let mut config = None;
                for e in entries {
                    match e.key.as_str() {
                        "type" => tag = Some(&e.value),
                        "config" => config = Some(&e.value),
                        other => {
                            let err = DeError::new(DeKind::UnknownField {
                                name: other.to_string(),
                                accepted: TYPED_KEYS,
                            })
                            .at(e.key_pos);
                            return Err(match entries.iter().find(|e| e.key == "type") {
                                Some(Entry {
                                    value:
                                        Node {
                                            value: Value::Str(name),
                                            ..
                                        },
                                    ..
                                }) => err.prefix(Seg::Typed {
                                    enum_name,
                                    name: name.clone(),
                                }),
                                _ => err,
                            });
                        }
                    }
                }
                let tag = tag.ok_or_else(|| {
                    DeError::new(DeKind::MissingField("type".into())).at(node.pos)
                })?;
                (tag, config)
            }
            _ => {
                return Err(DeError::new(DeKind::Message(format!(
                    "expected a {{type: ..., config: {{...}}}} mapping or a class name, found {}",
                    node.describe()
                )))
                .at(node.pos));
            }
        };
        let Value::Str(name) = &tag.value else {
            return Err(DeError::new(DeKind::Message(format!(
                "the class name in `type` must be a string, found {}",
                tag.describe()
            )))
            .at(tag.pos)
            .prefix(Seg::Key("type".into())));
        };
        let empty = Node {
            value: Value::Map(Vec::new()),
            pos: node.pos,
        };
        let config = config.unwrap_or(&empty);
        visitor
            .visit_map(TypedAcc {
                tag,
                config,
                next: 0,
            })
            .map_err(|e| {
                e.prefix(Seg::Typed {
                    enum_name,
                    name: name.clone(),
                })
                .at(node.pos)
            })
    }
}

/// Whether `visitor` is serde's visitor for the content of a unit variant of an adjacently
/// tagged enum. serde gives no other way to tell; the unit-variant tests below catch a change
/// in its wording.
fn wants_unit_variant<'de, V: Visitor<'de>>(visitor: &V) -> bool {
    struct Expecting<'v, V>(&'v V);
    impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }
    }
    Expecting(visitor).to_string().starts_with("unit variant ")
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        self.any(visitor).map_err(|e| e.at(pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if fields == TYPED_KEYS {
            self.typed_object(name, visitor)
        } else {
            self.deserialize_any(visitor)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    /// A string is a unit variant (how serde reads the class name of a typed object).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => visitor
                .visit_enum(de::value::StrDeserializer::<DeError>::new(s))
                .map_err(|e| e.at(self.node.pos)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct SeqAcc<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
}

impl<'de> SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => seed
                .deserialize(NodeDe::new(node))
                .map(Some)
                .map_err(|e| e.prefix(Seg::Index(i))),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'a> {
    entries: std::slice::Iter<'a, Entry>,
    current: Option<&'a Entry>,
}

impl<'a> MapAcc<'a> {
    fn new(entries: &'a [Entry]) -> MapAcc<'a> {
        MapAcc {
            entries: entries.iter(),
            current: None,
        }
    }
}

impl<'de> MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        self.current = self.entries.next();
        match self.current {
            None => Ok(None),
            Some(e) => seed
                .deserialize(de::value::StrDeserializer::<DeError>::new(&e.key))
                .map(Some)
                .map_err(|err| err.at(e.key_pos)),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let e = self
            .current
            .ok_or_else(|| de::Error::custom("value requested before its key"))?;
        seed.deserialize(NodeDe::new(&e.value))
            .map_err(|err| err.prefix(Seg::Key(e.key.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Presents a typed object as the map `{type: ..., config: ...}`, `type` first (so that serde
/// reads the class before the arguments and need not buffer them) and `config` always
/// present (an empty mapping when the file leaves it out).
struct TypedAcc<'a> {
    tag: &'a Node,
    config: &'a Node,
    /// 0: `type` next, 1: `config` next, 2: done (the key just returned is `next - 1`).
    next: u8,
}

impl<'de> MapAccess<'de> for TypedAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let key = match self.next {
            0 => "type",
            1 => "config",
            _ => return Ok(None),
        };
        self.next += 1;
        seed.deserialize(de::value::StrDeserializer::<DeError>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.next {
            1 => seed
                .deserialize(NodeDe::new(self.tag))
                .map_err(|e| e.prefix(Seg::Key("type".into()))),
            2 => seed
                .deserialize(NodeDe {
                    node: self.config,
                    config: true,
                })
                .map_err(|e| e.prefix(Seg::Key("config".into()))),
            _ => Err(de::Error::custom("value requested before its key")),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Writing
// ------------------------------------------------------------------------------------------

/// The document in schema order, for the writers.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epochs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batchsize: Option<usize>,
    layers: &'a [Layer],
    cost: &'a Cost,
    #[serde(skip_serializing_if = "Option::is_none")]
    optimizer: Option<&'a Optimizer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<&'a DatasetSpec>,
}

impl Serialize for DatasetSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra: Vec<_> = self.extra.iter().filter(|(k, _)| *k != "name").collect();
        let mut map = s.serialize_map(Some(1 + extra.len()))?;
        map.serialize_entry("name", self.name.as_str())?;
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Serializes in the model-file schema (what [`ModelFile::to_json`] writes).
impl Serialize for ModelFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            backend: self.backend.map(BackendName::as_str),
            epochs: self.epochs,
            batchsize: self.batchsize,
            layers: &self.layers.layers,
            cost: &self.cost,
            optimizer: self.optimizer.as_ref(),
            dataset: self.dataset.as_ref(),
        }
        .serialize(s)
    }
}

impl ModelFile {
    /// The model file as pretty-printed JSON in the schema's shape, every argument written out
    /// (defaults included), so that the file does not depend on future defaults.
    /// [`ModelFile::from_json_str`] reads it back to an equal `ModelFile`, provided every
    /// number is finite (JSON has no NaN or infinity; they are written as `null`).
    pub fn to_json(&self) -> String {
        // Serializing plain data (string keys, numbers, strings) into a String cannot fail.
        serde_json::to_string_pretty(self).expect("a ModelFile always serializes to JSON")
    }

    /// The model file as YAML in the schema's shape, every argument written out;
    /// [`ModelFile::from_yaml_str`] reads it back to an equal `ModelFile`.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a ModelFile always serializes to YAML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::init::Initializer;
    use crate::layer::LAYER_TYPES;
    use crate::optimizer::{GradientDescentMomentum, Schedule, StepConfig};
    use xenon_compiler::ir::{DType, Graph};

    const MNIST_MLP_YAML: &str = include_str!("../../examples/models/mnist_mlp.yaml");
    const MNIST_MLP_JSON: &str = include_str!("../../examples/models/mnist_mlp.json");
    const MNIST_SOFTMAX_YAML: &str = include_str!("../../examples/models/mnist_softmax.yaml");
    const MLP_BIAS_YAML: &str = include_str!("../../examples/models/mlp_784_64_10_bias.yaml");

    fn examples_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/models")
    }

    fn gauss() -> Initializer {
        Initializer::Gaussian {
            loc: 0.0,
            scale: 0.01,
        }
    }

    fn err(yaml: &str) -> ModelFileError {
        match ModelFile::from_yaml_str(yaml) {
            Ok(m) => panic!("expected an error, got {m:?}"),
            Err(e) => e,
        }
    }

    /// A layer whose arguments are all given or defaulted.
    const ACT: &str = "{type: Activation, config: {transform: Tanh}}";

    /// A minimal valid document with `layer` as its only layer.
    fn one_layer(layer: &str) -> String {
        format!("layers:\n  - {layer}\ncost: SumSquared\n")
    }

    fn first_layer(yaml: &str) -> Layer {
        ModelFile::from_yaml_str(yaml).unwrap().layers.layers[0].clone()
    }

    // --- the example files -------------------------------------------------------------

    #[test]
    fn mnist_mlp_yaml_says_what_neons_example_says() {
        let m = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
        assert_eq!(m.backend, Some(BackendName::Mkl));
        assert_eq!(m.epochs, Some(10));
        assert_eq!(m.batchsize, Some(128));
        assert_eq!(
            m.layers.layers,
            vec![
                Layer::Linear {
                    nout: 100,
                    init: gauss(),
                    bsum: false,
                    name: None
                },
                Layer::Activation {
                    transform: Activation::Rectlin { slope: 0.0 },
                    name: None
                },
                Layer::Linear {
                    nout: 10,
                    init: gauss(),
                    bsum: false,
                    name: None
                },
                Layer::Activation {
                    transform: Activation::Logistic { shortcut: true },
                    name: None
                },
            ]
        );
        assert_eq!(m.cost, Cost::CrossEntropyBinary { scale: 1.0 });
        assert_eq!(m.optimizer, Some(Optimizer::gdm(0.1, 0.9)));
        assert_eq!(m.dataset, Some(DatasetSpec::new(DatasetName::Mnist)));

        // 784·100 + 100·10 weights, no biases.
        let mut g = Graph::new();
        let x = g.input("x", DType::F32, &[2, 784]).unwrap();
        let fwd = m.layers.forward(&mut g, x).unwrap();
        let params: usize = fwd
            .params
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum();
        assert_eq!(params, 79_400);
    }

    #[test]
    fn yaml_and_json_mnist_mlp_are_the_same_model() {
        let yaml = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
        let json = ModelFile::from_json_str(MNIST_MLP_JSON).unwrap();
        assert_eq!(yaml, json);
        // YAML reads JSON too.
        assert_eq!(ModelFile::from_yaml_str(MNIST_MLP_JSON).unwrap(), json);
    }

    #[test]
    fn anchors_and_aliases_resolve_to_equal_initializers() {
        let m = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
        let inits: Vec<&Initializer> = m
            .layers
            .layers
            .iter()
            .filter_map(|l| match l {
                Layer::Linear { init, .. } => Some(init),
                _ => None,
            })
            .collect();
        assert_eq!(inits, vec![&gauss(), &gauss()]);

        // An alias used for a non-default anchor carries every argument.
        let m = ModelFile::from_yaml_str(
            "a: &u {type: Uniform, config: {low: -0.5, high: 0.25}}
layers:
  - {type: Linear, config: {nout: 3, init: *u}}
  - {type: Bias, config: {init: *u}}
cost: SumSquared
",
        )
        .unwrap();
        let u = Initializer::Uniform {
            low: -0.5,
            high: 0.25,
        };
        assert!(matches!(&m.layers.layers[0], Layer::Linear { init, .. } if *init == u));
        assert!(matches!(&m.layers.layers[1], Layer::Bias { init, .. } if *init == u));
    }

    #[test]
    fn mnist_softmax_is_mnist_mlp_with_softmax_and_multiclass_cross_entropy() {
        let mlp = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
        let sm = ModelFile::from_yaml_str(MNIST_SOFTMAX_YAML).unwrap();
        assert_eq!(
            sm.layers.layers[3],
            Layer::Activation {
                transform: Activation::Softmax {
                    axis: 0,
                    epsilon: 2f64.powi(-23)
                },
                name: None
            }
        );
        assert_eq!(sm.cost, Cost::by_name("CrossEntropyMulti").unwrap());
        let mut expected = mlp.clone();
        expected.layers.layers[3] = sm.layers.layers[3].clone();
        expected.cost = sm.cost.clone();
        assert_eq!(sm, expected);
    }

    #[test]
    fn mlp_784_64_10_bias_has_affine_layers_and_50890_parameters() {
        let m = ModelFile::from_yaml_str(MLP_BIAS_YAML).unwrap();
        let zero = Initializer::Constant { val: 0.0 };
        assert_eq!(
            m.layers.layers,
            vec![
                Layer::Affine {
                    nout: 64,
                    init: gauss(),
                    bias: Some(zero.clone()),
                    batch_norm: false,
                    activation: Some(Activation::Rectlin { slope: 0.0 }),
                    name: None
                },
                Layer::Affine {
                    nout: 10,
                    init: gauss(),
                    bias: Some(zero),
                    batch_norm: false,
                    activation: Some(Activation::Softmax {
                        axis: 0,
                        epsilon: 2f64.powi(-23)
                    }),
                    name: None
                },
            ]
        );
        assert_eq!(m.cost, Cost::by_name("CrossEntropyMulti").unwrap());
        let mut g = Graph::new();
        let x = g.input("x", DType::F32, &[2, 784]).unwrap();
        let fwd = m.layers.forward(&mut g, x).unwrap();
        let params: usize = fwd
            .params
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum();
        assert_eq!(params, 50_890);
    }

    #[test]
    fn load_picks_the_format_by_extension() {
        let dir = examples_dir();
        let yaml = ModelFile::load(dir.join("mnist_mlp.yaml")).unwrap();
        let json = ModelFile::load(dir.join("mnist_mlp.json")).unwrap();
        assert_eq!(yaml, json);
        for name in ["mnist_softmax.yaml", "mlp_784_64_10_bias.yaml"] {
            ModelFile::load(dir.join(name)).unwrap();
        }

        // A JSON file must be JSON: YAML text in it is a JSON error.
        let tmp = std::env::temp_dir().join(format!("xenon-model-file-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let as_json = tmp.join("model.json");
        std::fs::write(&as_json, MNIST_MLP_YAML).unwrap();
        let e = ModelFile::load(&as_json).unwrap_err();
        assert!(
            matches!(e, ModelFileError::Syntax { format: "JSON", .. }),
            "{e}"
        );
        // Any other extension is read as YAML, which also reads JSON.
        let other = tmp.join("model.txt");
        std::fs::write(&other, MNIST_MLP_JSON).unwrap();
        assert_eq!(ModelFile::load(&other).unwrap(), json);
        std::fs::remove_dir_all(&tmp).unwrap();

        let missing = dir.join("no_such_model.yaml");
        let e = ModelFile::load(&missing).unwrap_err();
        assert!(matches!(&e, ModelFileError::Io { path, .. } if *path == missing));
        assert!(e.to_string().starts_with("cannot read model file "), "{e}");
    }

    #[test]
    fn to_json_and_to_yaml_round_trip() {
        for text in [MNIST_MLP_YAML, MNIST_SOFTMAX_YAML, MLP_BIAS_YAML] {
            let m = ModelFile::from_yaml_str(text).unwrap();
            let json = m.to_json();
            assert_eq!(ModelFile::from_json_str(&json).unwrap(), m, "{json}");
            let yaml = m.to_yaml();
            assert_eq!(ModelFile::from_yaml_str(&yaml).unwrap(), m, "{yaml}");
        }
        // Absent optional keys stay absent; dataset extras survive.
        let m = ModelFile::from_yaml_str(
            "layers: [{type: Activation, config: {transform: Tanh}}]
cost: MeanSquared
dataset: {name: mnist, train_config: {shuffle: true, scale: [0.875, 1]}}
",
        )
        .unwrap();
        let json = m.to_json();
        for absent in ["backend", "epochs", "batchsize", "optimizer"] {
            assert!(!json.contains(absent), "{json}");
        }
        let back = ModelFile::from_json_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.dataset.unwrap().extra["train_config"],
            serde_json::json!({"shuffle": true, "scale": [0.875, 1]})
        );
    }

    #[test]
    fn writers_quote_strings_that_look_like_other_values() {
        let names = [
            "true", "null", "1.5", "a: b", "- x", "", "#c", "*ref", "~", "x\ny",
        ];
        let layers = names
            .iter()
            .map(|n| Layer::Activation {
                transform: Activation::Identity,
                name: Some(n.to_string()),
            })
            .collect();
        let m = ModelFile {
            backend: Some(BackendName::Gpu),
            epochs: Some(0),
            batchsize: Some(1),
            layers: Sequential::new(layers),
            cost: Cost::SumSquared,
            optimizer: None,
            dataset: None,
        };
        assert_eq!(ModelFile::from_json_str(&m.to_json()).unwrap(), m);
        let yaml = m.to_yaml();
        assert_eq!(ModelFile::from_yaml_str(&yaml).unwrap(), m, "{yaml}");
    }

    #[test]
    fn to_json_writes_the_schema_shape() {
        let m = ModelFile::from_yaml_str(MNIST_MLP_YAML).unwrap();
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["backend"], "mkl");
        assert_eq!(v["epochs"], 10);
        assert_eq!(v["batchsize"], 128);
        assert_eq!(v["layers"][0]["type"], "Linear");
        assert_eq!(v["layers"][0]["config"]["nout"], 100);
        assert_eq!(v["layers"][0]["config"]["init"]["type"], "Gaussian");
        assert_eq!(v["layers"][0]["config"]["init"]["config"]["scale"], 0.01);
        assert_eq!(v["cost"]["type"], "CrossEntropyBinary");
        assert_eq!(v["optimizer"]["type"], "GradientDescentMomentum");
        assert_eq!(v["optimizer"]["config"]["momentum_coef"], 0.9);
        assert_eq!(v["dataset"], serde_json::json!({"name": "mnist"}));
    }

    // --- what the schema accepts --------------------------------------------------------

    #[test]
    fn config_may_be_omitted_empty_or_null() {
        for transform in [
            "{type: Tanh}",
            "{type: Tanh, config: {}}",
            "{type: Tanh, config: null}",
            "{type: Tanh, config: }",
        ] {
            let l = first_layer(&one_layer(&format!(
                "{{type: Activation, config: {{transform: {transform}}}}}"
            )));
            assert!(
                matches!(
                    l,
                    Layer::Activation {
                        transform: Activation::Tanh,
                        ..
                    }
                ),
                "{transform}: {l:?}"
            );
        }
        // A struct variant whose arguments all have defaults.
        for transform in [
            "{type: Explin}",
            "{type: Explin, config: {}}",
            "{type: Explin, config: null}",
        ] {
            let l = first_layer(&one_layer(&format!(
                "{{type: Activation, config: {{transform: {transform}}}}}"
            )));
            assert!(
                matches!(
                    l,
                    Layer::Activation {
                        transform: Activation::Explin { alpha: 1.0 },
                        ..
                    }
                ),
                "{transform}: {l:?}"
            );
        }
    }

    #[test]
    fn omitted_arguments_take_neons_defaults() {
        let m = ModelFile::from_yaml_str(
            "layers:
  - {type: Linear, config: {nout: 4, init: {type: Gaussian}}}
  - {type: Activation, config: {transform: {type: Normalizer}}}
cost: {type: CrossEntropyMulti}
optimizer: {type: GradientDescentMomentum, config: {learning_rate: 0.5}}
",
        )
        .unwrap();
        assert_eq!(
            m.layers.layers[0],
            Layer::Linear {
                nout: 4,
                init: Initializer::Gaussian {
                    loc: 0.0,
                    scale: 1.0
                },
                bsum: false,
                name: None
            }
        );
        assert_eq!(
            m.layers.layers[1],
            Layer::Activation {
                transform: Activation::Normalizer { divisor: 128.0 },
                name: None
            }
        );
        assert_eq!(
            m.cost,
            Cost::CrossEntropyMulti {
                scale: 1.0,
                usebits: false
            }
        );
        assert_eq!(m.optimizer, Some(Optimizer::gdm(0.5, 0.0)));
        assert_eq!((m.backend, m.epochs, m.batchsize), (None, None, None));
        assert_eq!(m.dataset, None);
    }

    #[test]
    fn nested_objects_and_key_order() {
        // `config` before `type`, a schedule inside the optimizer, a bare class name for a
        // nested object, and a cost written as an object.
        let m = ModelFile::from_yaml_str(
            "layers:
  - {config: {nout: 2, init: GlorotUniform, name: fc}, type: Linear}
cost: {type: CrossEntropyBinary, config: {scale: 2}}
optimizer:
  type: GradientDescentMomentum
  config:
    learning_rate: 0.1
    schedule: {type: Schedule, config: {step_config: [2, 4], change: 0.5}}
",
        )
        .unwrap();
        assert_eq!(
            m.layers.layers[0],
            Layer::Linear {
                nout: 2,
                init: Initializer::GlorotUniform,
                bsum: false,
                name: Some("fc".into())
            }
        );
        assert_eq!(m.cost, Cost::CrossEntropyBinary { scale: 2.0 });
        let Some(Optimizer::GradientDescentMomentum(GradientDescentMomentum { schedule, .. })) =
            m.optimizer
        else {
            panic!("no optimizer")
        };
        assert_eq!(
            schedule,
            Schedule::Schedule {
                step_config: Some(StepConfig::Epochs(vec![2, 4])),
                change: 0.5
            }
        );
    }

    #[test]
    fn backend_names_map_to_xenon_backends() {
        for (name, want, xenon) in [
            ("cpu", BackendName::Cpu, "cpu"),
            ("mkl", BackendName::Mkl, "cpu"),
            ("gpu", BackendName::Gpu, "opencl"),
        ] {
            let m =
                ModelFile::from_yaml_str(&format!("backend: {name}\n{}", one_layer(ACT))).unwrap();
            assert_eq!(m.backend, Some(want));
            assert_eq!(want.xenon_backend(), xenon);
            assert_eq!(want.as_str(), name);
        }
    }

    // --- errors ---------------------------------------------------------------------------

    #[test]
    fn unknown_layer_type_lists_the_known_ones() {
        let e = err("cost: SumSquared
layers:
  - {type: Linear, config: {nout: 2, init: GlorotUniform}}
  - {type: Dense, config: {nout: 2}}
");
        assert_eq!(
            e.to_string(),
            "unknown layer type \"Dense\" at layers[1] (line 4, column 12); \
             known types: Linear, Bias, Affine, Activation"
        );
        assert!(matches!(e, ModelFileError::UnknownType { known, .. } if known == LAYER_TYPES));
    }

    /// The known-type lists come from the enums themselves (serde's list of variants); the
    /// public `NAMES` constants must agree with them.
    #[test]
    fn every_known_type_list_matches_its_names_constant() {
        let known = |yaml: &str| match err(yaml) {
            ModelFileError::UnknownType { known, kind, .. } => (kind, known.to_vec()),
            e => panic!("{e}"),
        };
        assert_eq!(
            known(&one_layer("{type: Nope}")),
            ("layer", LAYER_TYPES.to_vec())
        );
        assert_eq!(
            known(&one_layer("{type: Activation, config: {transform: Nope}}")),
            ("activation", Activation::NAMES.to_vec())
        );
        assert_eq!(
            known(&one_layer("{type: Bias, config: {init: Nope}}")),
            ("initializer", Initializer::NAMES.to_vec())
        );
        assert_eq!(
            known("layers: [{type: Activation, config: {transform: Tanh}}]\ncost: Nope\n"),
            ("cost", Cost::NAMES.to_vec())
        );
        assert_eq!(
            known(
                "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: Nope\n"
            ),
            ("optimizer", Optimizer::NAMES.to_vec())
        );
        assert_eq!(
            known(
                "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: {type: GradientDescentMomentum, \
                 config: {learning_rate: 1, schedule: Nope}}\n"
            ),
            ("schedule", Schedule::NAMES.to_vec())
        );
    }

    #[test]
    fn every_listed_name_is_accepted_as_a_type() {
        let not_unknown = |yaml: String| {
            if let Err(e @ ModelFileError::UnknownType { .. }) = ModelFile::from_yaml_str(&yaml) {
                panic!("{yaml}: {e}")
            }
        };
        for n in LAYER_TYPES {
            not_unknown(one_layer(&format!("{{type: {n}}}")));
        }
        for n in Activation::NAMES {
            not_unknown(one_layer(&format!(
                "{{type: Activation, config: {{transform: {n}}}}}"
            )));
        }
        for n in Initializer::NAMES {
            not_unknown(one_layer(&format!("{{type: Bias, config: {{init: {n}}}}}")));
        }
        for n in Cost::NAMES {
            not_unknown(format!(
                "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: {n}\n"
            ));
        }
        for n in Optimizer::NAMES {
            not_unknown(format!(
                "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: SumSquared\noptimizer: {n}\n"
            ));
        }
        for n in Schedule::NAMES {
            not_unknown(format!(
                "layers: [{{type: Activation, config: {{transform: Tanh}}}}]\ncost: SumSquared\noptimizer: {{type: GradientDescentMomentum, \
                 config: {{learning_rate: 1, schedule: {n}}}}}\n"
            ));
        }
    }

    #[test]
    fn unknown_argument_lists_the_accepted_ones() {
        let e = err(&one_layer(
            "{type: Linear, config: {nouts: 100, init: GlorotUniform}}",
        ));
        assert_eq!(
            e.to_string(),
            "layers[0] (Linear): unknown argument \"nouts\" (line 2, column 29); \
             accepted: nout, init, bsum, name"
        );
        // Inside a nested object, the path names both classes.
        let e = err(&one_layer(
            "{type: Linear, config: {nout: 1, init: {type: Gaussian, config: {sigma: 1}}}}",
        ));
        assert_eq!(
            e.to_string(),
            "layers[0] (Linear).init (Gaussian): unknown argument \"sigma\" (line 2, column 70); \
             accepted: loc, scale"
        );
        // In the optimizer.
        let e = err(
            "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer:\n  type: GradientDescentMomentum\n  \
             config: {learning_rate: 0.1, momentum: 0.9}\n",
        );
        assert!(
            e.to_string().starts_with(
                "optimizer (GradientDescentMomentum): unknown argument \"momentum\" \
                 (line 5, column 32); accepted: learning_rate, momentum_coef,"
            ),
            "{e}"
        );
        // A class that takes no arguments.
        let e = err(&one_layer(
            "{type: Activation, config: {transform: {type: Tanh, config: {name: t}}}}",
        ));
        assert_eq!(
            e.to_string(),
            "layers[0] (Activation).transform (Tanh): unknown argument \"name\" \
             (line 2, column 66); accepted: none (this class takes no arguments)"
        );
    }

    /// The enums' own serde impls reject unknown arguments too, for code that reads them
    /// with serde_json directly.
    #[test]
    fn the_enums_deny_unknown_fields_by_themselves() {
        let ok: Layer = serde_json::from_str(
            r#"{"type": "Linear", "config": {"nout": 3, "init": {"type": "GlorotUniform"}}}"#,
        )
        .unwrap();
        assert!(matches!(ok, Layer::Linear { nout: 3, .. }));
        let e = serde_json::from_str::<Layer>(
            r#"{"type": "Linear", "config": {"nouts": 3, "init": {"type": "GlorotUniform"}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `nouts`"), "{e}");
        let e = serde_json::from_str::<Layer>(r#"{"type": "Linear", "confg": {}}"#).unwrap_err();
        assert!(e.to_string().contains("confg"), "{e}");
        let e =
            serde_json::from_str::<Initializer>(r#"{"type": "Gaussian", "config": {"std": 1}}"#)
                .unwrap_err();
        assert!(e.to_string().contains("unknown field `std`"), "{e}");
        let e = serde_json::from_str::<Cost>(
            r#"{"type": "CrossEntropyMulti", "config": {"bits": true}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `bits`"), "{e}");
        let e =
            serde_json::from_str::<Activation>(r#"{"type": "Rectlin", "config": {"alpha": 1}}"#)
                .unwrap_err();
        assert!(e.to_string().contains("unknown field `alpha`"), "{e}");
        let e = serde_json::from_str::<Schedule>(
            r#"{"type": "ExpSchedule", "config": {"decay": 1, "x": 1}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `x`"), "{e}");
    }

    #[test]
    fn unknown_key_beside_type_and_config() {
        let e = err(&one_layer("{type: Linear, confg: {nout: 1}}"));
        assert_eq!(
            e.to_string(),
            "layers[0] (Linear): unknown key \"confg\" (line 2, column 20); accepted: type, config"
        );
    }

    #[test]
    fn missing_required_argument() {
        let e = err(&one_layer("{type: Linear, config: {init: GlorotUniform}}"));
        assert_eq!(
            e.to_string(),
            "layers[0] (Linear): missing required argument \"nout\" (line 2, column 28)"
        );
        // With `config` left out altogether, the place is the layer.
        let e = err("layers:\n  - type: Linear\ncost: SumSquared\n");
        assert!(
            matches!(&e, ModelFileError::MissingArgument { at, arg, pos }
                if at == "layers[0] (Linear)" && arg == "nout" && pos.unwrap().line == 2),
            "{e}"
        );
        assert!(e.to_string().contains("missing required argument \"nout\""));
        let e = err(
            "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: GradientDescentMomentum\n",
        );
        assert!(
            e.to_string().starts_with(
                "optimizer (GradientDescentMomentum): missing required argument \"learning_rate\""
            ),
            "{e}"
        );
    }

    #[test]
    fn missing_required_keys() {
        let e = err("cost: SumSquared\n");
        assert_eq!(e.to_string(), "model file: missing required key \"layers\"");
        let e = err("layers: [{type: Activation, config: {transform: Tanh}}]\n");
        assert_eq!(e.to_string(), "model file: missing required key \"cost\"");
        let e = err(&one_layer("{config: {nout: 3}}"));
        assert_eq!(
            e.to_string(),
            "layers[0]: missing required key \"type\" (line 2, column 5)"
        );
        let e = err(&format!(
            "{}dataset: {{train_config: {{}}}}\n",
            one_layer(ACT)
        ));
        assert_eq!(
            e.to_string(),
            "dataset: missing required key \"name\" (line 4, column 10)"
        );
    }

    #[test]
    fn yaml_syntax_error_names_the_line() {
        let e = err("layers:\n  - type: Linear\n    config: {nout: 3\ncost: SumSquared\n");
        let ModelFileError::Syntax {
            format: "YAML",
            pos: Some(pos),
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(pos.line, 4);
        assert!(
            e.to_string().starts_with("invalid YAML at line 4, column "),
            "{e}"
        );
        assert_eq!(e.to_string().lines().count(), 1);

        let e = err("layers:\n  - {type: Bias}\n bad: 1\ncost: SumSquared\n");
        assert!(
            e.to_string().starts_with("invalid YAML at line 3, column "),
            "{e}"
        );

        let e = err(
            "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\nlayers: [{type: Activation, config: {transform: Tanh}}]\n",
        );
        assert_eq!(
            e.to_string(),
            "invalid YAML at line 3, column 1: duplicate key \"layers\""
        );
        let e = err("layers: [{type: Linear, config: {nout: 1, init: *nowhere}}]\n");
        assert!(
            e.to_string().starts_with("invalid YAML at line 1, column "),
            "{e}"
        );
        assert!(e.to_string().contains("anchor"), "{e}");
    }

    #[test]
    fn wrong_value_types_name_the_value_and_line() {
        let e = err(
            "layers:\n  - type: Linear\n    config:\n      nout: many\n      \
                     init: GlorotUniform\ncost: SumSquared\n",
        );
        assert_eq!(
            e.to_string(),
            "layers[0] (Linear).nout: invalid type: string \"many\", expected usize \
             (line 4, column 13)"
        );
        let e = err(&one_layer(
            "{type: Linear, config: {nout: -2, init: GlorotUniform}}",
        ));
        assert!(
            e.to_string()
                .starts_with("layers[0] (Linear).nout: invalid value: integer `-2`"),
            "{e}"
        );
        let e = err(&one_layer(
            "{type: Activation, config: {transform: {type: Logistic, config: {shortcut: 3}}}}",
        ));
        assert_eq!(
            e.to_string(),
            "layers[0] (Activation).transform (Logistic).shortcut: invalid type: integer `3`, \
             expected a boolean (line 2, column 80)"
        );
        let e = err(&format!("epochs: ten\n{}", one_layer(ACT)));
        assert_eq!(
            e.to_string(),
            "epochs: invalid type: string \"ten\", expected usize (line 1, column 9)"
        );
        let e = err("layers: {type: Tanh}\ncost: SumSquared\n");
        assert!(
            e.to_string()
                .starts_with("layers: invalid type: map, expected a sequence"),
            "{e}"
        );
        let e = err(&one_layer("5"));
        assert_eq!(
            e.to_string(),
            "layers[0]: expected a {type: ..., config: {...}} mapping or a class name, found \
             integer `5` (line 2, column 5)"
        );
        let e = err(&one_layer("{type: 5}"));
        assert!(
            e.to_string()
                .starts_with("layers[0].type: the class name in `type` must be a string"),
            "{e}"
        );
        let e = err(
            "layers: [{type: Activation, config: {transform: Tanh}}]\ncost: SumSquared\noptimizer: {type: GradientDescentMomentum, \
             config: {learning_rate: 1, schedule: {type: Schedule, config: {step_config: x}}}}\n",
        );
        assert!(
            e.to_string().starts_with(
                "optimizer (GradientDescentMomentum).schedule (Schedule).step_config: expected a \
                 list of epochs"
            ),
            "{e}"
        );
        let e = err(&format!("epochs: .inf\n{}", one_layer(ACT)));
        assert_eq!(
            e.to_string(),
            "invalid YAML at line 1, column 9: non-finite number inf is not allowed"
        );
    }

    #[test]
    fn unknown_backend_lists_cpu_mkl_gpu() {
        let e = err(&format!("backend: tpu\n{}", one_layer(ACT)));
        assert_eq!(
            e.to_string(),
            "unknown backend \"tpu\" (line 1, column 10); known backends: cpu, mkl, gpu"
        );
        let e = err(&format!("backend: 3\n{}", one_layer(ACT)));
        assert!(
            e.to_string()
                .starts_with("backend: invalid type: integer `3`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_dataset_lists_mnist() {
        let e = err(&format!("{}dataset: {{name: cifar10}}\n", one_layer(ACT)));
        assert_eq!(
            e.to_string(),
            "unknown dataset \"cifar10\" (line 4, column 17); known datasets: mnist"
        );
        let e = err(&format!("{}dataset: mnist\n", one_layer(ACT)));
        assert!(
            e.to_string()
                .starts_with("dataset: expected a mapping such as {name: mnist}"),
            "{e}"
        );
    }

    #[test]
    fn other_structural_errors() {
        let e = err("- layers\n");
        assert!(
            e.to_string()
                .starts_with("model file: expected a mapping of top-level keys"),
            "{e}"
        );
        let e = err("layers: []\ncost: SumSquared\n");
        assert_eq!(
            e.to_string(),
            "layers: the list of layers is empty (line 1, column 9)"
        );
    }

    #[test]
    fn json_errors() {
        let e = ModelFile::from_json_str("{\"layers\": [\n  {\"type\": \"Tanh\"}\n").unwrap_err();
        assert!(
            matches!(&e, ModelFileError::Syntax { format: "JSON", pos: Some(p), .. } if p.line == 3),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("invalid JSON at line 3, column "),
            "{e}"
        );

        let e = ModelFile::from_json_str("{\"cost\": \"SumSquared\",\n \"cost\": \"SumSquared\"}")
            .unwrap_err();
        assert!(e.to_string().contains("duplicate key \"cost\""), "{e}");

        // Errors inside valid JSON carry positions too.
        let e = ModelFile::from_json_str(
            "{\"layers\": [\n  {\"type\": \"Linear\", \"config\": {\"nout\": \"7\"}}\n], \
             \"cost\": \"SumSquared\"}",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "layers[0] (Linear).nout: invalid type: string \"7\", expected usize \
             (line 2, column 41)"
        );
        let e = ModelFile::from_json_str(
            "{\"layers\": [{\"type\": \"Dense\"}], \"cost\": \"SumSquared\"}",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown layer type \"Dense\" at layers[0]"),
            "{e}"
        );
    }

    #[test]
    fn errors_are_one_line_and_report_their_position() {
        let cases = [
            one_layer("{type: Dense}"),
            one_layer("{type: Linear, config: {nouts: 1}}"),
            "layers: [\n".to_string(),
            format!("backend: tpu\n{}", one_layer(ACT)),
        ];
        for yaml in cases {
            let e = err(&yaml);
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            assert!(e.position().is_some(), "{e}");
        }
    }
}
