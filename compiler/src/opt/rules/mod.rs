//! The rewrite rules, grouped by what they do.
//!
//! | group | module | phase |
//! |---|---|---|
//! | identities, negation and sign movement, cancellations of inverse ops, select with constant masks, scalar factors through reductions | [`algebra`] | simplify |
//! | reshape / permute / broadcast canonicalization and folding, trivial reductions | [`movement`] | simplify |
//! | transpose folding into matmul operands, `(AB)ᵀ = BᵀAᵀ` | [`matmul`] | simplify |
//! | gathers and their adjoints through matrix products (an embedding's dense layer multiplies the table once) | [`gather`] | simplify |
//! | the cancellations that make the shortcut gradients emerge | [`cancellation`] | simplify |
//! | matmul + bias epilogue marking (`fused_dense`) | [`fusion`] | fuse |
//!
//! **Soundness.** Every rule is an identity over the real numbers that holds wherever its
//! left-hand side is defined (finite, no division by zero). Floating-point results may
//! differ by rounding (`x/c → x·(1/c)`), and a left side that is NaN or infinite may become
//! finite (`x·0 → 0`, `(a/b)·b → a`); no rule turns a finite value into a different finite
//! value beyond rounding. No rule is keyed on a layer or cost name, and there is no
//! unguarded commutativity or associativity: rules spell out the operand orders they
//! accept.
//!
//! **Shape safety.** Every right-hand side is type-checked against the matched e-class
//! before it is added: [`Checked`] wraps pattern right-hand sides and custom appliers add
//! nodes through [`add_checked`](super::analysis::add_checked). Rules whose only condition
//! is "the shapes fit" (`reshape(x) → x`) rely on this check.

pub mod algebra;
pub mod cancellation;
pub mod fusion;
pub mod gather;
pub mod matmul;
pub mod movement;

use super::analysis::{TypeAnalysis, XGraph};
use super::lang::{Attr, XLang};
use crate::ir::TensorType;
use egg::{
    Applier, ConditionalApplier, ENodeOrVar, Id, Pattern, PatternAst, Rewrite, Subst, Symbol, Var,
};

/// A rewrite rule of the optimizer's language.
pub type XRewrite = Rewrite<XLang, TypeAnalysis>;

/// A pattern right-hand side that is applied only when it is well-typed and has the matched
/// e-class's type; otherwise the application is counted in
/// [`TypeAnalysis::rejected`] and nothing is added.
#[derive(Debug)]
pub struct Checked(pub Pattern<XLang>);

/// The type of pattern `ast` instantiated with `subst`, or `None` if some node is
/// ill-typed.
pub fn pattern_type(egraph: &XGraph, ast: &PatternAst<XLang>, subst: &Subst) -> Option<TensorType> {
    let nodes = ast.as_ref();
    let mut data: Vec<(Option<TensorType>, Option<Attr>)> = Vec::with_capacity(nodes.len());
    for node in nodes {
        match node {
            ENodeOrVar::Var(v) => {
                let d = &egraph[subst[*v]].data;
                data.push((d.ty.clone(), d.attr.clone()));
            }
            ENodeOrVar::ENode(n) => {
                let t = super::analysis::node_type(
                    n,
                    |i| data[usize::from(i)].1.clone(),
                    |i| data[usize::from(i)].0.clone(),
                )?;
                data.push((Some(t), None));
            }
        }
    }
    data.pop()?.0
}

/// Counts a rejected application of `rule`.
pub fn reject(egraph: &mut XGraph, rule: Symbol) {
    *egraph
        .analysis
        .rejected
        .entry(rule.as_str().to_string())
        .or_default() += 1;
}

impl Applier<XLang, TypeAnalysis> for Checked {
    fn apply_one(
        &self,
        egraph: &mut XGraph,
        eclass: Id,
        subst: &Subst,
        searcher_ast: Option<&PatternAst<XLang>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let want = egraph[eclass].data.ty.clone();
        let got = pattern_type(egraph, &self.0.ast, subst);
        if got.is_none() || got != want {
            reject(egraph, rule_name);
            return vec![];
        }
        self.0
            .apply_one(egraph, eclass, subst, searcher_ast, rule_name)
    }

    fn get_pattern_ast(&self) -> Option<&PatternAst<XLang>> {
        Some(&self.0.ast)
    }

    fn vars(&self) -> Vec<Var> {
        self.0.vars()
    }
}

/// A custom applier: a function that returns the e-class to union with the match (after
/// adding what it needs through [`add_checked`](super::analysis::add_checked)), or `None`.
pub struct Custom<F>(pub F);

impl<F> Applier<XLang, TypeAnalysis> for Custom<F>
where
    F: Fn(&mut XGraph, Id, &Subst) -> Option<Id>,
{
    fn apply_one(
        &self,
        egraph: &mut XGraph,
        eclass: Id,
        subst: &Subst,
        _searcher_ast: Option<&PatternAst<XLang>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let Some(new) = (self.0)(egraph, eclass, subst) else {
            return vec![];
        };
        if egraph[new].data.ty != egraph[eclass].data.ty {
            reject(egraph, rule_name);
            return vec![];
        }
        if egraph.union(eclass, new) {
            vec![new]
        } else {
            vec![]
        }
    }
}

fn pat(s: &str) -> Pattern<XLang> {
    s.parse()
        .unwrap_or_else(|e| panic!("bad pattern {s:?}: {e}"))
}

/// `lhs → rhs`, applied when the right side type-checks.
pub fn rw(name: &str, lhs: &str, rhs: &str) -> XRewrite {
    Rewrite::new(name, pat(lhs), Checked(pat(rhs))).expect("valid rule")
}

/// `lhs → rhs` if `cond` holds, applied when the right side type-checks.
pub fn rw_if(
    name: &str,
    lhs: &str,
    rhs: &str,
    cond: impl Fn(&mut XGraph, Id, &Subst) -> bool + Send + Sync + 'static,
) -> XRewrite {
    Rewrite::new(
        name,
        pat(lhs),
        ConditionalApplier {
            condition: cond,
            applier: Checked(pat(rhs)),
        },
    )
    .expect("valid rule")
}

/// `lhs → f(match)` with a custom applier.
pub fn rw_custom(
    name: &str,
    lhs: &str,
    f: impl Fn(&mut XGraph, Id, &Subst) -> Option<Id> + Send + Sync + 'static,
) -> XRewrite {
    Rewrite::new(name, pat(lhs), Custom(f)).expect("valid rule")
}

/// A pattern variable (`"?x"`).
pub fn var(s: &str) -> Var {
    s.parse().expect("a variable name")
}

/// True when the e-class of `v` is a compile-time constant whose every element satisfies
/// `pred`.
pub fn konst_all(egraph: &XGraph, subst: &Subst, v: Var, pred: impl Fn(f64) -> bool) -> bool {
    egraph[subst[v]]
        .data
        .konst
        .as_ref()
        .is_some_and(|k| k.iter().all(|&x| pred(x)))
}

/// A condition: `v` is a constant with every element equal to `value`.
pub fn is_const(
    v: &str,
    value: f64,
) -> impl Fn(&mut XGraph, Id, &Subst) -> bool + Send + Sync + 'static {
    let v = var(v);
    move |eg, _, s| konst_all(eg, s, v, |x| x == value)
}

/// The attribute bound to `v`.
pub fn attr_of(egraph: &XGraph, subst: &Subst, v: Var) -> Option<Attr> {
    egraph[subst[v]].data.attr.clone()
}

/// The type bound to `v`.
pub fn ty_of(egraph: &XGraph, subst: &Subst, v: Var) -> Option<TensorType> {
    egraph[subst[v]].data.ty.clone()
}

/// The simplification rules: algebra, movement, matmul, gather and the gradient
/// cancellations.
pub fn simplify() -> Vec<XRewrite> {
    let mut r = algebra::rules();
    r.extend(movement::rules());
    r.extend(matmul::rules());
    r.extend(gather::rules());
    r.extend(cancellation::rules());
    r
}

/// The fusion-marking rules.
pub fn fuse() -> Vec<XRewrite> {
    fusion::rules()
}

/// A deliberately explosive rule set (commutativity and associativity of `add` and `mul`
/// in both directions), for testing that saturation stops at its limits. Never used by
/// default.
pub fn explosive() -> Vec<XRewrite> {
    vec![
        rw("comm-add", "(add ?a ?b)", "(add ?b ?a)"),
        rw("comm-mul", "(mul ?a ?b)", "(mul ?b ?a)"),
        rw(
            "assoc-add-l",
            "(add ?a (add ?b ?c))",
            "(add (add ?a ?b) ?c)",
        ),
        rw(
            "assoc-add-r",
            "(add (add ?a ?b) ?c)",
            "(add ?a (add ?b ?c))",
        ),
        rw(
            "assoc-mul-l",
            "(mul ?a (mul ?b ?c))",
            "(mul (mul ?a ?b) ?c)",
        ),
        rw(
            "assoc-mul-r",
            "(mul (mul ?a ?b) ?c)",
            "(mul ?a (mul ?b ?c))",
        ),
    ]
}
