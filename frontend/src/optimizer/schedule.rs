//! Learning-rate schedules (neon's `Schedule` family), queried with the 0-based epoch index.

use serde::{Deserialize, Serialize};

/// A learning-rate schedule: the rate for an epoch given the base rate `lr0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Schedule {
    /// neon's `Schedule(step_config, change)`: with no steps the rate is constant; with a
    /// list of epochs it is multiplied by `change` at each listed epoch reached
    /// (`lr0·change^#{s ≤ epoch}`); with an integer `n` it is `lr0·change^⌊epoch/n⌋`; with
    /// a list of epochs and a list of rates it is a [`Schedule::StepSchedule`].
    Schedule {
        #[serde(default)]
        step_config: Option<StepConfig>,
        #[serde(default)]
        change: Change,
    },
    /// neon's `StepSchedule(step_config, change)`: at epoch `step_config[i]` the rate
    /// becomes `change[i]` and stays so (`lr0` before the first).
    StepSchedule {
        step_config: Vec<usize>,
        change: Vec<f64>,
    },
    /// `lr0·change^⌊epoch/step_config⌋`.
    PowerSchedule { step_config: usize, change: f64 },
    /// `lr0 / (1 + decay·epoch)`.
    ExpSchedule { decay: f64 },
    /// `lr0·(1 − epoch/total_epochs)^power`, 0 from `total_epochs` on. (neon's code
    /// divides with `//`, which keeps `lr0` until `total_epochs`; its docstring states the
    /// formula used here.)
    PolySchedule { total_epochs: usize, power: f64 },
    /// neon's `ShiftSchedule(interval, shift_size = 1)`: `lr0 / 2^(shift_size·⌊epoch/interval⌋)`.
    ShiftSchedule {
        interval: usize,
        #[serde(default = "one_usize")]
        shift_size: usize,
    },
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

/// The `change` of a [`Schedule::Schedule`]: a factor, or (with a list of epochs) the
/// rates themselves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a factor (such as 0.1) or a list of learning rates"
)]
pub enum Change {
    Factor(f64),
    Rates(Vec<f64>),
}

impl Default for Change {
    fn default() -> Change {
        Change::Factor(1.0)
    }
}

fn one_usize() -> usize {
    1
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule::Schedule {
            step_config: None,
            change: Change::default(),
        }
    }
}

/// Why a schedule cannot be used as configured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{schedule}: {reason}")]
pub struct ScheduleError {
    pub schedule: &'static str,
    pub reason: String,
}

impl Schedule {
    /// Every schedule class name, in declaration order (for error messages).
    pub const NAMES: [&'static str; 6] = [
        "Schedule",
        "StepSchedule",
        "PowerSchedule",
        "ExpSchedule",
        "PolySchedule",
        "ShiftSchedule",
    ];

    /// Checks the configuration: step lists and rate lists of the same length, epochs in
    /// increasing order, nonzero periods.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let err = |schedule, reason: String| Err(ScheduleError { schedule, reason });
        let increasing = |s: &[usize]| s.windows(2).all(|w| w[0] < w[1]);
        match self {
            Schedule::Schedule {
                step_config,
                change,
            } => match (step_config, change) {
                (Some(StepConfig::Every(0)), _) => err("Schedule", "step_config is 0".into()),
                (Some(StepConfig::Epochs(s)), _) if !increasing(s) => {
                    err("Schedule", format!("step_config {s:?} is not increasing"))
                }
                (Some(StepConfig::Epochs(s)), Change::Rates(r)) if s.len() != r.len() => err(
                    "Schedule",
                    format!(
                        "{} epochs in step_config but {} rates in change",
                        s.len(),
                        r.len()
                    ),
                ),
                (Some(StepConfig::Every(_)) | None, Change::Rates(_)) => err(
                    "Schedule",
                    "a list of rates in change needs a list of epochs in step_config".into(),
                ),
                _ => Ok(()),
            },
            Schedule::StepSchedule {
                step_config,
                change,
            } => {
                if step_config.len() != change.len() {
                    err(
                        "StepSchedule",
                        format!(
                            "{} epochs in step_config but {} rates in change",
                            step_config.len(),
                            change.len()
                        ),
                    )
                } else if !increasing(step_config) {
                    err(
                        "StepSchedule",
                        format!("step_config {step_config:?} is not increasing"),
                    )
                } else {
                    Ok(())
                }
            }
            Schedule::PowerSchedule { step_config: 0, .. } => {
                err("PowerSchedule", "step_config is 0".into())
            }
            Schedule::PolySchedule {
                total_epochs: 0, ..
            } => err("PolySchedule", "total_epochs is 0".into()),
            Schedule::ShiftSchedule { interval: 0, .. } => {
                err("ShiftSchedule", "interval is 0".into())
            }
            _ => Ok(()),
        }
    }

    /// The learning rate for `epoch` (0-based) given the base rate `lr0`.
    pub fn rate(&self, lr0: f64, epoch: usize) -> f64 {
        let sticky = |steps: &[usize], rates: &[f64]| {
            steps
                .iter()
                .zip(rates)
                .rfind(|(s, _)| **s <= epoch)
                .map_or(lr0, |(_, r)| *r)
        };
        match self {
            Schedule::Schedule {
                step_config,
                change,
            } => match (step_config, change) {
                (None, _) => lr0,
                (Some(StepConfig::Epochs(s)), Change::Rates(r)) => sticky(s, r),
                (Some(StepConfig::Epochs(s)), Change::Factor(c)) => {
                    lr0 * c.powi(s.iter().filter(|&&s| s <= epoch).count() as i32)
                }
                (Some(StepConfig::Every(n)), Change::Factor(c)) => {
                    lr0 * c.powi((epoch / (*n).max(1)) as i32)
                }
                (Some(StepConfig::Every(_)), Change::Rates(_)) => lr0,
            },
            Schedule::StepSchedule {
                step_config,
                change,
            } => sticky(step_config, change),
            Schedule::PowerSchedule {
                step_config,
                change,
            } => lr0 * change.powi((epoch / (*step_config).max(1)) as i32),
            Schedule::ExpSchedule { decay } => lr0 / (1.0 + decay * epoch as f64),
            Schedule::PolySchedule {
                total_epochs,
                power,
            } => {
                let left = 1.0 - epoch as f64 / (*total_epochs).max(1) as f64;
                lr0 * left.max(0.0).powf(*power)
            }
            Schedule::ShiftSchedule {
                interval,
                shift_size,
            } => {
                let shifts = shift_size * (epoch / (*interval).max(1));
                lr0 * 0.5f64.powi(shifts.min(2000) as i32)
            }
        }
    }
}
