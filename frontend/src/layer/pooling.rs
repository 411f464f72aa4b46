//! neon's `Pooling`: max or average over sliding windows of each feature map.

use super::spatial::{PoolShape, SpatialArg, window};
use super::{LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{DType, NodeId, unravel};

/// How a pooling window is reduced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolOp {
    /// The largest value; the gradient goes to the first maximum of the window in scan
    /// order (row-major over the window), as neon routes it to the arg-max. Padding never
    /// wins.
    #[default]
    Max,
    /// The mean over the window's positions inside the input (padding excluded, as in
    /// neon's CPU backend).
    Avg,
}

/// Pooling over `[batch, C, H, W]` (or `[batch, C, D, H, W]`) inputs, each feature map on
/// its own: output `[batch, C, P, Q]` with neon's size rule. The stride defaults to the
/// window (non-overlapping windows), padding to 0; `fshape: all` pools each map to one
/// value.
///
/// ```
/// use xenon_frontend::layer::{Layer, Pooling};
///
/// let p: Layer = Pooling::max(2).into();
/// assert_eq!(p.describe(), "Pooling(max)");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pooling {
    /// The window: an integer for height and width, `[R, S]`/`[T, R, S]`, or `all`
    /// (required).
    pub fshape: PoolShape,
    /// `max` (default) or `avg`.
    #[serde(default)]
    pub op: PoolOp,
    /// Default: the window's extents; an integer or `{str_d, str_h, str_w}`.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub strides: SpatialArg,
    /// Default 0; an integer or `{pad_d, pad_h, pad_w}`.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub padding: SpatialArg,
    /// Default none: the layer is named `Pooling_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Pooling {
    /// Max pooling over `n × n` windows with stride `n`.
    pub fn max(n: usize) -> Pooling {
        Pooling {
            fshape: PoolShape::Int(n),
            op: PoolOp::Max,
            strides: SpatialArg::Default,
            padding: SpatialArg::Default,
            name: None,
        }
    }

    /// Average pooling over `n × n` windows with stride `n`.
    pub fn avg(n: usize) -> Pooling {
        Pooling {
            op: PoolOp::Avg,
            ..Pooling::max(n)
        }
    }
}

impl LayerKind for Pooling {
    fn detail(&self) -> Option<String> {
        Some(match self.op {
            PoolOp::Max => "max".into(),
            PoolOp::Avg => "avg".into(),
        })
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Pooling", inputs)?;
        let xs = ctx.shape(x)?;
        if !(4..=5).contains(&xs.len()) {
            return Err(ctx.invalid(format!(
                "pooling needs [batch, C, H, W] or [batch, C, D, H, W] inputs, got shape {xs:?}"
            )));
        }
        let (n, c, spatial) = (xs[0], xs[1], xs[2..].to_vec());
        let r = spatial.len();
        let kernel = self.fshape.resolve(&spatial).map_err(|e| ctx.invalid(e))?;
        let stride = match &self.strides {
            SpatialArg::Default => kernel.clone(),
            s => s.resolve("str", r, 1).map_err(|e| ctx.invalid(e))?,
        };
        let pad = self
            .padding
            .resolve("pad", r, 0)
            .map_err(|e| ctx.invalid(e))?;
        let dil = vec![1; r];
        let (win, out) = window(&kernel, &stride, &pad, &dil, &spatial)
            .map_err(|e| ctx.invalid(format!("{e} (input shape {:?})", &xs[1..])))?;
        let taps: usize = kernel.iter().product();
        let positions: usize = out.iter().product();
        let dt = ctx.g.ty(x).dtype;
        let g = &mut *ctx.g;
        // Each feature map as its own one-channel image.
        let mut maps_shape = vec![n * c, 1];
        maps_shape.extend_from_slice(&spatial);
        let pooled = match self.op {
            PoolOp::Max => {
                // Pad with the lowest finite value (never the maximum), then windows
                // without padding; the first maximum of each window (in scan order) is
                // picked by its flat index in the padded maps: the output is a gather
                // there, so the gradient is one scatter-add of the output's gradient
                // (no column-sized mask or fold).
                let mut unpadded = win.clone();
                unpadded.pad_low = vec![0; r];
                unpadded.pad_high = vec![0; r];
                let mut low = vec![0, 0];
                low.extend_from_slice(&pad);
                let xp = if pad.iter().any(|&p| p > 0) {
                    g.pad(x, &low, &low, &vec![0; r + 2], f32::MIN as f64)?
                } else {
                    x
                };
                let padded: Vec<usize> = g.ty(xp).shape[2..].to_vec();
                let plane: usize = padded.iter().product();
                let mut padded_maps = vec![n * c, 1];
                padded_maps.extend_from_slice(&padded);
                let maps = g.reshape(xp, &padded_maps)?;
                let cols = g.im2col(maps, &unpadded)?; // [n·c, taps, positions]
                let first = g.argmax(cols, 1, false)?; // [n·c, positions]
                let flat = |coords: &[usize]| {
                    coords
                        .iter()
                        .zip(&padded)
                        .fold(0, |at, (&x, &extent)| at * extent + x)
                };
                // Where tap t of a window lies from the window's first element, and where
                // each window (and each map) starts, in the padded maps laid end to end.
                let tap_offsets = (0..taps)
                    .map(|t| flat(&unravel(t, &kernel)) as f64)
                    .collect();
                let window_starts = (0..positions)
                    .map(|p| {
                        let o = unravel(p, &out);
                        let at: Vec<usize> = o.iter().zip(&stride).map(|(o, s)| o * s).collect();
                        flat(&at) as f64
                    })
                    .collect();
                let map_starts = (0..n * c).map(|m| (m * plane) as f64).collect();
                let tap_offsets = g.constant(DType::I32, &[taps], tap_offsets)?;
                let window_starts = g.constant(DType::I32, &[1, positions], window_starts)?;
                let map_starts = g.constant(DType::I32, &[n * c, 1], map_starts)?;
                let tap = g.gather(tap_offsets, first)?;
                let at = g.add_(map_starts, window_starts)?;
                let at = g.add_(at, tap)?;
                let all = g.reshape(maps, &[n * c * plane])?;
                g.gather(all, at)?
            }
            PoolOp::Avg => {
                let maps = g.reshape(x, &maps_shape)?;
                let cols = g.im2col(maps, &win)?;
                let sum = g.sum(cols, &[1], false)?;
                let counts = valid_counts(&win, &spatial, &out);
                let inv: Vec<f64> = counts.iter().map(|&k| 1.0 / k as f64).collect();
                let inv = g.constant(dt, &[1, positions], inv)?;
                g.mul(sum, inv)?
            }
        };
        let mut yshape = vec![n, c];
        yshape.extend_from_slice(&out);
        Ok(vec![ctx.g.reshape(pooled, &yshape)?])
    }
}

/// For each output position of `win` over `spatial` (output extents `out`), how many of
/// its taps fall inside the input (not in the padding).
fn valid_counts(win: &xenon_compiler::ir::Window, spatial: &[usize], out: &[usize]) -> Vec<usize> {
    // Per axis: the number of valid taps at each output index; the count is their product.
    let per_axis: Vec<Vec<usize>> = (0..spatial.len())
        .map(|a| {
            (0..out[a])
                .map(|o| {
                    (0..win.kernel[a])
                        .filter(|&k| {
                            let i = (o * win.stride[a] + k * win.dilation[a]) as isize
                                - win.pad_low[a] as isize;
                            i >= 0 && (i as usize) < spatial[a]
                        })
                        .count()
                })
                .collect()
        })
        .collect();
    let total: usize = out.iter().product();
    (0..total)
        .map(|mut p| {
            let mut count = 1;
            for a in (0..spatial.len()).rev() {
                count *= per_axis[a][p % out[a]];
                p /= out[a];
            }
            count.max(1)
        })
        .collect()
}
