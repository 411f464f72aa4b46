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
}

/// neon's per-epoch progress bar: `Epoch 0 [Train |████| 63/63 batches, 0.26 cost, 1.38s]`,
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
            ProgressStyle::with_template("Epoch {prefix:<3} [Train |{bar:20}| {pos}/{len} batches, {msg} cost, {elapsed_precise}]")
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

/// Evaluates metrics on a data set after every epoch and keeps the results.
pub struct EvalCallback<'a> {
    data: &'a Dataset,
    batch_size: usize,
    metrics: Vec<Metric>,
    /// `(epoch, [(name, value)])` for every epoch so far.
    pub history: Vec<(usize, Vec<(String, f64)>)>,
    on_result: Option<Report<'a>>,
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
        }
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
    fn on_epoch_end(&mut self, model: &mut Model, stats: &EpochStats) -> Result<(), ModelError> {
        let values = model.eval(self.data, self.batch_size, &self.metrics)?;
        if let Some(f) = &mut self.on_result {
            f(stats, &values);
        }
        self.history.push((stats.epoch, values));
        Ok(())
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
}

impl CheckpointCallback {
    /// Saves to `path` every `every` epochs (`0`: never).
    pub fn new(path: impl Into<std::path::PathBuf>, every: usize) -> CheckpointCallback {
        CheckpointCallback {
            path: path.into(),
            every,
        }
    }
}

impl Callback for CheckpointCallback {
    fn on_epoch_end(&mut self, model: &mut Model, stats: &EpochStats) -> Result<(), ModelError> {
        if self.every > 0 && (stats.epoch + 1).is_multiple_of(self.every) {
            model.save(&self.path)?;
        }
        Ok(())
    }
}
