//! Shape rules of `matmul` (batched, with transposes).

use super::*;

/// The result type of `op` (one of this family's ops).
pub(super) fn rule(r: &Rule<'_>, op: &Op) -> Result<TensorType> {
    match op {
        Op::MatMul { trans_a, trans_b } => {
            r.count(2)?;
            let (a, b) = (&r.operands[0], &r.operands[1]);
            if a.dtype != b.dtype {
                return Err(r.err(
                    ErrorKind::DTypeMismatch,
                    format!("operand dtypes differ: {} vs {}", a.dtype, b.dtype),
                ));
            }
            if a.dtype == DType::I32 {
                r.float(a)?;
            }
            if a.rank() < 2 || b.rank() < 2 {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    "operands need rank 2 or more".into(),
                ));
            }
            let (ra, rb) = (a.rank(), b.rank());
            let (m, ka) = if *trans_a {
                (a.shape[ra - 1], a.shape[ra - 2])
            } else {
                (a.shape[ra - 2], a.shape[ra - 1])
            };
            let (kb, n) = if *trans_b {
                (b.shape[rb - 1], b.shape[rb - 2])
            } else {
                (b.shape[rb - 2], b.shape[rb - 1])
            };
            if ka != kb {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    format!("inner dimensions differ: {ka} vs {kb}"),
                ));
            }
            let (ba, bb) = (&a.shape[..ra - 2], &b.shape[..rb - 2]);
            let batch = if ba == bb || bb.is_empty() {
                ba.to_vec()
            } else if ba.is_empty() {
                bb.to_vec()
            } else {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    format!("batch dimensions differ: {ba:?} vs {bb:?}"),
                ));
            };
            let mut shape = batch;
            shape.extend([m, n]);
            Ok(TensorType::new(a.dtype, shape))
        }
        _ => unreachable!("{} is not in this family", op.name()),
    }
}
