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

/// The longest `.npy` header accepted, bytes (numpy's own reader refuses headers above
/// 10,000 bytes by default).
pub const MAX_NPY_HEADER: usize = 65_536;

/// The deepest bracket nesting accepted in a `.npy` header: the header dict, a structured
/// dtype's list of field tuples and a field's shape.
const MAX_HEADER_DEPTH: usize = 4;

/// Opens the `.npy` data in `reader` after checking its preamble: the magic string, the
/// version, a header length of at most [`MAX_NPY_HEADER`] that the data holds, and a header
/// nested at most [`MAX_HEADER_DEPTH`] brackets deep (npyz's header parser takes time
/// exponential in the nesting: a 120-byte header of nested tuples took seconds).
fn open_npy<R: Read>(mut reader: R) -> std::io::Result<NpyFile<impl Read>> {
    use std::io::{Error, ErrorKind};
    let bad = |m: String| Error::new(ErrorKind::InvalidData, m);
    let mut pre = [0u8; 8];
    reader
        .read_exact(&mut pre)
        .map_err(|_| bad("not a .npy file: truncated magic string".into()))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file: wrong magic string".into()));
    }
    let mut preamble = pre.to_vec();
    let len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            reader
                .read_exact(&mut b)
                .map_err(|_| bad("truncated header length".into()))?;
            preamble.extend_from_slice(&b);
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            reader
                .read_exact(&mut b)
                .map_err(|_| bad("truncated header length".into()))?;
            preamble.extend_from_slice(&b);
            u32::from_le_bytes(b) as usize
        }
        v => return Err(bad(format!("unsupported .npy format version {v}"))),
    };
    if len > MAX_NPY_HEADER {
        return Err(bad(format!(
            "the header is {len} bytes long, more than the {MAX_NPY_HEADER} accepted"
        )));
    }
    let start = preamble.len();
    (&mut reader).take(len as u64).read_to_end(&mut preamble)?;
    if preamble.len() - start < len {
        return Err(bad(format!(
            "truncated header: {len} bytes announced, {} present",
            preamble.len() - start
        )));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for &b in &preamble[start..] {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_HEADER_DEPTH {
        return Err(bad(format!(
            "the header nests brackets {deepest} deep (at most {MAX_HEADER_DEPTH} are read)"
        )));
    }
    NpyFile::new(std::io::Cursor::new(preamble).chain(reader))
}

/// Reads the `.npy` data in `reader` (`array` names it in errors).
fn read_array<R: Read>(reader: R, path: &Path, array: &str) -> Result<Array, DataError> {
    let err = |e: std::io::Error| array_err(path, array, e.to_string());
    let npy = open_npy(reader).map_err(err)?;
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
    open_array(path, None, |r, name| read_array(r, path, name))
}

/// Reads array `name` of a `.npz` archive.
pub fn read_npz(path: impl AsRef<Path>, name: &str) -> Result<Array, DataError> {
    let path = path.as_ref();
    open_array(path, Some(name), |r, name| read_array(r, path, name))
}

/// The shape of a `.npy` file (`array: None`) or of array `array` of a `.npz` archive,
/// from its header alone.
pub fn array_shape(path: impl AsRef<Path>, array: Option<&str>) -> Result<Vec<usize>, DataError> {
    let path = path.as_ref();
    open_array(path, array, |r, name| {
        let npy = open_npy(r).map_err(|e| array_err(path, name, e.to_string()))?;
        Ok(npy.shape().iter().map(|&d| d as usize).collect())
    })
}

/// Opens a `.npy` file (`array: None`) or array `array` of a `.npz` archive and passes
/// its `.npy` bytes and its name for errors to `f`.
fn open_array<T>(
    path: &Path,
    array: Option<&str>,
    f: impl FnOnce(&mut dyn Read, &str) -> Result<T, DataError>,
) -> Result<T, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = std::io::BufReader::new(file);
    let Some(name) = array else {
        return f(&mut { file }, "the array");
    };
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| array_err(path, name, format!("not a .npz archive: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.strip_suffix(".npy"))
        .map(str::to_string)
        .collect();
    let mut entry = zip.by_name(&format!("{name}.npy")).map_err(|_| {
        let mut names = names.clone();
        names.sort();
        array_err(
            path,
            name,
            format!("no such array (the archive holds: {})", names.join(", ")),
        )
    })?;
    f(&mut entry, name)
}

/// The `.npy` bytes of a little-endian f32 array of `shape` (what `np.save` writes for
/// `float32`). `data.len()` must equal the product of `shape`.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> std::io::Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let numel: usize = shape.iter().product();
    if numel != data.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("shape {shape:?} needs {numel} elements, got {}", data.len()),
        ));
    }
    let mut out = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()?;
    Ok(out)
}

/// Writes f32 arrays `(name, shape, data)` as a deflate-compressed `.npz` archive (what
/// `np.savez_compressed` writes), atomically: a temporary file renamed over `path`.
///
/// ```
/// use xenon_frontend::data::npy::{read_npz, write_npz};
/// let path = std::env::temp_dir().join(format!("doc-{}.npz", std::process::id()));
/// write_npz(&path, &[("x", &[2, 2], &[1.0, 2.0, 3.0, 4.0]), ("y", &[2], &[0.0, 1.0])]).unwrap();
/// assert_eq!(read_npz(&path, "x").unwrap(), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_npz(
    path: impl AsRef<Path>,
    arrays: &[(&str, &[usize], &[f32])],
) -> Result<(), DataError> {
    use std::io::Write;
    let path = path.as_ref();
    let io = |source: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, shape, data) in arrays {
        let bytes = npy_bytes(shape, data).map_err(|e| array_err(path, name, e.to_string()))?;
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| io(e.into()))?;
        zip.write_all(&bytes).map_err(io)?;
    }
    let bytes = zip.finish().map_err(|e| io(e.into()))?.into_inner();
    let tmp = path.with_extension("npz.tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
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
    named_dataset(x, y, ["x", "y"], targets, feature_shape, path)
}

/// [`dataset_from_arrays`] with the arrays' names for errors.
pub(crate) fn named_dataset(
    x: Array,
    y: Array,
    [x_name, y_name]: [&str; 2],
    targets: Targets,
    feature_shape: Option<Vec<usize>>,
    path: &Path,
) -> Result<Dataset, DataError> {
    let ((xs, xd), (ys, yd)) = (x, y);
    let n = *xs
        .first()
        .ok_or_else(|| array_err(path, x_name, "a scalar, not examples"))?;
    let f = xs[1..].iter().product::<usize>();
    let shape = feature_shape.unwrap_or_else(|| xs[1..].to_vec());
    if shape.iter().product::<usize>() != f || f == 0 {
        return Err(array_err(
            path,
            x_name,
            format!(
                "examples of shape {:?} do not fit the feature shape {shape:?}",
                &xs[1..]
            ),
        ));
    }
    if ys.first() != Some(&n) {
        return Err(array_err(
            path,
            y_name,
            format!(
                "shape {ys:?} has {} rows, {x_name} (shape {xs:?}) has {n}",
                ys.first().unwrap_or(&0)
            ),
        ));
    }
    match targets {
        Targets::Classes { nclass } => {
            if ys.len() > 2 || (ys.len() == 2 && ys[1] != 1) {
                return Err(array_err(
                    path,
                    y_name,
                    format!("class ids must have shape [{n}] or [{n}, 1], not {ys:?}"),
                ));
            }
            let mut labels = Vec::with_capacity(n);
            for (i, &v) in yd.iter().enumerate() {
                if v.fract() != 0.0 || v < 0.0 || v >= nclass as f32 {
                    return Err(array_err(
                        path,
                        y_name,
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
