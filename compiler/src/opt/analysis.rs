//! The e-class analysis: the type (shape and dtype) of every e-class, the attribute of
//! attribute e-classes, and the value of small constants.
//!
//! Types come from the IR's own shape rules ([`crate::ir::infer::infer`]), so the e-graph
//! and the IR can never disagree. Every rule's right-hand side is type-checked against the
//! matched e-class *before* anything is added ([`crate::opt::rules::Checked`],
//! [`add_checked`]); a rejected application is counted per rule in
//! [`TypeAnalysis::rejected`].
//!
//! **Constant folding.** An e-class whose value is known at compile time carries it in
//! [`Data::konst`] (one value for a splat, else at most [`MAX_KONST_VALUES`] values), and
//! [`egg::Analysis::modify`] adds a `constant` e-node to it. Values are computed by the
//! reference interpreter's own kernels ([`crate::interp::eval_op`]) in the node's dtype, so
//! a folded constant is exactly the value the unoptimized graph computes: elementwise ops
//! on splats are evaluated once on scalars; other ops are evaluated on materialized
//! operands when neither the operands nor the result have more than [`MAX_FOLD_ELEMENTS`]
//! elements (a reduction of a large splat is therefore not folded).

use super::lang::{Attr, OpaqueOp, XLang, tensor_children, to_op};
use crate::interp::eval_op;
use crate::ir::infer::infer;
use crate::ir::{Op, OpGroup, TensorType};
use egg::{Analysis, DidMerge, EGraph, Id};
use std::collections::BTreeMap;
use xenon_runtime::Tensor;

/// The most values a non-splat folded constant may hold (default 64).
pub const MAX_KONST_VALUES: usize = 64;
/// The most elements an operand or result may have for a non-elementwise fold (default
/// 4,096).
pub const MAX_FOLD_ELEMENTS: usize = 4096;

/// What the analysis knows about an e-class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Data {
    /// The type of a tensor e-class (`None` for attribute e-classes).
    pub ty: Option<TensorType>,
    /// The attribute of an attribute e-class.
    pub attr: Option<Attr>,
    /// The compile-time value: one value (a splat) or one per element.
    pub konst: Option<Vec<f64>>,
}

/// The analysis (see the [module docs](self)). `rejected` counts rule applications whose
/// right-hand side failed the type check, by rule name.
#[derive(Clone, Debug, Default)]
pub struct TypeAnalysis {
    /// Rejected applications per rule.
    pub rejected: BTreeMap<String, usize>,
}

/// The e-graph type used by the optimizer.
pub type XGraph = EGraph<XLang, TypeAnalysis>;

/// The type of `node` given its children's types and attributes, or `None` when the node
/// is not well-typed (or is an attribute).
pub fn node_type(
    node: &XLang,
    attr: impl Fn(Id) -> Option<Attr>,
    ty: impl Fn(Id) -> Option<TensorType>,
) -> Option<TensorType> {
    match node {
        XLang::Attr(_) => None,
        XLang::FusedDense([a, b, f, c]) => {
            let Some(Attr::Flags(trans_a, trans_b)) = attr(*f) else {
                return None;
            };
            let mm = infer(&Op::MatMul { trans_a, trans_b }, &[ty(*a)?, ty(*b)?], None).ok()?;
            (ty(*c)? == mm).then_some(mm)
        }
        _ => {
            let (op, declared) = to_op(node, &attr)?;
            let types = tensor_children(node)
                .iter()
                .map(|&k| ty(k))
                .collect::<Option<Vec<_>>>()?;
            infer(&op, &types, declared.as_ref()).ok()
        }
    }
}

/// The type `node` would have in `egraph`.
pub fn enode_type(egraph: &XGraph, node: &XLang) -> Option<TensorType> {
    node_type(
        node,
        |i| egraph[i].data.attr.clone(),
        |i| egraph[i].data.ty.clone(),
    )
}

/// Adds `node` if it is well-typed; `None` (and nothing added) otherwise.
pub fn add_checked(egraph: &mut XGraph, node: XLang) -> Option<Id> {
    enode_type(egraph, &node)?;
    Some(egraph.add(node))
}

/// Adds a constant of type `ty` holding `values`.
pub fn add_constant(egraph: &mut XGraph, values: Vec<f64>, ty: TensorType) -> Id {
    egraph.add(XLang::Op(OpaqueOp::constant(values, ty), vec![]))
}

/// Adds an attribute e-node.
pub fn add_attr(egraph: &mut XGraph, attr: Attr) -> Id {
    egraph.add(XLang::Attr(attr))
}

/// A tensor holding a constant's values (a splat or one value per element).
fn materialize(ty: &TensorType, values: &[f64]) -> Option<Tensor> {
    if values.len() == 1 {
        Some(Tensor::full(ty.dtype, ty.shape.clone(), values[0]))
    } else {
        Tensor::from_f64_as(ty.dtype, ty.shape.clone(), values).ok()
    }
}

/// The values of a tensor as a splat when they are all equal (bitwise), else all of them.
fn compress(values: Vec<f64>) -> Option<Vec<f64>> {
    let first = *values.first()?;
    if values.iter().all(|v| v.to_bits() == first.to_bits()) {
        Some(vec![first])
    } else if values.len() <= MAX_KONST_VALUES {
        Some(values)
    } else {
        None
    }
}

/// The folded value of `op` (result type `ty`) on operands of types `types` with values
/// `konsts`, when every operand is known and the fold is small enough.
fn fold(op: &Op, ty: &TensorType, types: &[TensorType], konsts: &[&Vec<f64>]) -> Option<Vec<f64>> {
    match op {
        Op::Constant { value } => {
            return (value.values.len() == 1 || value.values.len() <= MAX_KONST_VALUES)
                .then(|| value.values.clone());
        }
        Op::Input { .. }
        | Op::Parameter { .. }
        | Op::RandomUniform { .. }
        | Op::RandomNormal { .. } => return None,
        _ => {}
    }
    if types.is_empty() || konsts.len() != types.len() {
        return None;
    }
    let all_splat = konsts.iter().all(|k| k.len() == 1);
    if all_splat {
        match op {
            Op::Reshape { .. } | Op::Broadcast { .. } | Op::Permute { .. } => {
                return Some(konsts[0].clone());
            }
            _ if op.group() == OpGroup::Elementwise => {
                let scalars: Vec<Tensor> = types
                    .iter()
                    .zip(konsts)
                    .map(|(t, k)| Tensor::full(t.dtype, vec![], k[0]))
                    .collect();
                let refs: Vec<&Tensor> = scalars.iter().collect();
                let out = eval_op(op, &TensorType::scalar(ty.dtype), &refs).ok()?;
                return Some(out.to_f64_vec());
            }
            _ => {}
        }
    }
    if ty.numel() > MAX_FOLD_ELEMENTS || types.iter().any(|t| t.numel() > MAX_FOLD_ELEMENTS) {
        return None;
    }
    let tensors = types
        .iter()
        .zip(konsts)
        .map(|(t, k)| materialize(t, k))
        .collect::<Option<Vec<_>>>()?;
    let refs: Vec<&Tensor> = tensors.iter().collect();
    compress(eval_op(op, ty, &refs).ok()?.to_f64_vec())
}

fn is_constant_node(node: &XLang) -> bool {
    matches!(node, XLang::Op(o, _) if matches!(o.op, Op::Constant { .. }))
}

impl Analysis<XLang> for TypeAnalysis {
    type Data = Data;

    fn make(egraph: &mut XGraph, enode: &XLang, _id: Id) -> Data {
        if let XLang::Attr(a) = enode {
            return Data {
                ty: None,
                attr: Some(a.clone()),
                konst: None,
            };
        }
        let ty = enode_type(egraph, enode);
        let konst = match (&ty, enode) {
            (None, _) | (_, XLang::FusedDense(_)) => None,
            (Some(t), _) => {
                let (op, _) = to_op(enode, |i| egraph[i].data.attr.clone())
                    .expect("a typed node converts to an op");
                let kids = tensor_children(enode);
                let types: Vec<TensorType> = kids
                    .iter()
                    .map(|&k| egraph[k].data.ty.clone().expect("typed operands"))
                    .collect();
                let konsts: Option<Vec<&Vec<f64>>> = kids
                    .iter()
                    .map(|&k| egraph[k].data.konst.as_ref())
                    .collect();
                match konsts {
                    Some(ks) => fold(&op, t, &types, &ks),
                    None => None,
                }
            }
        };
        Data {
            ty,
            attr: None,
            konst,
        }
    }

    fn merge(&mut self, to: &mut Data, from: Data) -> DidMerge {
        let mut to_changed = false;
        let mut from_changed = false;
        match (&to.ty, &from.ty) {
            (None, Some(_)) => {
                to.ty = from.ty.clone();
                to_changed = true;
            }
            (Some(_), None) => from_changed = true,
            _ => {}
        }
        match (&to.attr, &from.attr) {
            (None, Some(_)) => {
                to.attr = from.attr.clone();
                to_changed = true;
            }
            (Some(_), None) => from_changed = true,
            _ => {}
        }
        match (&to.konst, &from.konst) {
            (None, Some(_)) => {
                to.konst = from.konst;
                to_changed = true;
            }
            (Some(_), None) => from_changed = true,
            _ => {}
        }
        DidMerge(to_changed, from_changed)
    }

    fn modify(egraph: &mut XGraph, id: Id) {
        let data = &egraph[id].data;
        let (Some(values), Some(ty)) = (data.konst.clone(), data.ty.clone()) else {
            return;
        };
        if egraph[id].nodes.iter().any(is_constant_node) {
            return;
        }
        let c = add_constant(egraph, values, ty);
        egraph.union(id, c);
    }
}
