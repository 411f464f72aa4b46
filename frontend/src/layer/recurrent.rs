//! neon's recurrent layers `Recurrent`, `LSTM` and `GRU`, statically unrolled over the time
//! steps of their input sequence, and the [`Cell`] step they share with the bidirectional
//! layers (`bidirectional.rs`).
//!
//! A layer takes a sequence `[batch, T, nin]` and gives `[batch, T, nout]` (see
//! [`sequence`](super::sequence)). Its parameters are neon's one matrix
//! `(nin + nout + 1, G·nout)` as its three views, in Xenon's `(out, in)` layout:
//!
//! - `W_input` `[G·nout, nin]`, the input weights of the `G` gate blocks, stacked;
//! - `W_recur` `[G·nout, nout]`, the recurrent weights;
//! - `b` `[G·nout]`, zeros (neon's biases start at 0 and are trained).
//!
//! `G` is 1 for `Recurrent`, 4 for `LSTM` (blocks i, f, o, g) and 3 for `GRU` (r, z, h̃), so
//! a layer has `(nin + nout + 1)·G·nout` parameters, as in neon. Each block is initialized
//! on its own (`init` for the input weights, `init_inner`, default `init`, for the
//! recurrent ones).
//!
//! The input projection of every step is one matrix product over the whole sequence
//! (`[batch·T, nin] · W_inputᵀ + b`); each step then adds `h_{t−1} · W_recurᵀ` and applies
//! the cell. Backpropagation runs through all `T` steps of a minibatch (neon's BPTT spans
//! the minibatch too).
//!
//! **State.** With `reset_cells: false` (neon's default) step 0 starts from the hidden (and
//! cell) state the previous minibatch ended with: the layer declares the states
//! `<layer>/h` (and `<layer>/c`) through [`LayerCtx::state`], which the model sets to zeros
//! at the start of each epoch and each evaluation. With `reset_cells: true` every
//! minibatch starts from zeros.

use super::{LayerCtx, LayerError, LayerKind};
use crate::activation::Activation;
use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{Graph, GraphError, NodeId};

/// neon's `Recurrent`: `h_t = f(W_input·x_t + W_recur·h_{t−1} + b)`.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Layer, Recurrent};
///
/// let rnn = Recurrent::new(500, Initializer::Uniform { low: -0.08, high: 0.08 }, Activation::Tanh);
/// assert_eq!((rnn.output_size, rnn.reset_cells), (500, false));
/// assert_eq!(Layer::from(rnn).type_name(), "Recurrent");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurrent {
    /// The number of hidden units `nout` (required, at least 1).
    pub output_size: usize,
    /// The initializer of the input weights (required).
    pub init: Initializer,
    /// Default none: the recurrent weights use `init` too.
    #[serde(default)]
    pub init_inner: Option<Initializer>,
    /// The activation `f` (required; neon's default none fails when the layer runs).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Default false: each minibatch starts from the state the previous one left.
    #[serde(default)]
    pub reset_cells: bool,
    /// Default none: the layer is named `Recurrent_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Recurrent {
    /// `Recurrent(output_size, init, activation)` with neon's defaults for the rest.
    pub fn new(output_size: usize, init: Initializer, activation: Activation) -> Recurrent {
        Recurrent {
            output_size,
            init,
            init_inner: None,
            activation: Some(activation),
            reset_cells: false,
            name: None,
        }
    }
}

/// neon's `LSTM`, gate blocks in neon's order **i, f, o, g**: with `σ` the
/// `gate_activation` and `φ` the `activation`, `[i, f, o] = σ(…)`, `g = φ(…)`,
/// `c_t = f·c_{t−1} + i·g`, `h_t = o·φ(c_t)`. No forget-gate bias trick: biases start at 0.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Layer, Lstm};
///
/// let lstm = Lstm::new(128, Initializer::GlorotUniform, Activation::Tanh,
///     Activation::Logistic { shortcut: false });
/// assert_eq!(Layer::from(lstm).type_name(), "LSTM");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lstm {
    /// The number of hidden units `nout` (required, at least 1).
    pub output_size: usize,
    /// The initializer of the input weights (required).
    pub init: Initializer,
    /// Default none: the recurrent weights use `init` too.
    #[serde(default)]
    pub init_inner: Option<Initializer>,
    /// The activation `φ` of `g` and of the cell output (required; usually `Tanh`).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// The activation `σ` of the gates i, f, o (required; usually `Logistic`).
    #[serde(default)]
    pub gate_activation: Option<Activation>,
    /// Default false: each minibatch starts from the state the previous one left.
    #[serde(default)]
    pub reset_cells: bool,
    /// Default none: the layer is named `LSTM_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Lstm {
    /// `LSTM(output_size, init, activation, gate_activation)` with neon's defaults for the
    /// rest.
    pub fn new(
        output_size: usize,
        init: Initializer,
        activation: Activation,
        gate_activation: Activation,
    ) -> Lstm {
        Lstm {
            output_size,
            init,
            init_inner: None,
            activation: Some(activation),
            gate_activation: Some(gate_activation),
            reset_cells: false,
            name: None,
        }
    }
}

/// neon's `GRU`, gate blocks **r, z, h̃**: `[r, z] = σ(…)`,
/// `h̃ = φ(W_input_h·x_t + W_recur_h·(r ⊙ h_{t−1}) + b_h)`, `h_t = (1 − z)·h_{t−1} + z·h̃`.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Gru, Layer};
///
/// let gru = Gru::new(128, Initializer::GlorotUniform, Activation::Tanh,
///     Activation::Logistic { shortcut: false });
/// assert_eq!(Layer::from(gru).type_name(), "GRU");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gru {
    /// The number of hidden units `nout` (required, at least 1).
    pub output_size: usize,
    /// The initializer of the input weights (required).
    pub init: Initializer,
    /// Default none: the recurrent weights use `init` too.
    #[serde(default)]
    pub init_inner: Option<Initializer>,
    /// The activation `φ` of the candidate `h̃` (required; usually `Tanh`).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// The activation `σ` of the gates r and z (required; usually `Logistic`).
    #[serde(default)]
    pub gate_activation: Option<Activation>,
    /// Default false: each minibatch starts from the state the previous one left.
    #[serde(default)]
    pub reset_cells: bool,
    /// Default none: the layer is named `GRU_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Gru {
    /// `GRU(output_size, init, activation, gate_activation)` with neon's defaults for the
    /// rest.
    pub fn new(
        output_size: usize,
        init: Initializer,
        activation: Activation,
        gate_activation: Activation,
    ) -> Gru {
        Gru {
            output_size,
            init,
            init_inner: None,
            activation: Some(activation),
            gate_activation: Some(gate_activation),
            reset_cells: false,
            name: None,
        }
    }
}

/// Which recurrence a layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// neon's `Recurrent`: one block.
    Rnn,
    /// neon's `LSTM`: four blocks i, f, o, g and a cell state.
    Lstm,
    /// neon's `GRU`: three blocks r, z, h̃.
    Gru,
}

impl CellKind {
    /// The number of gate blocks `G`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// neon's class name.
    pub fn class(self) -> &'static str {
        match self {
            CellKind::Rnn => "Recurrent",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// One recurrent layer's arguments, whatever its class: what [`Cell::lower`] unrolls.
#[derive(Clone, Debug)]
pub struct Cell<'a> {
    /// The recurrence.
    pub kind: CellKind,
    /// Hidden units.
    pub nout: usize,
    /// Input weights' initializer.
    pub init: &'a Initializer,
    /// Recurrent weights' initializer.
    pub init_inner: &'a Initializer,
    /// The activation (`φ`).
    pub activation: &'a Activation,
    /// The gates' activation (`σ`; unused by `Recurrent`).
    pub gate_activation: &'a Activation,
    /// Whether each minibatch starts from zeros.
    pub reset_cells: bool,
}

impl Cell<'_> {
    /// Adds the layer on the sequence `x` (`[batch, T, nin]`) to `ctx`'s graph: its
    /// parameters `<prefix>W_input`, `<prefix>W_recur`, `<prefix>b` and, unless
    /// `reset_cells`, its states `<prefix>h` (and `<prefix>c`). With `reverse` the steps run
    /// from last to first (the backward half of a bidirectional layer), and the layer
    /// keeps no state. Returns the hidden states `[batch, T, nout]` in time order.
    pub fn lower(
        &self,
        ctx: &mut LayerCtx<'_>,
        x: NodeId,
        prefix: &str,
        reverse: bool,
    ) -> Result<NodeId, LayerError> {
        if self.nout == 0 {
            return Err(ctx.invalid("output_size must be at least 1"));
        }
        let xs = ctx.shape(x)?;
        let Some((steps, nin)) = super::sequence(&xs) else {
            return Err(ctx.invalid(format!(
                "{} expects a sequence [batch, time steps, features], got shape {xs:?}",
                self.kind.class()
            )));
        };
        // Every gate block's bounds (2n, 3n, 4n) are at most gates·n: checked once here.
        let Some(gn) = self.kind.gates().checked_mul(self.nout) else {
            return Err(ctx.invalid(format!("output_size {} is too large", self.nout)));
        };
        let (b, n) = (xs[0], self.nout);
        let blocks = self.kind.gates();
        let w_in = ctx.param_blocks(
            &format!("{prefix}W_input"),
            blocks,
            self.init,
            Fans {
                rows: n,
                cols: nin,
                fan_in: nin,
            },
        )?;
        let w_rec = ctx.param_blocks(
            &format!("{prefix}W_recur"),
            blocks,
            self.init_inner,
            Fans {
                rows: n,
                cols: n,
                fan_in: n,
            },
        )?;
        let bias = ctx.param(
            &format!("{prefix}b"),
            &[gn],
            &Initializer::Constant { val: 0.0 },
            Fans {
                rows: gn,
                cols: 1,
                fan_in: 1,
            },
        )?;
        let carried = !self.reset_cells && !reverse;
        let lstm = self.kind == CellKind::Lstm;
        let (mut h, mut c) = match carried {
            true => (
                ctx.state(&format!("{prefix}h"), &[b, n])?,
                lstm.then(|| ctx.state(&format!("{prefix}c"), &[b, n]))
                    .transpose()?,
            ),
            // Zeros, which the optimizer folds out of the first step; the recurrent
            // weight's gradient then has a term for every step, so that it reads the whole
            // sequence of gate gradients (see `autodiff::accumulate`).
            false => {
                let zeros = ctx.g.full(ctx.dtype(), &[b, n], 0.0)?;
                (zeros, lstm.then_some(zeros))
            }
        };
        let g = &mut *ctx.g;
        // Every step's input projection in one product.
        let flat = g.reshape(x, &[b * steps, nin])?;
        let proj = g.matmul(flat, w_in, false, true)?;
        let proj = g.add_(proj, bias)?;
        let proj = g.reshape(proj, &[b, steps, gn])?;
        // GRU: the recurrent weights of r and z, and of h̃ (which reads r ⊙ h).
        let (w_rz, w_h) = match self.kind {
            CellKind::Gru => (
                Some(g.slice(w_rec, &[0, 0], &[2 * n, n], &[1, 1])?),
                Some(g.slice(w_rec, &[2 * n, 0], &[3 * n, n], &[1, 1])?),
            ),
            _ => (None, None),
        };
        let mut outputs = vec![None; steps];
        let order: Vec<usize> = match reverse {
            true => (0..steps).rev().collect(),
            false => (0..steps).collect(),
        };
        for t in order {
            let pre = g.slice(proj, &[0, t, 0], &[b, t + 1, gn], &[1, 1, 1])?;
            let pre = g.reshape(pre, &[b, gn])?;
            let (h_new, c_new) = match self.kind {
                CellKind::Rnn => {
                    let z = recur(g, pre, h, w_rec)?;
                    (self.activation.lower(g, z)?, None)
                }
                CellKind::Lstm => {
                    let z = recur(g, pre, h, w_rec)?;
                    let ifo = cols(g, z, 0, 3 * n)?;
                    let ifo = self.gate_activation.lower(g, ifo)?;
                    let cand = cols(g, z, 3 * n, 4 * n)?;
                    let cand = self.activation.lower(g, cand)?;
                    let i = cols(g, ifo, 0, n)?;
                    let f = cols(g, ifo, n, 2 * n)?;
                    let o = cols(g, ifo, 2 * n, 3 * n)?;
                    let ig = g.mul(i, cand)?;
                    let fc = g.mul(f, c.expect("an LSTM's cell state"))?;
                    let cell = g.add_(fc, ig)?;
                    let act = self.activation.lower(g, cell)?;
                    (g.mul(o, act)?, Some(cell))
                }
                CellKind::Gru => {
                    let pre_rz = cols(g, pre, 0, 2 * n)?;
                    let pre_h = cols(g, pre, 2 * n, 3 * n)?;
                    let rz = recur(g, pre_rz, h, w_rz.expect("GRU weights"))?;
                    let rz = self.gate_activation.lower(g, rz)?;
                    let r = cols(g, rz, 0, n)?;
                    let z = cols(g, rz, n, 2 * n)?;
                    let rh = g.mul(r, h)?;
                    let cand = recur(g, pre_h, rh, w_h.expect("GRU weights"))?;
                    let cand = self.activation.lower(g, cand)?;
                    // (1 − z)·h + z·h̃ = h + z·(h̃ − h)
                    let d = g.sub(cand, h)?;
                    let zd = g.mul(z, d)?;
                    let h_new = g.add_(h, zd)?;
                    (h_new, None)
                }
            };
            outputs[t] = Some(g.reshape(h_new, &[b, 1, n])?);
            h = h_new;
            c = c_new.or(c);
        }
        let outputs: Vec<NodeId> = outputs
            .into_iter()
            .map(|o| o.expect("every step"))
            .collect();
        let y = match outputs.len() {
            1 => outputs[0],
            _ => g.concat(&outputs, 1)?,
        };
        if carried {
            ctx.carry(&format!("{prefix}h"), h)?;
            if let Some(c) = c {
                ctx.carry(&format!("{prefix}c"), c)?;
            }
        }
        Ok(y)
    }
}

/// `pre + h·Wᵀ`.
fn recur(g: &mut Graph, pre: NodeId, h: NodeId, w: NodeId) -> Result<NodeId, GraphError> {
    let r = g.matmul(h, w, false, true)?;
    g.add_(pre, r)
}

/// Columns `from..to` of a `[batch, width]` value.
fn cols(g: &mut Graph, x: NodeId, from: usize, to: usize) -> Result<NodeId, GraphError> {
    let b = g.ty(x).shape[0];
    g.slice(x, &[0, from], &[b, to], &[1, 1])
}

/// The activation argument `what` of a `class` layer, or the error saying it is missing.
pub(super) fn required<'a>(
    ctx: &LayerCtx<'_>,
    class: &str,
    what: &str,
    activation: &'a Option<Activation>,
) -> Result<&'a Activation, LayerError> {
    activation
        .as_ref()
        .ok_or_else(|| ctx.invalid(format!("{class} needs {what} (neon has no default)")))
}

impl LayerKind for Recurrent {
    fn detail(&self) -> Option<String> {
        Some(self.output_size.to_string())
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Recurrent", inputs)?;
        let activation = required(ctx, "Recurrent", "an activation", &self.activation)?;
        let cell = Cell {
            kind: CellKind::Rnn,
            nout: self.output_size,
            init: &self.init,
            init_inner: self.init_inner.as_ref().unwrap_or(&self.init),
            activation,
            gate_activation: activation,
            reset_cells: self.reset_cells,
        };
        Ok(vec![cell.lower(ctx, x, "", false)?])
    }
}

/// The cell of an `LSTM` or `GRU` layer's arguments.
#[allow(clippy::too_many_arguments)]
fn gated<'a>(
    ctx: &LayerCtx<'_>,
    kind: CellKind,
    nout: usize,
    init: &'a Initializer,
    init_inner: &'a Option<Initializer>,
    activation: &'a Option<Activation>,
    gate_activation: &'a Option<Activation>,
    reset_cells: bool,
) -> Result<Cell<'a>, LayerError> {
    Ok(Cell {
        kind,
        nout,
        init,
        init_inner: init_inner.as_ref().unwrap_or(init),
        activation: required(ctx, kind.class(), "an activation", activation)?,
        gate_activation: required(ctx, kind.class(), "a gate_activation", gate_activation)?,
        reset_cells,
    })
}

impl LayerKind for Lstm {
    fn detail(&self) -> Option<String> {
        Some(self.output_size.to_string())
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("LSTM", inputs)?;
        let cell = gated(
            ctx,
            CellKind::Lstm,
            self.output_size,
            &self.init,
            &self.init_inner,
            &self.activation,
            &self.gate_activation,
            self.reset_cells,
        )?;
        Ok(vec![cell.lower(ctx, x, "", false)?])
    }
}

impl LayerKind for Gru {
    fn detail(&self) -> Option<String> {
        Some(self.output_size.to_string())
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("GRU", inputs)?;
        let cell = gated(
            ctx,
            CellKind::Gru,
            self.output_size,
            &self.init,
            &self.init_inner,
            &self.activation,
            &self.gate_activation,
            self.reset_cells,
        )?;
        Ok(vec![cell.lower(ctx, x, "", false)?])
    }
}
