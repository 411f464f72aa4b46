//! Host tensors: a shape, a dtype and contiguous row-major data.

use crate::DType;
use crate::element::{Element, cast_slice};
use crate::with_dtype;
use serde::{Deserialize, Serialize};

/// Why a tensor could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    /// The data length differs from the product of the shape.
    #[error("tensor of shape {shape:?} needs {expected} elements, got {got}")]
    Length {
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
}

/// Row-major element storage, one variant per [`DType`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dtype", content = "values", rename_all = "lowercase")]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
}

impl TensorData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::I32(_) => DType::I32,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I32(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` zeros of `dtype`.
    pub fn zeros(dtype: DType, len: usize) -> TensorData {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; len]),
            DType::F64 => TensorData::F64(vec![0.0; len]),
            DType::I32 => TensorData::I32(vec![0; len]),
        }
    }
}

/// A dense tensor in host memory, row-major (the last axis is contiguous).
///
/// A rank-0 tensor (shape `[]`) holds one scalar.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
    /// Identifies the contents: see [`Tensor::stamp`].
    #[serde(skip, default = "fresh_stamp")]
    stamp: u64,
}

/// Tensors are equal when their shapes and elements are (whatever their stamps).
impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

/// A stamp no tensor has had before in this process.
pub(crate) fn fresh_stamp() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// True when no element is NaN or infinite. Branch-free per element (the exponent bits are
/// tested and OR-ed), so it vectorizes; checked per chunk of 4,096.
pub fn all_finite_f32(v: &[f32]) -> bool {
    v.chunks(1 << 12).all(|c| {
        c.iter().fold(0u32, |acc, x| {
            acc | u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000)
        }) == 0
    })
}

/// The first element of `v` that is NaN or infinite, if any (the branch-free
/// [`all_finite_f32`] scan first; the position is looked for only when there is one).
pub fn first_non_finite_f32(v: &[f32]) -> Option<usize> {
    if all_finite_f32(v) {
        None
    } else {
        v.iter().position(|x| !x.is_finite())
    }
}

/// The f64 version of [`first_non_finite_f32`].
pub fn first_non_finite_f64(v: &[f64]) -> Option<usize> {
    if all_finite_f64(v) {
        None
    } else {
        v.iter().position(|x| !x.is_finite())
    }
}

/// The f64 version of [`all_finite_f32`].
pub fn all_finite_f64(v: &[f64]) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    v.chunks(1 << 12).all(|c| {
        c.iter()
            .fold(0u64, |acc, x| acc | u64::from(x.to_bits() & EXP == EXP))
            == 0
    })
}

/// Number of elements of a shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// Builds a tensor, checking that `data` has `product(shape)` elements.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, TensorError> {
        let expected = numel(&shape);
        if data.len() != expected {
            return Err(TensorError::Length {
                shape,
                expected,
                got: data.len(),
            });
        }
        Ok(Tensor {
            shape,
            data,
            stamp: fresh_stamp(),
        })
    }

    /// An f32 tensor.
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, TensorData::F32(data))
    }

    /// An f64 tensor.
    pub fn from_f64(shape: Vec<usize>, data: Vec<f64>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, TensorData::F64(data))
    }

    /// An i32 tensor.
    pub fn from_i32(shape: Vec<usize>, data: Vec<i32>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, TensorData::I32(data))
    }

    /// A tensor of `dtype` with every element equal to `value` (rounded to the dtype; for
    /// `I32` the value is truncated toward zero, saturating).
    pub fn full(dtype: DType, shape: Vec<usize>, value: f64) -> Tensor {
        let n = numel(&shape);
        let data = with_dtype!(dtype, T => T::storage(vec![T::from_f64(value); n]));
        Tensor {
            shape,
            data,
            stamp: fresh_stamp(),
        }
    }

    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Tensor {
        Tensor::full(dtype, shape, 0.0)
    }

    /// Converts f64 values to a tensor of `dtype` (f32 rounds to nearest; i32 truncates
    /// toward zero, saturating, NaN to 0).
    pub fn from_f64_as(
        dtype: DType,
        shape: Vec<usize>,
        values: &[f64],
    ) -> Result<Tensor, TensorError> {
        let data = cast_slice(values, dtype);
        Tensor::new(shape, data)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Mutable storage (the length cannot change through it). Gives the tensor a new
    /// [`stamp`](Tensor::stamp).
    pub fn data_mut(&mut self) -> &mut TensorData {
        self.stamp = fresh_stamp();
        &mut self.data
    }

    /// A number that identifies the tensor's contents within this process: new for every
    /// tensor built and after every [`data_mut`](Tensor::data_mut), kept by clones and
    /// reshapes (same elements). Two tensors with the same stamp hold the same elements,
    /// so work derived from a tensor's elements (a packed copy of a weight matrix) can be
    /// kept while its stamp stays the same.
    ///
    /// ```
    /// use xenon_runtime::Tensor;
    /// let mut w = Tensor::from_f32(vec![2], vec![1.0, 2.0]).unwrap();
    /// let copy = w.clone();
    /// assert_eq!(copy.stamp(), w.stamp());
    /// w.data_mut();
    /// assert_ne!(copy.stamp(), w.stamp());
    /// ```
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// Consumes the tensor, returning shape and storage.
    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    /// The f32 elements, if this is an f32 tensor.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The f64 elements, if this is an f64 tensor.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            TensorData::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The i32 elements, if this is an i32 tensor.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            TensorData::I32(v) => Some(v),
            _ => None,
        }
    }

    /// Every element widened to f64 (exact for all three dtypes).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F64(v) => v.clone(),
            TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// True when no element is NaN or infinite (always for i32).
    pub fn all_finite(&self) -> bool {
        match &self.data {
            TensorData::F32(v) => all_finite_f32(v),
            TensorData::F64(v) => all_finite_f64(v),
            TensorData::I32(_) => true,
        }
    }

    /// The single element of a one-element tensor, as f64.
    pub fn scalar_f64(&self) -> Option<f64> {
        (self.numel() == 1).then(|| self.to_f64_vec()[0])
    }

    /// A copy converted to `dtype` with [`Element::cast`] (f32→f64 exact, f64→f32 rounded
    /// once, float→i32 truncated toward zero, saturating, NaN to 0; i32→float rounded to
    /// nearest). A tensor already of `dtype` is cloned as it is.
    pub fn cast(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let data = match &self.data {
            TensorData::F32(v) => cast_slice(v, dtype),
            TensorData::F64(v) => cast_slice(v, dtype),
            TensorData::I32(v) => cast_slice(v, dtype),
        };
        Tensor {
            shape: self.shape.clone(),
            data,
            stamp: fresh_stamp(),
        }
    }

    /// A tensor with the same data and a new shape of the same element count.
    pub fn reshaped(mut self, shape: Vec<usize>) -> Result<Tensor, TensorError> {
        let expected = numel(&shape);
        if expected != self.numel() {
            return Err(TensorError::Length {
                shape,
                expected,
                got: self.numel(),
            });
        }
        self.shape = shape;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_checked() {
        let e = Tensor::from_f32(vec![2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tensor of shape [2, 3] needs 6 elements, got 5"
        );
        assert!(Tensor::from_i32(vec![], vec![7]).is_ok());
    }

    #[test]
    fn finiteness_checks_find_every_kind_of_non_finite_value() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut v = vec![1.0f32; 10_000];
            assert!(all_finite_f32(&v));
            v[7_777] = bad;
            assert!(!all_finite_f32(&v));
        }
        let mut w = vec![f64::MAX, f64::MIN_POSITIVE, -0.0];
        assert!(all_finite_f64(&w));
        w.push(f64::NAN);
        assert!(!all_finite_f64(&w));
    }

    #[test]
    fn casts_follow_the_documented_rules() {
        let t = Tensor::from_f64(vec![4], vec![1.5, -1.5, f64::NAN, 1e12]).unwrap();
        assert_eq!(t.cast(DType::I32).as_i32().unwrap(), &[1, -1, 0, i32::MAX]);
        assert_eq!(t.cast(DType::F32).as_f32().unwrap()[0], 1.5);
    }
}
