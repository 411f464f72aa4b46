//! Algebraic identities.
//!
//! - identities: `x+0`, `0+x`, `x−0`, `x·1`, `1·x`, `x/1` → `x`; `0−x` → `−x`; `x·(−1)` → `−x`;
//!   `x·0` → `0` and a matrix product with a zero operand → `0` (sound where the other
//!   operand is finite);
//! - inverses: `−(−x)`, `1/(1/x)`, `log(exp x)` → `x`; `(a·b)/b`, `(a/b)·b` → `a` (where
//!   `b ≠ 0`); `a − a` → `0` (finite `a`);
//! - sign movement: negations move out of products and quotients and merge into `add`/`sub`;
//! - division: `x/c → x·(1/c)` for a nonzero constant `c` (the reciprocal folds), and
//!   `a·(1/b) → a/b`;
//! - `select` with a constant mask, or with equal branches; `max(a, a)`, `min(a, a)`;
//! - `a/a → 1`, `0/x → 0` (where `a, x ≠ 0`), `(a/(e/s))/s → a/e` (dividing by a
//!   quotient and then by its denominator; the general `(a/b)/c → a/(b·c)` explodes on
//!   the cycles that `x/1 → x` creates);
//! - distribution of a product over a sum or difference on its left operand
//!   (`(a ± b)·c → a·c ± b·c`, one direction only), and `(a/b)·c → a·(c/b)` only when
//!   `c/b` already is in the e-graph (a quotient is reused, never invented);
//! - a broadcast moves inside a quotient: `broadcast(a/b) → broadcast(a)/broadcast(b)`;
//! - reductions: `reduce_sum` distributes over `add`/`sub`; a negation, a constant factor,
//!   or a factor (or divisor) that is constant along the reduced axes (a broadcast one)
//!   moves out of `reduce_sum`/`reduce_mean`.
//!
//! Constant folding itself is done by the analysis (see
//! [`analysis`](crate::opt::analysis)).

use super::{XRewrite, attr_of, is_const, konst_all, rw, rw_custom, rw_if, ty_of, var};
use crate::opt::analysis::{XGraph, add_attr, add_checked, add_constant};
use crate::opt::lang::{Attr, XLang};
use egg::{Id, Subst};

/// The algebra rules.
pub fn rules() -> Vec<XRewrite> {
    let nonzero = |v: &str| {
        let v = var(v);
        move |eg: &mut XGraph, _: Id, s: &Subst| konst_all(eg, s, v, |x| x != 0.0 && x.is_finite())
    };
    let truthy = |v: &str| {
        let v = var(v);
        move |eg: &mut XGraph, _: Id, s: &Subst| konst_all(eg, s, v, |x| x != 0.0)
    };
    vec![
        rw_if("add-0", "(add ?x ?z)", "?x", is_const("?z", 0.0)),
        rw_if("0-add", "(add ?z ?x)", "?x", is_const("?z", 0.0)),
        rw_if("sub-0", "(sub ?x ?z)", "?x", is_const("?z", 0.0)),
        rw_if("0-sub", "(sub ?z ?x)", "(neg ?x)", is_const("?z", 0.0)),
        rw_if("mul-1", "(mul ?x ?o)", "?x", is_const("?o", 1.0)),
        rw_if("1-mul", "(mul ?o ?x)", "?x", is_const("?o", 1.0)),
        rw_if("mul-neg1", "(mul ?x ?o)", "(neg ?x)", is_const("?o", -1.0)),
        rw_if("neg1-mul", "(mul ?o ?x)", "(neg ?x)", is_const("?o", -1.0)),
        rw_if("mul-0", "(mul ?x ?z)", "?z", is_const("?z", 0.0)),
        rw_if("0-mul", "(mul ?z ?x)", "?z", is_const("?z", 0.0)),
        rw_custom("matmul-0", "(matmul ?a ?b ?f)", |eg, id, s| {
            let zero = |v: &str| konst_all(eg, s, var(v), |x| x == 0.0);
            if !(zero("?a") || zero("?b")) {
                return None;
            }
            let ty = eg[id].data.ty.clone()?;
            Some(add_constant(eg, vec![0.0], ty))
        }),
        rw_if("div-1", "(div ?x ?o)", "?x", is_const("?o", 1.0)),
        rw_if(
            "div-const",
            "(div ?x ?c)",
            "(mul ?x (recip ?c))",
            nonzero("?c"),
        ),
        rw("neg-neg", "(neg (neg ?x))", "?x"),
        rw("recip-recip", "(recip (recip ?x))", "?x"),
        rw("log-exp", "(log (exp ?x))", "?x"),
        rw("mul-neg-l", "(mul (neg ?a) ?b)", "(neg (mul ?a ?b))"),
        rw("mul-neg-r", "(mul ?a (neg ?b))", "(neg (mul ?a ?b))"),
        rw("div-neg-l", "(div (neg ?a) ?b)", "(neg (div ?a ?b))"),
        rw("add-neg-r", "(add ?a (neg ?b))", "(sub ?a ?b)"),
        rw("add-neg-l", "(add (neg ?a) ?b)", "(sub ?b ?a)"),
        rw("sub-neg", "(sub ?a (neg ?b))", "(add ?a ?b)"),
        rw("neg-sub", "(neg (sub ?a ?b))", "(sub ?b ?a)"),
        rw_custom("sub-self", "(sub ?a ?a)", |eg, id, _| {
            let ty = eg[id].data.ty.clone()?;
            Some(add_constant(eg, vec![0.0], ty))
        }),
        rw("mul-recip-r", "(mul ?a (recip ?b))", "(div ?a ?b)"),
        rw("mul-recip-l", "(mul (recip ?b) ?a)", "(div ?a ?b)"),
        rw("div-mul-cancel-r", "(div (mul ?a ?b) ?b)", "?a"),
        rw("div-mul-cancel-l", "(div (mul ?b ?a) ?b)", "?a"),
        rw("mul-div-cancel-r", "(mul (div ?a ?b) ?b)", "?a"),
        rw("mul-div-cancel-l", "(mul ?b (div ?a ?b))", "?a"),
        rw("select-same", "(select ?c ?a ?a)", "?a"),
        rw_if("select-true", "(select ?c ?a ?b)", "?a", truthy("?c")),
        rw_if(
            "select-false",
            "(select ?c ?a ?b)",
            "?b",
            is_const("?c", 0.0),
        ),
        rw("max-self", "(max ?a ?a)", "?a"),
        rw("min-self", "(min ?a ?a)", "?a"),
        rw(
            "sum-neg",
            "(reduce_sum (neg ?x) ?ax)",
            "(neg (reduce_sum ?x ?ax))",
        ),
        rw(
            "mean-neg",
            "(reduce_mean (neg ?x) ?ax)",
            "(neg (reduce_mean ?x ?ax))",
        ),
        rw_custom("div-self", "(div ?a ?a)", |eg, id, _| {
            let ty = eg[id].data.ty.clone()?;
            Some(add_constant(eg, vec![1.0], ty))
        }),
        rw_if("zero-div", "(div ?z ?x)", "?z", is_const("?z", 0.0)),
        rw(
            "div-by-quotient-and-denominator",
            "(div (div ?a (div ?e ?s)) ?s)",
            "(div ?a ?e)",
        ),
        rw_if(
            "distribute-mul-sub",
            "(mul (sub ?a ?b) ?c)",
            "(sub (mul ?a ?c) (mul ?b ?c))",
            distributable,
        ),
        rw_if(
            "distribute-mul-add",
            "(mul (add ?a ?b) ?c)",
            "(add (mul ?a ?c) (mul ?b ?c))",
            distributable,
        ),
        rw_custom("reuse-quotient", "(mul (div ?a ?b) ?c)", |eg, _, s| {
            let (a, b, c) = (s[var("?a")], s[var("?b")], s[var("?c")]);
            let q = eg.lookup(XLang::Div([c, b]))?;
            add_checked(eg, XLang::Mul([a, q]))
        }),
        rw(
            "broadcast-div",
            "(broadcast (div ?a ?b) ?s)",
            "(div (broadcast ?a ?s) (broadcast ?b ?s))",
        ),
        rw(
            "sum-sub",
            "(reduce_sum (sub ?a ?b) ?ax)",
            "(sub (reduce_sum ?a ?ax) (reduce_sum ?b ?ax))",
        ),
        rw(
            "sum-add",
            "(reduce_sum (add ?a ?b) ?ax)",
            "(add (reduce_sum ?a ?ax) (reduce_sum ?b ?ax))",
        ),
        rw_custom(
            "sum-divisor",
            "(reduce_sum (div ?x ?c) ?ax)",
            |eg, id, s| factor_out(eg, id, s, Reduce::SumDiv),
        ),
        rw_custom(
            "sum-factor-r",
            "(reduce_sum (mul ?x ?c) ?ax)",
            |eg, id, s| factor_out(eg, id, s, Reduce::Sum),
        ),
        rw_custom(
            "sum-factor-l",
            "(reduce_sum (mul ?c ?x) ?ax)",
            |eg, id, s| factor_out(eg, id, s, Reduce::Sum),
        ),
        rw_custom(
            "mean-factor-r",
            "(reduce_mean (mul ?x ?c) ?ax)",
            |eg, id, s| factor_out(eg, id, s, Reduce::Mean),
        ),
        rw_custom(
            "mean-factor-l",
            "(reduce_mean (mul ?c ?x) ?ax)",
            |eg, id, s| factor_out(eg, id, s, Reduce::Mean),
        ),
    ]
}

/// Distribution guard: neither factor is a compile-time constant (a constant sum or
/// factor gains nothing from distributing, and the constant e-classes are where `x·1 → x`
/// and `x − x → 0` create cycles that make distribution explode), and the factor is not
/// the product itself.
fn distributable(eg: &mut XGraph, id: Id, s: &Subst) -> bool {
    let (a, b, c) = (s[var("?a")], s[var("?b")], s[var("?c")]);
    let sum = eg
        .lookup(XLang::Sub([a, b]))
        .or_else(|| eg.lookup(XLang::Add([a, b])));
    let konst = |i: Id| eg[i].data.konst.is_some();
    !konst(c) && !sum.is_some_and(konst) && eg.find(c) != eg.find(id)
}

#[derive(Clone, Copy)]
enum Reduce {
    Sum,
    Mean,
    /// `reduce_sum(x / c)`.
    SumDiv,
}

/// `reduce(x·c) → reduce(x)·c'` when `c` is a constant splat (then `c'` is the splat of
/// the result type) or a broadcast that is constant along the reduced axes (then `c'` is
/// the broadcast source reshaped and broadcast to the result shape).
fn factor_out(eg: &mut XGraph, id: Id, s: &Subst, kind: Reduce) -> Option<Id> {
    let (x, c, ax) = (s[var("?x")], s[var("?c")], s[var("?ax")]);
    let out_ty = eg[id].data.ty.clone()?;
    let reduced = match kind {
        Reduce::Sum | Reduce::SumDiv => add_checked(eg, XLang::ReduceSum([x, ax]))?,
        Reduce::Mean => add_checked(eg, XLang::ReduceMean([x, ax]))?,
    };
    let factor = match eg[c].data.konst.clone() {
        Some(k) if k.len() == 1 => add_constant(eg, k, out_ty),
        _ => {
            // c = broadcast(src, shape), constant along the reduced axes.
            let (src, _) = eg[c].nodes.iter().find_map(|n| match n {
                XLang::Broadcast([src, shape]) => Some((*src, *shape)),
                _ => None,
            })?;
            let Some(Attr::Axes(axes, keepdims)) = attr_of(eg, s, var("?ax")) else {
                return None;
            };
            let full = ty_of(eg, s, var("?x"))?.shape;
            let src_shape = eg[src].data.ty.clone()?.shape;
            let lead = full.len().checked_sub(src_shape.len())?;
            let padded: Vec<usize> = (0..full.len())
                .map(|i| if i < lead { 1 } else { src_shape[i - lead] })
                .collect();
            if axes.iter().any(|&a| padded[a] != 1) {
                return None;
            }
            let kept: Vec<usize> = if keepdims {
                padded
            } else {
                (0..full.len())
                    .filter(|i| !axes.contains(i))
                    .map(|i| padded[i])
                    .collect()
            };
            let mut f = src;
            if kept != src_shape {
                let a = add_attr(eg, Attr::Shape(kept.clone()));
                f = add_checked(eg, XLang::Reshape([f, a]))?;
            }
            if kept != out_ty.shape {
                let a = add_attr(eg, Attr::Shape(out_ty.shape.clone()));
                f = add_checked(eg, XLang::Broadcast([f, a]))?;
            }
            f
        }
    };
    match kind {
        Reduce::SumDiv => add_checked(eg, XLang::Div([reduced, factor])),
        _ => add_checked(eg, XLang::Mul([reduced, factor])),
    }
}
