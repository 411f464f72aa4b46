//! neon's `Linear`: a fully connected layer without bias.

use super::{LayerCtx, LayerError, LayerKind};
use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// Fully connected, no bias: `y = x·Wᵀ` with `W` of shape `(nout, nin)`; the input's
/// non-batch axes are flattened (`nin` is their product), except a sequence's
/// (`[batch, T, nin]`, see [`sequence`](super::sequence)), which is transformed at each
/// time step into `[batch, T, nout]`.
///
/// ```
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Layer, Linear};
///
/// let l: Layer = Linear::new(10, Initializer::Constant { val: 0.0 }).with_name("fc").into();
/// assert_eq!((l.type_name(), l.name()), ("Linear", Some("fc")));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    /// Number of output features (required, at least 1).
    pub nout: usize,
    /// The initializer of `W` (required).
    pub init: Initializer,
    /// Default false; accepted for compatibility (neon's batch-sum bookkeeping).
    #[serde(default)]
    pub bsum: bool,
    /// Default none: the layer is named `Linear_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Linear {
    /// `Linear(nout, init)` with neon's defaults for the rest.
    pub fn new(nout: usize, init: Initializer) -> Linear {
        Linear {
            nout,
            init,
            bsum: false,
            name: None,
        }
    }
}

impl LayerKind for Linear {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Linear", inputs)?;
        if self.nout == 0 {
            return Err(ctx.invalid("nout must be at least 1"));
        }
        let xs = ctx.shape(x)?;
        // A sequence is transformed step by step; any other input is flattened.
        let (rows, nin, out_shape) = match super::sequence(&xs) {
            Some((steps, f)) => (xs[0] * steps, f, vec![xs[0], steps, self.nout]),
            None => {
                let nin: usize = xs[1..].iter().product();
                (xs[0], nin, vec![xs[0], self.nout])
            }
        };
        let flat = ctx.g.reshape(x, &[rows, nin])?;
        let fans = Fans {
            rows: self.nout,
            cols: nin,
            fan_in: nin,
        };
        let w = ctx.param("W", &[self.nout, nin], &self.init, fans)?;
        let y = ctx.g.matmul(flat, w, false, true)?;
        Ok(vec![ctx.g.reshape(y, &out_shape)?])
    }
}
