//! neon's `Dropout`: zeroes inputs at random while training.

use super::{LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{CompareOp, NodeId};

/// neon's dropout: in a training step each input is kept (passed unchanged) with
/// probability `keep` and zeroed otherwise — outputs are in `{0, x}`, **not** rescaled;
/// at inference the output is `keep·x`. The mask is `u < keep` with `u` uniform on
/// `[0, 1)` from the model's counter-based stream for this layer and step (so a seeded run,
/// and a resumed one, draws the same masks).
///
/// ```
/// use xenon_frontend::layer::{Dropout, Layer};
/// let d = Dropout::default();
/// assert_eq!(d.keep, 0.5);
/// assert_eq!(Layer::from(d).type_name(), "Dropout");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropout {
    /// Probability of keeping an input (default 0.5; in `(0, 1]`).
    #[serde(default = "keep")]
    pub keep: f64,
    /// Default none: the layer is named `Dropout_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

fn keep() -> f64 {
    0.5
}

impl Default for Dropout {
    fn default() -> Dropout {
        Dropout {
            keep: keep(),
            name: None,
        }
    }
}

impl LayerKind for Dropout {
    fn detail(&self) -> Option<String> {
        Some(format!("keep {}", self.keep))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Dropout", inputs)?;
        if !(self.keep > 0.0 && self.keep <= 1.0) {
            return Err(ctx.invalid(format!("keep must be in (0, 1], got {}", self.keep)));
        }
        let xs = ctx.shape(x)?;
        let dt = ctx.g.ty(x).dtype;
        let y = match ctx.random_stream()? {
            Some((step, seed)) => {
                let g = &mut *ctx.g;
                let u = g.random_uniform(dt, &xs, seed, 0.0, 1.0, Some(step))?;
                let keep = g.scalar(dt, self.keep)?;
                let mask = g.compare(CompareOp::Lt, u, keep)?;
                g.mul(x, mask)?
            }
            None => {
                let keep = ctx.g.scalar(dt, self.keep)?;
                ctx.g.mul(x, keep)?
            }
        };
        Ok(vec![y])
    }
}
