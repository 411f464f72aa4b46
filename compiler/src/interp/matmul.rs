//! Batched matrix multiplication.

use super::InterpError;
use super::element::{Element, tensor, values, with_float};
use crate::ir::TensorType;
use std::borrow::Cow;
use xenon_runtime::Tensor;

type Result<T> = std::result::Result<T, InterpError>;

/// `op(a) · op(b)` over the last two axes, into a tensor of type `ty` (`batch… × m × n`).
///
/// The leading axes of `a` and `b` are equal, or one operand is rank 2 and is used for
/// every batch. `op` transposes the last two axes of an operand whose flag is set.
///
/// Each output element is accumulated in the element type, without fused multiply-add,
/// in increasing order of the inner index `p`: `c = ((0 + a₀b₀) + a₁b₁) + …`.
pub(super) fn matmul(
    a: &Tensor,
    b: &Tensor,
    trans_a: bool,
    trans_b: bool,
    ty: &TensorType,
) -> Result<Tensor> {
    with_float!(a.dtype(), T => {
        let out = matmul_typed::<T>(a, b, trans_a, trans_b, ty)?;
        tensor(&ty.shape, out)
    })
}

fn matmul_typed<T: Element>(
    a: &Tensor,
    b: &Tensor,
    trans_a: bool,
    trans_b: bool,
    ty: &TensorType,
) -> Result<Vec<T>> {
    let r = ty.shape.len();
    let (m, n) = (ty.shape[r - 2], ty.shape[r - 1]);
    let batches: usize = ty.shape[..r - 2].iter().product();
    let ra = a.shape().len();
    let k = if trans_a {
        a.shape()[ra - 2]
    } else {
        a.shape()[ra - 1]
    };
    // Bring both operands to contiguous `blocks × rows × cols` with the product's
    // orientation (m × k and k × n), so the kernel reads rows only.
    let a_blocks = a.numel() / (m * k);
    let b_blocks = b.numel() / (k * n);
    let a = oriented(values::<T>(a)?, m, k, trans_a);
    let b = oriented(values::<T>(b)?, k, n, trans_b);

    let mut c = vec![T::ZERO; batches * m * n];
    for (batch, c_block) in c.chunks_exact_mut(m * n).enumerate() {
        // A rank-2 operand is one block shared by every batch.
        let ia = if a_blocks == 1 { 0 } else { batch };
        let ib = if b_blocks == 1 { 0 } else { batch };
        let a_block = &a[ia * m * k..(ia + 1) * m * k];
        let b_block = &b[ib * k * n..(ib + 1) * k * n];
        multiply_block(a_block, b_block, c_block, k, n);
    }
    Ok(c)
}

/// Matrices of `rows × cols`, row-major: `data` itself, or, when `transposed`, a
/// transposed copy of `data`, which holds matrices of `cols × rows`.
fn oriented<T: Element>(data: &[T], rows: usize, cols: usize, transposed: bool) -> Cow<'_, [T]> {
    if !transposed {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len());
    for block in data.chunks_exact(rows * cols) {
        for i in 0..rows {
            out.extend((0..cols).map(|j| block[j * rows + i]));
        }
    }
    Cow::Owned(out)
}

/// `c += a · b` for row-major `a` (`m × k`), `b` (`k × n`) and `c` (`m × n`), in i-k-j
/// order: each row of `c` accumulates `a[i][p] · (row p of b)` for `p = 0, 1, …`. The
/// innermost loop runs over contiguous rows, which the compiler vectorizes.
fn multiply_block<T: Element>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        for (&a_ip, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            for (c_ij, &b_pj) in c_row.iter_mut().zip(b_row) {
                *c_ij = c_ij.plus(a_ip.times(b_pj));
            }
        }
    }
}
