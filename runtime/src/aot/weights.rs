//! Weights files: named tensors as safetensors (little-endian), with string metadata.

use crate::{DType, Tensor, TensorData};
use std::collections::HashMap;

fn st_dtype(d: DType) -> safetensors::Dtype {
    match d {
        DType::F32 => safetensors::Dtype::F32,
        DType::F64 => safetensors::Dtype::F64,
        DType::I32 => safetensors::Dtype::I32,
    }
}

fn le_bytes(d: &TensorData) -> Vec<u8> {
    match d {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// `tensors` (name, tensor) as a safetensors file with `meta` as its metadata.
pub fn encode(
    tensors: &[(&str, &Tensor)],
    meta: &HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let raw: Vec<(&str, Vec<u8>, &Tensor)> = tensors
        .iter()
        .map(|(n, t)| (*n, le_bytes(t.data()), *t))
        .collect();
    let views = raw
        .iter()
        .map(|(n, bytes, t)| {
            safetensors::tensor::TensorView::new(st_dtype(t.dtype()), t.shape().to_vec(), bytes)
                .map(|v| (n.to_string(), v))
                .map_err(|e| format!("{n:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, Some(meta.clone())).map_err(|e| e.to_string())
}

/// Reads the tensors `wanted` (name, dtype, shape) from a safetensors file, each required
/// with exactly that dtype and shape; returns them in that order, and the file's metadata.
pub fn decode(
    bytes: &[u8],
    wanted: &[(&str, DType, &[usize])],
) -> Result<(Vec<Tensor>, HashMap<String, String>), String> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a safetensors file: {e}"))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("not a safetensors file: {e}"))?;
    let mut out = Vec::with_capacity(wanted.len());
    for &(name, dtype, shape) in wanted {
        let v = st.tensor(name).map_err(|_| format!("missing {name:?}"))?;
        if v.dtype() != st_dtype(dtype) || v.shape() != shape {
            return Err(format!(
                "{name:?} is {:?} {:?}, {dtype} {shape:?} is needed",
                v.dtype(),
                v.shape()
            ));
        }
        let b = v.data();
        let data = match dtype {
            DType::F32 => TensorData::F32(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect(),
            ),
            DType::F64 => TensorData::F64(
                b.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            ),
            DType::I32 => TensorData::I32(
                b.chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect(),
            ),
        };
        out.push(Tensor::new(shape.to_vec(), data).map_err(|e| format!("{name:?}: {e}"))?);
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}
