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
//! | `dataset` | no | `{name: mnist, ...}` or `{name: arrays, ...}`: `name` is required and must be one of [`DatasetName::NAMES`]; `targets` is `classes` (default), `real` or `inputs` ([`TargetKind`]); `arrays` takes `file`, `train`, `test`, `nclass`, `lshape` ([`ArraysSpec`]) and no other key; `text` takes `time_steps`, `path`, `valid_split`, `tokens`, `onehot` ([`TextSpec`]) and `imdb` takes `path`, `vocab_size`, `max_len` ([`ImdbSpec`]), and no other key; for `mnist` every other key (neon's `train_config`, `test_config`, ...) is kept, uninterpreted, in [`DatasetSpec::extra`]. |
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
//! unknown layer type "Dense" at layers[1] (line 4, column 12); known types: Linear, Bias, Affine, Activation, …
//! layers[0] (Linear): unknown argument "nouts" (line 2, column 29); accepted: nout, init, bsum, name
//! layers[0] (Linear).nout: invalid type: string "many", expected usize (line 4, column 13)
//! invalid YAML at line 3, column 1: duplicate key "layers"
//! ```
//!
//! Numbers must be finite (`.nan` and `.inf` are rejected), and a mapping may not repeat a
//! key.
//!
//! # Size
//!
//! A YAML file may hold at most [`MAX_YAML_NODES`] nodes (scalars, sequences and mappings:
//! 5,000,000, about 500,000 layers written as `- {type: Activation, config: {transform:
//! {type: Rectlin}}}`), and nest sequences and mappings at most 64 deep (serde-saphyr's
//! default); past either, reading stops with an "invalid YAML" error that says so. JSON is
//! read by serde_json, which allows 128 levels of nesting and any number of values (past
//! [`MAX_YAML_NODES`], errors just carry no line numbers). How deep a *model* is does not
//! nest: a list of 100,000 layers nests no deeper than a list of one, and the rest of Xenon
//! handles such models without recursion on their depth.
//!
//! # Layout
//!
//! `tree` parses the text into a position-keeping YAML/JSON tree; `de` deserializes the typed
//! enums from that tree, and `de_error` turns serde's errors into located
//! [`ModelFileError`]s (defined in `error`); `backend` and `dataset` hold the small top-level
//! values; `write` writes a [`ModelFile`] back out; `no_arguments` reads the (empty)
//! `config` of classes that take no arguments.

mod backend;
mod dataset;
mod de;
mod de_error;
mod error;
mod no_arguments;
mod tree;
mod write;

pub use backend::BackendName;
pub use dataset::{
    ArraysSpec, DatasetName, DatasetSpec, ImdbSpec, SplitSpec, Streams, TargetKind, TextSpec,
    TokenKind,
};
pub use error::{ModelFileError, Position};
pub(crate) use no_arguments::no_arguments;
pub use tree::MAX_YAML_NODES;

use crate::cost::Cost;
use crate::layer::{Layer, Sequential};
use crate::optimizer::Optimizer;
use de::typed;
use std::path::Path;
use tree::{Node, parse_json, parse_yaml};

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
        ModelFile::from_node(&parse_json(text)?)
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
        let entries = root.entries(
            "model file",
            "a mapping of top-level keys (layers, cost, ...)",
        )?;
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
        let dataset = get("dataset").map(dataset::read).transpose()?;

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
