//! neon's adaptive-rate optimizers: `RMSProp`, `Adagrad`, `Adadelta` and `Adam`.
//!
//! Every update starts from the batch-mean gradient `g`, clipped element-wise to
//! `±gradient_clip_value` when set; `s` is the global-norm scale of `gradient_clip_norm`
//! (see [`GradientDescentMomentum`](super::GradientDescentMomentum)), 1 when unset; the
//! new parameter is clipped to `±param_clip_value` when set. `stochastic_round` (16-bit
//! GPU storage in neon) is rejected.

use super::Update;
use super::clip::{blend, clip, norm_scale, scaled};
use super::schedule::Schedule;
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{Graph, GraphError, NodeId};

/// neon's `RMSProp`: `r ← ρ·r + (1 − ρ)·g²`, `θ ← θ − s·lr·g / (√(r + ε) + ε)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmsProp {
    #[serde(default)]
    pub stochastic_round: bool,
    /// ρ (default 0.95).
    #[serde(default = "default_decay")]
    pub decay_rate: f64,
    /// Default 0.002.
    #[serde(default = "rmsprop_lr")]
    pub learning_rate: f64,
    /// Default 1e-6.
    #[serde(default = "eps6")]
    pub epsilon: f64,
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
}

/// neon's `Adagrad`: `r ← r + g²`, `θ ← θ − s·lr·g / √(r + ε)` (no schedule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adagrad {
    #[serde(default)]
    pub stochastic_round: bool,
    /// Default 0.01.
    #[serde(default = "adagrad_lr")]
    pub learning_rate: f64,
    /// Default 1e-6.
    #[serde(default = "eps6")]
    pub epsilon: f64,
    #[serde(default)]
    pub gradient_clip_norm: Option<f64>,
    #[serde(default)]
    pub gradient_clip_value: Option<f64>,
    #[serde(default)]
    pub param_clip_value: Option<f64>,
    #[serde(default)]
    pub name: Option<String>,
}

/// neon's `Adadelta` (no learning rate, no gradient clipping):
/// `E_g ← ρ·E_g + (1 − ρ)·g²`, `Δ = √((E_x + ε)/(E_g + ε))·g`,
/// `E_x ← ρ·E_x + (1 − ρ)·Δ²`, `θ ← θ − Δ`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adadelta {
    #[serde(default)]
    pub stochastic_round: bool,
    /// ρ (default 0.95).
    #[serde(default = "default_decay")]
    pub decay: f64,
    /// Default 1e-6.
    #[serde(default = "eps6")]
    pub epsilon: f64,
    #[serde(default)]
    pub param_clip_value: Option<f64>,
    #[serde(default)]
    pub name: Option<String>,
}

/// neon's `Adam` (no schedule): at step `t` (1-based, one per minibatch),
/// `l = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`, `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`,
/// `θ ← θ − s·l·m/(√v + ε)`. The host computes `l` per step and feeds it as the
/// learning-rate input ([`Adam::step_rate`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adam {
    #[serde(default)]
    pub stochastic_round: bool,
    /// Default 0.001.
    #[serde(default = "adam_lr")]
    pub learning_rate: f64,
    /// Default 0.9.
    #[serde(default = "beta1")]
    pub beta_1: f64,
    /// Default 0.999.
    #[serde(default = "beta2")]
    pub beta_2: f64,
    /// Default 1e-8.
    #[serde(default = "eps8")]
    pub epsilon: f64,
    #[serde(default)]
    pub gradient_clip_norm: Option<f64>,
    #[serde(default)]
    pub gradient_clip_value: Option<f64>,
    #[serde(default)]
    pub param_clip_value: Option<f64>,
    #[serde(default)]
    pub name: Option<String>,
}

fn default_decay() -> f64 {
    0.95
}
fn rmsprop_lr() -> f64 {
    2e-3
}
fn adagrad_lr() -> f64 {
    0.01
}
fn adam_lr() -> f64 {
    1e-3
}
fn eps6() -> f64 {
    1e-6
}
fn eps8() -> f64 {
    1e-8
}
fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}

impl Default for RmsProp {
    fn default() -> RmsProp {
        RmsProp {
            stochastic_round: false,
            decay_rate: default_decay(),
            learning_rate: rmsprop_lr(),
            epsilon: eps6(),
            gradient_clip_norm: None,
            gradient_clip_value: None,
            param_clip_value: None,
            name: None,
            schedule: Schedule::default(),
        }
    }
}

impl Default for Adagrad {
    fn default() -> Adagrad {
        Adagrad {
            stochastic_round: false,
            learning_rate: adagrad_lr(),
            epsilon: eps6(),
            gradient_clip_norm: None,
            gradient_clip_value: None,
            param_clip_value: None,
            name: None,
        }
    }
}

impl Default for Adadelta {
    fn default() -> Adadelta {
        Adadelta {
            stochastic_round: false,
            decay: default_decay(),
            epsilon: eps6(),
            param_clip_value: None,
            name: None,
        }
    }
}

impl Default for Adam {
    fn default() -> Adam {
        Adam {
            stochastic_round: false,
            learning_rate: adam_lr(),
            beta_1: beta1(),
            beta_2: beta2(),
            epsilon: eps8(),
            gradient_clip_norm: None,
            gradient_clip_value: None,
            param_clip_value: None,
            name: None,
        }
    }
}

impl Adam {
    /// The learning rate fed at step `t` (1-based): `lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`.
    pub fn step_rate(&self, t: u64) -> f64 {
        let t = t.max(1).min(i32::MAX as u64) as i32;
        self.learning_rate * (1.0 - self.beta_2.powi(t)).sqrt() / (1.0 - self.beta_1.powi(t))
    }
}

/// One adaptive optimizer's per-parameter rule.
pub(super) trait Rule {
    /// The new parameter and state of `theta` (state `state`) from its clipped gradient
    /// `gr`, the global-norm scale `s` and the learning rate `lr`.
    fn step(
        &self,
        g: &mut Graph,
        gr: NodeId,
        s: Option<NodeId>,
        lr: NodeId,
        theta: NodeId,
        state: &[NodeId],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError>;
}

/// Applies `rule` to every parameter: value clipping, the global-norm scale and the
/// parameter clip around it.
#[allow(clippy::too_many_arguments)]
pub(super) fn update_each(
    g: &mut Graph,
    lr: NodeId,
    params: &[NodeId],
    grads: &[NodeId],
    states: &[Vec<NodeId>],
    clip_norm: Option<f64>,
    clip_value: Option<f64>,
    param_clip: Option<f64>,
    rule: &dyn Rule,
) -> Result<Vec<Update>, GraphError> {
    let dt = g.ty(lr).dtype;
    let scale = norm_scale(g, dt, grads, clip_norm)?;
    let mut out = Vec::with_capacity(params.len());
    for (i, (&theta, &gr)) in params.iter().zip(grads).enumerate() {
        let gr = clip(g, gr, clip_value)?;
        let (new_theta, state) = rule.step(g, gr, scale, lr, theta, &states[i])?;
        out.push(Update {
            param: clip(g, new_theta, param_clip)?,
            state,
        });
    }
    Ok(out)
}

/// `θ − (s·lr·g)/den`.
fn descend(
    g: &mut Graph,
    theta: NodeId,
    gr: NodeId,
    s: Option<NodeId>,
    lr: NodeId,
    den: NodeId,
) -> Result<NodeId, GraphError> {
    let sg = scaled(g, gr, s)?;
    let step = g.mul(sg, lr)?;
    let q = g.div(step, den)?;
    g.sub(theta, q)
}

impl Rule for RmsProp {
    fn step(
        &self,
        g: &mut Graph,
        gr: NodeId,
        s: Option<NodeId>,
        lr: NodeId,
        theta: NodeId,
        st: &[NodeId],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        let dt = g.ty(gr).dtype;
        let sq = g.mul(gr, gr)?;
        let r = blend(g, self.decay_rate, st[0], sq)?;
        let eps = g.scalar(dt, self.epsilon)?;
        let re = g.add_(r, eps)?;
        let root = g.sqrt(re)?;
        let den = g.add_(root, eps)?;
        Ok((descend(g, theta, gr, s, lr, den)?, vec![r]))
    }
}

impl Rule for Adagrad {
    fn step(
        &self,
        g: &mut Graph,
        gr: NodeId,
        s: Option<NodeId>,
        lr: NodeId,
        theta: NodeId,
        st: &[NodeId],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        let dt = g.ty(gr).dtype;
        let sq = g.mul(gr, gr)?;
        let r = g.add_(st[0], sq)?;
        let eps = g.scalar(dt, self.epsilon)?;
        let re = g.add_(r, eps)?;
        let den = g.sqrt(re)?;
        Ok((descend(g, theta, gr, s, lr, den)?, vec![r]))
    }
}

impl Rule for Adadelta {
    fn step(
        &self,
        g: &mut Graph,
        gr: NodeId,
        _s: Option<NodeId>,
        _lr: NodeId,
        theta: NodeId,
        st: &[NodeId],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        let dt = g.ty(gr).dtype;
        let eps = g.scalar(dt, self.epsilon)?;
        let sq = g.mul(gr, gr)?;
        let eg = blend(g, self.decay, st[0], sq)?;
        let num = g.add_(st[1], eps)?;
        let den = g.add_(eg, eps)?;
        let ratio = g.div(num, den)?;
        let root = g.sqrt(ratio)?;
        let delta = g.mul(root, gr)?;
        let d2 = g.mul(delta, delta)?;
        let ex = blend(g, self.decay, st[1], d2)?;
        Ok((g.sub(theta, delta)?, vec![eg, ex]))
    }
}

impl Rule for Adam {
    fn step(
        &self,
        g: &mut Graph,
        gr: NodeId,
        s: Option<NodeId>,
        lr: NodeId,
        theta: NodeId,
        st: &[NodeId],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        let dt = g.ty(gr).dtype;
        let m = blend(g, self.beta_1, st[0], gr)?;
        let sq = g.mul(gr, gr)?;
        let v = blend(g, self.beta_2, st[1], sq)?;
        let root = g.sqrt(v)?;
        let eps = g.scalar(dt, self.epsilon)?;
        let den = g.add_(root, eps)?;
        Ok((descend(g, theta, m, s, lr, den)?, vec![m, v]))
    }
}
