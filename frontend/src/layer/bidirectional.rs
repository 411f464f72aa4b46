//! neon's bidirectional recurrent layers: `BiRNN`, `BiLSTM`, the `BiSum` that adds their
//! two halves, and the stacks `DeepBiRNN` and `DeepBiLSTM` (neon's lists, compound layers
//! here).
//!
//! A bidirectional layer runs two recurrent layers of `output_size` units over its sequence
//! `[batch, T, nin]` (see [`sequence`](super::sequence)): the forward one from the first
//! step to the last, the backward one from the last step to the first, each the shared
//! [`Cell`] of `Recurrent`/`LSTM` with its own weights. The output `[batch, T, 2·nout]`
//! holds at step `t` the forward state `h→_t` in features `0..nout` and the backward state
//! `h←_t` in `nout..2·nout` (neon: "forward on top").
//!
//! **Parameters.** neon keeps one matrix `W (2·(nin + nout + 1), G·nout)`; Xenon keeps its
//! six views, each as `Recurrent` keeps its three (`(out, in)` layout, gate blocks stacked
//! and initialized one by one, biases zero): `<layer>/fwd_W_input` `[G·nout, nin]`,
//! `fwd_W_recur` `[G·nout, nout]`, `fwd_b` `[G·nout]`, and the same with `bwd_`. So a layer
//! has `2·(nin + nout + 1)·G·nout` parameters (G = 1 for `BiRNN`, 4 for `BiLSTM`), as in
//! neon.
//!
//! **`split_inputs`.** With `split_inputs: true` the input's features are split in two
//! halves: the forward layer reads features `0..nin/2`, the backward one `nin/2..nin` (each
//! then has `nin/2` inputs; an odd `nin` is an error, as in neon). That is how a stacked
//! layer reads the layer below when the halves are kept apart (`DeepBiRNN` without
//! `bi_sum`): forward from forward, backward from backward.
//!
//! **State.** With `reset_cells: false` (neon's default) the forward layer starts each
//! minibatch from the state the previous one left (the states `<layer>/fwd_h`, and
//! `<layer>/fwd_c` for `BiLSTM`), like `Recurrent`. The backward layer always starts from
//! zeros after the last step, whatever `reset_cells` says: the backward [`Cell`] keeps no
//! state. (neon, unless `reset_cells`, also starts the backward layer from its output at
//! the *first* step of the previous minibatch; Xenon does not.)

use super::recurrent::required;
use super::{Cell, CellKind, Layer, LayerCtx, LayerError, LayerKind};
use crate::activation::Activation;
use crate::init::Initializer;
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// neon's `BiRNN`: a forward and a backward `Recurrent` layer over the sequence, outputs
/// concatenated (forward first), `[batch, T, nin]` → `[batch, T, 2·output_size]`.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{BiRnn, Layer};
///
/// let birnn = BiRnn::new(256, Initializer::GlorotUniform, Activation::Tanh);
/// assert_eq!((birnn.reset_cells, birnn.split_inputs), (false, false));
/// assert_eq!(Layer::from(birnn).type_name(), "BiRNN");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiRnn {
    /// The number of hidden units `nout` of each direction (required, at least 1).
    pub output_size: usize,
    /// The initializer of the input weights (required).
    pub init: Initializer,
    /// Default none: the recurrent weights use `init` too.
    #[serde(default)]
    pub init_inner: Option<Initializer>,
    /// The activation (required; neon's default none fails when the layer runs).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Default false: the forward layer starts each minibatch from the state the previous
    /// one left.
    #[serde(default)]
    pub reset_cells: bool,
    /// Default false: both directions read every input feature. True: the forward layer
    /// reads the first half of the features, the backward layer the second.
    #[serde(default)]
    pub split_inputs: bool,
    /// Default none: the layer is named `BiRNN_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl BiRnn {
    /// `BiRNN(output_size, init, activation)` with neon's defaults for the rest.
    pub fn new(output_size: usize, init: Initializer, activation: Activation) -> BiRnn {
        BiRnn {
            output_size,
            init,
            init_inner: None,
            activation: Some(activation),
            reset_cells: false,
            split_inputs: false,
            name: None,
        }
    }

    fn bi<'a>(&'a self, ctx: &LayerCtx<'_>) -> Result<Bi<'a>, LayerError> {
        let activation = required(ctx, "BiRNN", "an activation", &self.activation)?;
        Ok(Bi {
            class: "BiRNN",
            cell: Cell {
                kind: CellKind::Rnn,
                nout: self.output_size,
                init: &self.init,
                init_inner: self.init_inner.as_ref().unwrap_or(&self.init),
                activation,
                gate_activation: activation,
                reset_cells: self.reset_cells,
            },
            split_inputs: self.split_inputs,
        })
    }
}

/// neon's `BiLSTM`: a forward and a backward `LSTM` (gate blocks i, f, o, g) over the
/// sequence, outputs concatenated (forward first), `[batch, T, nin]` →
/// `[batch, T, 2·output_size]`.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{BiLstm, Layer};
///
/// let bilstm = BiLstm::new(128, Initializer::GlorotUniform, Activation::Tanh,
///     Activation::Logistic { shortcut: false });
/// assert_eq!(Layer::from(bilstm).describe(), "BiLSTM(128)");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiLstm {
    /// The number of hidden units `nout` of each direction (required, at least 1).
    pub output_size: usize,
    /// The initializer of the input weights (required).
    pub init: Initializer,
    /// Default none: the recurrent weights use `init` too.
    #[serde(default)]
    pub init_inner: Option<Initializer>,
    /// The activation of `g` and of the cell output (required; usually `Tanh`).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// The activation of the gates i, f, o (required; usually `Logistic`).
    #[serde(default)]
    pub gate_activation: Option<Activation>,
    /// Default false: the forward layer starts each minibatch from the state the previous
    /// one left.
    #[serde(default)]
    pub reset_cells: bool,
    /// Default false: both directions read every input feature. True: the forward layer
    /// reads the first half of the features, the backward layer the second.
    #[serde(default)]
    pub split_inputs: bool,
    /// Default none: the layer is named `BiLSTM_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl BiLstm {
    /// `BiLSTM(output_size, init, activation, gate_activation)` with neon's defaults for
    /// the rest.
    pub fn new(
        output_size: usize,
        init: Initializer,
        activation: Activation,
        gate_activation: Activation,
    ) -> BiLstm {
        BiLstm {
            output_size,
            init,
            init_inner: None,
            activation: Some(activation),
            gate_activation: Some(gate_activation),
            reset_cells: false,
            split_inputs: false,
            name: None,
        }
    }

    fn bi<'a>(&'a self, ctx: &LayerCtx<'_>) -> Result<Bi<'a>, LayerError> {
        Ok(Bi {
            class: "BiLSTM",
            cell: Cell {
                kind: CellKind::Lstm,
                nout: self.output_size,
                init: &self.init,
                init_inner: self.init_inner.as_ref().unwrap_or(&self.init),
                activation: required(ctx, "BiLSTM", "an activation", &self.activation)?,
                gate_activation: required(
                    ctx,
                    "BiLSTM",
                    "a gate_activation",
                    &self.gate_activation,
                )?,
                reset_cells: self.reset_cells,
            },
            split_inputs: self.split_inputs,
        })
    }
}

/// neon's `BiSum`: the forward and backward halves of a bidirectional layer's output
/// added, `[batch, T, 2n]` → `[batch, T, n]` (features `0..n` plus `n..2n`).
///
/// ```
/// use xenon_frontend::layer::{BiSum, Layer};
/// assert_eq!(Layer::from(BiSum::default()).type_name(), "BiSum");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiSum {
    /// Default none: the layer is named `BiSum_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

/// neon's `DeepBiRNN`: `depth` stacked `BiRNN` layers, a compound layer (neon's list).
///
/// Its parts, as neon builds them: a `BiRNN` reading the whole input, then `depth − 1`
/// more; with `bi_sum` each `BiRNN` is followed by a `BiSum` and every `BiRNN` reads the
/// whole (summed, `nout`-wide) output below it; without, the later `BiRNN`s have
/// `split_inputs` (forward from forward, backward from backward) and the output is
/// `2·nout` wide. A named layer's parts are named `<name>_<i>` (the i-th `BiRNN`) and
/// `<name>_<i>_sum`; an unnamed one's like unnamed layers of their classes.
///
/// `batch_norm: true` (neon's `BiBNRNN`, batch norm of the input projections) is not
/// supported: it is an error naming the layer.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{DeepBiRnn, Layer};
///
/// let mut deep = DeepBiRnn::new(256, Initializer::GlorotUniform, Activation::Tanh);
/// deep.depth = 3;
/// let parts = Layer::from(deep.with_name("rnn")).expand().unwrap();
/// let names: Vec<_> = parts.iter().map(|p| p.name().unwrap()).collect();
/// assert_eq!(names, ["rnn_0", "rnn_1", "rnn_2"]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepBiRnn {
    /// The number of hidden units of each direction of each layer (required, at least 1).
    pub nout: usize,
    /// The initializer of the input weights (required).
    pub init: Initializer,
    /// Default none: the recurrent weights use `init` too.
    #[serde(default)]
    pub init_inner: Option<Initializer>,
    /// The activation (required).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Default false: the forward layers carry their state from minibatch to minibatch.
    #[serde(default)]
    pub reset_cells: bool,
    /// Default 1: the number of `BiRNN` layers (at least 1).
    #[serde(default = "depth")]
    pub depth: usize,
    /// Default false. True (neon's `BiBNRNN`) is not supported.
    #[serde(default)]
    pub batch_norm: bool,
    /// Default false: the halves are kept apart. True: a `BiSum` after each `BiRNN`.
    #[serde(default)]
    pub bi_sum: bool,
    /// Default none (neon's `DeepBiRNN`, a list, has no name; Xenon's names the parts).
    #[serde(default)]
    pub name: Option<String>,
}

impl DeepBiRnn {
    /// `DeepBiRNN(nout, init, activation)` with neon's defaults for the rest (depth 1).
    pub fn new(nout: usize, init: Initializer, activation: Activation) -> DeepBiRnn {
        DeepBiRnn {
            nout,
            init,
            init_inner: None,
            activation: Some(activation),
            reset_cells: false,
            depth: depth(),
            batch_norm: false,
            bi_sum: false,
            name: None,
        }
    }
}

/// neon's `DeepBiLSTM`: `depth` stacked `BiLSTM` layers, a compound layer (neon's list):
/// the first reads the whole input, the later ones have `split_inputs` (forward from
/// forward, backward from backward); the output is `2·nout` wide. A named layer's parts
/// are named `<name>_<i>`; an unnamed one's like unnamed `BiLSTM` layers.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{DeepBiLstm, Layer};
///
/// let mut deep = DeepBiLstm::new(64, Initializer::GlorotUniform, Activation::Tanh,
///     Activation::Logistic { shortcut: false });
/// deep.depth = 2;
/// let parts = Layer::from(deep).expand().unwrap();
/// let kinds: Vec<_> = parts.iter().map(|p| p.type_name()).collect();
/// assert_eq!(kinds, ["BiLSTM", "BiLSTM"]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepBiLstm {
    /// The number of hidden units of each direction of each layer (required, at least 1).
    pub nout: usize,
    /// The initializer of the input weights (required).
    pub init: Initializer,
    /// Default none: the recurrent weights use `init` too.
    #[serde(default)]
    pub init_inner: Option<Initializer>,
    /// The activation of `g` and of the cell output (required; usually `Tanh`).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// The activation of the gates (required; usually `Logistic`).
    #[serde(default)]
    pub gate_activation: Option<Activation>,
    /// Default false: the forward layers carry their state from minibatch to minibatch.
    #[serde(default)]
    pub reset_cells: bool,
    /// Default 1: the number of `BiLSTM` layers (at least 1).
    #[serde(default = "depth")]
    pub depth: usize,
    /// Default none (neon's `DeepBiLSTM`, a list, has no name; Xenon's names the parts).
    #[serde(default)]
    pub name: Option<String>,
}

impl DeepBiLstm {
    /// `DeepBiLSTM(nout, init, activation, gate_activation)` with neon's defaults for the
    /// rest (depth 1).
    pub fn new(
        nout: usize,
        init: Initializer,
        activation: Activation,
        gate_activation: Activation,
    ) -> DeepBiLstm {
        DeepBiLstm {
            nout,
            init,
            init_inner: None,
            activation: Some(activation),
            gate_activation: Some(gate_activation),
            reset_cells: false,
            depth: depth(),
            name: None,
        }
    }
}

fn depth() -> usize {
    1
}

/// One bidirectional layer's arguments: what [`Bi::lower`] adds.
struct Bi<'a> {
    /// neon's class name, for errors.
    class: &'static str,
    /// Both directions' cell (each direction has its own weights).
    cell: Cell<'a>,
    split_inputs: bool,
}

impl Bi<'_> {
    /// Adds the layer on the sequence `x`, its parameters and states named
    /// `<prefix>fwd_…` and `<prefix>bwd_…`; returns `[batch, T, 2·nout]`.
    fn lower(&self, ctx: &mut LayerCtx<'_>, x: NodeId, prefix: &str) -> Result<NodeId, LayerError> {
        let xs = ctx.shape(x)?;
        let Some((t, f)) = super::sequence(&xs) else {
            return Err(ctx.invalid(format!(
                "{} expects a sequence [batch, time steps, features], got shape {xs:?}",
                self.class
            )));
        };
        let b = xs[0];
        let (xf, xb) = match self.split_inputs {
            true => {
                if f % 2 != 0 {
                    return Err(ctx.invalid(format!(
                        "{} with split_inputs needs an even number of input features \
                         (a forward and a backward half), got shape {xs:?}",
                        self.class
                    )));
                }
                let h = f / 2;
                let g = &mut *ctx.g;
                (
                    g.slice(x, &[0, 0, 0], &[b, t, h], &[1, 1, 1])?,
                    g.slice(x, &[0, 0, h], &[b, t, f], &[1, 1, 1])?,
                )
            }
            false => (x, x),
        };
        let yf = self.cell.lower(ctx, xf, &format!("{prefix}fwd_"), false)?;
        let yb = self.cell.lower(ctx, xb, &format!("{prefix}bwd_"), true)?;
        Ok(ctx.g.concat(&[yf, yb], 2)?)
    }
}

/// `BiSum` on `x`: `[batch, T, 2n]` → `[batch, T, n]`.
fn bi_sum(ctx: &mut LayerCtx<'_>, x: NodeId) -> Result<NodeId, LayerError> {
    let xs = ctx.shape(x)?;
    let Some((t, f)) = super::sequence(&xs) else {
        return Err(ctx.invalid(format!(
            "BiSum expects a sequence [batch, time steps, features], got shape {xs:?}"
        )));
    };
    if f % 2 != 0 {
        return Err(ctx.invalid(format!(
            "BiSum adds two halves of the features, but shape {xs:?} has an odd number"
        )));
    }
    let (b, n) = (xs[0], f / 2);
    let g = &mut *ctx.g;
    let fwd = g.slice(x, &[0, 0, 0], &[b, t, n], &[1, 1, 1])?;
    let bwd = g.slice(x, &[0, 0, n], &[b, t, f], &[1, 1, 1])?;
    Ok(g.add_(fwd, bwd)?)
}

/// A stack's argument errors (before it expands), naming the layer (or its class).
fn check_stack(
    class: &str,
    name: &Option<String>,
    depth: usize,
    batch_norm: bool,
) -> Result<(), LayerError> {
    let error = |reason: &str| LayerError::Argument {
        layer: name.clone().unwrap_or_else(|| class.into()),
        reason: reason.into(),
    };
    if depth == 0 {
        return Err(error("depth must be at least 1"));
    }
    if batch_norm {
        return Err(error(
            "batch_norm (neon's BiBNRNN, batch norm of the input projections) is not supported",
        ));
    }
    Ok(())
}

/// A stack's parts lowered one after the other in one context (when the stack is lowered
/// as one layer rather than expanded): the `k`-th bidirectional layer's parameters and
/// states are prefixed `bi<k>_` (`<layer>/bi0_fwd_W_input`).
fn lower_stack(
    ctx: &mut LayerCtx<'_>,
    class: &'static str,
    parts: Vec<Layer>,
    inputs: &[NodeId],
) -> Result<Vec<NodeId>, LayerError> {
    let mut h = ctx.single(class, inputs)?;
    let mut k = 0;
    for part in &parts {
        let bi = match part {
            Layer::BiRNN(l) => Some(l.bi(ctx)?),
            Layer::BiLSTM(l) => Some(l.bi(ctx)?),
            _ => None,
        };
        h = match bi {
            Some(bi) => {
                k += 1;
                bi.lower(ctx, h, &format!("bi{}_", k - 1))?
            }
            None => bi_sum(ctx, h)?,
        };
    }
    Ok(vec![h])
}

impl LayerKind for BiRnn {
    fn detail(&self) -> Option<String> {
        Some(detail(self.output_size, self.split_inputs))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("BiRNN", inputs)?;
        Ok(vec![self.bi(ctx)?.lower(ctx, x, "")?])
    }
}

impl LayerKind for BiLstm {
    fn detail(&self) -> Option<String> {
        Some(detail(self.output_size, self.split_inputs))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("BiLSTM", inputs)?;
        Ok(vec![self.bi(ctx)?.lower(ctx, x, "")?])
    }
}

/// `256` or `256, split inputs`.
fn detail(nout: usize, split_inputs: bool) -> String {
    match split_inputs {
        true => format!("{nout}, split inputs"),
        false => nout.to_string(),
    }
}

impl LayerKind for BiSum {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("BiSum", inputs)?;
        Ok(vec![bi_sum(ctx, x)?])
    }
}

impl LayerKind for DeepBiRnn {
    fn expand(&self) -> Result<Vec<Layer>, LayerError> {
        check_stack("DeepBiRNN", &self.name, self.depth, self.batch_norm)?;
        let part = |suffix: String| self.name.as_ref().map(|n| format!("{n}{suffix}"));
        let mut parts = Vec::new();
        for i in 0..self.depth {
            parts.push(
                BiRnn {
                    output_size: self.nout,
                    init: self.init.clone(),
                    init_inner: self.init_inner.clone(),
                    activation: self.activation.clone(),
                    reset_cells: self.reset_cells,
                    split_inputs: i > 0 && !self.bi_sum,
                    name: part(format!("_{i}")),
                }
                .into(),
            );
            if self.bi_sum {
                parts.push(
                    BiSum {
                        name: part(format!("_{i}_sum")),
                    }
                    .into(),
                );
            }
        }
        Ok(parts)
    }

    /// Lowers the parts in order under this layer's name (a
    /// [`LayerGraph`](super::LayerGraph) lowers each part under its own name instead).
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        lower_stack(ctx, "DeepBiRNN", self.expand()?, inputs)
    }
}

impl LayerKind for DeepBiLstm {
    fn expand(&self) -> Result<Vec<Layer>, LayerError> {
        check_stack("DeepBiLSTM", &self.name, self.depth, false)?;
        let part = |i: usize| self.name.as_ref().map(|n| format!("{n}_{i}"));
        Ok((0..self.depth)
            .map(|i| {
                BiLstm {
                    output_size: self.nout,
                    init: self.init.clone(),
                    init_inner: self.init_inner.clone(),
                    activation: self.activation.clone(),
                    gate_activation: self.gate_activation.clone(),
                    reset_cells: self.reset_cells,
                    split_inputs: i > 0,
                    name: part(i),
                }
                .into()
            })
            .collect())
    }

    /// Lowers the parts in order under this layer's name (a
    /// [`LayerGraph`](super::LayerGraph) lowers each part under its own name instead).
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        lower_stack(ctx, "DeepBiLSTM", self.expand()?, inputs)
    }
}
