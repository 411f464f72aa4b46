//! Optimizers and learning-rate schedules (neon's `neon/optimizers/optimizer.py`), with the
//! update expressed as graph ops so that one training step is one graph.
//!
//! Conventions (neon's): the gradient `g` is that of the batch-mean cost, i.e. neon's
//! batch-summed `dW` divided by the batch size. The learning rate is a graph input (`lr`),
//! so a schedule changes it between epochs without recompiling.

use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{Graph, GraphError, NodeId};

/// Name of the learning-rate input of a training-step graph (an f32/f64 scalar).
pub const LR_INPUT: &str = "lr";

/// A learning-rate schedule, queried with the 0-based epoch index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Schedule {
    /// neon's `Schedule(step_config, change)`: with no steps the rate is constant; with a
    /// list of epochs it is multiplied by `change` at each listed epoch reached
    /// (`lr0·change^#{s ≤ epoch}`); with an integer `n` it is `lr0·change^⌊epoch/n⌋`.
    Schedule {
        #[serde(default)]
        step_config: Option<StepConfig>,
        #[serde(default = "one")]
        change: f64,
    },
    /// `lr0·change^⌊epoch/step_config⌋`.
    PowerSchedule { step_config: usize, change: f64 },
    /// `lr0 / (1 + decay·epoch)`.
    ExpSchedule { decay: f64 },
}

/// The steps of a [`Schedule::Schedule`]: a list of epochs or a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a list of epochs (such as [10, 20]) or an epoch interval (an integer)"
)]
pub enum StepConfig {
    Epochs(Vec<usize>),
    Every(usize),
}

fn one() -> f64 {
    1.0
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule::Schedule {
            step_config: None,
            change: 1.0,
        }
    }
}

impl Schedule {
    /// Every schedule class name, in declaration order (for error messages).
    pub const NAMES: [&'static str; 3] = ["Schedule", "PowerSchedule", "ExpSchedule"];

    /// The learning rate for `epoch` given the base rate `lr0`.
    pub fn rate(&self, lr0: f64, epoch: usize) -> f64 {
        match self {
            Schedule::Schedule {
                step_config,
                change,
            } => match step_config {
                None => lr0,
                Some(StepConfig::Epochs(steps)) => {
                    lr0 * change.powi(steps.iter().filter(|&&s| s <= epoch).count() as i32)
                }
                Some(StepConfig::Every(n)) => lr0 * change.powi((epoch / (*n).max(1)) as i32),
            },
            Schedule::PowerSchedule {
                step_config,
                change,
            } => lr0 * change.powi((epoch / (*step_config).max(1)) as i32),
            Schedule::ExpSchedule { decay } => lr0 / (1.0 + decay * epoch as f64),
        }
    }
}

/// neon's `GradientDescentMomentum`.
///
/// Per parameter θ with velocity v and mean gradient g, learning rate `lr`, weight decay
/// `wd`, momentum `μ`:
/// - `g ← clip(g, ±gradient_clip_value)` when set;
/// - `s = clip_norm / max(‖g‖, clip_norm)` over all parameters when `gradient_clip_norm` is
///   set, else 1 (never scales up);
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

/// An optimizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Optimizer {
    GradientDescentMomentum(GradientDescentMomentum),
}

/// The nodes of one parameter's update.
#[derive(Clone, Debug)]
pub struct Update {
    /// The new parameter value.
    pub param: NodeId,
    /// The new optimizer state, parallel to [`Optimizer::state_names`].
    pub state: Vec<NodeId>,
}

/// Why an optimizer cannot be used as configured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizerError {
    #[error("GradientDescentMomentum: nesterov needs a nonzero momentum_coef")]
    NesterovWithoutMomentum,
    #[error(
        "GradientDescentMomentum: stochastic_round is only for 16-bit GPU storage and is not supported"
    )]
    StochasticRound,
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl Optimizer {
    /// Every optimizer class name, in declaration order (for error messages).
    pub const NAMES: [&'static str; 1] = ["GradientDescentMomentum"];

    /// The GDM optimizer with neon's defaults for everything but the two rates.
    pub fn gdm(learning_rate: f64, momentum_coef: f64) -> Optimizer {
        Optimizer::GradientDescentMomentum(GradientDescentMomentum {
            learning_rate,
            momentum_coef,
            stochastic_round: false,
            wdecay: 0.0,
            gradient_clip_norm: None,
            gradient_clip_value: None,
            param_clip_value: None,
            name: None,
            schedule: Schedule::default(),
            nesterov: false,
        })
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), OptimizerError> {
        let Optimizer::GradientDescentMomentum(o) = self;
        if o.nesterov && o.momentum_coef == 0.0 {
            return Err(OptimizerError::NesterovWithoutMomentum);
        }
        if o.stochastic_round {
            return Err(OptimizerError::StochasticRound);
        }
        Ok(())
    }

    /// The learning rate at `epoch`.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        let Optimizer::GradientDescentMomentum(o) = self;
        o.schedule.rate(o.learning_rate, epoch)
    }

    /// Names of the per-parameter state tensors (each the parameter's shape, zero at start).
    pub fn state_names(&self) -> &'static [&'static str] {
        let Optimizer::GradientDescentMomentum(o) = self;
        if o.momentum_coef == 0.0 {
            &[]
        } else {
            &["velocity"]
        }
    }

    /// Adds the update of every `params[i]` with gradient `grads[i]` and state `states[i]`
    /// (parameter nodes, parallel to [`Optimizer::state_names`]); `lr` is the scalar
    /// learning-rate node.
    pub fn update(
        &self,
        g: &mut Graph,
        lr: NodeId,
        params: &[NodeId],
        grads: &[NodeId],
        states: &[Vec<NodeId>],
    ) -> Result<Vec<Update>, OptimizerError> {
        self.validate()?;
        let Optimizer::GradientDescentMomentum(o) = self;
        g.in_scope("optimizer", |g| {
            let dt = g.ty(lr).dtype;
            let mut grads = grads.to_vec();
            if let Some(c) = o.gradient_clip_value {
                let hi = g.scalar(dt, c.abs())?;
                let lo = g.scalar(dt, -c.abs())?;
                for gr in &mut grads {
                    let t = g.min(*gr, hi)?;
                    *gr = g.max(t, lo)?;
                }
            }
            // Global-norm scale s (a scalar node), or None for 1.
            let scale = match o.gradient_clip_norm {
                None => None,
                Some(c) => {
                    let mut total = g.scalar(dt, 0.0)?;
                    for &gr in &grads {
                        let sq = g.mul(gr, gr)?;
                        let axes: Vec<usize> = (0..g.ty(sq).rank()).collect();
                        let s = g.sum(sq, &axes, false)?;
                        total = g.add_(total, s)?;
                    }
                    let norm = g.sqrt(total)?;
                    let cn = g.scalar(dt, c)?;
                    let den = g.max(norm, cn)?;
                    Some(g.div(cn, den)?)
                }
            };
            let mut out = Vec::with_capacity(params.len());
            for (i, (&theta, &gr)) in params.iter().zip(&grads).enumerate() {
                let sg = match scale {
                    Some(s) => g.mul(gr, s)?,
                    None => gr,
                };
                let (new_theta, state) = if o.momentum_coef == 0.0 {
                    // θ ← (1 − lr·wd)·θ − lr·s·g
                    let step = g.mul(lr, sg)?;
                    let decayed = if o.wdecay != 0.0 {
                        let wd = g.scalar(dt, o.wdecay)?;
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
                    let gp = if o.wdecay != 0.0 {
                        let wd = g.scalar(dt, o.wdecay)?;
                        let t = g.mul(theta, wd)?;
                        g.add_(sg, t)?
                    } else {
                        sg
                    };
                    let mu = g.scalar(dt, o.momentum_coef)?;
                    let mv = g.mul(v, mu)?;
                    let lg = g.mul(lr, gp)?;
                    let new_v = g.sub(mv, lg)?;
                    let new_theta = if o.nesterov {
                        let mnv = g.mul(new_v, mu)?;
                        let t = g.add_(theta, mnv)?;
                        g.sub(t, lg)?
                    } else {
                        g.add_(theta, new_v)?
                    };
                    (new_theta, vec![new_v])
                };
                let new_theta = match o.param_clip_value {
                    Some(c) => {
                        let hi = g.scalar(dt, c.abs())?;
                        let lo = g.scalar(dt, -c.abs())?;
                        let t = g.min(new_theta, hi)?;
                        g.max(t, lo)?
                    }
                    None => new_theta,
                };
                out.push(Update {
                    param: new_theta,
                    state,
                });
            }
            Ok(out)
        })
    }
}
