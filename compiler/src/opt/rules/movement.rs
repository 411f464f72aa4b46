//! Movement canonicalization and folding.
//!
//! - `reshape(reshape(x)) → reshape(x)`; `broadcast(broadcast(x)) → broadcast(x)` (numpy
//!   broadcasts compose: both align axes to the right);
//! - `reshape(x)`, `broadcast(x)` to `x`'s own shape → `x` (the type check is the guard);
//! - `permute(permute(x, p), q) → permute(x, p∘q)`, and an identity permutation → `x`;
//! - a reduction over axes of size 1 → `reshape` (no arithmetic happens).

use super::{XRewrite, attr_of, rw, rw_custom, rw_if, ty_of, var};
use crate::opt::analysis::{XGraph, add_attr, add_checked};
use crate::opt::lang::{Attr, XLang};
use egg::{Id, Subst};

fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &a)| i == a)
}

/// The movement rules.
pub fn rules() -> Vec<XRewrite> {
    let identity_perm = |eg: &mut XGraph, _: Id, s: &Subst| matches!(attr_of(eg, s, var("?p")), Some(Attr::Perm(p)) if is_identity(&p));
    vec![
        rw(
            "reshape-reshape",
            "(reshape (reshape ?x ?s1) ?s2)",
            "(reshape ?x ?s2)",
        ),
        rw("reshape-id", "(reshape ?x ?s)", "?x"),
        rw(
            "broadcast-broadcast",
            "(broadcast (broadcast ?x ?s1) ?s2)",
            "(broadcast ?x ?s2)",
        ),
        rw("broadcast-id", "(broadcast ?x ?s)", "?x"),
        rw_if("permute-id", "(permute ?x ?p)", "?x", identity_perm),
        rw_custom(
            "permute-permute",
            "(permute (permute ?x ?p) ?q)",
            |eg, _, s| {
                let Some(Attr::Perm(p)) = attr_of(eg, s, var("?p")) else {
                    return None;
                };
                let Some(Attr::Perm(q)) = attr_of(eg, s, var("?q")) else {
                    return None;
                };
                // Output axis i of the outer permute is inner axis q[i] = x axis p[q[i]].
                let c: Vec<usize> = q.iter().map(|&i| p[i]).collect();
                let x = s[var("?x")];
                if is_identity(&c) {
                    return Some(x);
                }
                let a = add_attr(eg, Attr::Perm(c));
                add_checked(eg, XLang::Permute([x, a]))
            },
        ),
        rw_custom("sum-unit-axes", "(reduce_sum ?x ?ax)", unit_reduce),
        rw_custom("max-unit-axes", "(reduce_max ?x ?ax)", unit_reduce),
        rw_custom("mean-unit-axes", "(reduce_mean ?x ?ax)", unit_reduce),
    ]
}

/// A reduction whose axes all have size 1 is a reshape.
fn unit_reduce(eg: &mut XGraph, id: Id, s: &Subst) -> Option<Id> {
    let Some(Attr::Axes(axes, _)) = attr_of(eg, s, var("?ax")) else {
        return None;
    };
    let x = ty_of(eg, s, var("?x"))?;
    if axes.iter().any(|&a| x.shape[a] != 1) {
        return None;
    }
    let out = eg[id].data.ty.clone()?;
    let xid = s[var("?x")];
    if out.shape == x.shape {
        return Some(xid);
    }
    let a = add_attr(eg, Attr::Shape(out.shape));
    add_checked(eg, XLang::Reshape([xid, a]))
}
