//! Shape rules of leaves (`input`, `parameter`, `constant`) and random ops: their declared
//! type, checked.

use super::*;

/// The result type of `op` (one of this family's ops).
pub(super) fn rule(r: &Rule<'_>, op: &Op) -> Result<TensorType> {
    match op {
        Op::Input { .. } | Op::Parameter { .. } | Op::Constant { .. } => {
            r.count(0)?;
            let t = r
                .declared
                .ok_or_else(|| r.err(ErrorKind::BadAttribute, "needs a declared type".into()))?;
            r.nonzero(&t.shape)?;
            if let Op::Constant { value } = op {
                let n = value.values.len();
                if n != 1 && n != t.numel() {
                    return Err(r.err(
                        ErrorKind::BadAttribute,
                        format!(
                            "constant of shape {:?} needs 1 or {} values, got {n}",
                            t.shape,
                            t.numel()
                        ),
                    ));
                }
            }
            Ok(t.clone())
        }
        Op::RandomUniform { .. } | Op::RandomNormal { .. } => {
            if r.operands.len() > 1 {
                return Err(r.err(
                    ErrorKind::OperandCount,
                    format!("expects 0 or 1 operands, got {}", r.operands.len()),
                ));
            }
            if let Some(c) = r.operands.first()
                && (c.dtype != DType::I32 || c.rank() != 0)
            {
                return Err(r.err(
                    ErrorKind::DTypeMismatch,
                    format!("the counter operand must be an i32 scalar, got {c}"),
                ));
            }
            let t = r
                .declared
                .ok_or_else(|| r.err(ErrorKind::BadAttribute, "needs a declared type".into()))?;
            r.nonzero(&t.shape)?;
            r.float(t)?;
            Ok(t.clone())
        }
        _ => unreachable!("{} is not in this family", op.name()),
    }
}
