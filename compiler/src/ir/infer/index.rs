//! Shape rules of indexing: `gather` and `scatter_add`.

use super::*;

/// The result type of `op` (one of this family's ops).
pub(super) fn rule(r: &Rule<'_>, op: &Op) -> Result<TensorType> {
    match op {
        Op::Gather => {
            r.count(2)?;
            let (data, idx) = (&r.operands[0], &r.operands[1]);
            if idx.dtype != DType::I32 {
                return Err(r.err(
                    ErrorKind::DTypeMismatch,
                    format!("indices must be i32, got {}", idx.dtype),
                ));
            }
            if data.rank() == 0 {
                return Err(r.err(ErrorKind::ShapeMismatch, "data needs rank 1 or more".into()));
            }
            let mut shape = idx.shape.clone();
            shape.extend_from_slice(&data.shape[1..]);
            Ok(TensorType::new(data.dtype, shape))
        }
        Op::ScatterAdd { rows } => {
            r.count(2)?;
            let (upd, idx) = (&r.operands[0], &r.operands[1]);
            if idx.dtype != DType::I32 {
                return Err(r.err(
                    ErrorKind::DTypeMismatch,
                    format!("indices must be i32, got {}", idx.dtype),
                ));
            }
            if *rows == 0 {
                return Err(r.err(ErrorKind::BadAttribute, "rows must be at least 1".into()));
            }
            if upd.rank() < idx.rank() || upd.shape[..idx.rank()] != idx.shape[..] {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    format!(
                        "updates {:?} must start with the indices' shape {:?}",
                        upd.shape, idx.shape
                    ),
                ));
            }
            let mut shape = vec![*rows];
            shape.extend_from_slice(&upd.shape[idx.rank()..]);
            Ok(TensorType::new(upd.dtype, shape))
        }
        _ => unreachable!("{} is not in this family", op.name()),
    }
}
