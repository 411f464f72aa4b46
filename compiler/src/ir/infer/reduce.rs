//! Shape rules of reductions: `reduce` and `arg_max`.

use super::*;

/// The result type of `op` (one of this family's ops).
pub(super) fn rule(r: &Rule<'_>, op: &Op) -> Result<TensorType> {
    match op {
        Op::Reduce {
            func,
            axes,
            keepdims,
        } => {
            r.count(1)?;
            let x = &r.operands[0];
            if *func == ReduceOp::Mean {
                r.float(x)?;
            }
            let mut seen = vec![false; x.rank()];
            for &a in axes {
                r.axis_in(a, x.rank())?;
                if seen[a] {
                    return Err(r.err(ErrorKind::AxisOutOfRange, format!("axis {a} is repeated")));
                }
                seen[a] = true;
            }
            let shape = x
                .shape
                .iter()
                .enumerate()
                .filter_map(|(i, &d)| match (seen[i], keepdims) {
                    (false, _) => Some(d),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect::<Vec<_>>();
            Ok(TensorType::new(x.dtype, shape))
        }
        Op::ArgMax { axis, keepdims } => {
            r.count(1)?;
            let x = &r.operands[0];
            r.axis_in(*axis, x.rank())?;
            let mut shape = x.shape.clone();
            if *keepdims {
                shape[*axis] = 1;
            } else {
                shape.remove(*axis);
            }
            Ok(TensorType::new(DType::I32, shape))
        }
        _ => unreachable!("{} is not in this family", op.name()),
    }
}
