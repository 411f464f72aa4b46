//! Tensor types: a static shape and an element type.

use serde::{Deserialize, Serialize};
use std::fmt;
pub use xenon_runtime::DType;

/// The static type of a value in the IR: every dimension is known at compile time
/// (batch size included) and no dimension is zero.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorType {
    /// Dimensions, outermost first (row-major). Empty for a scalar.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
}

impl TensorType {
    /// A tensor type.
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> TensorType {
        TensorType {
            shape: shape.into(),
            dtype,
        }
    }

    /// A rank-0 (scalar) type.
    pub fn scalar(dtype: DType) -> TensorType {
        TensorType::new(dtype, Vec::new())
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size in bytes of a dense buffer of this type.
    pub fn size_bytes(&self) -> usize {
        self.numel() * self.dtype.size_bytes()
    }
}

impl fmt::Display for TensorType {
    /// `f32[128, 784]`; a scalar prints as `f32[]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The row-major multi-index of flat index `i` in `extents`.
///
/// ```
/// assert_eq!(xenon_compiler::ir::unravel(7, &[2, 3, 2]), vec![1, 0, 1]);
/// ```
pub fn unravel(mut i: usize, extents: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; extents.len()];
    for d in (0..extents.len()).rev() {
        idx[d] = i % extents[d];
        i /= extents[d];
    }
    idx
}

/// Row-major strides (in elements) of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
