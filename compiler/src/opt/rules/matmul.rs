//! Transpose folding into matmul operands.
//!
//! `matmul` has a transpose flag per operand, so a `permute` that swaps the last two axes
//! (and keeps the others) in front of an operand folds into the flag:
//! `matmul(permute(a), b, ta, tb) → matmul(a, b, !ta, tb)`, and likewise for `b`. A
//! transposed product becomes the product of the transposed operands in the other order:
//! `permute(matmul(a, b, ta, tb)) → matmul(b, a, !tb, !ta)` (`(AB)ᵀ = BᵀAᵀ`).
//!
//! A product with an identity matrix (a constant, such as the table a one-hot encoding
//! gathers its rows from) is the other operand, transposed when its flag says so:
//! `matmul(I, b, ta, tb) → tb ? bᵀ : b` and `matmul(a, I, ta, tb) → ta ? aᵀ : a`.

use super::{XRewrite, attr_of, rw_custom, var};
use crate::ir::Op;
use crate::opt::analysis::{XGraph, add_attr, add_checked};
use crate::opt::lang::{Attr, XLang};
use egg::{Id, Subst};

/// True when `p` swaps the last two axes and keeps the others.
fn is_last_swap(p: &[usize]) -> bool {
    let r = p.len();
    r >= 2
        && p[r - 2] == r - 1
        && p[r - 1] == r - 2
        && p[..r - 2].iter().enumerate().all(|(i, &a)| i == a)
}

fn swap_perm(eg: &XGraph, s: &Subst) -> bool {
    matches!(attr_of(eg, s, var("?p")), Some(Attr::Perm(p)) if is_last_swap(&p))
}

/// The transpose flags bound to `?f`.
pub(super) fn flags(eg: &XGraph, s: &Subst) -> Option<(bool, bool)> {
    match attr_of(eg, s, var("?f"))? {
        Attr::Flags(a, b) => Some((a, b)),
        _ => None,
    }
}

/// Adds `matmul(a, b)` with transpose flags `ta`, `tb`, if it is well-typed.
pub(super) fn matmul(eg: &mut XGraph, a: Id, b: Id, ta: bool, tb: bool) -> Option<Id> {
    let f = add_attr(eg, Attr::Flags(ta, tb));
    add_checked(eg, XLang::MatMul([a, b, f]))
}

/// True when e-class `id` holds a constant identity matrix (rank 2, square, ones on the
/// diagonal and zeros elsewhere).
fn is_identity(eg: &XGraph, id: Id) -> bool {
    let Some(ty) = &eg[id].data.ty else {
        return false;
    };
    let [n, m] = ty.shape[..] else {
        return false;
    };
    n == m
        && eg[id].nodes.iter().any(|node| {
            matches!(node, XLang::Op(o, _)
                if matches!(&o.op, Op::Constant { value } if value.is_identity(n)))
        })
}

/// `x`, or `xᵀ` (its last two axes swapped) when `transpose`, if that has the type of
/// e-class `id` (a rank-2 identity times a batched operand broadcasts it, which removing
/// the identity must not drop).
fn as_product(eg: &mut XGraph, id: Id, x: Id, transpose: bool) -> Option<Id> {
    let mut ty = eg[x].data.ty.clone()?;
    let r = ty.rank();
    let mut p: Vec<usize> = (0..r).collect();
    if transpose {
        p.swap(r.checked_sub(2)?, r - 1);
        ty.shape.swap(r - 2, r - 1);
    }
    if eg[id].data.ty.as_ref() != Some(&ty) {
        return None;
    }
    if !transpose {
        return Some(x);
    }
    let p = add_attr(eg, Attr::Perm(p));
    add_checked(eg, XLang::Permute([x, p]))
}

/// The matmul rules.
pub fn rules() -> Vec<XRewrite> {
    vec![
        rw_custom(
            "matmul-fold-transpose-a",
            "(matmul (permute ?a ?p) ?b ?f)",
            |eg, _, s| {
                if !swap_perm(eg, s) {
                    return None;
                }
                let (ta, tb) = flags(eg, s)?;
                matmul(eg, s[var("?a")], s[var("?b")], !ta, tb)
            },
        ),
        rw_custom(
            "matmul-fold-transpose-b",
            "(matmul ?a (permute ?b ?p) ?f)",
            |eg, _, s| {
                if !swap_perm(eg, s) {
                    return None;
                }
                let (ta, tb) = flags(eg, s)?;
                matmul(eg, s[var("?a")], s[var("?b")], ta, !tb)
            },
        ),
        rw_custom(
            "transpose-of-matmul",
            "(permute (matmul ?a ?b ?f) ?p)",
            |eg, _, s| {
                if !swap_perm(eg, s) {
                    return None;
                }
                let (ta, tb) = flags(eg, s)?;
                matmul(eg, s[var("?b")], s[var("?a")], !tb, !ta)
            },
        ),
        rw_custom("matmul-identity-a", "(matmul ?a ?b ?f)", |eg, id, s| {
            if !is_identity(eg, s[var("?a")]) {
                return None;
            }
            let (_, tb) = flags(eg, s)?;
            as_product(eg, id, s[var("?b")], tb)
        }),
        rw_custom("matmul-identity-b", "(matmul ?a ?b ?f)", |eg, id, s| {
            if !is_identity(eg, s[var("?b")]) {
                return None;
            }
            let (ta, _) = flags(eg, s)?;
            as_product(eg, id, s[var("?a")], ta)
        }),
    ]
}
