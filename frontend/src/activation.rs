//! Activations (neon's `neon/transforms/activation.py`), lowered to IR primitives.
//!
//! neon hand-writes each activation's derivative in terms of its output, and its
//! `Softmax`/`Logistic(shortcut=True)` derivatives return 1, assuming the cost's derivative
//! already is `y − t`. Xenon differentiates the lowered primitives instead; the shortcut
//! `y − t` is what the compiler's simplifications derive, so `shortcut` is accepted for
//! compatibility and changes nothing.

use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{Graph, GraphError, NodeId};

/// An elementwise (or, for `Softmax`, per-sample) nonlinearity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Activation {
    /// `x`.
    #[serde(deserialize_with = "crate::model_file::no_arguments")]
    Identity,
    /// `max(x, 0) + slope·min(x, 0)`: ReLU, leaky when `slope` (default 0) is nonzero.
    /// The derivative at exactly 0 is 0, as in neon.
    Rectlin {
        #[serde(default)]
        slope: f64,
    },
    /// `min(max(x, 0) + slope·min(x, 0), xcut)`: ReLU (leaky with `slope`, default 0)
    /// clipped at `xcut` (default 20); the derivative is `([x > 0] + slope·[x < 0])` below
    /// the clip and 0 at or above it, as in neon.
    Rectlinclip {
        #[serde(default)]
        slope: f64,
        #[serde(default = "twenty")]
        xcut: f64,
    },
    /// `1 / (1 + e^−x)`. `shortcut` (default false) is accepted for neon compatibility.
    Logistic {
        #[serde(default)]
        shortcut: bool,
    },
    /// `e^x_i / Σ_j e^x_j` over the features of each sample (computed with the maximum
    /// subtracted, which does not change the value). `axis` (neon's default 0, its feature
    /// axis) is accepted for compatibility; Xenon's features are axis 1 of a batch-major
    /// batch. `epsilon` is accepted and unused, as in neon.
    Softmax {
        #[serde(default)]
        axis: usize,
        #[serde(default = "softmax_eps")]
        epsilon: f64,
    },
    /// `tanh x`.
    #[serde(deserialize_with = "crate::model_file::no_arguments")]
    Tanh,
    /// ELU: `max(x, 0) + alpha·(e^min(x,0) − 1)` (`alpha` default 1).
    Explin {
        #[serde(default = "one")]
        alpha: f64,
    },
    /// `x / divisor` (default 128): neon's input normalizer.
    Normalizer {
        #[serde(default = "normalizer_divisor")]
        divisor: f64,
    },
}

fn softmax_eps() -> f64 {
    2f64.powi(-23)
}
fn one() -> f64 {
    1.0
}
fn twenty() -> f64 {
    20.0
}
fn normalizer_divisor() -> f64 {
    128.0
}

impl Activation {
    /// Every activation class name, in declaration order (for error messages).
    pub const NAMES: [&'static str; 8] = [
        "Identity",
        "Rectlin",
        "Rectlinclip",
        "Logistic",
        "Softmax",
        "Tanh",
        "Explin",
        "Normalizer",
    ];

    /// The neon class name.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "Identity",
            Activation::Rectlin { .. } => "Rectlin",
            Activation::Rectlinclip { .. } => "Rectlinclip",
            Activation::Logistic { .. } => "Logistic",
            Activation::Softmax { .. } => "Softmax",
            Activation::Tanh => "Tanh",
            Activation::Explin { .. } => "Explin",
            Activation::Normalizer { .. } => "Normalizer",
        }
    }

    /// Adds the activation of `x` (shape `[batch, features…]`) to `g`.
    pub fn lower(&self, g: &mut Graph, x: NodeId) -> Result<NodeId, GraphError> {
        let dt = g.ty(x).dtype;
        match *self {
            Activation::Identity => Ok(x),
            Activation::Rectlin { slope } => {
                // max(0, x): the zero comes first so that ties send no gradient to x.
                let zero = g.scalar(dt, 0.0)?;
                let pos = g.max(zero, x)?;
                if slope == 0.0 {
                    return Ok(pos);
                }
                let neg = g.min(zero, x)?;
                let s = g.scalar(dt, slope)?;
                let neg = g.mul(neg, s)?;
                g.add_(pos, neg)
            }
            Activation::Rectlinclip { slope, xcut } => {
                let h = Activation::Rectlin { slope }.lower(g, x)?;
                // The cut comes first so that at the clip no gradient flows to h.
                let cut = g.scalar(dt, xcut)?;
                g.min(cut, h)
            }
            Activation::Logistic { .. } => {
                let one = g.scalar(dt, 1.0)?;
                let e = g.neg(x)?;
                let e = g.exp(e)?;
                let d = g.add_(one, e)?;
                g.recip(d)
            }
            Activation::Softmax { .. } => {
                // Per sample, or per time step of a sequence.
                let rank = g.ty(x).rank();
                let axes: Vec<usize> = match crate::layer::sequence(&g.ty(x).shape) {
                    Some(_) => vec![2],
                    None => (1..rank).collect(),
                };
                let m = g.reduce_max(x, &axes, true)?;
                let z = g.sub(x, m)?;
                let e = g.exp(z)?;
                let s = g.sum(e, &axes, true)?;
                g.div(e, s)
            }
            Activation::Tanh => g.tanh(x),
            Activation::Explin { alpha } => {
                let zero = g.scalar(dt, 0.0)?;
                let pos = g.max(zero, x)?;
                let neg = g.min(zero, x)?;
                let e = g.exp(neg)?;
                let one = g.scalar(dt, 1.0)?;
                let e = g.sub(e, one)?;
                let a = g.scalar(dt, alpha)?;
                let e = g.mul(e, a)?;
                g.add_(pos, e)
            }
            Activation::Normalizer { divisor } => {
                let d = g.scalar(dt, 1.0 / divisor)?;
                g.mul(x, d)
            }
        }
    }
}
