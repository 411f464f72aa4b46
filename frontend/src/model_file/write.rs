//! Writing a [`ModelFile`] as JSON or YAML in the schema's shape.

use super::{BackendName, DatasetSpec, ModelFile};
use crate::cost::Cost;
use crate::layer::Layer;
use crate::optimizer::Optimizer;
use serde::Serialize;
use serde::ser::Serializer;

/// The document in schema order, for the writers.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epochs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batchsize: Option<usize>,
    layers: &'a [Layer],
    cost: &'a Cost,
    #[serde(skip_serializing_if = "Option::is_none")]
    optimizer: Option<&'a Optimizer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<&'a DatasetSpec>,
}

/// Serializes in the model-file schema (what [`ModelFile::to_json`] writes).
impl Serialize for ModelFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            backend: self.backend.map(BackendName::as_str),
            epochs: self.epochs,
            batchsize: self.batchsize,
            layers: &self.layers.layers,
            cost: &self.cost,
            optimizer: self.optimizer.as_ref(),
            dataset: self.dataset.as_ref(),
        }
        .serialize(s)
    }
}

impl ModelFile {
    /// The model file as pretty-printed JSON in the schema's shape, every argument written out
    /// (defaults included), so that the file does not depend on future defaults.
    /// [`ModelFile::from_json_str`] reads it back to an equal `ModelFile`, provided every
    /// number is finite (JSON has no NaN or infinity; they are written as `null`).
    pub fn to_json(&self) -> String {
        // Serializing plain data (string keys, numbers, strings) into a String cannot fail.
        serde_json::to_string_pretty(self).expect("a ModelFile always serializes to JSON")
    }

    /// The model file as YAML in the schema's shape, every argument written out;
    /// [`ModelFile::from_yaml_str`] reads it back to an equal `ModelFile`.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a ModelFile always serializes to YAML")
    }
}
