//! Metrics (neon's `neon/transforms/cost.py` metric classes), lowered to IR primitives.
//!
//! A metric adds per-sample statistics to an inference graph: a `[batch, width]` node. The
//! evaluation loop sums the statistics' columns over every sample of the data set (the
//! wrap-around filler of the last batch excluded) and [`Metric::finish`] turns the sums
//! into the reported values. For per-sample metrics this equals neon's sample-weighted
//! average of per-batch values. `PrecisionRecall` is computed from whole-data-set counts
//! (neon averages per-batch ratios, which depends on the batch size).

use crate::cost::{Cost, SAFELOG_FLOOR};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{CompareOp, DType, ErrorKind, Graph, GraphError, NodeId};

/// A metric with neon's names, arguments and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config")]
pub enum Metric {
    /// Fraction of samples whose arg-max output differs from the arg-max target:
    /// `Top1Misclass`. `steps` (default 1) is accepted for compatibility.
    Misclassification {
        #[serde(default = "one")]
        steps: usize,
    },
    /// `LogLoss`, `Top1Misclass`, `Top{k}Misclass`, tie-aware as in neon: with `p` the
    /// output for the true class, `slots = k − #(y > p)`, `eq = #(y = p)`, the top-k error
    /// is `1 − [slots > 0]·([eq ≤ slots]·(1 − slots/eq) + slots/eq)` and the top-1 error
    /// `1 − [max y = p]/eq`.
    TopKMisclassification { k: usize },
    /// Fraction of samples whose arg-max output equals the arg-max target: `Accuracy`.
    Accuracy,
    /// Mean of `−safelog(Σ y·t)`: `LogLoss`.
    LogLoss,
    /// `Precision` and `Recall` averaged over classes: per class `TP/(predicted + ε)` and
    /// `TP/(actual + ε)`. With `binarize` (default false) the outputs are one-hot encoded
    /// at their arg-max first; otherwise the outputs count fractionally. `epsilon` defaults
    /// to 1e-6.
    PrecisionRecall {
        num_classes: usize,
        #[serde(default)]
        binarize: bool,
        #[serde(default = "eps")]
        epsilon: f64,
    },
    /// The mean per-sample value of a cost on the data set (neon's validation loss): the
    /// metric for regression and autoencoders. Reported under the cost's name, e.g.
    /// `MeanSquared`.
    Cost(Cost),
}

fn one() -> usize {
    1
}
fn eps() -> f64 {
    1e-6
}

impl Metric {
    /// The names of the reported values, in order.
    /// Whether a larger value of the metric named `name` (one of [`Metric::names`]) is
    /// better: accuracy, precision and recall; errors and losses are better smaller.
    pub fn higher_is_better(name: &str) -> bool {
        matches!(name, "Accuracy" | "Precision" | "Recall")
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            Metric::Misclassification { .. } => vec!["Top1Misclass".into()],
            Metric::TopKMisclassification { k } => {
                vec![
                    "LogLoss".into(),
                    "Top1Misclass".into(),
                    format!("Top{k}Misclass"),
                ]
            }
            Metric::Accuracy => vec!["Accuracy".into()],
            Metric::LogLoss => vec!["LogLoss".into()],
            Metric::PrecisionRecall { .. } => vec!["Precision".into(), "Recall".into()],
            Metric::Cost(c) => vec![c.name().into()],
        }
    }

    /// Adds the per-sample statistics of outputs `y` against one-hot targets `t` (both
    /// `[batch, classes]`), as one `[batch, width]` node.
    ///
    /// On sequences (`[batch, T, classes]`, see [`crate::layer::sequence`]) each time step
    /// is one prediction, as in neon, where a minibatch's columns are its `batch·T` steps:
    /// the statistics are averaged over the steps of each sample.
    pub fn lower(&self, g: &mut Graph, y: NodeId, t: NodeId) -> Result<NodeId, GraphError> {
        let shape = g.ty(y).shape.clone();
        if let (Some((steps, c)), false) = (
            crate::layer::sequence(&shape),
            matches!(self, Metric::Cost(_)),
        ) {
            let b = shape[0];
            let (ys, ts) = g.in_scope("metric", |g| {
                Ok::<_, GraphError>((
                    g.reshape(y, &[b * steps, c])?,
                    g.reshape(t, &[b * steps, c])?,
                ))
            })?;
            let per_step = self.lower(g, ys, ts)?;
            return g.in_scope("metric", |g| {
                let w = g.ty(per_step).shape[1];
                let s = g.reshape(per_step, &[b, steps, w])?;
                g.mean(s, &[1], false)
            });
        }
        g.in_scope("metric", |g| {
            let dt = g.ty(y).dtype;
            let b = g.ty(y).shape[0];
            let column = |g: &mut Graph, v: NodeId| g.reshape(v, &[b, 1]);
            let argmax_cmp = |g: &mut Graph, f: CompareOp| -> Result<NodeId, GraphError> {
                let ay = g.argmax(y, 1, false)?;
                let at = g.argmax(t, 1, false)?;
                let m = g.compare(f, ay, at)?;
                let m = g.cast(m, dt)?;
                column(g, m)
            };
            let logloss = |g: &mut Graph| -> Result<NodeId, GraphError> {
                let yt = g.mul(y, t)?;
                let p = g.sum(yt, &[1], false)?;
                let floor = g.scalar(dt, SAFELOG_FLOOR)?;
                let p = g.max(p, floor)?;
                let l = g.log(p)?;
                let l = g.neg(l)?;
                column(g, l)
            };
            match *self {
                Metric::Cost(ref c) => {
                    let per_sample = c.lower(g, y, t)?.per_sample;
                    column(g, per_sample)
                }
                Metric::Misclassification { .. } => argmax_cmp(g, CompareOp::Ne),
                Metric::Accuracy => argmax_cmp(g, CompareOp::Eq),
                Metric::LogLoss => logloss(g),
                Metric::TopKMisclassification { k } => {
                    let ll = logloss(g)?;
                    let yt = g.mul(y, t)?;
                    let p = g.sum(yt, &[1], true)?;
                    let gt = g.compare(CompareOp::Gt, y, p)?;
                    let ngt = g.sum(gt, &[1], true)?;
                    let eq = g.compare(CompareOp::Eq, y, p)?;
                    let neq = g.sum(eq, &[1], true)?;
                    let kk = g.scalar(dt, k as f64)?;
                    let slots = g.sub(kk, ngt)?;
                    let zero = g.scalar(dt, 0.0)?;
                    let one = g.scalar(dt, 1.0)?;
                    let has_slot = g.compare(CompareOp::Gt, slots, zero)?;
                    let fits = g.compare(CompareOp::Le, neq, slots)?;
                    let frac = g.div(slots, neq)?;
                    let rest = g.sub(one, frac)?;
                    let a = g.mul(fits, rest)?;
                    let a = g.add_(a, frac)?;
                    let a = g.mul(has_slot, a)?;
                    let topk = g.sub(one, a)?;
                    let ymax = g.reduce_max(y, &[1], true)?;
                    let is_max = g.compare(CompareOp::Eq, ymax, p)?;
                    let r = g.div(is_max, neq)?;
                    let top1 = g.sub(one, r)?;
                    g.concat(&[ll, top1, topk], 1)
                }
                Metric::PrecisionRecall {
                    binarize,
                    num_classes,
                    ..
                } => {
                    let c = g.ty(y).shape[1];
                    if c != num_classes {
                        let types = [g.ty(y).clone()];
                        return Err(GraphError::new(
                            ErrorKind::ShapeMismatch,
                            "PrecisionRecall",
                            &types,
                            format!(
                                "num_classes is {num_classes} but the outputs have {c} classes"
                            ),
                        ));
                    }
                    let pred = if binarize {
                        let am = g.argmax(y, 1, true)?;
                        let iota =
                            g.constant(DType::I32, &[1, c], (0..c).map(|i| i as f64).collect())?;
                        let hot = g.compare(CompareOp::Eq, am, iota)?;
                        g.cast(hot, dt)?
                    } else {
                        y
                    };
                    let tp = g.mul(pred, t)?;
                    g.concat(&[tp, pred, t], 1)
                }
            }
        })
    }

    /// The reported values from the column sums of the statistics over `n` samples.
    pub fn finish(&self, sums: &[f64], n: usize) -> Vec<f64> {
        let n = n.max(1) as f64;
        match *self {
            Metric::PrecisionRecall { epsilon, .. } => {
                let c = sums.len() / 3;
                let (tp, rest) = sums.split_at(c);
                let (pred, actual) = rest.split_at(c);
                let precision = (0..c).map(|i| tp[i] / (pred[i] + epsilon)).sum::<f64>() / c as f64;
                let recall = (0..c).map(|i| tp[i] / (actual[i] + epsilon)).sum::<f64>() / c as f64;
                vec![precision, recall]
            }
            _ => sums.iter().map(|s| s / n).collect(),
        }
    }
}
