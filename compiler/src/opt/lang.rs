//! The e-graph language: Xenon's primitive ops as egg e-nodes.
//!
//! Ops that rewrite rules reason about have their own e-node (`add`, `mul`, `exp`,
//! `reshape`, `matmul`, …). Their attributes (a target shape, reduction axes, a
//! permutation, matmul transpose flags, a dtype, a row count) are **attribute e-classes**: leaf e-nodes
//! [`XLang::Attr`] that are children like operands, so that a pattern such as
//! `(reshape (reshape ?x ?s1) ?s2)` binds them as variables. Every other op (leaves,
//! random ops, slices, padding, windows, …) is an opaque [`XLang::Op`] e-node that
//! carries the IR op itself; rules never look inside, but the shape analysis and the
//! extractor treat it like any other node.
//!
//! `fused_dense(a, b, flags, c)` is the one non-primitive e-node: `matmul(a, b) + c` marked
//! as one kernel (a GEMM with its bias epilogue). Converting back to the IR expands it into
//! the plain `matmul` and `add` nodes and records them as a fusion group.
//!
//! Attribute and opaque e-nodes never parse from pattern text (their `FromStr` always
//! fails), so a pattern can only bind them to variables.

use crate::ir::{BinaryOp, CompareOp, DType, Literal, Op, ReduceOp, TensorType, UnaryOp};
use egg::{Id, define_language};
use std::fmt;
use std::str::FromStr;

/// An attribute of a structured e-node, held by an attribute e-class.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attr {
    /// A target shape (`reshape`, `broadcast`).
    Shape(Vec<usize>),
    /// Reduction axes and `keepdims`.
    Axes(Vec<usize>, bool),
    /// An axis permutation (`permute`).
    Perm(Vec<usize>),
    /// A dtype (`cast`).
    DType(DType),
    /// Matmul transpose flags `(trans_a, trans_b)`.
    Flags(bool, bool),
    /// The rows of a `scatter_add`'s result.
    Rows(usize),
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Shape(s) => write!(f, "#shape{s:?}"),
            Attr::Axes(a, k) => write!(f, "#axes{a:?}{}", if *k { "k" } else { "" }),
            Attr::Perm(p) => write!(f, "#perm{p:?}"),
            Attr::DType(d) => write!(f, "#{d}"),
            Attr::Flags(a, b) => write!(f, "#t{}{}", *a as u8, *b as u8),
            Attr::Rows(r) => write!(f, "#rows{r}"),
        }
    }
}

impl FromStr for Attr {
    type Err = ();
    /// Attributes never come from pattern text.
    fn from_str(_: &str) -> Result<Attr, ()> {
        Err(())
    }
}

/// An IR op carried opaquely by an e-node, with the declared type of leaves and random ops.
///
/// Equality, order and hashing use a canonical text key (the op's JSON form and the
/// declared type), because ops hold `f64` attributes.
#[derive(Clone, Debug)]
pub struct OpaqueOp {
    /// The IR op.
    pub op: Op,
    /// The declared type of leaves and random ops (`None` for computed ops).
    pub declared: Option<TensorType>,
    key: String,
}

impl OpaqueOp {
    /// Wraps `op` with its declared type.
    pub fn new(op: Op, declared: Option<TensorType>) -> OpaqueOp {
        let json = serde_json::to_string(&op).expect("ops serialize");
        let key = match &declared {
            Some(t) => format!("{json}:{t}"),
            None => json,
        };
        OpaqueOp { op, declared, key }
    }

    /// A constant of type `ty` holding `values` (one value = a splat).
    pub fn constant(values: Vec<f64>, ty: TensorType) -> OpaqueOp {
        OpaqueOp::new(
            Op::Constant {
                value: Literal { values },
            },
            Some(ty),
        )
    }
}

impl PartialEq for OpaqueOp {
    fn eq(&self, other: &OpaqueOp) -> bool {
        self.key == other.key
    }
}
impl Eq for OpaqueOp {}
impl PartialOrd for OpaqueOp {
    fn partial_cmp(&self, other: &OpaqueOp) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OpaqueOp {
    fn cmp(&self, other: &OpaqueOp) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}
impl std::hash::Hash for OpaqueOp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}

impl fmt::Display for OpaqueOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attrs = self.op.attrs();
        if attrs.is_empty() {
            write!(f, "{}", self.op.name())
        } else {
            write!(f, "{}[{attrs}]", self.op.name())
        }
    }
}

impl FromStr for OpaqueOp {
    type Err = ();
    /// Opaque ops never come from pattern text.
    fn from_str(_: &str) -> Result<OpaqueOp, ()> {
        Err(())
    }
}

define_language! {
    /// Xenon's e-graph language (see the [module docs](self)).
    pub enum XLang {
        "neg" = Neg(Id),
        "abs" = Abs(Id),
        "sign" = Sign(Id),
        "exp" = Exp(Id),
        "log" = Log(Id),
        "sqrt" = Sqrt(Id),
        "recip" = Recip(Id),
        "tanh" = Tanh(Id),
        "add" = Add([Id; 2]),
        "sub" = Sub([Id; 2]),
        "mul" = Mul([Id; 2]),
        "div" = Div([Id; 2]),
        "max" = Max([Id; 2]),
        "min" = Min([Id; 2]),
        "lt" = Lt([Id; 2]),
        "le" = Le([Id; 2]),
        "gt" = Gt([Id; 2]),
        "ge" = Ge([Id; 2]),
        "eq" = Eq([Id; 2]),
        "ne" = Ne([Id; 2]),
        // (cond, a, b)
        "select" = Select([Id; 3]),
        // (x, dtype)
        "cast" = Cast([Id; 2]),
        // (x, axes)
        "reduce_sum" = ReduceSum([Id; 2]),
        "reduce_max" = ReduceMax([Id; 2]),
        "reduce_mean" = ReduceMean([Id; 2]),
        // (x, shape)
        "reshape" = Reshape([Id; 2]),
        // (x, perm)
        "permute" = Permute([Id; 2]),
        // (x, shape)
        "broadcast" = Broadcast([Id; 2]),
        // (a, b, flags)
        "matmul" = MatMul([Id; 3]),
        // (a, b, flags, c) = matmul(a, b) + c, one kernel
        "fused_dense" = FusedDense([Id; 4]),
        // (data, indices)
        "gather" = Gather([Id; 2]),
        // (updates, indices, rows)
        "scatter_add" = ScatterAdd([Id; 3]),
        Attr(Attr),
        Op(OpaqueOp, Vec<Id>),
    }
}

/// The tensor operands of an e-node (its children minus attribute children).
pub fn tensor_children(node: &XLang) -> Vec<Id> {
    use XLang::*;
    match node {
        Neg(a) | Abs(a) | Sign(a) | Exp(a) | Log(a) | Sqrt(a) | Recip(a) | Tanh(a) => vec![*a],
        Add(c) | Sub(c) | Mul(c) | Div(c) | Max(c) | Min(c) | Lt(c) | Le(c) | Gt(c) | Ge(c)
        | Eq(c) | Ne(c) => c.to_vec(),
        Select(c) => c.to_vec(),
        Cast([x, _]) | ReduceSum([x, _]) | ReduceMax([x, _]) | ReduceMean([x, _])
        | Reshape([x, _]) | Permute([x, _]) | Broadcast([x, _]) => vec![*x],
        MatMul([a, b, _]) => vec![*a, *b],
        FusedDense([a, b, _, c]) => vec![*a, *b, *c],
        Gather(c) => c.to_vec(),
        ScatterAdd([u, i, _]) => vec![*u, *i],
        Attr(_) => vec![],
        Op(_, c) => c.clone(),
    }
}

/// The IR op of a primitive e-node, given the attribute of each attribute child
/// (`attr(id)`), with the declared type for leaves. `None` for attribute e-nodes,
/// `fused_dense`, and attribute children of the wrong kind.
pub fn to_op(node: &XLang, attr: impl Fn(Id) -> Option<Attr>) -> Option<(Op, Option<TensorType>)> {
    use XLang as L;
    let un = |func| Some((Op::Unary { func }, None));
    let bin = |func| Some((Op::Binary { func }, None));
    let cmp = |func| Some((Op::Compare { func }, None));
    let reduce = |func, id| match attr(id)? {
        Attr::Axes(axes, keepdims) => Some((
            Op::Reduce {
                func,
                axes,
                keepdims,
            },
            None,
        )),
        _ => None,
    };
    match node {
        L::Neg(_) => un(UnaryOp::Neg),
        L::Abs(_) => un(UnaryOp::Abs),
        L::Sign(_) => un(UnaryOp::Sign),
        L::Exp(_) => un(UnaryOp::Exp),
        L::Log(_) => un(UnaryOp::Log),
        L::Sqrt(_) => un(UnaryOp::Sqrt),
        L::Recip(_) => un(UnaryOp::Recip),
        L::Tanh(_) => un(UnaryOp::Tanh),
        L::Add(_) => bin(BinaryOp::Add),
        L::Sub(_) => bin(BinaryOp::Sub),
        L::Mul(_) => bin(BinaryOp::Mul),
        L::Div(_) => bin(BinaryOp::Div),
        L::Max(_) => bin(BinaryOp::Max),
        L::Min(_) => bin(BinaryOp::Min),
        L::Lt(_) => cmp(CompareOp::Lt),
        L::Le(_) => cmp(CompareOp::Le),
        L::Gt(_) => cmp(CompareOp::Gt),
        L::Ge(_) => cmp(CompareOp::Ge),
        L::Eq(_) => cmp(CompareOp::Eq),
        L::Ne(_) => cmp(CompareOp::Ne),
        L::Select(_) => Some((Op::Select, None)),
        L::Cast([_, a]) => match attr(*a)? {
            Attr::DType(to) => Some((Op::Cast { to }, None)),
            _ => None,
        },
        L::ReduceSum([_, a]) => reduce(ReduceOp::Sum, *a),
        L::ReduceMax([_, a]) => reduce(ReduceOp::Max, *a),
        L::ReduceMean([_, a]) => reduce(ReduceOp::Mean, *a),
        L::Reshape([_, a]) => match attr(*a)? {
            Attr::Shape(shape) => Some((Op::Reshape { shape }, None)),
            _ => None,
        },
        L::Permute([_, a]) => match attr(*a)? {
            Attr::Perm(perm) => Some((Op::Permute { perm }, None)),
            _ => None,
        },
        L::Broadcast([_, a]) => match attr(*a)? {
            Attr::Shape(shape) => Some((Op::Broadcast { shape }, None)),
            _ => None,
        },
        L::MatMul([_, _, f]) => match attr(*f)? {
            Attr::Flags(trans_a, trans_b) => Some((Op::MatMul { trans_a, trans_b }, None)),
            _ => None,
        },
        L::Gather(_) => Some((Op::Gather, None)),
        L::ScatterAdd([_, _, a]) => match attr(*a)? {
            Attr::Rows(rows) => Some((Op::ScatterAdd { rows }, None)),
            _ => None,
        },
        L::FusedDense(_) | L::Attr(_) => None,
        L::Op(o, _) => Some((o.op.clone(), o.declared.clone())),
    }
}

/// The e-node for IR op `op` with tensor operands `ops` and attribute class `attr_id`
/// (which must hold the attribute [`op_attr`] returns for `op`).
pub fn from_op(op: &Op, declared: Option<TensorType>, ops: &[Id], attr_id: Option<Id>) -> XLang {
    use XLang as L;
    let a = || attr_id.expect("op_attr gave an attribute");
    match op {
        Op::Unary { func } => {
            let x = ops[0];
            match func {
                UnaryOp::Neg => L::Neg(x),
                UnaryOp::Abs => L::Abs(x),
                UnaryOp::Sign => L::Sign(x),
                UnaryOp::Exp => L::Exp(x),
                UnaryOp::Log => L::Log(x),
                UnaryOp::Sqrt => L::Sqrt(x),
                UnaryOp::Recip => L::Recip(x),
                UnaryOp::Tanh => L::Tanh(x),
            }
        }
        Op::Binary { func } => {
            let c = [ops[0], ops[1]];
            match func {
                BinaryOp::Add => L::Add(c),
                BinaryOp::Sub => L::Sub(c),
                BinaryOp::Mul => L::Mul(c),
                BinaryOp::Div => L::Div(c),
                BinaryOp::Max => L::Max(c),
                BinaryOp::Min => L::Min(c),
            }
        }
        Op::Compare { func } => {
            let c = [ops[0], ops[1]];
            match func {
                CompareOp::Lt => L::Lt(c),
                CompareOp::Le => L::Le(c),
                CompareOp::Gt => L::Gt(c),
                CompareOp::Ge => L::Ge(c),
                CompareOp::Eq => L::Eq(c),
                CompareOp::Ne => L::Ne(c),
            }
        }
        Op::Select => L::Select([ops[0], ops[1], ops[2]]),
        Op::Cast { .. } => L::Cast([ops[0], a()]),
        Op::Reduce { func, .. } => match func {
            ReduceOp::Sum => L::ReduceSum([ops[0], a()]),
            ReduceOp::Max => L::ReduceMax([ops[0], a()]),
            ReduceOp::Mean => L::ReduceMean([ops[0], a()]),
        },
        Op::Reshape { .. } => L::Reshape([ops[0], a()]),
        Op::Permute { .. } => L::Permute([ops[0], a()]),
        Op::Broadcast { .. } => L::Broadcast([ops[0], a()]),
        Op::MatMul { .. } => L::MatMul([ops[0], ops[1], a()]),
        Op::Gather => L::Gather([ops[0], ops[1]]),
        Op::ScatterAdd { .. } => L::ScatterAdd([ops[0], ops[1], a()]),
        other => L::Op(OpaqueOp::new(other.clone(), declared), ops.to_vec()),
    }
}

/// The attribute child an IR op needs in the e-graph, if any.
pub fn op_attr(op: &Op) -> Option<Attr> {
    match op {
        Op::Cast { to } => Some(Attr::DType(*to)),
        Op::Reduce { axes, keepdims, .. } => Some(Attr::Axes(axes.clone(), *keepdims)),
        Op::Reshape { shape } | Op::Broadcast { shape } => Some(Attr::Shape(shape.clone())),
        Op::Permute { perm } => Some(Attr::Perm(perm.clone())),
        Op::MatMul { trans_a, trans_b } => Some(Attr::Flags(*trans_a, *trans_b)),
        Op::ScatterAdd { rows } => Some(Attr::Rows(*rows)),
        _ => None,
    }
}
