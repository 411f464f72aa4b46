//! What the subcommands share: loading model files and data, choosing a backend.

use anyhow::bail;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xenon_compiler::backend::Isa;
use xenon_compiler::backend::{Backend, BackendOptions};
use xenon_compiler::pipeline::{Pipeline, Stage};
use xenon_compiler::verify::Verify;
use xenon_frontend::cost::Cost;
use xenon_frontend::data::DataSource;
use xenon_frontend::layer::Sequential;
use xenon_frontend::metric::Metric;
use xenon_frontend::model::{Model, WeightsOptions};
use xenon_frontend::model_file::{ModelFile, ModelFileError, TargetKind};

/// Loads a model file, naming it in the error.
pub fn load_model_file(path: &Path) -> anyhow::Result<ModelFile> {
    ModelFile::load(path).map_err(|e| match e {
        // It names the file already.
        e @ ModelFileError::Io { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("cannot load model file {}", path.display())),
    })
}

/// The data a model file names (`dataset:`; MNIST when it names none), with the command
/// line's `--data` (an MNIST directory, a directory for the file's relative array paths, or
/// one `.npz` archive); relative paths in the file are taken from its directory.
pub fn data_source(
    file: &ModelFile,
    model_path: &Path,
    data: Option<&PathBuf>,
) -> anyhow::Result<DataSource> {
    let base = model_path.parent().unwrap_or(Path::new(""));
    Ok(DataSource::new(
        file.dataset.as_ref(),
        data.map(PathBuf::as_path),
        base,
    )?)
}

/// The model a model file describes for the data it names ([`new_model`]: its
/// parameters initialized from `seed`, or, with `None`, without values, for a command
/// that describes the model or loads its weights), with the shape of one example and the
/// width of the targets (the model's output width).
pub fn data_model(
    file: &ModelFile,
    model_path: &Path,
    data: Option<&PathBuf>,
    seed: Option<u64>,
) -> anyhow::Result<(Model, Vec<usize>, usize)> {
    let source = data_source(file, model_path, data)?;
    let (shape, width) = source.shapes()?;
    let model = new_model(model_layers(file, &source)?, &shape, &source, seed)?;
    Ok((model, shape, width))
}

/// A new model of `layers` for examples of `input_shape` from `source`, its parameters
/// initialized from `seed` ([`Model::new`]) or, with `None`, without values
/// ([`Model::uninitialized`]: nothing of the parameters' size is allocated): fed the token
/// ids themselves when the data's inputs are one-hot token ids
/// ([`DataSource::token_ids`], [`Model::with_token_ids`]).
pub fn new_model(
    layers: Sequential,
    input_shape: &[usize],
    source: &DataSource,
    seed: Option<u64>,
) -> anyhow::Result<Model> {
    let model = match seed {
        Some(seed) => Model::new(layers, input_shape, seed)?,
        None => Model::uninitialized(layers, input_shape, 0)?,
    };
    Ok(match source.token_ids() {
        true => model.with_token_ids()?,
        false => model,
    })
}

/// `--weights FILE [--ignore-description]`: the weights a command loads into its model.
#[derive(clap::Args, Debug)]
pub struct WeightsArg {
    /// The weights (safetensors, from `xenon train --save`).
    #[arg(long = "weights")]
    pub path: PathBuf,
    /// Load the weights even when the model they were saved from (described in the file)
    /// differs from the model file; their tensors' names and shapes must still fit.
    #[arg(long)]
    pub ignore_description: bool,
}

impl WeightsArg {
    /// Loads the weights into `model`, naming the file in the error.
    pub fn load_into(&self, model: &mut Model) -> anyhow::Result<()> {
        let opts = WeightsOptions {
            ignore_description: self.ignore_description,
        };
        Ok(model.load_weights_with(&self.path, &opts)?)
    }
}

/// The model file's layers as its data feeds them: a first `MergeMultistream` takes the
/// data set's input streams ([`DataSource::feed`]).
pub fn model_layers(file: &ModelFile, source: &DataSource) -> anyhow::Result<Sequential> {
    Ok(source.feed(&file.layers)?)
}

/// The metric training reports and `--early-stop`/`--save-best` judge: misclassification
/// for class targets, the model's cost for real-valued targets and autoencoders, the
/// cross-entropy per token in nats (`LogLoss`) for text.
pub fn eval_metric(source: &DataSource, cost: &Cost) -> Metric {
    if let DataSource::Text { .. } = source {
        // The cross-entropy per token in nats, whatever units the cost reports in.
        return Metric::LogLoss;
    }
    match source.targets() {
        TargetKind::Classes => Metric::Misclassification { steps: 1 },
        TargetKind::Real | TargetKind::Inputs => Metric::Cost(cost.clone()),
    }
}

/// The most epochs a run may train (`--epochs` or the file's `epochs`).
pub const MAX_EPOCHS: usize = 1_000_000;
/// The largest batch size (`--batch` or the file's `batchsize`).
pub const MAX_BATCH: usize = 1 << 20;
/// The most timed repetitions of `xenon bench --reps`.
pub const MAX_REPS: usize = 1_000_000;
/// The most worker threads `--threads` accepts (more than the machine's cores are capped
/// to its cores, with a note).
pub const MAX_THREADS: usize = 4096;

/// The most tokens `xenon sample --chars` generates.
pub const MAX_TOKENS: usize = 1 << 30;
/// The largest `--opt-node-limit` (e-nodes per optimizer phase).
pub const MAX_OPT_NODES: usize = 100_000_000;
/// The largest `--opt-iter-limit` (iterations per optimizer phase).
pub const MAX_OPT_ITERS: usize = 1_000_000;
/// The largest `--opt-time-ms` (one day).
pub const MAX_OPT_MS: usize = 86_400_000;

/// A real flag's value that must be finite and not negative (`--temperature`).
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a finite number ≥ 0")),
    }
}

/// A count flag's value: a whole number from 1 to `MAX`.
pub fn count<const MAX: usize>(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number from 1 to {MAX}"))?;
    check_count(n, MAX).map_err(|e| e.to_string())
}

/// `n` when it is from 1 to `max`, else the error saying so.
pub fn check_count(n: usize, max: usize) -> anyhow::Result<usize> {
    if n == 0 || n > max {
        bail!("{n} is not in 1..={max}");
    }
    Ok(n)
}

/// The backend for a `--backend` value or a model file's neon backend name, with
/// `threads` worker threads (default: all cores) and the GEMM path `isa` (default: the
/// best the processor has, capped by `XENON_ISA`). Names come from the one registry,
/// [`xenon_compiler::backend::BACKENDS`].
pub fn backend(
    name: &str,
    threads: Option<usize>,
    isa: Option<Isa>,
    device: Option<usize>,
) -> anyhow::Result<Arc<dyn Backend>> {
    // More threads than cores only take turns on them: capped, with a note.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.map(|t| {
        if t > cores {
            eprintln!(
                "note: --threads {t} is more than this machine's {cores} cores; using {cores}"
            );
        }
        t.min(cores)
    });
    Ok(xenon_compiler::backend::backend(
        name,
        &BackendOptions {
            threads,
            isa,
            device,
        },
    )?)
}

/// The largest relative error (normwise, per output) `--verify` accepts between a compiled
/// run and the reference interpreter (or, for an f32 model, the larger of this and twice
/// the f32 interpreter's own error against the f64 one: see
/// [`xenon_compiler::verify::OutputError::passes`]).
pub const VERIFY_TOLERANCE: f64 = 1e-5;

/// The pipeline compiling with `be`, in verify mode when `verify` (see
/// [`xenon_compiler::verify`]): with, when verifying, the hook whose reports
/// [`report_verify`] prints.
pub fn pipeline(be: Arc<dyn Backend>, verify: bool) -> (Pipeline, Option<Arc<Verify>>) {
    let pipeline = Pipeline::new(be);
    if !verify {
        return (pipeline, None);
    }
    let v = Arc::new(Verify::new());
    (pipeline.with_hook(v.clone()), Some(v))
}

/// Prints what verify mode found (one line per program, stage and output, or one JSON
/// object per program and stage with `--json`); an error when an output does not pass
/// [`VERIFY_TOLERANCE`].
pub fn report_verify(v: Option<&Arc<Verify>>, json: bool) -> anyhow::Result<()> {
    let Some(v) = v else { return Ok(()) };
    let reports = v.reports();
    if reports.is_empty() {
        bail!("--verify: no compiled program ran");
    }
    for r in &reports {
        if json {
            let outputs: serde_json::Map<String, serde_json::Value> = r
                .outputs
                .iter()
                .map(|o| {
                    (
                        o.name.clone(),
                        serde_json::json!({"max_abs": o.max_abs, "relative": o.relative,
                                           "exact": o.exact, "reference_exact": o.reference_exact,
                                           "passes": o.passes(VERIFY_TOLERANCE)}),
                    )
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"event": "verify", "program": r.program, "stage": r.stage.name(),
                                   "backend": r.backend, "worst_relative": r.worst(), "outputs": outputs})
            );
        } else {
            // The optimized graph runs on the interpreter; the compiled stage on the backend.
            let what = match r.stage {
                Stage::Compiled => format!("on {}", r.backend),
                stage => format!("{stage} graph on {}", r.backend),
            };
            println!(
                "verify: program {} {what} against the interpreter, largest relative error {:.2e}",
                r.program,
                r.worst()
            );
            for o in &r.outputs {
                let exact = match (o.exact, o.reference_exact) {
                    (Some(e), Some(r)) => {
                        format!("; against f64 {e:.2e}, the f32 interpreter {r:.2e}")
                    }
                    _ => String::new(),
                };
                println!(
                    "  {:<24} relative {:.2e}  (max abs {:.2e}{exact})",
                    o.name, o.relative, o.max_abs
                );
            }
        }
    }
    // The worst output that does not pass (a NaN error counts as the worst of all).
    let rank = |o: &&xenon_compiler::verify::OutputError| {
        if o.relative.is_nan() {
            f64::INFINITY
        } else {
            o.relative
        }
    };
    let worst = reports
        .iter()
        .flat_map(|r| &r.outputs)
        .filter(|o| !o.passes(VERIFY_TOLERANCE))
        .max_by(|a, b| rank(a).total_cmp(&rank(b)));
    if let Some(o) = worst {
        let exact = match (o.exact, o.reference_exact) {
            (Some(e), Some(r)) => format!(
                ", and {e:.2e} from the f64 interpreter, more than twice the f32 interpreter's {r:.2e}"
            ),
            _ => String::new(),
        };
        bail!(
            "--verify: output {:?} is {:.2e} (relative) from the interpreter, above {VERIFY_TOLERANCE:e}{exact}",
            o.name,
            o.relative
        );
    }
    Ok(())
}
