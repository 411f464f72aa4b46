//! Layers (neon's `neon/layers/layer.py`), the [`LayerGraph`] they are wired into, and the
//! [`Sequential`] chain built on it.
//!
//! A layer lowers itself into the graph: it declares its parameters (name, shape,
//! initializer) and adds the primitive ops of its forward pass. Compound layers (`Affine`)
//! expand into their parts first, as neon's compound layers are lists. Data is batch-major:
//! a layer sees `[batch, features…]`; Linear weights are `(nout, nin)` as in neon and
//! PyTorch, so `Linear` computes `x · Wᵀ`.
//!
//! # Layout
//!
//! - One file per layer (`linear.rs`, `bias.rs`, `affine.rs`, `activation.rs`,
//!   `merge_sum.rs`, …): the layer's argument struct, with neon's argument names and defaults,
//!   and its behaviour as one [`LayerKind`] implementation.
//! - [`kind`]: the [`LayerKind`] trait, [`Arity`] and the [`LayerCtx`] a layer lowers into.
//! - [`graph`]: [`LayerGraph`], layers wired by name, lowered in topological order.
//! - [`sequential`]: [`Sequential`], a chain, lowered as a one-input, one-output graph.
//! - This file: the registry (the one list of layers), which generates the [`Layer`] enum
//!   (also the model-file schema: `{type: <class>, config: {<arguments>}}`),
//!   [`LAYER_TYPES`], the conversions and the dispatch; and the shared result types.
//!
//! # Adding a layer
//!
//! 1. Write `layer/<module>.rs` with the argument struct
//!    (`#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//!    #[serde(deny_unknown_fields)]`, neon's field names including `name: Option<String>`,
//!    `#[serde(default)]` on every argument neon defaults, the defaults stated in the doc
//!    comments) and its `impl LayerKind` (`lower`, plus `arity`, `expand` or `detail` where
//!    the defaults do not fit).
//! 2. Add `mod <module>;` and one line `Class(<module>::<Type>)` to the `layers!` list
//!    below, which re-exports the struct. The line's order is the order of [`LAYER_TYPES`]
//!    in error messages.
//! 3. Test it (a file `frontend/tests/layer_<name>.rs`): shapes, values on the reference
//!    interpreter, argument errors, and a model file that uses it.

// The layers, one file each (listed again in the registry below, which re-exports them).
// The `mod` lines stay outside the macro: rustfmt does not see modules a macro declares.
mod activation;
mod affine;
mod batch_norm;
mod bias;
mod bidirectional;
mod collapse;
mod conv;
mod dropout;
mod linear;
mod lookup;
mod lrn;
mod merge;
mod merge_sum;
mod pooling;
mod recurrent;
mod reshape;
mod tree;

pub mod graph;
pub mod kind;
mod schema;
pub mod sequential;
pub mod spatial;

pub use graph::{GraphForward, LayerGraph, Port};
pub use kind::{Arity, LayerCtx, LayerKind, Mode, STEP};
pub use merge::Merge;
pub use pooling::PoolOp;
pub use recurrent::{Cell, CellKind};
pub use sequential::{Forward, Sequential};
pub use spatial::{PoolShape, SpatialArg};

use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{GraphError, NodeId};

/// The registry: one line per layer, `Class(module::Type)`, where `Class` is neon's class
/// name (the `type` of a model file's layer and the [`Layer`] variant), `module` the file
/// and `Type` the argument struct implementing [`LayerKind`]. It re-exports the struct and
/// generates [`Layer`], [`LAYER_TYPES`], `From<Type> for Layer`,
/// `Type::with_name`, and [`Layer`]'s methods, each dispatching to the variant's
/// [`LayerKind`].
macro_rules! layers {
    ($($(#[$doc:meta])* $class:ident($module:ident::$ty:ident)),* $(,)?) => {
        $(pub use $module::$ty;)*

        /// A layer with neon's class name, arguments and defaults.
        ///
        /// In a model file a layer is `{type: <class>, config: {<arguments>}}`; see each
        /// variant's argument struct for the arguments and their defaults.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "config", deny_unknown_fields)]
        pub enum Layer {
            $(
                $(#[$doc])*
                #[serde(deserialize_with = "schema::config")]
                $class($ty),
            )*
        }

        /// Every layer type name, in registry order, for error messages.
        pub const LAYER_TYPES: [&str; [$(stringify!($class)),*].len()] =
            [$(stringify!($class)),*];

        $(
            impl schema::Class for $ty {
                const CLASS: &'static str = stringify!($class);
            }

            impl $ty {
                /// The layer with `name` (its `name` argument).
                pub fn with_name(mut self, name: impl Into<String>) -> $ty {
                    self.name = Some(name.into());
                    self
                }
            }

            impl From<$ty> for Layer {
                fn from(layer: $ty) -> Layer {
                    Layer::$class(layer)
                }
            }
        )*

        impl Layer {
            /// The neon class name.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Layer::$class(_) => stringify!($class),)*
                }
            }

            /// The name given in the layer's `name` argument, if any.
            pub fn name(&self) -> Option<&str> {
                match self {
                    $(Layer::$class(l) => l.name.as_deref(),)*
                }
            }

            /// How many inputs the layer takes.
            pub fn arity(&self) -> Arity {
                match self {
                    $(Layer::$class(l) => l.arity(),)*
                }
            }

            /// How many outputs the layer gives.
            pub fn outputs(&self) -> usize {
                match self {
                    $(Layer::$class(l) => l.outputs(),)*
                }
            }

            /// Compound layers as their parts; simple layers as themselves.
            pub fn expand(&self) -> Result<Vec<Layer>, LayerError> {
                match self {
                    $(Layer::$class(l) => l.expand(),)*
                }
            }

            /// The class name with the layer's detail, for summaries
            /// (`Activation(Tanh)`).
            pub fn describe(&self) -> String {
                let detail = match self {
                    $(Layer::$class(l) => l.detail(),)*
                };
                match detail {
                    Some(d) => format!("{}({d})", self.type_name()),
                    None => self.type_name().to_string(),
                }
            }

            /// Adds the layer's forward pass on `inputs` to `ctx`'s graph and returns its
            /// outputs. A wrong number of inputs is an error naming the layer.
            pub fn lower(
                &self,
                ctx: &mut LayerCtx<'_>,
                inputs: &[NodeId],
            ) -> Result<Vec<NodeId>, LayerError> {
                ctx.check_arity(self.type_name(), self.arity(), inputs)?;
                ctx.set_class(self.type_name());
                match self {
                    $(Layer::$class(l) => l.lower(ctx, inputs),)*
                }
            }
        }
    };
}

layers! {
    /// Fully connected, no bias; see [`Linear`].
    Linear(linear::Linear),
    /// A learned bias per feature; see [`Bias`].
    Bias(bias::Bias),
    /// Linear, then Bias, then an activation; see [`Affine`].
    Affine(affine::Affine),
    /// An elementwise transform; see [`ActivationLayer`].
    Activation(activation::ActivationLayer),
    /// The sum of several inputs of one shape; see [`MergeSum`].
    MergeSum(merge_sum::MergeSum),
    /// A new per-sample shape; see [`Reshape`].
    Reshape(reshape::Reshape),
    /// A convolution without bias; see [`Convolution`].
    Convolution(conv::Convolution),
    /// Convolution, then bias, then an activation; see [`Conv`].
    Conv(conv::Conv),
    /// Max or average pooling; see [`Pooling`].
    Pooling(pooling::Pooling),
    /// Batch normalization; see [`BatchNorm`].
    BatchNorm(batch_norm::BatchNorm),
    /// Random zeroing while training; see [`Dropout`].
    Dropout(dropout::Dropout),
    /// A transposed convolution without bias; see [`Deconvolution`].
    Deconvolution(conv::Deconvolution),
    /// Deconvolution, then bias, then an activation; see [`Deconv`].
    Deconv(conv::Deconv),
    /// Local response normalization across feature maps; see [`Lrn`].
    LRN(lrn::Lrn),
    /// A forward-only transform of the data (a first layer); see [`DataTransform`].
    DataTransform(activation::DataTransform),
    /// Branches on one input, outputs concatenated; see [`MergeBroadcast`].
    MergeBroadcast(merge::MergeBroadcast),
    /// The identity, a residual shortcut; see [`SkipNode`].
    SkipNode(merge::SkipNode),
    /// Branches on inputs of their own, outputs concatenated; see [`MergeMultistream`].
    MergeMultistream(merge::MergeMultistream),
    /// The identity, where a `Tree` branch leaves; see [`BranchNode`].
    BranchNode(tree::BranchNode),
    /// A trunk and branches, one output each; see [`Tree`].
    Tree(tree::Tree),
    /// A `Tree` whose inference gives the trunk's output alone; see [`SingleOutputTree`].
    SingleOutputTree(tree::SingleOutputTree),
    /// A simple recurrent layer over a sequence; see [`Recurrent`].
    Recurrent(recurrent::Recurrent),
    /// A long short-term memory layer; see [`Lstm`].
    LSTM(recurrent::Lstm),
    /// A gated recurrent unit layer; see [`Gru`].
    GRU(recurrent::Gru),
    /// Token ids to their rows of a learned table; see [`LookupTable`].
    LookupTable(lookup::LookupTable),
    /// A sequence summed over its time steps; see [`RecurrentSum`].
    RecurrentSum(collapse::RecurrentSum),
    /// A sequence averaged over its time steps; see [`RecurrentMean`].
    RecurrentMean(collapse::RecurrentMean),
    /// A sequence's last time step; see [`RecurrentLast`].
    RecurrentLast(collapse::RecurrentLast),
    /// Forward and backward recurrent layers, outputs concatenated; see [`BiRnn`].
    BiRNN(bidirectional::BiRnn),
    /// Forward and backward LSTM layers, outputs concatenated; see [`BiLstm`].
    BiLSTM(bidirectional::BiLstm),
    /// The sum of a bidirectional output's forward and backward halves; see [`BiSum`].
    BiSum(bidirectional::BiSum),
    /// Stacked `BiRNN` layers; see [`DeepBiRnn`].
    DeepBiRNN(bidirectional::DeepBiRnn),
    /// Stacked `BiLSTM` layers; see [`DeepBiLstm`].
    DeepBiLSTM(bidirectional::DeepBiLstm),
}

/// The steps and features `(T, F)` of a sequence, a value of shape `[batch, T, F]`
/// (what recurrent layers take and give); `None` for any other rank.
///
/// This is neon's `interpret_in_shape`: a two-axis sample shape is read as features ×
/// time steps (Xenon keeps the features last, contiguous). `Linear`, `Bias`, `Softmax`,
/// the costs and the metrics work per time step on sequences.
///
/// ```
/// use xenon_frontend::layer::sequence;
/// assert_eq!(sequence(&[64, 50, 128]), Some((50, 128)));
/// assert_eq!(sequence(&[64, 784]), None);
/// assert_eq!(sequence(&[64, 3, 32, 32]), None);
/// ```
pub fn sequence(shape: &[usize]) -> Option<(usize, usize)> {
    match *shape {
        [_, t, f] => Some((t, f)),
        _ => None,
    }
}

/// A trainable parameter a layer declared.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Unique name, `<layer>/<W|b>`.
    pub name: String,
    /// The layer that owns it.
    pub layer: String,
    /// That layer's class (`Linear`, `Bias`, …; what a MultiOptimizer maps).
    pub class: String,
    /// Shape in Xenon's layout.
    pub shape: Vec<usize>,
    /// How it is initialized.
    pub init: Initializer,
    /// neon's 2-D view and the fan-in, for the initializer.
    pub fans: Fans,
    /// Whether the optimizer trains it: true for weights, false for values a layer updates
    /// itself in training steps (batch norm's running statistics), which are saved and
    /// fed like parameters but neither differentiated nor counted as parameters.
    pub trainable: bool,
    /// How many blocks of `fans`' 2-D shape the parameter stacks along its first axis,
    /// each initialized on its own (neon initializes each gate block of a recurrent
    /// layer separately); 1 for most parameters.
    pub blocks: usize,
    /// Whether this is a recurrent state carried from one minibatch to the next
    /// (`[batch, features…]`, zeros at first; see [`LayerCtx::state`]) rather than a
    /// parameter: neither trained nor saved, and sized to the batch.
    pub carried: bool,
}

/// What a layer did, for summaries.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Unique layer name.
    pub name: String,
    /// neon class name (with the activation for `Activation` layers).
    pub kind: String,
    /// Output shape per sample (without the batch axis) of the layer's first output.
    pub out_shape: Vec<usize>,
    /// Number of trainable values.
    pub params: usize,
}

/// Why a model could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerError {
    /// An op inside a layer did not fit (names the layer and the shapes).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A layer argument is invalid.
    #[error("layer '{layer}': {reason}")]
    Argument { layer: String, reason: String },
    /// A layer was given a number of inputs it does not take.
    #[error("layer '{layer}' ({kind}) takes {arity}, got {found}")]
    Arity {
        layer: String,
        kind: &'static str,
        arity: Arity,
        found: usize,
    },
    /// Two graph inputs, two layers or two graph outputs share a name.
    #[error("two {what} are named '{name}'")]
    DuplicateName {
        /// `graph inputs`, `layers` or `graph outputs`.
        what: &'static str,
        name: String,
    },
    /// A reference names no graph input or layer.
    #[error("{user} refers to '{name}', which is no graph input or layer")]
    UnknownReference {
        /// `layer 'B'` or `graph output 'y'`.
        user: String,
        name: String,
    },
    /// A reference asks for an output a layer does not have.
    #[error("{user} refers to output {port} of '{name}', which has {outputs} output(s)")]
    NoSuchOutput {
        user: String,
        name: String,
        port: usize,
        outputs: usize,
    },
    /// The layers' inputs form a cycle.
    #[error("the layer graph has a cycle through layer '{layer}'")]
    Cycle { layer: String },
    /// `forward` was given a number of input nodes other than the graph's inputs.
    #[error("the layer graph has {expected} input(s) ({names}), got {found} node(s)")]
    Inputs {
        expected: usize,
        names: String,
        found: usize,
    },
}
