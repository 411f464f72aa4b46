//! neon's `Pooling`: max or average over sliding windows of each feature map.

use super::spatial::{PoolShape, SpatialArg, window};
use super::{LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{BinaryOp, DType, Graph, NodeId, Op, unravel};

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
        // Max pooling commutes with what follows the value: pool before it, on 1/taps of
        // the elements (forward and backward), when every window holds an input element.
        let (x, after) = match self.op {
            PoolOp::Max
                if valid_per_axis(&win, &spatial, &out)
                    .iter()
                    .flatten()
                    .all(|&k| k > 0) =>
            {
                peel_monotone(g, x)
            }
            _ => (x, Vec::new()),
        };
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
        let mut y = ctx.g.reshape(pooled, &yshape)?;
        for a in after.iter().rev() {
            y = match *a {
                After::Max {
                    bound,
                    bound_first: true,
                } => ctx.g.max(bound, y)?,
                After::Max { bound, .. } => ctx.g.max(y, bound)?,
                After::Add { shift } => ctx.g.add_(y, shift)?,
            };
        }
        Ok(vec![y])
    }
}

/// An elementwise step after a value that commutes with max pooling: it never decreases
/// with the value and is the same function at every position of a feature map, so the
/// largest input of a window gives the largest output, at the same (first) position.
#[derive(Clone, Copy, Debug)]
enum After {
    /// `max(bound, x)` (`bound_first`) or `max(x, bound)` with a one-element constant:
    /// ReLU's form. (The operand order decides where a tie's gradient goes; it is kept.)
    Max { bound: NodeId, bound_first: bool },
    /// `x + shift` with `shift` constant over the batch and the spatial axes (a bias,
    /// batch norm's shift).
    Add { shift: NodeId },
}

/// Walks back from `x` through the [`After`] steps it is made of: the value they apply to
/// and the steps, outermost first. Pooling that value and applying the steps to the
/// result gives the same values, and the gradients reach the same positions, as pooling
/// `x` (`max_w f(v) = f(max_w v)` for `f` non-decreasing, with the first maximum of `v`
/// where `f` keeps it; where `f` flattens a window's top values the gradient through `f`
/// is zero at either position). The work before pooling shrinks to the pooled size: a
/// convolution's bias and ReLU, and their gradients, run on a quarter of the elements
/// under 2×2 pooling.
fn peel_monotone(g: &Graph, mut x: NodeId) -> (NodeId, Vec<After>) {
    let rank = g.ty(x).rank();
    // The operand under a broadcast, when it has one element (`one`) or varies only along
    // the channel axis (axis 1 of `[batch, C, spatial…]`).
    let under = |b: NodeId, one: bool| -> Option<NodeId> {
        let Op::Broadcast { .. } = g.node(b).op else {
            return None;
        };
        let v = g.operands(b)[0];
        let shape = &g.ty(v).shape;
        let lead = rank.checked_sub(shape.len())?;
        let fits = shape
            .iter()
            .enumerate()
            .all(|(i, &e)| e == 1 || (!one && lead + i == 1));
        fits.then_some(v)
    };
    let constant = |v: NodeId| matches!(g.node(v).op, Op::Constant { .. });
    // The value under `y` and the step that makes `y` of it, if `y` is such a step.
    let peel = |y: NodeId| -> Option<(NodeId, After)> {
        let Op::Binary { func } = g.node(y).op else {
            return None;
        };
        let [a, b] = g.operands(y)[..] else {
            return None;
        };
        match func {
            BinaryOp::Max => match (under(a, true), under(b, true)) {
                (Some(bound), _) if constant(bound) => Some((
                    b,
                    After::Max {
                        bound,
                        bound_first: true,
                    },
                )),
                (_, Some(bound)) if constant(bound) => Some((
                    a,
                    After::Max {
                        bound,
                        bound_first: false,
                    },
                )),
                _ => None,
            },
            BinaryOp::Add => match (under(a, false), under(b, false)) {
                (_, Some(shift)) => Some((a, After::Add { shift })),
                (Some(shift), _) => Some((b, After::Add { shift })),
                _ => None,
            },
            _ => None,
        }
    };
    let mut after = Vec::new();
    while let Some((inner, step)) = peel(x) {
        after.push(step);
        x = inner;
    }
    (x, after)
}

/// For each output position of `win` over `spatial` (output extents `out`), how many of
/// its taps fall inside the input (not in the padding).
fn valid_counts(win: &xenon_compiler::ir::Window, spatial: &[usize], out: &[usize]) -> Vec<usize> {
    // The count is the product of the axes' counts.
    let per_axis = valid_per_axis(win, spatial, out);
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

/// Per spatial axis, the number of a window's taps inside the input at each output index.
fn valid_per_axis(
    win: &xenon_compiler::ir::Window,
    spatial: &[usize],
    out: &[usize],
) -> Vec<Vec<usize>> {
    (0..spatial.len())
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
        .collect()
}
