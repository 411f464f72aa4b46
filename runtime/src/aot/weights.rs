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
    let mut out = safetensors::serialize(views, Some(meta.clone())).map_err(|e| e.to_string())?;
    sort_header(&mut out);
    Ok(out)
}

/// Rewrites the JSON header of a safetensors file `bytes` with its object keys sorted (the
/// metadata map comes out of a `HashMap` in any order), so that the same tensors and
/// metadata always give the same bytes. The sorted JSON has the same length, so offsets
/// and padding stay valid; anything unexpected leaves the bytes as they are.
fn sort_header(bytes: &mut [u8]) {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return;
    };
    let Some(header) = bytes.get(8..8 + len) else {
        return;
    };
    let text = String::from_utf8_lossy(header);
    let json = text.trim_end_matches(' ');
    // serde_json's map is a BTreeMap (no `preserve_order`): keys come out sorted.
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    let Ok(sorted) = serde_json::to_string(&value) else {
        return;
    };
    if sorted.len() == json.len() {
        bytes[8..8 + sorted.len()].copy_from_slice(sorted.as_bytes());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The same tensors and metadata give the same bytes, whatever order the metadata
    /// map iterates in, and the file still reads back.
    #[test]
    fn encoding_is_deterministic() {
        let w = Tensor::from_f32(vec![2, 2], vec![1.0, -2.0, 3.5, 0.25]).unwrap();
        let b = Tensor::from_f32(vec![2], vec![0.5, 0.0]).unwrap();
        let encode_with = |keys: &[&str]| {
            let meta: HashMap<String, String> = keys
                .iter()
                .map(|k| (k.to_string(), format!("value of \"{k}\"")))
                .collect();
            encode(&[("w", &w), ("b", &b)], &meta).unwrap()
        };
        let keys = ["format", "model", "zeta", "alpha", "mid", "x1", "x2", "x3"];
        let first = encode_with(&keys);
        for _ in 0..20 {
            let mut shuffled = keys;
            shuffled.reverse();
            assert_eq!(encode_with(&shuffled), first);
            assert_eq!(encode_with(&keys), first);
        }
        let (got, meta) = decode(&first, &[("w", DType::F32, &[2, 2])]).unwrap();
        assert_eq!(got[0], w);
        assert_eq!(meta["model"], "value of \"model\"");
    }
}
