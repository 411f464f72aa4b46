//! Weights files and checkpoints (safetensors with the model description in the
//! metadata: `Model::load`, `Model::load_weights`) and training histories.

use super::model_file::fits;
use super::scratch_file;
use crate::feedback::{note, outcome};
use safetensors::SafeTensors;
use std::cell::RefCell;
use xenon_frontend::history::History;
use xenon_frontend::layer::Sequential;
use xenon_frontend::model::Model;

thread_local! {
    static TINY: RefCell<Option<Model>> = const { RefCell::new(None) };
}

/// A weights file or checkpoint: rebuilt with `Model::load` (when the model it describes
/// is small enough to build) and loaded with `load_weights` into the 2-32-1 MLP of
/// `examples/models/regression_sine.yaml` (the model of the seeds).
pub fn weights(bytes: &[u8]) {
    let path = scratch_file("input.safetensors", bytes);
    if described_model_fits(bytes) {
        let loaded = Model::load(&path);
        outcome("load", &loaded);
        if let Ok(m) = loaded {
            outcome("loaded inference graph", &m.inference_graph(1));
        }
    }
    TINY.with(|t| {
        let mut t = t.borrow_mut();
        let model = t.get_or_insert_with(|| {
            crate::seeds::sine_model()
                .expect("examples/models/regression_sine.yaml builds")
                .1
        });
        outcome("load_weights", &model.load_weights(&path));
    });
}

/// False when the `model` metadata describes a model that `Model::load` would build and
/// that is larger than the targets build ([`fits`]); true otherwise (including every
/// file `Model::load` rejects before building anything).
fn described_model_fits(bytes: &[u8]) -> bool {
    let Ok((_, meta)) = SafeTensors::read_metadata(bytes) else {
        return true;
    };
    let Some(model) = meta.metadata().as_ref().and_then(|m| m.get("model")) else {
        return true;
    };
    let Ok(desc) = serde_json::from_str::<serde_json::Value>(model) else {
        return true;
    };
    let layers = desc
        .get("layers")
        .cloned()
        .and_then(|l| serde_json::from_value::<Sequential>(l).ok());
    let shape = desc
        .get("input_shape")
        .cloned()
        .and_then(|s| serde_json::from_value::<Vec<usize>>(s).ok());
    match (layers, shape) {
        (Some(layers), Some(shape)) => fits(&layers, &shape),
        _ => {
            note("model description unreadable");
            true
        }
    }
}

/// Whether a metric name has surrounding whitespace, which reading CSV trims (the one
/// change a CSV round trip makes to a history).
fn trimmed_by_csv(name: &str) -> bool {
    name.trim() != name
}

/// A training history: as JSON and as CSV, each written back and read again.
pub fn history(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let json = serde_json::from_str::<History>(&text);
    outcome("history json", &json);
    let csv = History::from_csv(&text);
    outcome("history csv", &csv);
    for h in json.into_iter().chain(csv) {
        if h.metric_names().iter().any(|n| trimmed_by_csv(n)) {
            note("history: a metric name with surrounding whitespace");
            continue;
        }
        let written = h.to_csv();
        let again = History::from_csv(&written)
            .unwrap_or_else(|e| panic!("to_csv wrote a history from_csv rejects: {e}\n{written}"));
        assert_eq!(
            again.to_csv(),
            written,
            "to_csv → from_csv → to_csv changed the history"
        );
        let _ = h.metric_names();
    }
    // Through the file API, as `xenon plot` reads histories.
    for name in ["history.json", "history.csv"] {
        let path = scratch_file(name, bytes);
        outcome("history load", &History::load(&path));
    }
}
