//! neon's `GradientDescentMomentum`.

use super::clip::{clip, norm_scale, scaled};
use super::{Schedule, Update};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{Graph, GraphError, NodeId};

/// neon's `GradientDescentMomentum`.
///
/// Per parameter θ with velocity v and mean gradient g, learning rate `lr`, weight decay
/// `wd`, momentum `μ`:
/// - `g ← clip(g, ±gradient_clip_value)` when set;
/// - `s = clip_norm / max(‖g‖, clip_norm)` over all its parameters' raw gradients when
///   `gradient_clip_norm` is set, else 1 (never scales up);
/// - `μ = 0`: `θ ← (1 − lr·wd)·θ − lr·s·g`;
/// - otherwise `g' = s·g + wd·θ`, `v ← μ·v − lr·g'`, and `θ ← θ + v`, or with `nesterov`
///   `θ ← θ + μ·v − lr·g'`;
/// - `θ ← clip(θ, ±param_clip_value)` when set. (neon skips this clip when `μ = 0`, a bug
///   Xenon does not copy.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradientDescentMomentum {
    pub learning_rate: f64,
    #[serde(default)]
    pub momentum_coef: f64,
    #[serde(default)]
    pub stochastic_round: bool,
    #[serde(default)]
    pub wdecay: f64,
    #[serde(default)]
    pub gradient_clip_norm: Option<f64>,
    #[serde(default)]
    pub gradient_clip_value: Option<f64>,
    #[serde(default)]
    pub param_clip_value: Option<f64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub nesterov: bool,
}

impl GradientDescentMomentum {
    /// Its state per parameter: the velocity, with momentum.
    pub fn state_names(&self) -> &'static [&'static str] {
        if self.momentum_coef == 0.0 {
            &[]
        } else {
            &["velocity"]
        }
    }

    pub(super) fn update(
        &self,
        g: &mut Graph,
        lr: NodeId,
        params: &[NodeId],
        grads: &[NodeId],
        states: &[Vec<NodeId>],
    ) -> Result<Vec<Update>, GraphError> {
        let dt = g.ty(lr).dtype;
        let scale = norm_scale(g, dt, grads, self.gradient_clip_norm)?;
        let mut out = Vec::with_capacity(params.len());
        for (i, (&theta, &gr)) in params.iter().zip(grads).enumerate() {
            let gr = clip(g, gr, self.gradient_clip_value)?;
            let sg = scaled(g, gr, scale)?;
            let (new_theta, state) = if self.momentum_coef == 0.0 {
                // θ ← (1 − lr·wd)·θ − lr·s·g
                let step = g.mul(lr, sg)?;
                let decayed = if self.wdecay != 0.0 {
                    let wd = g.scalar(dt, self.wdecay)?;
                    let lw = g.mul(lr, wd)?;
                    let one = g.scalar(dt, 1.0)?;
                    let f = g.sub(one, lw)?;
                    g.mul(f, theta)?
                } else {
                    theta
                };
                (g.sub(decayed, step)?, vec![])
            } else {
                let v = states[i][0];
                let gp = if self.wdecay != 0.0 {
                    let wd = g.scalar(dt, self.wdecay)?;
                    let t = g.mul(theta, wd)?;
                    g.add_(sg, t)?
                } else {
                    sg
                };
                let mu = g.scalar(dt, self.momentum_coef)?;
                let mv = g.mul(v, mu)?;
                let lg = g.mul(lr, gp)?;
                let new_v = g.sub(mv, lg)?;
                let new_theta = if self.nesterov {
                    let mnv = g.mul(new_v, mu)?;
                    let t = g.add_(theta, mnv)?;
                    g.sub(t, lg)?
                } else {
                    g.add_(theta, new_v)?
                };
                (new_theta, vec![new_v])
            };
            out.push(Update {
                param: clip(g, new_theta, self.param_clip_value)?,
                state,
            });
        }
        Ok(out)
    }
}
