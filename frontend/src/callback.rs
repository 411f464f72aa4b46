//! Callbacks: hooks into the training loop (neon's `neon/callbacks`), and the built-in
//! progress bar and per-epoch evaluation.

use crate::data::Dataset;
use crate::metric::Metric;
use crate::model::{EpochStats, Model, ModelError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Hooks called by [`Model::fit`]. Every method has an empty default.
pub trait Callback {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _model: &mut Model, _epochs: usize) -> Result<(), ModelError> {
        Ok(())
    }
    /// At the start of each epoch, with its number of minibatches.
    fn on_epoch_begin(&mut self, _epoch: usize, _batches: usize) {}
    /// After each minibatch, with its cost.
    fn on_minibatch_end(&mut self, _epoch: usize, _batch: usize, _cost: f64) {}
    /// After each epoch; may evaluate the model.
    fn on_epoch_end(&mut self, _model: &mut Model, _stats: &EpochStats) -> Result<(), ModelError> {
        Ok(())
    }
    /// After the last epoch.
    fn on_train_end(&mut self, _model: &mut Model) -> Result<(), ModelError> {
        Ok(())
    }
    /// Asked after each epoch's [`Callback::on_epoch_end`]: `true` ends training there
    /// (early stopping), as if it were the last epoch.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// neon's per-epoch progress bar: epoch, batches done, running mean cost, time taken and
/// time left in the epoch (`Epoch 0 [Train |███▌    | 40/63 batches, 0.26 cost, 00:00:01, 1s left]`),
/// drawn on stderr, and only when both stdout and stderr are terminals (so it stays out of
/// pipes, logs and `--json` output).
pub struct ProgressBarCallback {
    bar: Option<ProgressBar>,
    enabled: bool,
    cost_sum: f64,
}

impl ProgressBarCallback {
    /// A progress bar, shown when `enabled` and both stdout and stderr are terminals.
    pub fn new(enabled: bool) -> ProgressBarCallback {
        ProgressBarCallback {
            bar: None,
            enabled: enabled && std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
            cost_sum: 0.0,
        }
    }
}

impl Callback for ProgressBarCallback {
    fn on_epoch_begin(&mut self, epoch: usize, batches: usize) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("Epoch {prefix:<3} [Train |{bar:20}| {pos}/{len} batches, {msg} cost, {elapsed_precise}, {eta} left]")
                .expect("valid template")
                .progress_chars("█▉▊▋▌▍▎▏ "),
        );
        bar.set_prefix(epoch.to_string());
        self.cost_sum = 0.0;
        self.bar = Some(bar);
    }

    fn on_minibatch_end(&mut self, _epoch: usize, batch: usize, cost: f64) {
        if let Some(bar) = &self.bar {
            self.cost_sum += cost;
            bar.set_message(format!("{:.2}", self.cost_sum / (batch + 1) as f64));
            bar.inc(1);
        }
    }

    fn on_epoch_end(&mut self, _model: &mut Model, _stats: &EpochStats) -> Result<(), ModelError> {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        Ok(())
    }
}

/// Called with each epoch's statistics and metric values.
type Report<'a> = Box<dyn FnMut(&EpochStats, &[(String, f64)]) + 'a>;

/// Evaluates metrics on a data set after every epoch (or every `n`, and after the last)
/// and keeps the results; optionally stops training early and saves the best model, both
/// judged by the first metric (smaller is better, except accuracy, precision and recall).
pub struct EvalCallback<'a> {
    data: &'a Dataset,
    batch_size: usize,
    metrics: Vec<Metric>,
    /// `(epoch, [(name, value)])` for every evaluation so far.
    pub history: Vec<(usize, Vec<(String, f64)>)>,
    on_result: Option<Report<'a>>,
    every: usize,
    /// The index of the last epoch of the current `fit`.
    last_epoch: usize,
    patience: Option<usize>,
    save_best: Option<std::path::PathBuf>,
    /// The best value of the first metric so far, and evaluations since it.
    best: Option<f64>,
    since_best: usize,
    stop: bool,
}

impl<'a> EvalCallback<'a> {
    /// Evaluates `metrics` on `data` in batches of `batch_size` after each epoch.
    pub fn new(data: &'a Dataset, batch_size: usize, metrics: Vec<Metric>) -> EvalCallback<'a> {
        EvalCallback {
            data,
            batch_size,
            metrics,
            history: Vec::new(),
            on_result: None,
            every: 1,
            last_epoch: usize::MAX,
            patience: None,
            save_best: None,
            best: None,
            since_best: 0,
            stop: false,
        }
    }

    /// Evaluates only every `n` epochs (neon's `-eval N`; counted from the first epoch ever
    /// trained) and after the last epoch of each `fit`. `0` is taken as 1.
    pub fn every(mut self, n: usize) -> EvalCallback<'a> {
        self.every = n.max(1);
        self
    }

    /// Stops training when `patience` evaluations in a row did not improve on the best
    /// value of the first metric.
    pub fn early_stopping(mut self, patience: usize) -> EvalCallback<'a> {
        self.patience = Some(patience);
        self
    }

    /// Saves the model to `path` ([`Model::save`], atomic) after each evaluation that
    /// improves on the best value of the first metric.
    pub fn save_best(mut self, path: impl Into<std::path::PathBuf>) -> EvalCallback<'a> {
        self.save_best = Some(path.into());
        self
    }

    /// The epoch and first-metric value of the best evaluation so far.
    pub fn best(&self) -> Option<(usize, f64)> {
        let first = |v: &[(String, f64)]| v.first().map(|m| m.1);
        let best = self.best?;
        self.history
            .iter()
            .find(|(_, v)| first(v) == Some(best))
            .map(|(e, _)| (*e, best))
    }

    /// Also calls `f` with each epoch's statistics and metric values (for printing).
    pub fn with_report(
        mut self,
        f: impl FnMut(&EpochStats, &[(String, f64)]) + 'a,
    ) -> EvalCallback<'a> {
        self.on_result = Some(Box::new(f));
        self
    }
}

impl Callback for EvalCallback<'_> {
    fn on_train_begin(&mut self, model: &mut Model, epochs: usize) -> Result<(), ModelError> {
        self.last_epoch = (model.epoch_index() + epochs).saturating_sub(1);
        self.stop = false;
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, stats: &EpochStats) -> Result<(), ModelError> {
        let due = (stats.epoch + 1).is_multiple_of(self.every) || stats.epoch >= self.last_epoch;
        if !due {
            return Ok(());
        }
        let values = model.eval(self.data, self.batch_size, &self.metrics)?;
        if let Some(f) = &mut self.on_result {
            f(stats, &values);
        }
        if let Some((name, v)) = values.first().cloned() {
            let better = match self.best {
                None => v.is_finite(),
                Some(b) if Metric::higher_is_better(&name) => v > b,
                Some(b) => v < b,
            };
            if better {
                self.best = Some(v);
                self.since_best = 0;
                if let Some(path) = &self.save_best {
                    model.save(path)?;
                }
            } else {
                self.since_best += 1;
                self.stop = self.patience.is_some_and(|p| self.since_best >= p);
            }
        }
        self.history.push((stats.epoch, values));
        Ok(())
    }

    fn stop_requested(&self) -> bool {
        self.stop
    }
}

/// neon's `--serialize N`: every `every` epochs (counted from the first epoch ever trained,
/// so resumed runs keep the rhythm), saves the model to `path` with [`Model::save`] — the
/// weights, the optimizer state and where training stands, which
/// [`Model::resume_batches`] and [`Model::fit`] continue from exactly. Each save is atomic
/// (a temporary file renamed over the old one): a crash mid-save leaves the previous
/// checkpoint intact.
pub struct CheckpointCallback {
    path: std::path::PathBuf,
    every: usize,
    keep: usize,
    /// The numbered copies written, oldest first.
    copies: std::collections::VecDeque<std::path::PathBuf>,
}

impl CheckpointCallback {
    /// Saves to `path` every `every` epochs (`0`: never).
    pub fn new(path: impl Into<std::path::PathBuf>, every: usize) -> CheckpointCallback {
        CheckpointCallback {
            path: path.into(),
            every,
            keep: 0,
            copies: Default::default(),
        }
    }

    /// Also keeps the last `k` checkpoints as `<path>.<epoch>` (neon's `-H K`), deleting
    /// older ones that this callback wrote; `0` (the default) keeps only `path`.
    pub fn keep(mut self, k: usize) -> CheckpointCallback {
        self.keep = k;
        self
    }
}

impl Callback for CheckpointCallback {
    fn on_epoch_end(&mut self, model: &mut Model, stats: &EpochStats) -> Result<(), ModelError> {
        if self.every > 0 && (stats.epoch + 1).is_multiple_of(self.every) {
            model.save(&self.path)?;
            if self.keep > 0 {
                let mut name = self.path.clone().into_os_string();
                name.push(format!(".{}", stats.epoch));
                let copy = std::path::PathBuf::from(name);
                model.save(&copy)?;
                self.copies.push_back(copy);
                while self.copies.len() > self.keep {
                    if let Some(old) = self.copies.pop_front() {
                        // Already gone is fine: only the newest `keep` must remain.
                        let _ = std::fs::remove_file(old);
                    }
                }
            }
        }
        Ok(())
    }
}
