//! Costs (neon's `neon/transforms/cost.py`), lowered to IR primitives.
//!
//! Each cost is computed per sample (summed over the features) and the reported cost is the
//! mean over the batch, as neon's `GeneralizedCost` reports it. On sequences
//! (`[batch, T, features]`, see [`crate::layer::sequence`]) the cost is per time step and
//! averaged over the steps: the mean over neon's `batch·T` columns. Training differentiates
//! `scale ·` that mean: the same update neon makes, where the cost's derivative is summed
//! over the batch and the optimizer divides by the batch size.

use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{CompareOp, Graph, GraphError, NodeId};

/// `safelog(x) = log(max(x, e^-50))`, neon's guard against `log 0`.
pub const SAFELOG_FLOOR: f64 = 1.928_749_847_963_918e-22;

/// A cost function with neon's names, arguments and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Cost {
    /// `Σ_i −t·safelog(y) − (1−t)·safelog(1−y)`; `scale` (default 1) scales the gradient.
    CrossEntropyBinary {
        #[serde(default = "one")]
        scale: f64,
    },
    /// `Σ_i −t·safelog(y)·L` with `L = 1/ln 2` when `usebits` (default false), else 1;
    /// `scale` (default 1) scales the gradient. As in neon, `usebits` scales the gradient
    /// by `L` too.
    CrossEntropyMulti {
        #[serde(default = "one")]
        scale: f64,
        #[serde(default)]
        usebits: bool,
    },
    /// `Σ_i (y − t)² / 2`.
    #[serde(deserialize_with = "crate::model_file::no_arguments")]
    SumSquared,
    /// `mean_i (y − t)² / 2`.
    #[serde(deserialize_with = "crate::model_file::no_arguments")]
    MeanSquared,
    /// neon's `SmoothL1Loss`: with `s = sigma²` (`sigma` default 1) and `x = y − t`,
    /// `Σ_i 0.5·s·x²` where `|x| < 1/s`, else `|x| − 0.5/s` (Huber's loss; gradient
    /// `s·x` inside, `sign(x)` outside).
    SmoothL1Loss {
        #[serde(default = "one")]
        sigma: f64,
    },
    /// neon's `Multicost`: one cost per output of a model whose last layer is a `Tree`
    /// (`costs`, required, the trunk's first), all against the same targets. The reported
    /// cost is `Σ weights[i] · cost_i` (`weights` default all 1); training follows the
    /// gradient of `Σ cost_i` — the weights choose what is reported, as in neon, where
    /// `Tree`'s `alphas` weight the branches' errors instead. Evaluated as a metric on one
    /// output, it is its first cost.
    Multicost {
        costs: Vec<Cost>,
        #[serde(default)]
        weights: Option<Vec<f64>>,
    },
}

fn one() -> f64 {
    1.0
}

/// The lowered cost: the reported value and the value training differentiates.
#[derive(Clone, Copy, Debug)]
pub struct CostNodes {
    /// Per-sample cost, shape `[batch]`.
    pub per_sample: NodeId,
    /// Batch mean, shape `[]`: the reported cost.
    pub mean: NodeId,
    /// `scale ·` the batch mean of the cost without `safelog`'s floor: the value whose
    /// gradient training follows. On a sequence of `T` steps, `T ·` that: neon divides the
    /// gradient summed over a minibatch's `batch·T` columns by the batch size alone, so
    /// its update follows the cost summed over the steps (which matters to optimizers
    /// that are not scale-invariant, and to RMSProp's `ε` inside the square root).
    ///
    /// The floor guards the *reported* value against `log 0`; neon's gradients for the
    /// cross-entropies (`y − t`, its "shortcut") ignore it, and so do Xenon's: training
    /// differentiates `−t·log y − (1−t)·log(1−y)` and `−Σ t·log y`. After optimization
    /// (`xenon_compiler::opt`) the gradient with respect to the input of a Logistic output
    /// layer is exactly `(y − t)/N`, and through a Softmax output layer
    /// `(y·Σt − t)/N` (`(y − t)/N` for targets that sum to 1, as one-hot labels do; the
    /// compiler does not assume it). Both stay finite where `y` rounds to 0 or 1; the
    /// unoptimized gradients divide by `y` (and `1 − y`) and are NaN there. The squared
    /// errors have no floor.
    pub objective: NodeId,
}

impl Cost {
    /// The neon class name.
    pub fn name(&self) -> &'static str {
        match self {
            Cost::CrossEntropyBinary { .. } => "CrossEntropyBinary",
            Cost::CrossEntropyMulti { .. } => "CrossEntropyMulti",
            Cost::SumSquared => "SumSquared",
            Cost::MeanSquared => "MeanSquared",
            Cost::SmoothL1Loss { .. } => "SmoothL1Loss",
            Cost::Multicost { .. } => "Multicost",
        }
    }

    /// Every cost name, for error messages.
    pub const NAMES: [&'static str; 6] = [
        "CrossEntropyBinary",
        "CrossEntropyMulti",
        "SumSquared",
        "MeanSquared",
        "SmoothL1Loss",
        "Multicost",
    ];

    /// The cost with default arguments, by neon class name.
    pub fn by_name(name: &str) -> Option<Cost> {
        Some(match name {
            "CrossEntropyBinary" => Cost::CrossEntropyBinary { scale: 1.0 },
            "CrossEntropyMulti" => Cost::CrossEntropyMulti {
                scale: 1.0,
                usebits: false,
            },
            "SumSquared" => Cost::SumSquared,
            "MeanSquared" => Cost::MeanSquared,
            "SmoothL1Loss" => Cost::SmoothL1Loss { sigma: 1.0 },
            _ => return None,
        })
    }

    /// Adds the cost of outputs `y` against targets `t` (both `[batch, features…]`).
    pub fn lower(&self, g: &mut Graph, y: NodeId, t: NodeId) -> Result<CostNodes, GraphError> {
        if let Cost::Multicost { costs, .. } = self {
            return match costs.first() {
                Some(c) => c.lower(g, y, t),
                None => Err(GraphError::new(
                    xenon_compiler::ir::ErrorKind::BadAttribute,
                    "Multicost",
                    &[],
                    "Multicost has no costs",
                )),
            };
        }
        g.in_scope("cost", |g| {
            let dt = g.ty(y).dtype;
            let rank = g.ty(y).rank();
            // A sequence's cost is per time step (neon's columns), averaged over the steps.
            let sequence = crate::layer::sequence(&g.ty(y).shape);
            let steps = sequence.is_some();
            let features: Vec<usize> = if steps { vec![2] } else { (1..rank).collect() };
            let safelog = |g: &mut Graph, x: NodeId| -> Result<NodeId, GraphError> {
                let floor = g.scalar(dt, SAFELOG_FLOOR)?;
                let c = g.max(x, floor)?;
                g.log(c)
            };
            // `raw` is the elementwise cost that training differentiates, when it differs
            // from the reported one (see `CostNodes::objective`).
            let (elementwise, raw, scale) = match *self {
                Cost::CrossEntropyBinary { scale } => {
                    let one = g.scalar(dt, 1.0)?;
                    let one_y = g.sub(one, y)?;
                    let one_t = g.sub(one, t)?;
                    let ce = |g: &mut Graph, ly: NodeId, l1y: NodeId| {
                        let a = g.mul(t, ly)?;
                        let b = g.mul(one_t, l1y)?;
                        let s = g.add_(a, b)?;
                        g.neg(s)
                    };
                    let ly = safelog(g, y)?;
                    let l1y = safelog(g, one_y)?;
                    let reported = ce(g, ly, l1y)?;
                    let ly = g.log(y)?;
                    let l1y = g.log(one_y)?;
                    let raw = ce(g, ly, l1y)?;
                    (reported, Some(raw), scale)
                }
                Cost::CrossEntropyMulti { scale, usebits } => {
                    let l = if usebits {
                        -std::f64::consts::LOG2_E
                    } else {
                        -1.0
                    };
                    let ce = |g: &mut Graph, ly: NodeId| {
                        let a = g.mul(t, ly)?;
                        let l = g.scalar(dt, l)?;
                        g.mul(a, l)
                    };
                    let ly = safelog(g, y)?;
                    let reported = ce(g, ly)?;
                    let ly = g.log(y)?;
                    let raw = ce(g, ly)?;
                    (reported, Some(raw), scale)
                }
                Cost::SumSquared | Cost::MeanSquared => {
                    let d = g.sub(y, t)?;
                    let d2 = g.mul(d, d)?;
                    let half = g.scalar(dt, 0.5)?;
                    (g.mul(d2, half)?, None, 1.0)
                }
                Cost::SmoothL1Loss { sigma } => {
                    let s = sigma * sigma;
                    let x = g.sub(y, t)?;
                    let ax = g.abs(x)?;
                    let x2 = g.mul(x, x)?;
                    let hs = g.scalar(dt, 0.5 * s)?;
                    let inner = g.mul(x2, hs)?;
                    let h = g.scalar(dt, 0.5 / s)?;
                    let outer = g.sub(ax, h)?;
                    let bound = g.scalar(dt, 1.0 / s)?;
                    let small = g.compare(CompareOp::Lt, ax, bound)?;
                    (g.select(small, inner, outer)?, None, 1.0)
                }
                Cost::Multicost { .. } => unreachable!("handled above"),
            };
            let batch_mean = |g: &mut Graph, e: NodeId| -> Result<(NodeId, NodeId), GraphError> {
                let mut per_sample = if *self == Cost::MeanSquared {
                    g.mean(e, &features, false)?
                } else {
                    g.sum(e, &features, false)?
                };
                if steps {
                    per_sample = g.mean(per_sample, &[1], false)?;
                }
                Ok((per_sample, g.mean(per_sample, &[0], false)?))
            };
            let (per_sample, mean) = batch_mean(g, elementwise)?;
            let differentiated = match raw {
                Some(r) => batch_mean(g, r)?.1,
                None => mean,
            };
            // neon's optimizers divide the summed gradient by the batch size alone: on a
            // sequence the update follows the cost summed over the time steps.
            let scale = match sequence {
                Some((t, _)) => scale * t as f64,
                None => scale,
            };
            let objective = if scale == 1.0 {
                differentiated
            } else {
                let s = g.scalar(dt, scale)?;
                g.mul(differentiated, s)?
            };
            Ok(CostNodes {
                per_sample,
                mean,
                objective,
            })
        })
    }

    /// How many model outputs the cost takes: a `Multicost`'s cost count, else 1.
    pub fn outputs(&self) -> usize {
        match self {
            Cost::Multicost { costs, .. } => costs.len(),
            _ => 1,
        }
    }

    /// Why the cost's arguments are invalid, if they are: a `Multicost` without costs, with
    /// a nested `Multicost`, or with a weight count other than its cost count.
    pub fn check(&self) -> Result<(), String> {
        let Cost::Multicost { costs, weights } = self else {
            return Ok(());
        };
        if costs.is_empty() {
            return Err("Multicost has no costs".into());
        }
        if costs.iter().any(|c| matches!(c, Cost::Multicost { .. })) {
            return Err("a Multicost cannot hold another Multicost".into());
        }
        if let Some(w) = weights {
            if w.len() != costs.len() {
                return Err(format!(
                    "Multicost has {} weights for {} costs",
                    w.len(),
                    costs.len()
                ));
            }
            if let Some(x) = w.iter().find(|x| !x.is_finite()) {
                return Err(format!("Multicost has a non-finite weight {x}"));
            }
        }
        Ok(())
    }

    /// The cost of several outputs `ys` (one per cost of a `Multicost`; a single output
    /// otherwise), each against the targets `t`: reported `Σ wᵢ·costᵢ`, objective
    /// `Σ objectiveᵢ` (see [`Cost::Multicost`]). The caller checks the counts
    /// ([`Cost::outputs`], [`Cost::check`]).
    pub fn lower_all(
        &self,
        g: &mut Graph,
        ys: &[NodeId],
        t: NodeId,
    ) -> Result<CostNodes, GraphError> {
        let Cost::Multicost { costs, weights } = self else {
            return self.lower(g, ys[0], t);
        };
        let mut total: Option<CostNodes> = None;
        for (i, (c, &y)) in costs.iter().zip(ys).enumerate() {
            let n = g.in_scope(&format!("cost{i}"), |g| c.lower(g, y, t))?;
            let w = weights.as_ref().map_or(1.0, |w| w[i]);
            let dt = g.ty(n.mean).dtype;
            let weighted = |g: &mut Graph, x: NodeId| -> Result<NodeId, GraphError> {
                if w == 1.0 {
                    Ok(x)
                } else {
                    let s = g.scalar(dt, w)?;
                    g.mul(x, s)
                }
            };
            let per_sample = weighted(g, n.per_sample)?;
            let mean = weighted(g, n.mean)?;
            total = Some(match total {
                None => CostNodes {
                    per_sample,
                    mean,
                    objective: n.objective,
                },
                Some(acc) => CostNodes {
                    per_sample: g.add_(acc.per_sample, per_sample)?,
                    mean: g.add_(acc.mean, mean)?,
                    objective: g.add_(acc.objective, n.objective)?,
                },
            });
        }
        Ok(total.expect("checked: at least one cost"))
    }
}
