//! What the subcommands share: loading model files and data, choosing a backend.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xenon_compiler::backend::Isa;
use xenon_compiler::backend::{Backend, BackendOptions};
use xenon_compiler::pipeline::{Pipeline, Stage};
use xenon_compiler::verify::Verify;
use xenon_frontend::data::Mnist;
use xenon_frontend::model_file::ModelFile;

/// Loads a model file, naming it in the error.
pub fn load_model_file(path: &Path) -> anyhow::Result<ModelFile> {
    ModelFile::load(path).with_context(|| format!("cannot load model file {}", path.display()))
}

/// The per-sample input shape and class count of a named data set.
pub fn dataset_shape(name: &str) -> anyhow::Result<(Vec<usize>, usize)> {
    match name {
        "mnist" => Ok((vec![1, 28, 28], 10)),
        other => bail!("unknown dataset {other:?}; known datasets: mnist"),
    }
}

/// The data set a model file names (MNIST when it names none): from `dir`, or the subset
/// bundled with Xenon.
pub fn load_data(file: &ModelFile, dir: Option<&PathBuf>) -> anyhow::Result<Mnist> {
    let name = file.dataset.as_ref().map_or("mnist", |d| d.name.as_str());
    dataset_shape(name)?;
    Ok(match dir {
        Some(d) => Mnist::load(d)?,
        None => Mnist::bundled()?,
    })
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
/// run and the reference interpreter.
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
/// object per program and stage with `--json`); an error when an output is further from
/// the interpreter than [`VERIFY_TOLERANCE`].
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
                        serde_json::json!({"max_abs": o.max_abs, "relative": o.relative}),
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
                println!(
                    "  {:<24} relative {:.2e}  (max abs {:.2e})",
                    o.name, o.relative, o.max_abs
                );
            }
        }
    }
    // The worst output (a NaN error counts as the worst of all).
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
        .max_by(|a, b| rank(a).total_cmp(&rank(b)));
    if let Some(o) = worst.filter(|o| rank(o) > VERIFY_TOLERANCE) {
        bail!(
            "--verify: output {:?} is {:.2e} (relative) from the interpreter, above {VERIFY_TOLERANCE:e}",
            o.name,
            o.relative
        );
    }
    Ok(())
}
