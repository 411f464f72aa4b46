//! Shape and dtype rules: the type of every op's result, or the error that explains why
//! the operands do not fit.

use super::MAX_TENSOR_BYTES;
use super::error::{ErrorKind, GraphError};
use super::op::{Op, ReduceOp, Window};
use super::types::TensorType;
use xenon_runtime::DType;

mod elementwise;
mod index;
mod leaves;
mod matmul;
mod movement;
mod reduce;
mod window;

type Result<T> = std::result::Result<T, GraphError>;

/// The result type of `op` applied to operands of types `operands`.
///
/// Leaves (`input`, `parameter`, `constant`) and random ops have no type to infer: their
/// type is `declared`, which is checked (no zero-sized dimension, a float dtype for random
/// ops, a constant's value count). For every other op `declared` is ignored.
///
/// Every result, declared or inferred, has a size in bytes that fits in `usize`, and
/// attribute values too large for the shape arithmetic are errors (never an overflow).
pub fn infer(
    op: &Op,
    operands: &[TensorType],
    declared: Option<&TensorType>,
) -> Result<TensorType> {
    let t = infer_unchecked(op, operands, declared)?;
    if checked_size_bytes(&t).is_none_or(|b| b > MAX_TENSOR_BYTES) {
        return Err(GraphError::new(
            ErrorKind::TooLarge,
            op.name(),
            operands,
            format!("the result type {t} is too large: more than 1 TiB, the limit on one tensor"),
        ));
    }
    Ok(t)
}

/// The element count of `shape`, unless it overflows `usize`.
fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The size in bytes of a dense buffer of type `t`, unless it overflows `usize`.
fn checked_size_bytes(t: &TensorType) -> Option<usize> {
    checked_numel(&t.shape)?.checked_mul(t.dtype.size_bytes())
}

/// What every shape rule needs: the op's name, its operands' types and its declared type,
/// and the checks they share (each error names the op and the operand types).
pub(super) struct Rule<'a> {
    name: String,
    operands: &'a [TensorType],
    declared: Option<&'a TensorType>,
}

impl Rule<'_> {
    fn err(&self, kind: ErrorKind, reason: String) -> GraphError {
        GraphError::new(kind, self.name.clone(), self.operands, reason)
    }

    /// Exactly `n` operands.
    fn count(&self, n: usize) -> Result<()> {
        if self.operands.len() == n {
            Ok(())
        } else {
            Err(self.err(
                ErrorKind::OperandCount,
                format!("expects {n} operand(s), got {}", self.operands.len()),
            ))
        }
    }

    /// No zero-sized dimension, and an element count that fits `usize`.
    fn nonzero(&self, shape: &[usize]) -> Result<()> {
        if shape.contains(&0) {
            Err(self.err(
                ErrorKind::BadAttribute,
                format!("zero-sized dimension in shape {shape:?}"),
            ))
        } else if checked_numel(shape).is_none() {
            Err(self.err(
                ErrorKind::TooLarge,
                format!("shape {shape:?} is too large: its element count overflows"),
            ))
        } else {
            Ok(())
        }
    }

    /// `what` overflowed the shape arithmetic.
    fn too_large(&self, what: &str) -> GraphError {
        self.err(ErrorKind::BadAttribute, format!("{what} overflows"))
    }

    /// A floating-point operand.
    fn float(&self, t: &TensorType) -> Result<()> {
        if t.dtype.is_float() {
            Ok(())
        } else {
            Err(self.err(
                ErrorKind::DTypeMismatch,
                format!("needs a floating-point operand, got {}", t.dtype),
            ))
        }
    }

    /// Two operands of the same dtype and shape.
    fn same(&self, a: &TensorType, b: &TensorType) -> Result<()> {
        if a.dtype != b.dtype {
            return Err(self.err(
                ErrorKind::DTypeMismatch,
                format!("operand dtypes differ: {} vs {}", a.dtype, b.dtype),
            ));
        }
        if a.shape != b.shape {
            return Err(self.err(
                ErrorKind::ShapeMismatch,
                format!("operand shapes differ: {:?} vs {:?}", a.shape, b.shape),
            ));
        }
        Ok(())
    }

    /// `axis` inside a rank-`rank` shape.
    fn axis_in(&self, axis: usize, rank: usize) -> Result<()> {
        if axis < rank {
            Ok(())
        } else {
            Err(self.err(
                ErrorKind::AxisOutOfRange,
                format!("axis {axis} is out of range for rank {rank}"),
            ))
        }
    }

    /// One entry of `what` per axis.
    fn per_axis(&self, what: &str, v: &[usize], rank: usize) -> Result<()> {
        if v.len() == rank {
            Ok(())
        } else {
            Err(self.err(
                ErrorKind::BadAttribute,
                format!("{what} has {} entries for rank {rank}", v.len()),
            ))
        }
    }
}

/// [`infer`] without the final check of the result's size: the rule of the op's family.
fn infer_unchecked(
    op: &Op,
    operands: &[TensorType],
    declared: Option<&TensorType>,
) -> Result<TensorType> {
    let r = Rule {
        name: op.name(),
        operands,
        declared,
    };
    match op {
        Op::Input { .. }
        | Op::Parameter { .. }
        | Op::Constant { .. }
        | Op::RandomUniform { .. }
        | Op::RandomNormal { .. } => leaves::rule(&r, op),
        Op::Unary { .. }
        | Op::Binary { .. }
        | Op::Compare { .. }
        | Op::Select
        | Op::Cast { .. }
        | Op::ScaleGrad { .. }
        | Op::AllReduce => elementwise::rule(&r, op),
        Op::Reduce { .. } | Op::ArgMax { .. } => reduce::rule(&r, op),
        Op::Reshape { .. }
        | Op::Permute { .. }
        | Op::Broadcast { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. } => movement::rule(&r, op),
        Op::MatMul { .. } => matmul::rule(&r, op),
        Op::Im2Col { .. } | Op::Col2Im { .. } => window::rule(&r, op),
        Op::Gather | Op::ScatterAdd { .. } => index::rule(&r, op),
    }
}

/// True when numpy broadcasting takes `from` to `to` (axes aligned to the right, each equal
/// or 1, `to` at least as long).
pub fn broadcastable(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(&f, &t)| f == t || f == 1)
}

/// The numpy broadcast of two shapes, if they are compatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i < n - a.len() {
            1
        } else {
            a[i - (n - a.len())]
        };
        let db = if i < n - b.len() {
            1
        } else {
            b[i - (n - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}
