//! What the subcommands share: loading model files and data, choosing a backend.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xenon_compiler::backend::{Backend, BackendOptions};
use xenon_frontend::data::Mnist;
use xenon_frontend::model_file::ModelFile;
use xenon_runtime::cpu::gemm::Isa;

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
) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(xenon_compiler::backend::backend(
        name,
        &BackendOptions { threads, isa },
    )?)
}
