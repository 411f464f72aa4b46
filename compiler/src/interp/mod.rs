//! The reference interpreter: Xenon's oracle for what every op means.
//!
//! It evaluates a [`Graph`] node by node on host [`Tensor`]s, in plain Rust, for f32 and
//! f64 (and i32 where the IR allows it). Every backend and every optimization pass is
//! tested against it, so it favours clarity and determinism over speed — with one
//! exception: matmul is fast enough to train small MLPs in a release build.
//!
//! * [`run`] evaluates a graph's named outputs, [`eval`] any list of nodes.
//! * [`eval_op`] is the per-node kernel, public so that backends' differential tests can
//!   compare one op at a time.
//! * [`run_with`] and [`eval_with`] take a [`Collective`]: the rank's group for
//!   `all_reduce` (without one, a run is one rank and `all_reduce` is the identity).
//!
//! The meaning of each op is documented on [`Op`] and its kernels (modules
//! `elementwise`, `reduce`, `movement`, `matmul`, `window`, `index`, `random`). Where
//! [`Op`]'s documentation is silent, the interpreter chooses as follows:
//!
//! * `sign(±0) = ±0` (the zero is returned as it is) and `sign(NaN) = NaN`.
//! * Binary `max`/`min` return `a` when the operands compare equal (so `max(-0, +0) = -0`).
//! * `select` picks `a` where the condition is NaN (NaN ≠ 0).
//! * `argmax` treats NaN as the maximum: the index of the lane's first NaN.
//! * `reduce_sum` adds in row-major input order starting from `+0`; `reduce_max` starts
//!   from `-inf` (`i32::MIN`).
//! * `matmul` accumulates in the element type, in increasing inner index, without fused
//!   multiply-add.
//! * `col2im` adds column entries into the image in column-buffer order.
//! * `random_uniform` rounds `low`/`high` to the dtype and computes `low + (high−low)·u`
//!   in it; `random_normal` computes `mean + std·z` in f64 and rounds.
//! * The pad value and constants are converted to the dtype like
//!   [`Tensor::from_f64_as`] (f32 rounds to nearest, i32 truncates toward zero,
//!   saturating).

mod element;
mod elementwise;
mod index;
mod layout;
mod matmul;
mod movement;
mod random;
mod reduce;
#[cfg(test)]
mod scalar_parity;
mod window;

use crate::ir::infer::infer;
use crate::ir::{Graph, NodeId, Op, TensorType};
use std::borrow::Cow;
use std::collections::HashMap;
use xenon_runtime::Tensor;
use xenon_runtime::collective::{Collective, CollectiveError, ReduceBuf};

/// Values for a graph's `Input` and `Parameter` nodes, by name (every backend's
/// [`xenon_runtime::exec::Feeds`]).
pub use xenon_runtime::exec::Feeds;

/// Why the interpreter could not evaluate a graph or an op.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InterpError {
    /// No feed was given for an input or parameter that the requested nodes need (or
    /// [`eval_op`] was asked to evaluate an input or parameter, which only feeds supply).
    #[error("missing feed for {name:?}")]
    MissingFeed { name: String },
    /// A feed's shape or dtype differs from its node's type.
    #[error("feed {name:?} has type {got}, but the graph expects {expected}")]
    FeedType {
        name: String,
        expected: TensorType,
        got: TensorType,
    },
    /// A `gather` or `scatter_add` index is outside `0..rows`.
    #[error(
        "{op}: index {index} (at position {position} of the indices) is out of range for {rows} rows"
    )]
    IndexOutOfRange {
        /// `gather` or `scatter_add`.
        op: String,
        /// Row-major position of the offending index in the index tensor.
        position: usize,
        /// The index.
        index: i32,
        /// The number of rows it should address.
        rows: usize,
    },
    /// The operands given to an op do not fit it, or do not produce the node's type.
    #[error("{op}: operands do not match the node's type: {reason}")]
    OperandMismatch { op: String, reason: String },
    /// A requested node id does not belong to the graph.
    #[error("node {id} is not in the graph")]
    UnknownNode { id: NodeId },
    /// An `all_reduce` failed: a rank was lost, or the ranks disagree.
    #[error(transparent)]
    Collective(#[from] CollectiveError),
}

type Result<T> = std::result::Result<T, InterpError>;

/// Runs every node the graph's named outputs need and returns the outputs by name.
///
/// `feeds` must hold a tensor of the declared type for every `Input` and `Parameter` the
/// outputs depend on; feeds for other names are ignored, and inputs that no output needs
/// may be left out. Each node is evaluated once, in increasing id order, and an
/// intermediate value is dropped as soon as its last user has run.
///
/// ```
/// use xenon_compiler::interp::{self, Feeds};
/// use xenon_compiler::ir::{DType, Graph};
/// use xenon_runtime::Tensor;
///
/// let mut g = Graph::new();
/// let x = g.input("x", DType::F32, &[2, 2]).unwrap();
/// let w = g.parameter("w", DType::F32, &[2, 1]).unwrap();
/// let y = g.matmul(x, w, false, false).unwrap();
/// let z = g.tanh(y).unwrap();
/// g.set_output("y", y).unwrap();
/// g.set_output("z", z).unwrap();
///
/// let mut feeds = Feeds::new();
/// feeds.insert("x".into(), Tensor::from_f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
/// feeds.insert("w".into(), Tensor::from_f32(vec![2, 1], vec![0.5, -0.5]).unwrap());
/// let out = interp::run(&g, &feeds).unwrap();
/// assert_eq!(out["y"].as_f32().unwrap(), &[-0.5, -0.5]);
/// assert_eq!(out["z"].shape(), &[2, 1]);
///
/// // A missing feed is an error, not a panic.
/// feeds.remove("w");
/// assert!(matches!(
///     interp::run(&g, &feeds),
///     Err(interp::InterpError::MissingFeed { name }) if name == "w"
/// ));
/// ```
pub fn run(graph: &Graph, feeds: &Feeds) -> Result<HashMap<String, Tensor>> {
    run_with(graph, feeds, None)
}

/// [`run`] as one rank of `comm`'s group: `all_reduce` sums over the ranks (every rank
/// must run the same graph).
pub fn run_with(
    graph: &Graph,
    feeds: &Feeds,
    comm: Option<&dyn Collective>,
) -> Result<HashMap<String, Tensor>> {
    let ids: Vec<NodeId> = graph.outputs().iter().map(|&(_, id)| id).collect();
    let values = eval_with(graph, feeds, &ids, comm)?;
    Ok(graph
        .outputs()
        .iter()
        .map(|(name, _)| name.clone())
        .zip(values)
        .collect())
}

/// Evaluates `nodes` (and what they depend on) and returns their values in the order
/// given; a node may be requested more than once. Feeds are as for [`run`].
pub fn eval(graph: &Graph, feeds: &Feeds, nodes: &[NodeId]) -> Result<Vec<Tensor>> {
    eval_with(graph, feeds, nodes, None)
}

/// [`eval`] as one rank of `comm`'s group (see [`run_with`]). The ranks' `all_reduce`
/// calls happen in increasing node id order.
pub fn eval_with(
    graph: &Graph,
    feeds: &Feeds,
    nodes: &[NodeId],
    comm: Option<&dyn Collective>,
) -> Result<Vec<Tensor>> {
    for &id in nodes {
        if graph.get(id).is_none() {
            return Err(InterpError::UnknownNode { id });
        }
    }

    // The nodes the request reaches, and each one's operands.
    let mut operands: Vec<Option<Vec<NodeId>>> = vec![None; graph.len()];
    let mut stack = nodes.to_vec();
    while let Some(id) = stack.pop() {
        if operands[id.index()].is_none() {
            let ops = graph.operands(id);
            stack.extend(&ops);
            operands[id.index()] = Some(ops);
        }
    }

    // Remaining uses of each value: one per operand slot of a reachable user, plus one
    // per request, so that requested values survive to the end.
    let mut uses = vec![0usize; graph.len()];
    for &o in operands.iter().flatten().flatten() {
        uses[o.index()] += 1;
    }
    for &id in nodes {
        uses[id.index()] += 1;
    }

    // Feeds are borrowed, computed values owned.
    let mut values: Vec<Option<Cow<'_, Tensor>>> = vec![None; graph.len()];
    for id in graph.ids() {
        let Some(ops) = &operands[id.index()] else {
            continue;
        };
        let node = graph.node(id);
        let value = match &node.op {
            Op::Input { name } | Op::Parameter { name } => {
                Cow::Borrowed(feed(feeds, name, &node.ty)?)
            }
            op => {
                let args = ops
                    .iter()
                    .map(|&o| {
                        values[o.index()]
                            .as_deref()
                            .ok_or(InterpError::UnknownNode { id: o })
                    })
                    .collect::<Result<Vec<&Tensor>>>()?;
                let mut v = eval_op(op, &node.ty, &args)?;
                if let (Op::AllReduce, Some(comm)) = (op, comm) {
                    all_reduce(comm, &mut v)?;
                }
                Cow::Owned(v)
            }
        };
        values[id.index()] = Some(value);
        for &o in ops {
            uses[o.index()] -= 1;
            if uses[o.index()] == 0 {
                values[o.index()] = None;
            }
        }
    }

    let mut out = Vec::with_capacity(nodes.len());
    for &id in nodes {
        let i = id.index();
        uses[i] -= 1;
        let value = if uses[i] == 0 {
            values[i].take()
        } else {
            values[i].clone()
        };
        out.push(value.ok_or(InterpError::UnknownNode { id })?.into_owned());
    }
    Ok(out)
}

/// Sums `v` over `comm`'s ranks in place.
fn all_reduce(comm: &dyn Collective, v: &mut Tensor) -> Result<()> {
    let data = v.data_mut();
    let buf = match data {
        xenon_runtime::TensorData::F32(d) => ReduceBuf::F32(d),
        xenon_runtime::TensorData::F64(d) => ReduceBuf::F64(d),
        xenon_runtime::TensorData::I32(_) => {
            return Err(InterpError::OperandMismatch {
                op: "all_reduce".into(),
                reason: "i32 operand".into(),
            });
        }
    };
    Ok(comm.all_reduce_sum(buf)?)
}

/// The feed called `name`, checked against the node's type.
fn feed<'a>(feeds: &'a Feeds, name: &str, ty: &TensorType) -> Result<&'a Tensor> {
    let t = feeds
        .get(name)
        .ok_or_else(|| InterpError::MissingFeed { name: name.into() })?;
    let got = type_of(t);
    if got != *ty {
        return Err(InterpError::FeedType {
            name: name.into(),
            expected: ty.clone(),
            got,
        });
    }
    Ok(t)
}

/// The IR type of a tensor value.
fn type_of(t: &Tensor) -> TensorType {
    TensorType::new(t.dtype(), t.shape())
}

/// Evaluates one op on operand values, producing a tensor of type `ty`: the per-node
/// kernel of [`eval`].
///
/// The operands are checked first: with their types, the op must pass the IR's shape and
/// dtype rules ([`infer`]) and yield exactly `ty`, otherwise the result is an
/// [`InterpError::OperandMismatch`]. `Input` and `Parameter` ops have no kernel (feeds
/// supply them) and give [`InterpError::MissingFeed`].
///
/// ```
/// use xenon_compiler::interp::eval_op;
/// use xenon_compiler::ir::{BinaryOp, DType, Op, TensorType};
/// use xenon_runtime::Tensor;
///
/// let a = Tensor::from_f64(vec![2], vec![1.0, f64::NAN]).unwrap();
/// let b = Tensor::from_f64(vec![2], vec![3.0, 0.0]).unwrap();
/// let ty = TensorType::new(DType::F64, [2]);
/// let max = eval_op(&Op::Binary { func: BinaryOp::Max }, &ty, &[&a, &b]).unwrap();
/// assert_eq!(max.as_f64().unwrap()[0], 3.0);
/// assert!(max.as_f64().unwrap()[1].is_nan());
/// ```
pub fn eval_op(op: &Op, ty: &TensorType, operands: &[&Tensor]) -> Result<Tensor> {
    check_operands(op, ty, operands)?;
    compute(op, ty, operands).map_err(|e| match e {
        InterpError::OperandMismatch { op: name, reason } if name.is_empty() => {
            InterpError::OperandMismatch {
                op: op.name(),
                reason,
            }
        }
        other => other,
    })
}

/// Checks that `op` applied to `operands` is well-typed and yields `ty`.
fn check_operands(op: &Op, ty: &TensorType, operands: &[&Tensor]) -> Result<()> {
    let types: Vec<TensorType> = operands.iter().map(|t| type_of(t)).collect();
    let list = || {
        let v: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        v.join(", ")
    };
    let mismatch = |reason: String| InterpError::OperandMismatch {
        op: op.name(),
        reason,
    };
    // The IR has no zero-sized dimensions; the shape rules assume so.
    if let Some(t) = types.iter().find(|t| t.shape.contains(&0)) {
        return Err(mismatch(format!("operand {t} has a zero-sized dimension")));
    }
    let inferred = infer(op, &types, Some(ty)).map_err(|e| {
        mismatch(format!(
            "{} (operands: {}; node type {ty})",
            e.reason,
            list()
        ))
    })?;
    if inferred != *ty {
        return Err(mismatch(format!(
            "the operands ({}) give {inferred}, but the node's type is {ty}",
            list()
        )));
    }
    Ok(())
}

/// Dispatches a type-checked op to its kernel.
fn compute(op: &Op, ty: &TensorType, operands: &[&Tensor]) -> Result<Tensor> {
    let x = || operands[0];
    match op {
        Op::Input { name } | Op::Parameter { name } => {
            Err(InterpError::MissingFeed { name: name.clone() })
        }
        Op::Constant { value } => elementwise::constant(value, ty),
        Op::RandomUniform { seed, low, high } => random::uniform(*seed, *low, *high, operands, ty),
        Op::RandomNormal { seed, mean, std } => random::normal(*seed, *mean, *std, operands, ty),
        Op::Unary { func } => elementwise::unary(*func, x()),
        Op::Binary { func } => elementwise::binary(*func, x(), operands[1]),
        Op::Compare { func } => elementwise::compare(*func, x(), operands[1]),
        Op::Select => elementwise::select(x(), operands[1], operands[2]),
        Op::Cast { to } => Ok(x().cast(*to)),
        // One rank's view: `eval_with` sums over the ranks.
        Op::ScaleGrad { .. } | Op::AllReduce => Ok(x().clone()),
        Op::Reduce { func, axes, .. } => reduce::reduce(*func, axes, x(), ty),
        Op::ArgMax { axis, .. } => reduce::argmax(*axis, x(), ty),
        Op::Reshape { shape } => movement::reshape(x(), shape),
        Op::Permute { perm } => movement::permute(x(), perm),
        Op::Broadcast { shape } => movement::broadcast(x(), shape),
        Op::Slice { start, end, step } => movement::slice(x(), start, end, step),
        Op::Pad {
            low,
            high,
            interior,
            value,
        } => movement::pad(x(), low, high, interior, *value),
        Op::Concat { axis } => movement::concat(operands, *axis),
        Op::MatMul { trans_a, trans_b } => matmul::matmul(x(), operands[1], *trans_a, *trans_b, ty),
        Op::Im2Col { window } => window::im2col(x(), window, ty),
        Op::Col2Im { window, .. } => window::col2im(x(), window, ty),
        Op::Gather => index::gather(x(), operands[1], ty),
        Op::ScatterAdd { .. } => index::scatter_add(x(), operands[1], ty),
    }
}
