//! NumPy arrays as data sets (neon's `ArrayIterator` sources): `.npy` files and `.npz`
//! archives (stored or deflate-compressed, as `np.savez` and `np.savez_compressed` write
//! them), read with the `npyz` crate. Any little- or big-endian float, integer or bool
//! array is converted to f32. Errors name the file, the array and what does not fit.

use super::{DataError, Dataset};
use npyz::{DType, NpyFile};
use std::io::Read;
use std::path::Path;

/// An array's shape and its elements as f32, in row-major order.
pub type Array = (Vec<usize>, Vec<f32>);

fn array_err(path: &Path, array: &str, reason: impl Into<String>) -> DataError {
    DataError::Array {
        path: path.to_path_buf(),
        array: array.to_string(),
        reason: reason.into(),
    }
}

/// Reads the `.npy` data in `reader` (`array` names it in errors).
fn read_array<R: Read>(reader: R, path: &Path, array: &str) -> Result<Array, DataError> {
    let err = |e: std::io::Error| array_err(path, array, e.to_string());
    let npy = NpyFile::new(reader).map_err(err)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let DType::Plain(ts) = npy.dtype() else {
        return Err(array_err(path, array, "a structured array, not numbers"));
    };
    let descr = ts.to_string();
    let kind = descr.trim_start_matches(['<', '>', '|', '=']);
    let data: Vec<f32> = match kind {
        "f4" => npy.into_vec::<f32>().map_err(err)?,
        "f8" => npy
            .into_vec::<f64>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "i1" => npy
            .into_vec::<i8>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "u1" => npy
            .into_vec::<u8>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "i2" => npy
            .into_vec::<i16>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "u2" => npy
            .into_vec::<u16>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "i4" => npy
            .into_vec::<i32>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "u4" => npy
            .into_vec::<u32>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "i8" => npy
            .into_vec::<i64>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "u8" => npy
            .into_vec::<u64>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "b1" => npy
            .into_vec::<bool>()
            .map_err(err)?
            .into_iter()
            .map(|v| f32::from(u8::from(v)))
            .collect(),
        other => {
            return Err(array_err(
                path,
                array,
                format!("unsupported dtype {other:?} (numbers and bools only)"),
            ));
        }
    };
    let numel: usize = shape.iter().product();
    if data.len() != numel {
        return Err(array_err(
            path,
            array,
            format!(
                "shape {shape:?} needs {numel} elements, the file holds {}",
                data.len()
            ),
        ));
    }
    Ok((shape, data))
}

/// Reads a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Array, DataError> {
    let path = path.as_ref();
    let f = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_array(std::io::BufReader::new(f), path, "the array")
}

/// Reads array `name` of a `.npz` archive.
pub fn read_npz(path: impl AsRef<Path>, name: &str) -> Result<Array, DataError> {
    let path = path.as_ref();
    let f = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| array_err(path, name, format!("not a .npz archive: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.strip_suffix(".npy"))
        .map(str::to_string)
        .collect();
    let entry = zip.by_name(&format!("{name}.npy")).map_err(|_| {
        let mut names = names.clone();
        names.sort();
        array_err(
            path,
            name,
            format!("no such array (the archive holds: {})", names.join(", ")),
        )
    })?;
    read_array(entry, path, name)
}

/// What the second array of a data set holds (neon's `ArrayIterator` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Class ids in `0..nclass` (made one-hot, neon's `make_onehot=True`).
    Classes { nclass: usize },
    /// Real values, one row per example (regression, `make_onehot=False`).
    Real,
}

/// A data set from features `x` (`[N, feature…]`) and targets `y` (`[N]` or `[N, 1]`
/// class ids, or `[N, width…]` real values), checked against each other; `name` says
/// where they came from in errors. `feature_shape` (neon's `lshape`) reshapes each
/// example; by default it is `x`'s shape without the first axis.
pub fn dataset_from_arrays(
    x: Array,
    y: Array,
    targets: Targets,
    feature_shape: Option<Vec<usize>>,
    path: &Path,
) -> Result<Dataset, DataError> {
    let ((xs, xd), (ys, yd)) = (x, y);
    let n = *xs
        .first()
        .ok_or_else(|| array_err(path, "x", "a scalar, not examples"))?;
    let f = xs[1..].iter().product::<usize>();
    let shape = feature_shape.unwrap_or_else(|| xs[1..].to_vec());
    if shape.iter().product::<usize>() != f || f == 0 {
        return Err(array_err(
            path,
            "x",
            format!(
                "examples of shape {:?} do not fit the feature shape {shape:?}",
                &xs[1..]
            ),
        ));
    }
    if ys.first() != Some(&n) {
        return Err(array_err(
            path,
            "y",
            format!("shape {ys:?} has not the {n} rows of x (shape {xs:?})"),
        ));
    }
    match targets {
        Targets::Classes { nclass } => {
            if ys.len() > 2 || (ys.len() == 2 && ys[1] != 1) {
                return Err(array_err(
                    path,
                    "y",
                    format!("class ids must have shape [{n}] or [{n}, 1], not {ys:?}"),
                ));
            }
            let mut labels = Vec::with_capacity(n);
            for (i, &v) in yd.iter().enumerate() {
                if v.fract() != 0.0 || v < 0.0 || v >= nclass as f32 {
                    return Err(array_err(
                        path,
                        "y",
                        format!("row {i}: {v} is not a class id in 0..{nclass}"),
                    ));
                }
                labels.push(v as i32);
            }
            Dataset::new(xd, labels, nclass, shape)
        }
        Targets::Real => {
            let width = ys[1..].iter().product::<usize>();
            Dataset::with_targets(xd, yd, width.max(1), shape)
        }
    }
}
