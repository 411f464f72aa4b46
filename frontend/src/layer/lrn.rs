//! neon's `LRN`: local response normalization across neighbouring feature maps.

use super::{LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{NodeId, Window};

/// Cross-channel local response normalization over `[batch, C, …]` inputs:
/// `y = x / (1 + (ascale/depth)·Σ x²)^bpower`, the sum over the `depth` feature maps
/// centred on each map (maps past the edges count as zeros). `alpha` and `beta` are
/// accepted for compatibility (neon's CPU and GPU kernels use `ascale` and `bpower`).
///
/// ```
/// use xenon_frontend::layer::{Layer, Lrn};
/// let l = Lrn::new(5);
/// assert_eq!((l.ascale, l.bpower), (1.0, 1.0));
/// assert_eq!(Layer::from(l).type_name(), "LRN");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lrn {
    /// The number of maps summed over (required; odd).
    pub depth: usize,
    /// Default 1; accepted, unused (as in neon's kernels).
    #[serde(default = "one")]
    pub alpha: f64,
    /// Default 0; accepted, unused (as in neon's kernels).
    #[serde(default)]
    pub beta: f64,
    /// The scale of the sum of squares (default 1).
    #[serde(default = "one")]
    pub ascale: f64,
    /// The power of the denominator (default 1).
    #[serde(default = "one")]
    pub bpower: f64,
    /// Default none: the layer is named `LRN_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

fn one() -> f64 {
    1.0
}

impl Lrn {
    /// `LRN(depth)` with neon's defaults.
    pub fn new(depth: usize) -> Lrn {
        Lrn {
            depth,
            alpha: 1.0,
            beta: 0.0,
            ascale: 1.0,
            bpower: 1.0,
            name: None,
        }
    }
}

impl LayerKind for Lrn {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("LRN", inputs)?;
        if self.depth == 0 || self.depth.is_multiple_of(2) {
            return Err(ctx.invalid(format!("depth must be odd, got {}", self.depth)));
        }
        if !self.ascale.is_finite() || !self.bpower.is_finite() || self.ascale < 0.0 {
            return Err(ctx.invalid(format!(
                "ascale ({}) must be finite and non-negative and bpower ({}) finite",
                self.ascale, self.bpower
            )));
        }
        let xs = ctx.shape(x)?;
        if xs.len() < 3 {
            return Err(ctx.invalid(format!(
                "LRN needs [batch, C, H, W] feature maps, got shape {xs:?}"
            )));
        }
        let (n, c) = (xs[0], xs[1]);
        let rest: usize = xs[2..].iter().product();
        let dt = ctx.g.ty(x).dtype;
        let g = &mut *ctx.g;
        // Σ over the channel window: channels as a 2-d image (C × positions) of one channel,
        // a depth × 1 window with zero padding.
        let sq = g.mul(x, x)?;
        let img = g.reshape(sq, &[n, 1, c, rest])?;
        let half = self.depth / 2;
        let win = Window {
            kernel: vec![self.depth, 1],
            stride: vec![1, 1],
            pad_low: vec![half, 0],
            pad_high: vec![half, 0],
            dilation: vec![1, 1],
        };
        let cols = g.im2col(img, &win)?; // [n, depth, c·rest]
        let sums = g.sum(cols, &[1], false)?;
        let sums = g.reshape(sums, &xs)?;
        let scale = g.scalar(dt, self.ascale / self.depth as f64)?;
        let one = g.scalar(dt, 1.0)?;
        let s = g.mul(sums, scale)?;
        let base = g.add_(s, one)?;
        // base^bpower = exp(bpower·log(base)), base ≥ 1.
        let l = g.log(base)?;
        let p = g.scalar(dt, self.bpower)?;
        let lp = g.mul(l, p)?;
        let denom = g.exp(lp)?;
        Ok(vec![g.div(x, denom)?])
    }
}
