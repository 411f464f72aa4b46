//! Shape rules of elementwise ops: `unary`, `binary`, `compare`, `select`, `cast`.

use super::*;

/// The result type of `op` (one of this family's ops).
pub(super) fn rule(r: &Rule<'_>, op: &Op) -> Result<TensorType> {
    match op {
        Op::Unary { func } => {
            r.count(1)?;
            if func.float_only() {
                r.float(&r.operands[0])?;
            }
            Ok(r.operands[0].clone())
        }
        Op::Binary { func } => {
            r.count(2)?;
            r.same(&r.operands[0], &r.operands[1])?;
            if func.float_only() {
                r.float(&r.operands[0])?;
            }
            Ok(r.operands[0].clone())
        }
        Op::Compare { .. } => {
            r.count(2)?;
            r.same(&r.operands[0], &r.operands[1])?;
            Ok(r.operands[0].clone())
        }
        Op::Select => {
            r.count(3)?;
            r.same(&r.operands[1], &r.operands[2])?;
            if r.operands[0].shape != r.operands[1].shape {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    format!(
                        "condition shape {:?} differs from value shape {:?}",
                        r.operands[0].shape, r.operands[1].shape
                    ),
                ));
            }
            Ok(r.operands[1].clone())
        }
        Op::Cast { to } => {
            r.count(1)?;
            Ok(TensorType::new(*to, r.operands[0].shape.clone()))
        }
        Op::ScaleGrad { factor } => {
            r.count(1)?;
            r.float(&r.operands[0])?;
            if !factor.is_finite() {
                return Err(r.err(
                    ErrorKind::BadAttribute,
                    format!("the gradient factor {factor} is not finite"),
                ));
            }
            Ok(r.operands[0].clone())
        }
        Op::AllReduce => {
            r.count(1)?;
            r.float(&r.operands[0])?;
            Ok(r.operands[0].clone())
        }
        _ => unreachable!("{} is not in this family", op.name()),
    }
}
