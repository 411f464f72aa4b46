//! One batch file of CIFAR-10's Python release (`cifar-10-batches-py/data_batch_1`, …):
//! a pickled dict whose `data` entry is a numpy uint8 array of shape `(N, 3072)` and whose
//! `labels` entry is a list of `N` ints (`batch_label` and `filenames` are ignored).
//!
//! The pickle is decoded by `serde-pickle`, which never runs code: class instances come
//! back as their restore state (`DeOptions::keep_restore_state`), so an array pickled
//! through `numpy.core.multiarray._reconstruct` (`numpy._core` since numpy 2; protocols 2
//! to 4, and Python 2's `cPickle`, which wrote the release with protocol 2) is the state
//! tuple `(1, shape, dtype, fortran_order, raw)`, and one pickled through
//! `numpy.core.numeric._frombuffer` (protocol 5) is the argument tuple
//! `(raw, dtype, shape, order)`; a Fortran-ordered array is transposed. The raw bytes
//! arrive as a Python 2 `str`, Python 3 `bytes`, a `bytearray` or (protocol 2 from
//! Python 3) `_codecs.encode(latin-1 str)`; dict keys as `bytes` or `str`. The dtype comes
//! back as its state `(version, byte_order, …, elsize, …)`, which does not name the type:
//! a 1-byte non-flexible dtype (byte order `|`, `elsize` −1) whose raw bytes are exactly
//! `N × 3072` is read as uint8 (int8 or bool arrays would not be told apart; no CIFAR copy
//! holds those).
//!
//! Limits: a file above [`MAX_PICKLE_BYTES`] is refused before it is read, and lengths
//! inside the pickle never allocate more than the file holds; every malformed, cut or
//! mistyped pickle is an error naming the file. `serde-pickle` bounds neither nesting
//! depth nor memo references, so a pickle crafted to nest lists a million deep, or to
//! repeat one large object many times, can still exhaust the stack or memory.

use super::DataError;
use super::cifar::{CIFAR10_CLASSES, CIFAR10_PIXELS};
use serde_pickle::{DeOptions, HashableValue, Value};
use std::path::Path;

/// The largest pickle batch file read, in bytes (256 MiB). A release batch of 10,000 images
/// is 31 MB as Python 2 wrote it, up to 62 MB as Python 3 writes it with protocol 2 (its
/// raw bytes stored as UTF-8 text).
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Appends the images (`N × 3072` bytes, CHW) and labels of one pickle batch file.
pub(crate) fn read_pickle_batch(
    path: &Path,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<i32>,
) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |m: String| DataError::InvalidDataset(format!("{}: {m}", path.display()));
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_PICKLE_BYTES {
        return Err(invalid(format!(
            "{size} bytes is more than the {MAX_PICKLE_BYTES} bytes a CIFAR-10 pickle batch may have"
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let value = serde_pickle::value_from_slice(
        &bytes,
        DeOptions::new()
            .keep_restore_state()
            .replace_unresolved_globals(),
    )
    .map_err(|e| invalid(format!("not a readable Python pickle: {e}")))?;
    drop(bytes);
    let (data, label_list) = batch_entries(value).map_err(invalid)?;
    let start = pixels.len();
    let n = append_images(data, pixels).map_err(invalid)?;
    let got = append_labels(label_list, labels).map_err(|m| {
        pixels.truncate(start);
        invalid(m)
    })?;
    if got != n {
        pixels.truncate(start);
        labels.truncate(labels.len() - got);
        return Err(invalid(format!(
            "{n} images in 'data' but {got} entries in 'labels'"
        )));
    }
    Ok(())
}

/// The `data` and `labels` entries of the top-level dict.
fn batch_entries(value: Value) -> Result<(Value, Value), String> {
    let Value::Dict(mut dict) = value else {
        return Err(format!(
            "the pickle holds {}, not a dict with 'data' and 'labels'",
            kind(&value)
        ));
    };
    let mut take = |name: &str| {
        let keys = [
            HashableValue::Bytes(name.as_bytes().to_vec()),
            HashableValue::String(name.to_string()),
        ];
        keys.iter().find_map(|k| dict.remove(k))
    };
    let (data, labels) = (take("data"), take("labels"));
    match (data, labels) {
        (Some(d), Some(l)) => Ok((d, l)),
        (d, _) => Err(format!(
            "the dict has no '{}' entry (keys: {})",
            if d.is_none() { "data" } else { "labels" },
            dict.keys().map(key_name).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn key_name(k: &HashableValue) -> String {
    match k {
        HashableValue::Bytes(b) => format!("'{}'", String::from_utf8_lossy(b)),
        HashableValue::String(s) => format!("'{s}'"),
        other => format!("{other}"),
    }
}

/// A short description of a value's type, for messages (never the value: it may be 30 MB).
fn kind(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(_) => "a bool".into(),
        Value::I64(_) | Value::Int(_) => "an int".into(),
        Value::F64(_) => "a float".into(),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        Value::String(s) => format!("a {}-byte string", s.len()),
        Value::List(l) => format!("a list of {}", l.len()),
        Value::Tuple(t) => format!("a tuple of {}", t.len()),
        Value::Set(_) | Value::FrozenSet(_) => "a set".into(),
        Value::Dict(_) => "a dict".into(),
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::I64(i) => Some(*i),
        _ => None,
    }
}

/// numpy's `fortran_order` flag: a bool (or 0/1, as protocol 0 may write it).
fn flag(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::I64(i @ (0 | 1)) => Ok(*i == 1),
        _ => Err("'data' is not a pickled numpy array: its order flag is not a bool".into()),
    }
}

fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Appends the rows of the `data` array; returns how many.
fn append_images(data: Value, pixels: &mut Vec<u8>) -> Result<usize, String> {
    const NOT_ARRAY: &str = "'data' is not a pickled numpy array";
    let Value::Tuple(t) = data else {
        return Err(format!("{NOT_ARRAY} (found {})", kind(&data)));
    };
    let len = t.len();
    let unknown = || format!("{NOT_ARRAY} (found a tuple of {len} that is no array state)");
    let (raw, dtype, shape, fortran) = match <[Value; 4]>::try_from(t) {
        // (raw, dtype, shape, order): protocol 5's `_frombuffer` arguments.
        Ok([Value::Bytes(raw), dtype, shape, order]) => {
            let fortran = match text(&order) {
                Some(b"C") => false,
                Some(b"F") => true,
                _ => return Err(format!("{NOT_ARRAY}: unknown memory order")),
            };
            (raw, dtype, shape, fortran)
        }
        // (shape, dtype, fortran_order, raw): `_reconstruct`'s state before numpy 1.0.
        Ok([shape, dtype, fortran, Value::Bytes(raw)]) => (raw, dtype, shape, flag(&fortran)?),
        Ok(_) => return Err(unknown()),
        // (1, shape, dtype, fortran_order, raw): `_reconstruct`'s state.
        Err(t) => match <[Value; 5]>::try_from(t) {
            Ok([version, shape, dtype, fortran, Value::Bytes(raw)]) if int(&version) == Some(1) => {
                (raw, dtype, shape, flag(&fortran)?)
            }
            _ => return Err(unknown()),
        },
    };
    check_dtype(&dtype)?;
    let dims: Option<Vec<i64>> = match &shape {
        Value::Tuple(d) | Value::List(d) => d.iter().map(int).collect(),
        _ => None,
    };
    let Some(dims) = dims else {
        return Err(format!("{NOT_ARRAY}: its shape is not a tuple of ints"));
    };
    let [n, cols] = dims[..] else {
        return Err(format!(
            "'data' has shape {dims:?}, expected (N, {CIFAR10_PIXELS})"
        ));
    };
    if n <= 0 || cols != CIFAR10_PIXELS as i64 {
        return Err(format!(
            "'data' has shape ({n}, {cols}), expected (N, {CIFAR10_PIXELS}) with N ≥ 1"
        ));
    }
    let n = n as usize;
    if n.checked_mul(CIFAR10_PIXELS) != Some(raw.len()) {
        return Err(format!(
            "'data' has shape ({n}, {CIFAR10_PIXELS}) but {} raw bytes (uint8 needs {})",
            raw.len(),
            n as u128 * CIFAR10_PIXELS as u128
        ));
    }
    if fortran {
        // Column-major: element (i, j) at j·N + i.
        pixels.reserve(raw.len());
        for i in 0..n {
            pixels.extend((0..CIFAR10_PIXELS).map(|j| raw[j * n + i]));
        }
    } else {
        pixels.extend_from_slice(&raw);
    }
    Ok(n)
}

/// A dtype's restore state `(version, byte_order, subarray, names, fields, elsize,
/// alignment, flags[, metadata])` must say a 1-byte non-flexible type; its constructor
/// arguments `('u1', align, copy)`, should a pickle keep them, must say uint8.
fn check_dtype(dtype: &Value) -> Result<(), String> {
    let bad = || "'data' is not a uint8 array (its dtype is not 1 byte wide)".to_string();
    let Value::Tuple(d) = dtype else {
        return Err(bad());
    };
    match d.as_slice() {
        [name, ..] if text(name).is_some() => match text(name) {
            Some(b"u1" | b"|u1" | b"uint8" | b"B") => Ok(()),
            _ => Err(bad()),
        },
        [version, order, _, _, _, elsize, ..]
            if matches!(int(version), Some(3 | 4))
                && text(order) == Some(b"|")
                && int(elsize) == Some(-1) =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// Appends the `labels` list; returns how many.
fn append_labels(list: Value, labels: &mut Vec<i32>) -> Result<usize, String> {
    let (Value::List(items) | Value::Tuple(items)) = list else {
        return Err(format!("'labels' is {}, not a list of ints", kind(&list)));
    };
    let start = labels.len();
    for (i, v) in items.iter().enumerate() {
        match int(v) {
            Some(l) if (0..CIFAR10_CLASSES as i64).contains(&l) => labels.push(l as i32),
            got => {
                labels.truncate(start);
                return Err(match got {
                    Some(l) => format!("labels[{i}] = {l} is outside 0..=9"),
                    None => format!("labels[{i}] is {}, not an int", kind(v)),
                });
            }
        }
    }
    Ok(items.len())
}
