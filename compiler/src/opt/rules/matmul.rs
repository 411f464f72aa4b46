//! Transpose folding into matmul operands.
//!
//! `matmul` has a transpose flag per operand, so a `permute` that swaps the last two axes
//! (and keeps the others) in front of an operand folds into the flag:
//! `matmul(permute(a), b, ta, tb) → matmul(a, b, !ta, tb)`, and likewise for `b`. A
//! transposed product becomes the product of the transposed operands in the other order:
//! `permute(matmul(a, b, ta, tb)) → matmul(b, a, !tb, !ta)` (`(AB)ᵀ = BᵀAᵀ`).

use super::{XRewrite, attr_of, rw_custom, var};
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
    ]
}
