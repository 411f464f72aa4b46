//! Shape and dtype rules: the type of every op's result, or the error that explains why
//! the operands do not fit.

use super::error::{ErrorKind, GraphError};
use super::op::{Op, ReduceOp, Window};
use super::types::TensorType;
use xenon_runtime::DType;

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
    if checked_size_bytes(&t).is_none() {
        return Err(GraphError::new(
            ErrorKind::BadAttribute,
            op.name(),
            operands,
            format!("the result type {t} is too large: its size in bytes overflows"),
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

/// [`infer`] without the final check of the result's size.
fn infer_unchecked(
    op: &Op,
    operands: &[TensorType],
    declared: Option<&TensorType>,
) -> Result<TensorType> {
    let name = op.name();
    let err = |kind, reason: String| GraphError::new(kind, name.clone(), operands, reason);
    let count = |n: usize| -> Result<()> {
        if operands.len() == n {
            Ok(())
        } else {
            Err(err(
                ErrorKind::OperandCount,
                format!("expects {n} operand(s), got {}", operands.len()),
            ))
        }
    };
    let nonzero = |shape: &[usize]| -> Result<()> {
        if shape.contains(&0) {
            Err(err(
                ErrorKind::BadAttribute,
                format!("zero-sized dimension in shape {shape:?}"),
            ))
        } else if checked_numel(shape).is_none() {
            Err(err(
                ErrorKind::BadAttribute,
                format!("shape {shape:?} has too many elements"),
            ))
        } else {
            Ok(())
        }
    };
    let too_large = |what: &str| err(ErrorKind::BadAttribute, format!("{what} overflows"));
    let float = |t: &TensorType| -> Result<()> {
        if t.dtype.is_float() {
            Ok(())
        } else {
            Err(err(
                ErrorKind::DTypeMismatch,
                format!("needs a floating-point operand, got {}", t.dtype),
            ))
        }
    };
    let same = |a: &TensorType, b: &TensorType| -> Result<()> {
        if a.dtype != b.dtype {
            return Err(err(
                ErrorKind::DTypeMismatch,
                format!("operand dtypes differ: {} vs {}", a.dtype, b.dtype),
            ));
        }
        if a.shape != b.shape {
            return Err(err(
                ErrorKind::ShapeMismatch,
                format!("operand shapes differ: {:?} vs {:?}", a.shape, b.shape),
            ));
        }
        Ok(())
    };
    let axis_in = |axis: usize, rank: usize| -> Result<()> {
        if axis < rank {
            Ok(())
        } else {
            Err(err(
                ErrorKind::AxisOutOfRange,
                format!("axis {axis} is out of range for rank {rank}"),
            ))
        }
    };
    let per_axis = |what: &str, v: &[usize], rank: usize| -> Result<()> {
        if v.len() == rank {
            Ok(())
        } else {
            Err(err(
                ErrorKind::BadAttribute,
                format!("{what} has {} entries for rank {rank}", v.len()),
            ))
        }
    };

    match op {
        Op::Input { .. } | Op::Parameter { .. } | Op::Constant { .. } => {
            count(0)?;
            let t = declared
                .ok_or_else(|| err(ErrorKind::BadAttribute, "needs a declared type".into()))?;
            nonzero(&t.shape)?;
            if let Op::Constant { value } = op {
                let n = value.values.len();
                if n != 1 && n != t.numel() {
                    return Err(err(
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
            if operands.len() > 1 {
                return Err(err(
                    ErrorKind::OperandCount,
                    format!("expects 0 or 1 operands, got {}", operands.len()),
                ));
            }
            if let Some(c) = operands.first()
                && (c.dtype != DType::I32 || c.rank() != 0)
            {
                return Err(err(
                    ErrorKind::DTypeMismatch,
                    format!("the counter operand must be an i32 scalar, got {c}"),
                ));
            }
            let t = declared
                .ok_or_else(|| err(ErrorKind::BadAttribute, "needs a declared type".into()))?;
            nonzero(&t.shape)?;
            float(t)?;
            Ok(t.clone())
        }
        Op::Unary { func } => {
            count(1)?;
            if func.float_only() {
                float(&operands[0])?;
            }
            Ok(operands[0].clone())
        }
        Op::Binary { func } => {
            count(2)?;
            same(&operands[0], &operands[1])?;
            if func.float_only() {
                float(&operands[0])?;
            }
            Ok(operands[0].clone())
        }
        Op::Compare { .. } => {
            count(2)?;
            same(&operands[0], &operands[1])?;
            Ok(operands[0].clone())
        }
        Op::Select => {
            count(3)?;
            same(&operands[1], &operands[2])?;
            if operands[0].shape != operands[1].shape {
                return Err(err(
                    ErrorKind::ShapeMismatch,
                    format!(
                        "condition shape {:?} differs from value shape {:?}",
                        operands[0].shape, operands[1].shape
                    ),
                ));
            }
            Ok(operands[1].clone())
        }
        Op::Cast { to } => {
            count(1)?;
            Ok(TensorType::new(*to, operands[0].shape.clone()))
        }
        Op::Reduce {
            func,
            axes,
            keepdims,
        } => {
            count(1)?;
            let x = &operands[0];
            if *func == ReduceOp::Mean {
                float(x)?;
            }
            let mut seen = vec![false; x.rank()];
            for &a in axes {
                axis_in(a, x.rank())?;
                if seen[a] {
                    return Err(err(
                        ErrorKind::AxisOutOfRange,
                        format!("axis {a} is repeated"),
                    ));
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
            count(1)?;
            let x = &operands[0];
            axis_in(*axis, x.rank())?;
            let mut shape = x.shape.clone();
            if *keepdims {
                shape[*axis] = 1;
            } else {
                shape.remove(*axis);
            }
            Ok(TensorType::new(DType::I32, shape))
        }
        Op::Reshape { shape } => {
            count(1)?;
            nonzero(shape)?;
            let x = &operands[0];
            let n: usize = shape.iter().product();
            if n != x.numel() {
                return Err(err(
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
            count(1)?;
            let x = &operands[0];
            let mut seen = vec![false; x.rank()];
            if perm.len() != x.rank() {
                return Err(err(
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
                    return Err(err(
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
            count(1)?;
            nonzero(shape)?;
            let x = &operands[0];
            if !broadcastable(&x.shape, shape) {
                return Err(err(
                    ErrorKind::ShapeMismatch,
                    format!("cannot broadcast {:?} to {shape:?}", x.shape),
                ));
            }
            Ok(TensorType::new(x.dtype, shape.clone()))
        }
        Op::Slice { start, end, step } => {
            count(1)?;
            let x = &operands[0];
            per_axis("start", start, x.rank())?;
            per_axis("end", end, x.rank())?;
            per_axis("step", step, x.rank())?;
            let mut shape = Vec::with_capacity(x.rank());
            for i in 0..x.rank() {
                if step[i] == 0 || start[i] >= end[i] || end[i] > x.shape[i] {
                    return Err(err(
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
            count(1)?;
            let x = &operands[0];
            per_axis("low", low, x.rank())?;
            per_axis("high", high, x.rank())?;
            per_axis("interior", interior, x.rank())?;
            let shape = (0..x.rank())
                .map(|i| {
                    (x.shape[i] - 1)
                        .checked_mul(interior[i])
                        .and_then(|n| n.checked_add(x.shape[i]))
                        .and_then(|n| n.checked_add(low[i]))
                        .and_then(|n| n.checked_add(high[i]))
                        .ok_or_else(|| too_large(&format!("the padded size of axis {i}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(TensorType::new(x.dtype, shape))
        }
        Op::Concat { axis } => {
            if operands.is_empty() {
                return Err(err(
                    ErrorKind::OperandCount,
                    "expects at least one operand".into(),
                ));
            }
            let first = &operands[0];
            axis_in(*axis, first.rank())?;
            let mut shape = first.shape.clone();
            for o in &operands[1..] {
                if o.dtype != first.dtype {
                    return Err(err(
                        ErrorKind::DTypeMismatch,
                        format!("operand dtypes differ: {} vs {}", first.dtype, o.dtype),
                    ));
                }
                let fits = o.rank() == first.rank()
                    && (0..first.rank()).all(|i| i == *axis || o.shape[i] == first.shape[i]);
                if !fits {
                    return Err(err(
                        ErrorKind::ShapeMismatch,
                        format!(
                            "shapes {:?} and {:?} differ outside axis {axis}",
                            first.shape, o.shape
                        ),
                    ));
                }
                shape[*axis] = shape[*axis]
                    .checked_add(o.shape[*axis])
                    .ok_or_else(|| too_large(&format!("the size of axis {axis}")))?;
            }
            Ok(TensorType::new(first.dtype, shape))
        }
        Op::MatMul { trans_a, trans_b } => {
            count(2)?;
            let (a, b) = (&operands[0], &operands[1]);
            if a.dtype != b.dtype {
                return Err(err(
                    ErrorKind::DTypeMismatch,
                    format!("operand dtypes differ: {} vs {}", a.dtype, b.dtype),
                ));
            }
            if a.dtype == DType::I32 {
                float(a)?;
            }
            if a.rank() < 2 || b.rank() < 2 {
                return Err(err(
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
                return Err(err(
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
                return Err(err(
                    ErrorKind::ShapeMismatch,
                    format!("batch dimensions differ: {ba:?} vs {bb:?}"),
                ));
            };
            let mut shape = batch;
            shape.extend([m, n]);
            Ok(TensorType::new(a.dtype, shape))
        }
        Op::Im2Col { window } => {
            count(1)?;
            let x = &operands[0];
            float(x)?;
            let out = window_output(window, x, &err)?;
            let rows = checked_numel(&window.kernel)
                .and_then(|k| k.checked_mul(x.shape[1]))
                .ok_or_else(|| too_large("the column row count"))?;
            let p = checked_numel(&out).ok_or_else(|| too_large("the column count"))?;
            Ok(TensorType::new(x.dtype, vec![x.shape[0], rows, p]))
        }
        Op::Col2Im { window, spatial } => {
            count(1)?;
            let cols = &operands[0];
            float(cols)?;
            if cols.rank() != 3 {
                return Err(err(
                    ErrorKind::ShapeMismatch,
                    "columns need rank 3 (N, C·kernel, positions)".into(),
                ));
            }
            let k = checked_numel(&window.kernel).ok_or_else(|| too_large("the kernel size"))?;
            if k == 0 || !cols.shape[1].is_multiple_of(k) {
                return Err(err(
                    ErrorKind::ShapeMismatch,
                    format!(
                        "column rows {} are not a multiple of the kernel size {k}",
                        cols.shape[1]
                    ),
                ));
            }
            let c = cols.shape[1] / k;
            let mut image = vec![cols.shape[0], c];
            image.extend(spatial.iter().copied());
            nonzero(&image)?;
            let out = window_output(window, &TensorType::new(cols.dtype, image.clone()), &err)?;
            let p = checked_numel(&out).ok_or_else(|| too_large("the column count"))?;
            if p != cols.shape[2] {
                return Err(err(
                    ErrorKind::ShapeMismatch,
                    format!(
                        "{} column positions, but the window gives {p} for spatial size {spatial:?}",
                        cols.shape[2]
                    ),
                ));
            }
            Ok(TensorType::new(cols.dtype, image))
        }
        Op::Gather => {
            count(2)?;
            let (data, idx) = (&operands[0], &operands[1]);
            if idx.dtype != DType::I32 {
                return Err(err(
                    ErrorKind::DTypeMismatch,
                    format!("indices must be i32, got {}", idx.dtype),
                ));
            }
            if data.rank() == 0 {
                return Err(err(
                    ErrorKind::ShapeMismatch,
                    "data needs rank 1 or more".into(),
                ));
            }
            let mut shape = idx.shape.clone();
            shape.extend_from_slice(&data.shape[1..]);
            Ok(TensorType::new(data.dtype, shape))
        }
        Op::ScatterAdd { rows } => {
            count(2)?;
            let (upd, idx) = (&operands[0], &operands[1]);
            if idx.dtype != DType::I32 {
                return Err(err(
                    ErrorKind::DTypeMismatch,
                    format!("indices must be i32, got {}", idx.dtype),
                ));
            }
            if *rows == 0 {
                return Err(err(
                    ErrorKind::BadAttribute,
                    "rows must be at least 1".into(),
                ));
            }
            if upd.rank() < idx.rank() || upd.shape[..idx.rank()] != idx.shape[..] {
                return Err(err(
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
    }
}

/// Output spatial sizes of `window` on an `N×C×spatial` operand.
fn window_output(
    window: &Window,
    x: &TensorType,
    err: &dyn Fn(ErrorKind, String) -> GraphError,
) -> Result<Vec<usize>> {
    let r = window.rank();
    if r == 0 || x.rank() != r + 2 {
        return Err(err(
            ErrorKind::ShapeMismatch,
            format!(
                "a {r}-d window needs an operand of rank {} (N, C, spatial…), got rank {}",
                r + 2,
                x.rank()
            ),
        ));
    }
    for (what, v) in [
        ("stride", &window.stride),
        ("pad_low", &window.pad_low),
        ("pad_high", &window.pad_high),
        ("dilation", &window.dilation),
    ] {
        if v.len() != r {
            return Err(err(
                ErrorKind::BadAttribute,
                format!("window {what} has {} entries for {r} spatial axes", v.len()),
            ));
        }
    }
    (0..r)
        .map(|i| {
            window.output_size(i, x.shape[i + 2]).ok_or_else(|| {
                err(
                    ErrorKind::BadAttribute,
                    format!(
                        "spatial axis {i}: kernel {} (dilation {}, stride {}) does not fit input {} with padding {}+{}",
                        window.kernel[i], window.dilation[i], window.stride[i], x.shape[i + 2], window.pad_low[i], window.pad_high[i]
                    ),
                )
            })
        })
        .collect()
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
