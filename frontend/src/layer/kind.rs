//! What every layer implements ([`LayerKind`]), how many inputs it takes ([`Arity`]), and
//! the context it lowers into ([`LayerCtx`]).

use super::{Layer, LayerError, ParamSpec};
use crate::init::{Fans, Initializer};
use std::fmt;
use xenon_compiler::ir::{DType, Graph, NodeId};

/// The name of the training graph's step-counter input (see [`Mode::Training`]).
pub const STEP: &str = "step";

/// A layer's behaviour. Each layer's argument struct implements it in its own file; the
/// registry in [`crate::layer`] dispatches [`Layer`]'s methods to it.
///
/// Every argument struct also has neon's `name: Option<String>` argument (default none:
/// the layer is named `<class>_<k>` when it is added to a
/// [`LayerGraph`](super::LayerGraph)); the registry reads it and gives each struct a
/// `with_name` builder.
pub trait LayerKind: Clone + Into<Layer> {
    /// How many inputs the layer takes. Default: exactly one.
    fn arity(&self) -> Arity {
        Arity::Exactly(1)
    }

    /// The layers this one stands for, in order: a compound layer (neon's lists, such as
    /// `Affine`) returns its parts, each fed the previous part's outputs. Default: the layer
    /// itself.
    fn expand(&self) -> Result<Vec<Layer>, LayerError> {
        Ok(vec![self.clone().into()])
    }

    /// How many outputs the layer gives. Default: one. A layer with several (`Tree`) ends
    /// a `Sequential`.
    fn outputs(&self) -> usize {
        1
    }

    /// A detail shown in parentheses after the class name in summaries
    /// (`Activation(Tanh)`). Default: none.
    fn detail(&self) -> Option<String> {
        None
    }

    /// Adds the forward pass on `inputs` (each `[batch, features…]`) to `ctx`'s graph,
    /// declaring parameters through [`LayerCtx::param`], and returns the layer's outputs.
    /// [`Layer::lower`] checks `inputs` against [`LayerKind::arity`] first.
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError>;
}

/// How many inputs a layer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` inputs are accepted.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

/// `1 input`, `at least 2 inputs`.
impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, n) = match *self {
            Arity::Exactly(n) => ("", n),
            Arity::AtLeast(n) => ("at least ", n),
        };
        let s = if n == 1 { "" } else { "s" };
        write!(f, "{prefix}{n} input{s}")
    }
}

/// Where a layer lowers itself: the graph (already inside the layer's scope), the layer's
/// unique name, the parameters' dtype, and the list of declared parameters.
pub struct LayerCtx<'a> {
    /// The graph being built.
    pub g: &'a mut Graph,
    name: &'a str,
    class: &'static str,
    dtype: DType,
    params: &'a mut Vec<ParamSpec>,
    mode: Mode,
}

/// What a graph is built for: a training step or inference (evaluation, prediction,
/// bundles). Layers that behave differently — batch norm, dropout — ask
/// [`LayerCtx::training`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Inference: batch norm uses its running statistics, dropout scales by `keep`.
    #[default]
    Inference,
    /// A training step: batch statistics and their running updates; dropout masks drawn
    /// from the counter-based streams of the model's `seed`, with the graph input `step`
    /// (i32, the step index) as the counter.
    Training {
        /// The model's seed.
        seed: u64,
    },
}

impl<'a> LayerCtx<'a> {
    /// A context for the layer `name`, declaring parameters of `dtype` into `params`.
    pub fn new(
        g: &'a mut Graph,
        name: &'a str,
        dtype: DType,
        params: &'a mut Vec<ParamSpec>,
    ) -> LayerCtx<'a> {
        LayerCtx {
            g,
            name,
            class: "",
            dtype,
            params,
            mode: Mode::Inference,
        }
    }

    /// The same context for a graph of `mode` (default: inference).
    pub fn with_mode(mut self, mode: Mode) -> LayerCtx<'a> {
        self.mode = mode;
        self
    }

    /// Whether the layer is lowered into a training graph.
    pub fn training(&self) -> bool {
        matches!(self.mode, Mode::Training { .. })
    }

    /// In a training graph, the counter of this step's random streams — the graph input
    /// `step` (i32 scalar), added on first use — and the seed of this layer's stream (the
    /// model's seed mixed with the layer's name); `None` in an inference graph.
    pub fn random_stream(&mut self) -> Result<Option<(NodeId, u64)>, LayerError> {
        let Mode::Training { seed } = self.mode else {
            return Ok(None);
        };
        let step = match self.g.find_leaf(STEP) {
            Some(id) => id,
            None => self.g.input(STEP, DType::I32, &[])?,
        };
        // FNV-1a of the layer name, mixed with the model's seed.
        let name = self.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Ok(Some((step, seed ^ name.rotate_left(17))))
    }

    /// Records the class of the layer being lowered (its parameters carry it).
    pub fn set_class(&mut self, class: &'static str) {
        self.class = class;
    }

    /// The layer's unique name (the graph scope and the parameters' prefix).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The dtype parameters are declared with.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Declares the trainable parameter `<layer>/<suffix>` of `shape` and returns its node.
    pub fn param(
        &mut self,
        suffix: &str,
        shape: &[usize],
        init: &Initializer,
        fans: Fans,
    ) -> Result<NodeId, LayerError> {
        self.declare(suffix, shape, init, fans, true)
    }

    /// Declares the trainable parameter `<layer>/<suffix>` as `blocks` blocks of `fans`'
    /// `(rows, cols)` stacked along the first axis (shape `[blocks·rows, cols]`), each
    /// initialized on its own, as neon initializes a recurrent layer's gate blocks.
    pub fn param_blocks(
        &mut self,
        suffix: &str,
        blocks: usize,
        init: &Initializer,
        fans: Fans,
    ) -> Result<NodeId, LayerError> {
        let shape = [blocks * fans.rows, fans.cols];
        let id = self.declare(suffix, &shape, init, fans, true)?;
        self.params.last_mut().expect("declared above").blocks = blocks;
        Ok(id)
    }

    /// Declares the frozen parameter `<layer>/<suffix>` of `shape`: initialized by `init`
    /// with `fans` and saved like a trainable parameter, but neither differentiated nor
    /// updated nor counted as a parameter (`LookupTable` with `update: false`). Returns its
    /// node.
    pub fn frozen(
        &mut self,
        suffix: &str,
        shape: &[usize],
        init: &Initializer,
        fans: Fans,
    ) -> Result<NodeId, LayerError> {
        self.declare(suffix, shape, init, fans, false)
    }

    fn declare(
        &mut self,
        suffix: &str,
        shape: &[usize],
        init: &Initializer,
        fans: Fans,
        trainable: bool,
    ) -> Result<NodeId, LayerError> {
        let name = format!("{}/{suffix}", self.name);
        let id = self.g.parameter(&name, self.dtype, shape)?;
        self.params.push(ParamSpec {
            name,
            layer: self.name.to_string(),
            class: self.class.to_string(),
            shape: shape.to_vec(),
            init: init.clone(),
            fans,
            trainable,
            blocks: 1,
            carried: false,
        });
        Ok(id)
    }

    /// Declares the recurrent state `<layer>/<suffix>` of shape `[batch, features…]`
    /// (`shape`): a value the model feeds like a parameter, zeros at the start of each
    /// epoch and evaluation, and then the value the previous minibatch left (see
    /// [`LayerCtx::carry`]); neon's recurrent layers carry their last hidden state so
    /// unless `reset_cells`. Returns its node.
    pub fn state(&mut self, suffix: &str, shape: &[usize]) -> Result<NodeId, LayerError> {
        let rows = shape.first().copied().unwrap_or(1);
        let fans = Fans {
            rows,
            cols: shape.iter().skip(1).product(),
            fan_in: 1,
        };
        let zero = Initializer::Constant { val: 0.0 };
        let id = self.declare(suffix, shape, &zero, fans, false)?;
        self.params.last_mut().expect("declared above").carried = true;
        Ok(id)
    }

    /// Makes `value` the state `<layer>/<suffix>` ([`LayerCtx::state`]) for the next
    /// minibatch: the output `new/<layer>/<suffix>`, declared its update, in every mode.
    pub fn carry(&mut self, suffix: &str, value: NodeId) -> Result<(), LayerError> {
        let name = format!("{}/{suffix}", self.name);
        let out = format!("new/{name}");
        self.g.set_output(&out, value)?;
        self.g.set_update(&out, &name)?;
        Ok(())
    }

    /// Declares the non-trainable value `<layer>/<suffix>` of `shape`, filled by `init`
    /// (a running statistic the layer updates itself with [`LayerCtx::update`]), and
    /// returns its node.
    pub fn buffer(
        &mut self,
        suffix: &str,
        shape: &[usize],
        init: &Initializer,
    ) -> Result<NodeId, LayerError> {
        let id = self.declare(
            suffix,
            shape,
            init,
            Fans {
                rows: shape.iter().product(),
                cols: 1,
                fan_in: 1,
            },
            false,
        )?;
        Ok(id)
    }

    /// In a training graph, makes `value` the new value of the buffer `<layer>/<suffix>`
    /// after the step (the output `new/<layer>/<suffix>`, declared its update); nothing in
    /// an inference graph.
    pub fn update(&mut self, suffix: &str, value: NodeId) -> Result<(), LayerError> {
        if self.training() {
            let name = format!("{}/{suffix}", self.name);
            let out = format!("new/{name}");
            self.g.set_output(&out, value)?;
            self.g.set_update(&out, &name)?;
        }
        Ok(())
    }

    /// Lowers `layers` (one branch of a container such as `MergeBroadcast`) as a chain on
    /// `inputs`: each layer's parts are named `<this layer>/<branch>/<name>` (their given
    /// name, else `<Class>_<k>` counting within the branch) and declare their parameters
    /// into this context's list, in this context's mode.
    pub fn lower_branch(
        &mut self,
        branch: &str,
        layers: &[Layer],
        inputs: &[NodeId],
    ) -> Result<Vec<NodeId>, LayerError> {
        self.lower_branch_with(branch, layers, inputs, |_, _, _, h| Ok(h))
    }

    /// [`LayerCtx::lower_branch`], handing each lowered part's outputs to `after` (with the
    /// graph, the part's position in the branch, counting parts from 0, and the part),
    /// whose result feeds the next part: how `Tree` marks and weights its branch points.
    pub fn lower_branch_with(
        &mut self,
        branch: &str,
        layers: &[Layer],
        inputs: &[NodeId],
        mut after: impl FnMut(&mut Graph, usize, &Layer, Vec<NodeId>) -> Result<Vec<NodeId>, LayerError>,
    ) -> Result<Vec<NodeId>, LayerError> {
        let mut counts: std::collections::HashMap<&'static str, usize> = Default::default();
        let mut h = inputs.to_vec();
        let mut position = 0;
        for layer in layers {
            for part in layer.expand()? {
                let k = counts.entry(part.type_name()).or_insert(0);
                let local = part
                    .name()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}_{k}", part.type_name()));
                *k += 1;
                let name = format!("{}/{branch}/{local}", self.name);
                let (g, params, dtype, mode) =
                    (&mut *self.g, &mut *self.params, self.dtype, self.mode);
                h = g.in_scope(&format!("{branch}/{local}"), |g| {
                    part.lower(
                        &mut LayerCtx::new(g, &name, dtype, params).with_mode(mode),
                        &h,
                    )
                })?;
                h = after(self.g, position, &part, h)?;
                position += 1;
            }
        }
        Ok(h)
    }

    /// An invalid-argument error naming the layer.
    pub fn invalid(&self, reason: impl Into<String>) -> LayerError {
        LayerError::Argument {
            layer: self.name.to_string(),
            reason: reason.into(),
        }
    }

    /// An error naming the layer unless `arity` accepts `inputs`.
    pub fn check_arity(
        &self,
        kind: &'static str,
        arity: Arity,
        inputs: &[NodeId],
    ) -> Result<(), LayerError> {
        if arity.accepts(inputs.len()) {
            return Ok(());
        }
        Err(LayerError::Arity {
            layer: self.name.to_string(),
            kind,
            arity,
            found: inputs.len(),
        })
    }

    /// The one input of a single-input layer; any other count is an error naming the layer.
    pub fn single(&self, kind: &'static str, inputs: &[NodeId]) -> Result<NodeId, LayerError> {
        self.check_arity(kind, Arity::Exactly(1), inputs)?;
        Ok(inputs[0])
    }

    /// The shape of the input `x`, `[batch, features…]`; a scalar (no batch axis) is an
    /// error naming the layer.
    pub fn shape(&self, x: NodeId) -> Result<Vec<usize>, LayerError> {
        let shape = self.g.ty(x).shape.clone();
        if shape.is_empty() {
            return Err(self.invalid("expects a [batch, features…] input, got a scalar"));
        }
        Ok(shape)
    }
}
