//! Gathers and their adjoints through matrix products.
//!
//! A product with gathered rows is the gathered rows of the product, and the adjoint
//! (`scatter_add`) is linear too:
//!
//! - `matmul(gather(E, i), W) → gather(matmul(E, W), i)` — an embedding followed by a
//!   dense layer: the table's `V` rows are multiplied once instead of every gathered row;
//! - `scatter_add(matmul(D, W), i) → matmul(scatter_add(D, i), W)` — the embedding's
//!   gradient;
//! - `matmul(Dᵀ, gather(E, i)) → matmul(scatter_add(D, i)ᵀ, E)` and
//!   `matmul(gather(E, i)ᵀ, D) → matmul(Eᵀ, scatter_add(D, i))` — the dense layer's
//!   weight gradient (`Σ_r D[r]ᵀ·E[i_r]` sums rows with the same index first).
//!
//! Each applies only when the table has fewer rows than there are indices (so the
//! rewritten product is smaller), to rank-2 tables and rank-1 indices;
//! `reshape(gather(E, i)) → gather(E, reshape(i))` and
//! `scatter_add(reshape(U), i) → scatter_add(U, reshape(i))`, when the reshape keeps the
//! row shape, bring a sequence's `[batch, T, d]` rows to that form. The extractor keeps
//! whichever side costs less.

use super::matmul::{flags, matmul};
use super::{XRewrite, attr_of, rw_custom, ty_of, var};
use crate::opt::analysis::{XGraph, add_attr, add_checked};
use crate::opt::lang::{Attr, XLang};
use egg::{Id, Subst};

fn scatter(eg: &mut XGraph, u: Id, i: Id, rows: usize) -> Option<Id> {
    let r = add_attr(eg, Attr::Rows(rows));
    add_checked(eg, XLang::ScatterAdd([u, i, r]))
}

fn reshape(eg: &mut XGraph, x: Id, shape: Vec<usize>) -> Option<Id> {
    let a = add_attr(eg, Attr::Shape(shape));
    add_checked(eg, XLang::Reshape([x, a]))
}

/// The rows of a rank-2 table `?e` indexed by rank-1 `?i`, when fewer than the indices.
fn small_table(eg: &XGraph, s: &Subst) -> Option<usize> {
    let e = ty_of(eg, s, var("?e"))?;
    let i = ty_of(eg, s, var("?i"))?;
    (e.rank() == 2 && i.rank() == 1 && e.shape[0] < i.shape[0]).then_some(e.shape[0])
}

/// The gather rules.
pub fn rules() -> Vec<XRewrite> {
    vec![
        rw_custom(
            "reshape-of-gather",
            "(reshape (gather ?e ?i) ?s)",
            |eg, _, s| {
                let Some(Attr::Shape(shape)) = attr_of(eg, s, var("?s")) else {
                    return None;
                };
                let row = ty_of(eg, s, var("?e"))?.shape[1..].to_vec();
                let lead = shape.len().checked_sub(row.len())?;
                if lead == 0 || shape[lead..] != row[..] {
                    return None;
                }
                let i = reshape(eg, s[var("?i")], shape[..lead].to_vec())?;
                add_checked(eg, XLang::Gather([s[var("?e")], i]))
            },
        ),
        rw_custom(
            "scatter-of-reshape",
            "(scatter_add (reshape ?u ?s) ?i ?r)",
            |eg, id, s| {
                let out = eg[id].data.ty.clone()?;
                let row = &out.shape[1..];
                let u = ty_of(eg, s, var("?u"))?;
                let lead = u.rank().checked_sub(row.len())?;
                if lead == 0 || u.shape[lead..] != row[..] {
                    return None;
                }
                let i = reshape(eg, s[var("?i")], u.shape[..lead].to_vec())?;
                add_checked(eg, XLang::ScatterAdd([s[var("?u")], i, s[var("?r")]]))
            },
        ),
        rw_custom(
            "gather-then-matmul",
            "(matmul (gather ?e ?i) ?w ?f)",
            |eg, _, s| {
                let (false, tb) = flags(eg, s)? else {
                    return None;
                };
                small_table(eg, s)?;
                let p = matmul(eg, s[var("?e")], s[var("?w")], false, tb)?;
                add_checked(eg, XLang::Gather([p, s[var("?i")]]))
            },
        ),
        rw_custom(
            "scatter-of-matmul",
            "(scatter_add (matmul ?e ?w ?f) ?i ?r)",
            |eg, _, s| {
                let (false, tb) = flags(eg, s)? else {
                    return None;
                };
                let Some(Attr::Rows(rows)) = attr_of(eg, s, var("?r")) else {
                    return None;
                };
                let i = ty_of(eg, s, var("?i"))?;
                if ty_of(eg, s, var("?e"))?.rank() != 2 || i.rank() != 1 || rows >= i.shape[0] {
                    return None;
                }
                let d = scatter(eg, s[var("?e")], s[var("?i")], rows)?;
                matmul(eg, d, s[var("?w")], false, tb)
            },
        ),
        // Σ_r D[r]ᵀ·E[i_r] with the gathered rows as either operand of `Aᵀ·B`.
        matmul_of_gather("matmul-of-gather-b", "(matmul ?d (gather ?e ?i) ?f)", false),
        matmul_of_gather("matmul-of-gather-a", "(matmul (gather ?e ?i) ?d ?f)", true),
    ]
}

/// `Dᵀ·gather(E, i) → scatter_add(D, i)ᵀ·E`, or with `gathered_first`
/// `gather(E, i)ᵀ·D → Eᵀ·scatter_add(D, i)`.
fn matmul_of_gather(name: &str, lhs: &str, gathered_first: bool) -> XRewrite {
    rw_custom(name, lhs, move |eg, _, s| {
        if flags(eg, s)? != (true, false) {
            return None;
        }
        let rows = small_table(eg, s)?;
        let d = scatter(eg, s[var("?d")], s[var("?i")], rows)?;
        let e = s[var("?e")];
        match gathered_first {
            true => matmul(eg, e, d, true, false),
            false => matmul(eg, d, e, true, false),
        }
    })
}
