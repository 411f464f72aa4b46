//! Shape rules of data movement: `reshape`, `permute`, `broadcast`, `slice`, `pad`, `concat`.

use super::*;

/// The result type of `op` (one of this family's ops).
pub(super) fn rule(r: &Rule<'_>, op: &Op) -> Result<TensorType> {
    match op {
        Op::Reshape { shape } => {
            r.count(1)?;
            r.nonzero(shape)?;
            let x = &r.operands[0];
            let n = checked_numel(shape);
            if n != Some(x.numel()) {
                let n = n.map_or("too many".to_string(), |n| n.to_string());
                return Err(r.err(
                    ErrorKind::BadReshape,
                    format!(
                        "cannot reshape {} elements {:?} into {n} elements {shape:?}",
                        x.numel(),
                        x.shape
                    ),
                ));
            }
            Ok(TensorType::new(x.dtype, shape.clone()))
        }
        Op::Permute { perm } => {
            r.count(1)?;
            let x = &r.operands[0];
            let mut seen = vec![false; x.rank()];
            if perm.len() != x.rank() {
                return Err(r.err(
                    ErrorKind::AxisOutOfRange,
                    format!(
                        "permutation {perm:?} has {} entries for rank {}",
                        perm.len(),
                        x.rank()
                    ),
                ));
            }
            for &p in perm {
                if p >= x.rank() || seen[p] {
                    return Err(r.err(
                        ErrorKind::AxisOutOfRange,
                        format!("{perm:?} is not a permutation of 0..{}", x.rank()),
                    ));
                }
                seen[p] = true;
            }
            Ok(TensorType::new(
                x.dtype,
                perm.iter().map(|&p| x.shape[p]).collect::<Vec<_>>(),
            ))
        }
        Op::Broadcast { shape } => {
            r.count(1)?;
            r.nonzero(shape)?;
            let x = &r.operands[0];
            if !broadcastable(&x.shape, shape) {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    format!("cannot broadcast {:?} to {shape:?}", x.shape),
                ));
            }
            Ok(TensorType::new(x.dtype, shape.clone()))
        }
        Op::Slice { start, end, step } => {
            r.count(1)?;
            let x = &r.operands[0];
            r.per_axis("start", start, x.rank())?;
            r.per_axis("end", end, x.rank())?;
            r.per_axis("step", step, x.rank())?;
            let mut shape = Vec::with_capacity(x.rank());
            for i in 0..x.rank() {
                if step[i] == 0 || start[i] >= end[i] || end[i] > x.shape[i] {
                    return Err(r.err(
                        ErrorKind::BadAttribute,
                        format!(
                            "axis {i}: slice {}..{} step {} is empty or outside 0..{}",
                            start[i], end[i], step[i], x.shape[i]
                        ),
                    ));
                }
                shape.push((end[i] - start[i]).div_ceil(step[i]));
            }
            Ok(TensorType::new(x.dtype, shape))
        }
        Op::Pad {
            low,
            high,
            interior,
            ..
        } => {
            r.count(1)?;
            let x = &r.operands[0];
            r.per_axis("low", low, x.rank())?;
            r.per_axis("high", high, x.rank())?;
            r.per_axis("interior", interior, x.rank())?;
            let shape = (0..x.rank())
                .map(|i| {
                    (x.shape[i] - 1)
                        .checked_mul(interior[i])
                        .and_then(|n| n.checked_add(x.shape[i]))
                        .and_then(|n| n.checked_add(low[i]))
                        .and_then(|n| n.checked_add(high[i]))
                        .ok_or_else(|| r.too_large(&format!("the padded size of axis {i}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(TensorType::new(x.dtype, shape))
        }
        Op::Concat { axis } => {
            if r.operands.is_empty() {
                return Err(r.err(
                    ErrorKind::OperandCount,
                    "expects at least one operand".into(),
                ));
            }
            let first = &r.operands[0];
            r.axis_in(*axis, first.rank())?;
            let mut shape = first.shape.clone();
            for o in &r.operands[1..] {
                if o.dtype != first.dtype {
                    return Err(r.err(
                        ErrorKind::DTypeMismatch,
                        format!("operand dtypes differ: {} vs {}", first.dtype, o.dtype),
                    ));
                }
                let fits = o.rank() == first.rank()
                    && (0..first.rank()).all(|i| i == *axis || o.shape[i] == first.shape[i]);
                if !fits {
                    return Err(r.err(
                        ErrorKind::ShapeMismatch,
                        format!(
                            "shapes {:?} and {:?} differ outside axis {axis}",
                            first.shape, o.shape
                        ),
                    ));
                }
                shape[*axis] = shape[*axis]
                    .checked_add(o.shape[*axis])
                    .ok_or_else(|| r.too_large(&format!("the size of axis {axis}")))?;
            }
            Ok(TensorType::new(first.dtype, shape))
        }
        _ => unreachable!("{} is not in this family", op.name()),
    }
}
