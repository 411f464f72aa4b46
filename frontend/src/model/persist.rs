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

/// How [`Model::load_weights_with`] checks a weights file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightsOptions {
    /// Load the tensors even when the model description the file holds differs from the
    /// model (their names and shapes must still fit). Default: `false`, an error.
    pub ignore_description: bool,
}

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
        self.require_values()?;
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
        let mut model = Model::uninitialized(desc.layers, &desc.input_shape, desc.seed)?
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
    /// weights file. Every parameter must be present with this model's shape, every value
    /// finite, and the model description the file holds (when it holds one: files from
    /// other tools may not) must be this model's: the same layers and input kind (token ids
    /// or not; the input shape may differ where the tensors fit, as for a recurrent model
    /// trained on sequences and run one step at a time). See [`Model::load_weights_with`]
    /// to load weights saved from another model whose tensors fit.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        self.load_weights_with(path, &WeightsOptions::default())
    }

    /// [`Model::load_weights`] with options.
    pub fn load_weights_with(
        &mut self,
        path: impl AsRef<Path>,
        opts: &WeightsOptions,
    ) -> Result<(), ModelError> {
        let path = path.as_ref();
        let bytes = read(path)?;
        if !opts.ignore_description {
            self.check_description(path, &bytes)?;
        }
        self.set_weights(path, &bytes, true)
    }

    /// An error naming the first difference when the weights file's embedded model
    /// description is not this model's.
    fn check_description(&self, path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| weights_err(path, format!("not a safetensors file: {e}")))?;
        let Some(text) = meta.metadata().as_ref().and_then(|m| m.get("model")) else {
            return Ok(());
        };
        let hint = "(--ignore-description loads it anyway)";
        let desc: Description = serde_json::from_str(text)
            .map_err(|e| weights_err(path, format!("bad 'model' metadata: {e} {hint}")))?;
        let json = |l: &Sequential| serde_json::to_value(l).expect("layers serialize");
        let (theirs, ours) = (json(&desc.layers), json(&self.layers));
        let layer_list = |v: &serde_json::Value| {
            v.get("layers")
                .and_then(|l| l.as_array())
                .cloned()
                .unwrap_or_else(|| vec![v.clone()])
        };
        let (theirs, ours) = (layer_list(&theirs), layer_list(&ours));
        let differs = |what: String| {
            Err(weights_err(
                path,
                format!("the weights were saved from another model: {what} {hint}"),
            ))
        };
        if theirs.len() != ours.len() {
            return differs(format!(
                "it has {} layers, this model {}",
                theirs.len(),
                ours.len()
            ));
        }
        if let Some(i) = (0..ours.len()).find(|&i| theirs[i] != ours[i]) {
            let name = self.info.get(i).map_or("?", |l| l.name.as_str());
            let (at, there, here) = first_difference(&theirs[i], &ours[i]);
            return differs(format!(
                "layer {i} ('{name}'): {} is {there} there, {here} here",
                at.trim_start_matches('.')
            ));
        }
        if desc.token_ids != self.token_ids.is_some() {
            let kind = |ids: bool| if ids { "token ids" } else { "dense inputs" };
            return differs(format!(
                "it was fed {}, this model {}",
                kind(desc.token_ids),
                kind(self.token_ids.is_some())
            ));
        }
        Ok(())
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
    let (n, bad, first) = match &data {
        xenon_runtime::TensorData::F32(v) => non_finite(v.iter().map(|&x| f64::from(x))),
        xenon_runtime::TensorData::F64(v) => non_finite(v.iter().copied()),
        _ => unreachable!("decoded as f32 or f64"),
    };
    if let Some((first, value)) = first {
        return Err(weights_err(
            path,
            format!(
                "tensor '{name}' holds {bad} non-finite value(s) (NaN or infinity) of {n}, the first at element {first} ({value})"
            ),
        ));
    }
    let t =
        Tensor::new(view.shape().to_vec(), data).map_err(|e| weights_err(path, e.to_string()))?;
    Ok(super::in_dtype(t, dtype))
}

/// The count of `values`, how many are not finite, and the first of those (index, value).
fn non_finite(values: impl Iterator<Item = f64>) -> (usize, usize, Option<(usize, f64)>) {
    let (mut n, mut bad, mut first) = (0, 0, None);
    for (i, v) in values.enumerate() {
        n += 1;
        if !v.is_finite() {
            bad += 1;
            first.get_or_insert((i, v));
        }
    }
    (n, bad, first)
}

/// Where two JSON documents first differ: the path (`.config.nout`; a different `type`
/// key comes first; empty at the top)
/// and both values there (`absent` for a missing key).
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> (String, String, String) {
    use serde_json::Value;
    let (mut a, mut b, mut path) = (a, b, String::new());
    loop {
        let step = match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                // A different `type` first: the rest of a config follows from it.
                let key = std::iter::once(&"type".to_string())
                    .chain(x.keys())
                    .chain(y.keys())
                    .find(|k| x.get(*k) != y.get(*k))
                    .cloned();
                match key {
                    Some(k) if x.contains_key(&k) && y.contains_key(&k) => {
                        Some((format!(".{k}"), &x[&k], &y[&k]))
                    }
                    Some(k) => {
                        let show = |v: Option<&Value>| v.map_or("absent".into(), |v| v.to_string());
                        return (format!("{path}.{k}"), show(x.get(&k)), show(y.get(&k)));
                    }
                    None => None,
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => (0..x.len())
                .find(|&i| x[i] != y[i])
                .map(|i| (format!("[{i}]"), &x[i], &y[i])),
            _ => None,
        };
        match step {
            Some((p, x, y)) => {
                path.push_str(&p);
                (a, b) = (x, y);
            }
            None => return (path, a.to_string(), b.to_string()),
        }
    }
}
