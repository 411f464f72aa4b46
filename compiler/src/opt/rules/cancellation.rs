//! The cancellations that make neon's shortcut gradients emerge.
//!
//! Each rule is an identity of real arithmetic, keyed on the shape of the expression and
//! never on a layer or cost name:
//!
//! - **logistic derivative**: with `y = 1/(1+e)`, `y·y·e = y·(1−y)` (because
//!   `1 − y = e/(1+e) = e·y`). Matched as `(y·y)·e` and as `(g·(y·y))·e`, the forms reverse
//!   mode produces for `recip(1 + exp(−z))`; `1 + e` in either operand order.
//! - **clearing denominators**: `(p/y − q/w)·(y·w) = p·w − q·y` and
//!   `(p/y + q/w)·(y·w) = p·w + q·y` (where `y, w ≠ 0`).
//! - **common factor**: `(k·a)·b − (k·c)·d = k·(a·b − c·d)` for a constant scale `k` and
//!   non-constant `a, b, c, d` (unguarded, it explodes on the cycles `x·1 → x` creates).
//! - **complementary cross terms**: `a·(1−b) − (1−a)·b = a − b`.
//! - **sign normalization**: `k·(a − b) = (−k)·(b − a)` for a negative constant `k`, so the
//!   extracted form shows a positive scale.
//! - **log-softmax**: `log(e/Σe) = z − log Σe` for `e = exp(z)`, also under a positive
//!   floor `c` (`log(max(y, c)) = max(log y, log c)`): a multiclass cross-entropy's value
//!   takes one `log` per row instead of one per class.
//!
//! Together with the algebra rules, they reduce the reverse-mode gradient of
//! `CrossEntropyBinary(Logistic(z), t)` with respect to `z` to `(1/N)·(y − t)`: no `exp`,
//! `log` or division is left on the gradient path. For `CrossEntropyMulti(Softmax(z), t)`
//! the algebra rules alone do it (a quotient divided by its own denominator, sums over a
//! broadcast divisor, `Σ e/Σe = 1`, reuse of the existing `y = e/s`, and the max-shift's
//! gradient summing to zero): `(1/N)·(y·Σt − t)`, which is `y − t` for targets that sum
//! to 1; the compiler does not assume that (see `compiler/tests/opt.rs`).

use super::{XRewrite, konst_all, rw, rw_custom, rw_if, var};
use crate::opt::analysis::{XGraph, add_checked, add_constant};
use crate::opt::lang::XLang;
use egg::{Id, Subst};

/// A softmax `e/Σe` with `e = exp(z)`, the sum over some axes broadcast back.
const SOFTMAX: &str = "(div (exp ?z) (broadcast (reduce_sum (exp ?z) ?ax) ?sh))";
/// `log Σe` of [`SOFTMAX`], broadcast back.
const LOG_SUM: &str = "(broadcast (log (reduce_sum (exp ?z) ?ax)) ?sh)";

/// The cancellation rules.
pub fn rules() -> Vec<XRewrite> {
    let one = |eg: &mut XGraph, _: Id, s: &Subst| konst_all(eg, s, var("?o"), |x| x == 1.0);
    let mut r = Vec::new();
    for (tag, d) in [("", "(add ?o ?e)"), ("-rev", "(add ?e ?o)")] {
        let y = format!("(recip {d})");
        r.push(rw_if(
            &format!("logistic-derivative{tag}"),
            &format!("(mul (mul {y} {y}) ?e)"),
            &format!("(mul {y} (sub ?o {y}))"),
            one,
        ));
        r.push(rw_if(
            &format!("logistic-derivative-grad{tag}"),
            &format!("(mul (mul ?g (mul {y} {y})) ?e)"),
            &format!("(mul ?g (mul {y} (sub ?o {y})))"),
            one,
        ));
    }
    r.extend([
        rw(
            "clear-denominators-sub",
            "(mul (sub (div ?p ?y) (div ?q ?w)) (mul ?y ?w))",
            "(sub (mul ?p ?w) (mul ?q ?y))",
        ),
        rw(
            "clear-denominators-add",
            "(mul (add (div ?p ?y) (div ?q ?w)) (mul ?y ?w))",
            "(add (mul ?p ?w) (mul ?q ?y))",
        ),
        rw_if(
            "common-factor-sub",
            "(sub (mul (mul ?k ?a) ?b) (mul (mul ?k ?c) ?d))",
            "(mul ?k (sub (mul ?a ?b) (mul ?c ?d)))",
            |eg, _, s| {
                let konst = |v: &str| eg[s[var(v)]].data.konst.is_some();
                konst("?k") && !["?a", "?b", "?c", "?d"].iter().any(|v| konst(v))
            },
        ),
        rw_if(
            "complementary-cross-terms",
            "(sub (mul ?a (sub ?o ?b)) (mul (sub ?o ?a) ?b))",
            "(sub ?a ?b)",
            one,
        ),
        // log(e/Σe) with e = exp(z): z − log Σe, one log per row instead of one per
        // element; also under a positive floor c (neon's `max(y, ε)` before the log of a
        // cross-entropy), as log is increasing: log(max(y, c)) = max(log y, log c).
        rw(
            "log-softmax",
            &format!("(log {SOFTMAX})"),
            &format!("(sub ?z {LOG_SUM})"),
        ),
        rw_if(
            "log-softmax-floor",
            &format!("(log (max {SOFTMAX} ?c))"),
            &format!("(max (sub ?z {LOG_SUM}) (log ?c))"),
            |eg, _, s| konst_all(eg, s, var("?c"), |x| x > 0.0),
        ),
        rw_custom("positive-scale", "(mul ?k (sub ?a ?b))", |eg, _, s| {
            let k = eg[s[var("?k")]].data.konst.clone()?;
            if k.len() != 1 || k[0] >= 0.0 || k[0].is_nan() {
                return None;
            }
            let ty = eg[s[var("?k")]].data.ty.clone()?;
            let pos = add_constant(eg, vec![-k[0]], ty);
            let d = add_checked(eg, XLang::Sub([s[var("?b")], s[var("?a")]]))?;
            add_checked(eg, XLang::Mul([pos, d]))
        }),
    ]);
    r
}
