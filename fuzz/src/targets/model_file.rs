//! Model files (neon's YAML schema, and the same in JSON): parsed, written back and read
//! again (the writer's documented round trip), then built as `xenon summary` builds them:
//! the data source the file names, its example shape, the layers as the data feeds them,
//! the model (when its parameters fit [`MAX_MODEL_PARAMS`](super::MAX_MODEL_PARAMS)) and
//! its inference graph.
//!
//! Relative data paths are taken from `fuzz/fixtures/examples/models/`, so the example
//! files' `../../data/...` paths find the small copies in `fuzz/fixtures/data/`. A path
//! that leads outside the repository (or to anything but a small file or a folder in it)
//! is not read: the target only reports it.

use super::{MAX_EXAMPLE, MAX_MODEL_PARAMS, elements, repo_dir};
use crate::feedback::{note, outcome};
use std::path::{Path, PathBuf};
use xenon_compiler::ir::Graph;
use xenon_frontend::data::DataSource;
use xenon_frontend::layer::Sequential;
use xenon_frontend::model::Model;
use xenon_frontend::model_file::ModelFile;
use xenon_runtime::DType;

/// The largest data file a model-file input may make the target read.
const MAX_DATA_FILE: u64 = 4 << 20;

/// A YAML model file.
pub fn yaml(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let parsed = ModelFile::from_yaml_str(&text);
    outcome("yaml", &parsed);
    if let Ok(file) = parsed {
        round_trip(&file);
        build(&file);
    }
}

/// A JSON model file.
pub fn json(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let parsed = ModelFile::from_json_str(&text);
    outcome("json", &parsed);
    if let Ok(file) = parsed {
        round_trip(&file);
        build(&file);
    }
}

/// `to_yaml` and `to_json` read back to a file that writes the same text (the writers'
/// documented round trip; JSON only when every number is finite: it has no NaN).
fn round_trip(file: &ModelFile) {
    let yaml = file.to_yaml();
    let again = ModelFile::from_yaml_str(&yaml)
        .unwrap_or_else(|e| panic!("to_yaml wrote a file from_yaml_str rejects: {e}\n{yaml}"));
    assert_eq!(
        again.to_yaml(),
        yaml,
        "to_yaml → from_yaml_str → to_yaml changed the file"
    );
    let json = file.to_json();
    match ModelFile::from_json_str(&json) {
        Ok(again) => assert_eq!(
            again.to_json(),
            json,
            "to_json → from_json_str → to_json changed the file"
        ),
        // A NaN or infinity is written as null, which does not read back as a number.
        Err(_) if json.contains("null") => note("json round trip: non-finite number"),
        Err(e) => panic!("to_json wrote a file from_json_str rejects: {e}\n{json}"),
    }
}

/// The folder relative data paths are taken from.
pub fn models_dir() -> PathBuf {
    crate::fuzz_dir().join("fixtures/examples/models")
}

/// Builds what `xenon summary` builds for `file`.
fn build(file: &ModelFile) {
    let source = DataSource::new(file.dataset.as_ref(), None, &models_dir());
    outcome("data source", &source);
    let Ok(source) = source else { return };
    if !paths_ok(&source) {
        note("a data path outside the repository");
        return;
    }
    let shapes = source.shapes();
    outcome("shapes", &shapes);
    let Ok((shape, _width)) = shapes else { return };
    let layers = source.feed(&file.layers);
    outcome("feed", &layers);
    let Ok(layers) = layers else { return };
    if !fits(&layers, &shape) {
        return;
    }
    let model = Model::new(layers, &shape, 0);
    outcome("model", &model);
    let Ok(mut model) = model else { return };
    if source.token_ids() {
        let m = model.with_token_ids();
        outcome("token ids", &m);
        let Ok(m) = m else { return };
        model = m;
    }
    outcome("inference graph", &model.inference_graph(2));
}

/// Whether a model of `layers` for examples of `shape` is small enough to build: the
/// layers' graph is built first (it holds shapes, no data) and its parameters counted.
pub fn fits(layers: &Sequential, shape: &[usize]) -> bool {
    if elements(shape) > MAX_EXAMPLE {
        note("example too large to build");
        return false;
    }
    let mut g = Graph::new();
    let mut fed = vec![1];
    fed.extend_from_slice(shape);
    let Ok(x) = g.input("x", DType::F32, &fed) else {
        note("input rejected");
        return false;
    };
    let fwd = layers.forward(&mut g, x);
    outcome("forward", &fwd);
    let Ok(fwd) = fwd else { return false };
    let params: u128 = fwd
        .params
        .iter()
        .filter(|p| !p.carried)
        .map(|p| elements(&p.shape))
        .fold(0, u128::saturating_add);
    if params > MAX_MODEL_PARAMS {
        note("model too large to build");
        return false;
    }
    true
}

/// Whether every file `source` would read is a small file (or a folder) inside the
/// repository, or does not exist.
fn paths_ok(source: &DataSource) -> bool {
    let mut paths: Vec<&Path> = Vec::new();
    match source {
        DataSource::Arrays { train, test, .. } => {
            for split in [train, test] {
                paths.extend(split.x.iter().map(|a| a.path.as_path()));
                paths.extend(split.y.iter().map(|a| a.path.as_path()));
            }
        }
        DataSource::Text { path, .. } => paths.push(path),
        DataSource::Imdb { path, .. } => paths.extend(path.as_deref()),
        DataSource::Mnist { dir, .. } | DataSource::Cifar10 { dir, .. } => {
            paths.extend(dir.as_deref())
        }
        DataSource::Imagenet => {}
    }
    let root = match repo_dir().canonicalize() {
        Ok(r) => r,
        Err(_) => return false,
    };
    paths.iter().all(|p| match std::fs::metadata(p) {
        Err(_) => true,
        Ok(meta) => {
            (meta.is_dir() || (meta.is_file() && meta.len() <= MAX_DATA_FILE))
                && p.canonicalize().is_ok_and(|c| c.starts_with(&root))
        }
    })
}
