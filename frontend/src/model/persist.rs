//! Saving and loading weights: safetensors, with the model description in the header.
//!
//! A weights file is a standard safetensors file holding every parameter (and optimizer
//! state) under its Xenon name (`Linear_0/W`, `Linear_0/W/velocity`, …), little-endian f32.
//! Its `__metadata__` holds `format` = [`WEIGHTS_FORMAT`] and `model`, a JSON document with
//! the layer stack (`layers`, in the model-file schema), `input_shape`, `token_ids` (for a
//! model fed token ids), `seed` and `epoch_index`, so a file alone rebuilds its model ([`Model::load`]). Files are written
//! atomically: to a temporary file in the same directory, flushed, then renamed over the
//! target, so a crash mid-save leaves the old file intact.

use super::{Model, ModelError};
use crate::layer::Sequential;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use xenon_runtime::{DType, Tensor};

/// The `format` metadata value of Xenon weights files.
pub const WEIGHTS_FORMAT: &str = "xenon-weights-v1";

#[derive(Serialize, Deserialize)]
struct Description {
    layers: Sequential,
    input_shape: Vec<usize>,
    /// Whether the model is fed token ids ([`Model::with_token_ids`]); absent: no.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    token_ids: bool,
    seed: u64,
    epoch_index: usize,
    /// Minibatch updates so far (Adam's step count); absent in older files.
    #[serde(default)]
    step_index: u64,
    /// Where training stands (a checkpoint); absent before training and in older files.
    #[serde(default)]
    resume: Option<super::ResumeState>,
    /// The dtype the model computes in (absent: f32).
    #[serde(default)]
    dtype: Option<DType>,
}

fn weights_err(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Weights {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    xenon_runtime::file::write_atomic(path, bytes).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl Model {
    /// The metadata of a weights file: `format` and the model description `model`.
    pub(crate) fn weights_metadata(&self) -> HashMap<String, String> {
        let desc = Description {
            layers: self.layers.clone(),
            input_shape: self.input_shape.clone(),
            token_ids: self.token_ids.is_some(),
            seed: self.seed,
            epoch_index: self.epoch_index,
            step_index: self.step_index,
            resume: self.resume.clone(),
            dtype: (self.dtype != DType::F32).then_some(self.dtype),
        };
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), WEIGHTS_FORMAT.to_string());
        meta.insert(
            "model".to_string(),
            serde_json::to_string(&desc).expect("descriptions serialize"),
        );
        meta
    }

    /// Saves every parameter and optimizer state with the model description (not the
    /// recurrent states).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        // Recurrent states are not saved: they belong to the sequence being read.
        let mut names: Vec<&String> = self
            .values
            .keys()
            .filter(|n| !self.states.iter().any(|(s, _)| s == *n))
            .collect();
        names.sort();
        let named: Vec<(&str, &Tensor)> = names
            .iter()
            .map(|n| (n.as_str(), &self.values[*n]))
            .collect();
        let out = xenon_runtime::aot::weights::encode(&named, &self.weights_metadata())
            .map_err(|e| weights_err(path, e))?;
        write_atomic(path, &out)
    }

    /// Rebuilds a model from a weights file written by [`Model::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let path = path.as_ref();
        let bytes = read(path)?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| weights_err(path, format!("not a safetensors file: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(WEIGHTS_FORMAT) {
            return Err(weights_err(
                path,
                format!(
                    "missing or unknown 'format' metadata (expected {WEIGHTS_FORMAT:?}): not a Xenon weights file"
                ),
            ));
        }
        let desc: Description = meta
            .get("model")
            .ok_or_else(|| weights_err(path, "missing 'model' metadata"))
            .and_then(|m| {
                serde_json::from_str(m)
                    .map_err(|e| weights_err(path, format!("bad 'model' metadata: {e}")))
            })?;
        let mut model = Model::new(desc.layers, &desc.input_shape, desc.seed)?
            .with_dtype(desc.dtype.unwrap_or(DType::F32))?;
        if desc.token_ids {
            model = model.with_token_ids()?;
        }
        model.epoch_index = desc.epoch_index;
        model.step_index = desc.step_index;
        model.resume = desc.resume;
        model.set_weights(path, &bytes, true)?;
        Ok(model)
    }

    /// Replaces this model's parameters (and any optimizer states present) with those of a
    /// weights file. Every parameter must be present with this model's shape.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        let bytes = read(path)?;
        self.set_weights(path, &bytes, true)
    }

    fn set_weights(
        &mut self,
        path: &Path,
        bytes: &[u8],
        with_states: bool,
    ) -> Result<(), ModelError> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| weights_err(path, format!("not a valid safetensors file: {e}")))?;
        let mut values = HashMap::new();
        for p in &self.params {
            let view = st.tensor(&p.name).map_err(|_| {
                weights_err(
                    path,
                    format!("layer '{}': parameter '{}' is missing", p.layer, p.name),
                )
            })?;
            if view.shape() != p.shape.as_slice() {
                return Err(weights_err(
                    path,
                    format!(
                        "layer '{}': parameter '{}' has shape {:?} in the file but the layer needs {:?}",
                        p.layer,
                        p.name,
                        view.shape(),
                        p.shape
                    ),
                ));
            }
            values.insert(p.name.clone(), to_tensor(path, &p.name, &view, self.dtype)?);
        }
        if with_states {
            for (name, view) in st.tensors() {
                if !values.contains_key(&name) {
                    let owner = self
                        .params
                        .iter()
                        .find(|p| name.starts_with(&format!("{}/", p.name)));
                    match owner {
                        Some(p) if view.shape() == p.shape.as_slice() => {
                            values.insert(name.clone(), to_tensor(path, &name, &view, self.dtype)?);
                        }
                        _ => {
                            return Err(weights_err(
                                path,
                                format!("tensor '{name}' does not belong to this model"),
                            ));
                        }
                    }
                }
            }
        }
        self.values = values;
        self.programs.clear();
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A stored tensor (f32 or f64, little-endian) as a tensor of `dtype`.
fn to_tensor(
    path: &Path,
    name: &str,
    view: &TensorView<'_>,
    dtype: DType,
) -> Result<Tensor, ModelError> {
    let data = match view.dtype() {
        Dtype::F32 => xenon_runtime::TensorData::F32(
            view.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Dtype::F64 => xenon_runtime::TensorData::F64(
            view.data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        other => {
            return Err(weights_err(
                path,
                format!("tensor '{name}' is {other:?}, expected F32 or F64"),
            ));
        }
    };
    Tensor::new(view.shape().to_vec(), data)
        .map_err(|e| weights_err(path, e.to_string()))
        .map(|t| super::in_dtype(t, dtype))
}
