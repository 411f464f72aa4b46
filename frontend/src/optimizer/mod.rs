//! Optimizers and learning-rate schedules (neon's `neon/optimizers/optimizer.py`), with the
//! update expressed as graph ops so that one training step is one graph.
//!
//! Conventions (neon's): the gradient `g` is that of the batch-mean cost, i.e. neon's
//! batch-summed `dW` divided by the batch size. Each optimizer's learning rate is a scalar
//! graph input (`lr`, or `lr/<key>` for the entries of a [`MultiOptimizer`]) that the host
//! feeds every step ([`Optimizer::learning_rates`]), so a schedule — or Adam's per-step
//! bias correction — changes it without recompiling.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xenon_compiler::ir::{Graph, GraphError, NodeId};

mod adaptive;
mod clip;
mod gdm;
mod schedule;

pub use adaptive::{Adadelta, Adagrad, Adam, RmsProp};
pub use gdm::GradientDescentMomentum;
pub use schedule::{Change, Schedule, ScheduleError, StepConfig};

/// Name of the learning-rate input of a training-step graph (an f32/f64 scalar); the
/// entries of a [`MultiOptimizer`] other than `default` get `lr/<key>`.
pub const LR_INPUT: &str = "lr";

/// An optimizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Optimizer {
    GradientDescentMomentum(GradientDescentMomentum),
    #[serde(rename = "RMSProp")]
    RmsProp(RmsProp),
    Adagrad(Adagrad),
    Adadelta(Adadelta),
    Adam(Adam),
    MultiOptimizer(MultiOptimizer),
}

/// neon's `MultiOptimizer`: each parameter is updated by the optimizer its layer's **name**
/// maps to, else its layer's **class** (`Linear`, `Bias`, …), else `default` (required).
/// Each entry keeps its own learning rate, schedule and gradient-norm clipping (over the
/// parameters it updates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiOptimizer {
    pub optimizer_mapping: BTreeMap<String, Optimizer>,
    #[serde(default)]
    pub name: Option<String>,
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
    #[error("{0}: stochastic_round is only for 16-bit GPU storage and is not supported")]
    StochasticRound(&'static str),
    #[error("{optimizer}: {reason}")]
    Argument {
        optimizer: &'static str,
        reason: String,
    },
    #[error("MultiOptimizer: the optimizer_mapping has no 'default' entry (keys: {0})")]
    NoDefault(String),
    #[error("MultiOptimizer: entry '{0}' is itself a MultiOptimizer")]
    Nested(String),
    #[error(
        "MultiOptimizer: update each parameter with the optimizer `Optimizer::assign` gives it"
    )]
    MultiUpdate,
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl Optimizer {
    /// Every optimizer class name, in declaration order (for error messages).
    pub const NAMES: [&'static str; 6] = [
        "GradientDescentMomentum",
        "RMSProp",
        "Adagrad",
        "Adadelta",
        "Adam",
        "MultiOptimizer",
    ];

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

    /// The class name (neon's).
    pub fn class(&self) -> &'static str {
        match self {
            Optimizer::GradientDescentMomentum(_) => "GradientDescentMomentum",
            Optimizer::RmsProp(_) => "RMSProp",
            Optimizer::Adagrad(_) => "Adagrad",
            Optimizer::Adadelta(_) => "Adadelta",
            Optimizer::Adam(_) => "Adam",
            Optimizer::MultiOptimizer(_) => "MultiOptimizer",
        }
    }

    /// Checks the configuration (and every entry of a [`MultiOptimizer`]).
    pub fn validate(&self) -> Result<(), OptimizerError> {
        let positive = |optimizer: &'static str, what: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(OptimizerError::Argument {
                    optimizer,
                    reason: format!("{what} must be positive and finite, not {v}"),
                })
            }
        };
        let fraction = |optimizer: &'static str, what: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(OptimizerError::Argument {
                    optimizer,
                    reason: format!("{what} must be in [0, 1), not {v}"),
                })
            }
        };
        let rounding = |o: &'static str, on: bool| {
            if on {
                Err(OptimizerError::StochasticRound(o))
            } else {
                Ok(())
            }
        };
        let class = self.class();
        match self {
            Optimizer::GradientDescentMomentum(o) => {
                if o.nesterov && o.momentum_coef == 0.0 {
                    return Err(OptimizerError::NesterovWithoutMomentum);
                }
                rounding(class, o.stochastic_round)?;
                o.schedule.validate()?;
            }
            Optimizer::RmsProp(o) => {
                rounding(class, o.stochastic_round)?;
                positive(class, "epsilon", o.epsilon)?;
                fraction(class, "decay_rate", o.decay_rate)?;
                o.schedule.validate()?;
            }
            Optimizer::Adagrad(o) => {
                rounding(class, o.stochastic_round)?;
                positive(class, "epsilon", o.epsilon)?;
            }
            Optimizer::Adadelta(o) => {
                rounding(class, o.stochastic_round)?;
                positive(class, "epsilon", o.epsilon)?;
                fraction(class, "decay", o.decay)?;
            }
            Optimizer::Adam(o) => {
                rounding(class, o.stochastic_round)?;
                positive(class, "epsilon", o.epsilon)?;
                fraction(class, "beta_1", o.beta_1)?;
                fraction(class, "beta_2", o.beta_2)?;
            }
            Optimizer::MultiOptimizer(m) => {
                if !m.optimizer_mapping.contains_key("default") {
                    let keys: Vec<&str> = m.optimizer_mapping.keys().map(String::as_str).collect();
                    return Err(OptimizerError::NoDefault(keys.join(", ")));
                }
                for (k, o) in &m.optimizer_mapping {
                    if matches!(o, Optimizer::MultiOptimizer(_)) {
                        return Err(OptimizerError::Nested(k.clone()));
                    }
                    o.validate()?;
                }
            }
        }
        Ok(())
    }

    /// The learning-rate input name and the (single) optimizer that updates a parameter of
    /// layer `layer` of class `class`: the optimizer itself under [`LR_INPUT`], or for a
    /// [`MultiOptimizer`] the entry of the layer's name, else of its class, else
    /// `default` (under `lr/<key>`, `default` under `lr`). `None` only for a
    /// MultiOptimizer without `default` (which [`Optimizer::validate`] rejects).
    pub fn assign(&self, layer: &str, class: &str) -> Option<(String, &Optimizer)> {
        match self {
            Optimizer::MultiOptimizer(m) => {
                let key = [layer, class, "default"]
                    .into_iter()
                    .find(|k| m.optimizer_mapping.contains_key(*k))?;
                Some((lr_input(key), &m.optimizer_mapping[key]))
            }
            o => Some((LR_INPUT.to_string(), o)),
        }
    }

    /// Every learning-rate input with its value at `epoch` (0-based) and `step` (the
    /// 1-based count of minibatch updates, including the one about to run).
    pub fn learning_rates(&self, epoch: usize, step: u64) -> Vec<(String, f64)> {
        match self {
            Optimizer::MultiOptimizer(m) => m
                .optimizer_mapping
                .iter()
                .map(|(k, o)| (lr_input(k), o.learning_rate_at(epoch, step)))
                .collect(),
            o => vec![(LR_INPUT.to_string(), o.learning_rate_at(epoch, step))],
        }
    }

    /// The learning rate at `epoch` (for a [`MultiOptimizer`], its `default` entry's), at
    /// the first step.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        match self {
            Optimizer::MultiOptimizer(m) => m
                .optimizer_mapping
                .get("default")
                .map_or(0.0, |o| o.learning_rate(epoch)),
            o => o.learning_rate_at(epoch, 1),
        }
    }

    /// The value of a single optimizer's learning-rate input at `epoch` and `step`: the
    /// schedule's rate, Adam's bias-corrected rate, 0 for Adadelta (which has none).
    fn learning_rate_at(&self, epoch: usize, step: u64) -> f64 {
        match self {
            Optimizer::GradientDescentMomentum(o) => o.schedule.rate(o.learning_rate, epoch),
            Optimizer::RmsProp(o) => o.schedule.rate(o.learning_rate, epoch),
            Optimizer::Adagrad(o) => o.learning_rate,
            Optimizer::Adadelta(_) => 0.0,
            Optimizer::Adam(o) => o.step_rate(step),
            Optimizer::MultiOptimizer(_) => self.learning_rate(epoch),
        }
    }

    /// Names of a single optimizer's per-parameter state tensors (each the parameter's
    /// shape, zero at start); for a [`MultiOptimizer`] see [`Optimizer::assign`].
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            Optimizer::GradientDescentMomentum(o) => o.state_names(),
            Optimizer::RmsProp(_) | Optimizer::Adagrad(_) => &["accumulator"],
            Optimizer::Adadelta(_) => &["grad_avg", "step_avg"],
            Optimizer::Adam(_) => &["m", "v"],
            Optimizer::MultiOptimizer(_) => &[],
        }
    }

    /// Adds the update of every `params[i]` with gradient `grads[i]` and state `states[i]`
    /// (parameter nodes, parallel to [`Optimizer::state_names`]); `lr` is the scalar
    /// learning-rate node. A [`MultiOptimizer`] is an error: update each group of
    /// parameters with the entry [`Optimizer::assign`] gives it.
    pub fn update(
        &self,
        g: &mut Graph,
        lr: NodeId,
        params: &[NodeId],
        grads: &[NodeId],
        states: &[Vec<NodeId>],
    ) -> Result<Vec<Update>, OptimizerError> {
        self.validate()?;
        g.in_scope("optimizer", |g| {
            let each = |g: &mut Graph, norm, value, param, rule: &dyn adaptive::Rule| {
                adaptive::update_each(g, lr, params, grads, states, norm, value, param, rule)
            };
            Ok(match self {
                Optimizer::GradientDescentMomentum(o) => o.update(g, lr, params, grads, states)?,
                Optimizer::RmsProp(o) => each(
                    g,
                    o.gradient_clip_norm,
                    o.gradient_clip_value,
                    o.param_clip_value,
                    o,
                )?,
                Optimizer::Adagrad(o) => each(
                    g,
                    o.gradient_clip_norm,
                    o.gradient_clip_value,
                    o.param_clip_value,
                    o,
                )?,
                Optimizer::Adadelta(o) => each(g, None, None, o.param_clip_value, o)?,
                Optimizer::Adam(o) => each(
                    g,
                    o.gradient_clip_norm,
                    o.gradient_clip_value,
                    o.param_clip_value,
                    o,
                )?,
                Optimizer::MultiOptimizer(_) => return Err(OptimizerError::MultiUpdate),
            })
        })
    }
}

/// The learning-rate input of MultiOptimizer entry `key`.
fn lr_input(key: &str) -> String {
    if key == "default" {
        LR_INPUT.to_string()
    } else {
        format!("{LR_INPUT}/{key}")
    }
}
