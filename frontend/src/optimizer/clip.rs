//! Gradient and parameter clipping, shared by the optimizers (neon's `clip_value` and
//! `clip_gradient_norm`).

use xenon_compiler::ir::{DType, Graph, GraphError, NodeId};

/// `x` clipped element-wise to `[−|c|, |c|]`, or `x` when `c` is `None`.
pub(super) fn clip(g: &mut Graph, x: NodeId, c: Option<f64>) -> Result<NodeId, GraphError> {
    let Some(c) = c else { return Ok(x) };
    let dt = g.ty(x).dtype;
    let hi = g.scalar(dt, c.abs())?;
    let lo = g.scalar(dt, -c.abs())?;
    let t = g.min(x, hi)?;
    g.max(t, lo)
}

/// The global-norm scale `s = c / max(‖g‖, c)` over every gradient in `grads` (the raw
/// batch-mean gradients, before value clipping, as neon computes it), which never scales
/// up; `None` when `clip_norm` is `None`.
pub(super) fn norm_scale(
    g: &mut Graph,
    dt: DType,
    grads: &[NodeId],
    clip_norm: Option<f64>,
) -> Result<Option<NodeId>, GraphError> {
    let Some(c) = clip_norm else { return Ok(None) };
    let mut total = g.scalar(dt, 0.0)?;
    for &gr in grads {
        let sq = g.mul(gr, gr)?;
        let axes: Vec<usize> = (0..g.ty(sq).rank()).collect();
        let s = g.sum(sq, &axes, false)?;
        total = g.add_(total, s)?;
    }
    let norm = g.sqrt(total)?;
    let cn = g.scalar(dt, c)?;
    let den = g.max(norm, cn)?;
    Ok(Some(g.div(cn, den)?))
}

/// `x·s`, or `x` when there is no scale.
pub(super) fn scaled(g: &mut Graph, x: NodeId, s: Option<NodeId>) -> Result<NodeId, GraphError> {
    match s {
        Some(s) => g.mul(x, s),
        None => Ok(x),
    }
}

/// `ρ·a + (1 − ρ)·b`.
pub(super) fn blend(g: &mut Graph, rho: f64, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
    let dt = g.ty(a).dtype;
    let r = g.scalar(dt, rho)?;
    let q = g.scalar(dt, 1.0 - rho)?;
    let ra = g.mul(a, r)?;
    let qb = g.mul(b, q)?;
    g.add_(ra, qb)
}
