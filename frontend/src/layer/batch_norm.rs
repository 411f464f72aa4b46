//! neon's `BatchNorm`: normalization per feature (per feature map for images) with learned
//! scale and shift, and running statistics for inference.

use super::{LayerCtx, LayerError, LayerKind};
use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// Batch normalization over axis 1 of `[batch, C, …]` (the features of `[batch, F]`, the
/// feature maps of `[batch, C, H, W]`), statistics over every other axis and the batch.
///
/// Training steps: `x̂ = (x − μ_B)/√(σ²_B + eps)` with the **biased** batch variance,
/// `y = γ·x̂ + β`, and the running statistics move as `g ← rho·g + (1 − rho)·batch`
/// (`gmean` from μ_B, `gvar` from σ²_B). Inference (evaluation, prediction, bundles)
/// normalizes by `gmean` and `gvar` instead. Parameters `gamma` (init 1) and `beta`
/// (init 0), shape `(C,)`; the running statistics `gmean` (init 0) and `gvar` (init 1)
/// are saved with the weights but not trained and not counted as parameters.
///
/// ```
/// use xenon_frontend::layer::{BatchNorm, Layer};
/// let bn = BatchNorm::default();
/// assert_eq!((bn.rho, bn.eps), (0.9, 1e-3));
/// assert_eq!(Layer::from(bn).type_name(), "BatchNorm");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNorm {
    /// Weight of the old running statistics per update (default 0.9; in `[0, 1]`).
    #[serde(default = "rho")]
    pub rho: f64,
    /// Added to the variance before the square root (default 1e-3; positive).
    #[serde(default = "eps")]
    pub eps: f64,
    /// Default false; true (binarized networks' shift-based normalization) is rejected.
    #[serde(default)]
    pub binary: bool,
    /// Default none: the layer is named `BatchNorm_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

fn rho() -> f64 {
    0.9
}
fn eps() -> f64 {
    1e-3
}

impl Default for BatchNorm {
    fn default() -> BatchNorm {
        BatchNorm {
            rho: rho(),
            eps: eps(),
            binary: false,
            name: None,
        }
    }
}

impl LayerKind for BatchNorm {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("BatchNorm", inputs)?;
        if !(0.0..=1.0).contains(&self.rho) {
            return Err(ctx.invalid(format!("rho must be in [0, 1], got {}", self.rho)));
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return Err(ctx.invalid(format!("eps must be positive, got {}", self.eps)));
        }
        if self.binary {
            return Err(ctx.invalid("binary (shift-based) batch norm is not supported"));
        }
        let xs = ctx.shape(x)?;
        let Some(&c) = xs.get(1) else {
            return Err(ctx.invalid("expects a [batch, features…] input, got one axis"));
        };
        let fans = Fans {
            rows: c,
            cols: 1,
            fan_in: 1,
        };
        let one = Initializer::Constant { val: 1.0 };
        let zero = Initializer::Constant { val: 0.0 };
        let gamma = ctx.param("gamma", &[c], &one, fans)?;
        let beta = ctx.param("beta", &[c], &zero, fans)?;
        let gmean = ctx.buffer("gmean", &[c], &zero)?;
        let gvar = ctx.buffer("gvar", &[c], &one)?;
        // (C,) values broadcast as [1, C, 1, …].
        let mut column = vec![1; xs.len()];
        column[1] = c;
        let axes: Vec<usize> = (0..xs.len()).filter(|&a| a != 1).collect();
        let dt = ctx.g.ty(x).dtype;
        let (mean, var) = if ctx.training() {
            let g = &mut *ctx.g;
            let mean = g.mean(x, &axes, true)?;
            let centered = g.sub(x, mean)?;
            let sq = g.mul(centered, centered)?;
            let var = g.mean(sq, &axes, true)?;
            // Running statistics: rho·g + (1 − rho)·batch.
            let keep = g.scalar(dt, self.rho)?;
            let take = g.scalar(dt, 1.0 - self.rho)?;
            let mut new = Vec::new();
            for (old, batch) in [(gmean, mean), (gvar, var)] {
                let b = g.reshape(batch, &[c])?;
                let a = g.mul(keep, old)?;
                let b = g.mul(take, b)?;
                new.push(g.add_(a, b)?);
            }
            ctx.update("gmean", new[0])?;
            ctx.update("gvar", new[1])?;
            (mean, var)
        } else {
            let mean = ctx.g.reshape(gmean, &column)?;
            let var = ctx.g.reshape(gvar, &column)?;
            (mean, var)
        };
        let g = &mut *ctx.g;
        let e = g.scalar(dt, self.eps)?;
        let v = g.add_(var, e)?;
        let sd = g.sqrt(v)?;
        let inv = g.recip(sd)?;
        let centered = g.sub(x, mean)?;
        let xhat = g.mul(centered, inv)?;
        let gamma = g.reshape(gamma, &column)?;
        let beta = g.reshape(beta, &column)?;
        let scaled = g.mul(xhat, gamma)?;
        Ok(vec![g.add_(scaled, beta)?])
    }
}
