//! Shape rules of windows: `im2col` and `col2im`.

use super::*;

/// The result type of `op` (one of this family's ops).
pub(super) fn rule(r: &Rule<'_>, op: &Op) -> Result<TensorType> {
    match op {
        Op::Im2Col { window } => {
            r.count(1)?;
            let x = &r.operands[0];
            r.float(x)?;
            let out = window_output(window, x, &|k, m| r.err(k, m))?;
            let rows = checked_numel(&window.kernel)
                .and_then(|k| k.checked_mul(x.shape[1]))
                .ok_or_else(|| r.too_large("the column row count"))?;
            let p = checked_numel(&out).ok_or_else(|| r.too_large("the column count"))?;
            Ok(TensorType::new(x.dtype, vec![x.shape[0], rows, p]))
        }
        Op::Col2Im { window, spatial } => {
            r.count(1)?;
            let cols = &r.operands[0];
            r.float(cols)?;
            if cols.rank() != 3 {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    "columns need rank 3 (N, C·kernel, positions)".into(),
                ));
            }
            let k = checked_numel(&window.kernel).ok_or_else(|| r.too_large("the kernel size"))?;
            if k == 0 || !cols.shape[1].is_multiple_of(k) {
                return Err(r.err(
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
            r.nonzero(&image)?;
            let out = window_output(
                window,
                &TensorType::new(cols.dtype, image.clone()),
                &|k, m| r.err(k, m),
            )?;
            let p = checked_numel(&out).ok_or_else(|| r.too_large("the column count"))?;
            if p != cols.shape[2] {
                return Err(r.err(
                    ErrorKind::ShapeMismatch,
                    format!(
                        "{} column positions, but the window gives {p} for spatial size {spatial:?}",
                        cols.shape[2]
                    ),
                ));
            }
            Ok(TensorType::new(cols.dtype, image))
        }
        _ => unreachable!("{} is not in this family", op.name()),
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
