//! The dataflow graph: primitive-op nodes on a petgraph `DiGraph`.
//!
//! Nodes are only ever appended, and a node's operands must already exist, so node ids are
//! a topological order: evaluating nodes by increasing id is always valid. Edges point from
//! operand to user and carry the operand's position. Removing nodes ([`Graph::prune`])
//! builds a new, compacted graph.

use super::error::{ErrorKind, GraphError};
use super::infer::{broadcast_shapes, infer};
use super::op::{BinaryOp, CompareOp, Literal, Op, ReduceOp, UnaryOp, Window};
use super::types::TensorType;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};
use std::fmt;
use xenon_runtime::DType;

type Result<T> = std::result::Result<T, GraphError>;

/// A node handle. Ids are dense, start at 0, and follow a topological order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The id as an index into per-node tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// One node: an op, its result type, and the layer scope that built it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The primitive op.
    pub op: Op,
    /// The result's shape and dtype.
    pub ty: TensorType,
    /// The layer (or other builder) scope the node was created in, `/`-separated; empty at
    /// top level. Shown in dumps and named in errors.
    pub scope: String,
}

/// A static dataflow graph of primitive ops with named outputs.
///
/// ```
/// use xenon_compiler::ir::{DType, Graph};
/// let mut g = Graph::new();
/// let x = g.input("x", DType::F32, &[4, 3]).unwrap();
/// let w = g.parameter("W", DType::F32, &[2, 3]).unwrap();
/// let y = g.matmul(x, w, false, true).unwrap(); // x · Wᵀ
/// let z = g.tanh(y).unwrap();
/// g.set_output("z", z).unwrap();
/// assert_eq!(g.ty(z).shape, vec![4, 2]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Graph {
    graph: DiGraph<Node, usize>,
    outputs: Vec<(String, NodeId)>,
    /// `(output, feed)`: the output is the new value of that input or parameter.
    updates: Vec<(String, String)>,
    scope: Vec<String>,
}

impl PartialEq for Graph {
    /// Graphs are equal when their nodes (op, type, scope), operand lists and outputs are.
    fn eq(&self, other: &Graph) -> bool {
        self.len() == other.len()
            && self.outputs == other.outputs
            && self.updates == other.updates
            && self.ids().all(|id| {
                self.node(id) == other.node(id) && self.operands(id) == other.operands(id)
            })
    }
}

fn ix(id: NodeId) -> NodeIndex {
    NodeIndex::new(id.index())
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every node id, in topological (creation) order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.len() as u32).map(NodeId)
    }

    /// The node with id `id`. Panics on an id from another graph; use [`Graph::get`] for
    /// ids that were not produced by this graph.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.graph[ix(id)]
    }

    /// The node with id `id`, if it exists.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.graph.node_weight(ix(id))
    }

    /// The result type of a node.
    pub fn ty(&self, id: NodeId) -> &TensorType {
        &self.node(id).ty
    }

    /// A node's operands, in order.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(usize, NodeId)> = self
            .graph
            .edges_directed(ix(id), Direction::Incoming)
            .map(|e| (*e.weight(), NodeId(e.source().index() as u32)))
            .collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// The nodes that use `id` as an operand (once per use), in increasing id order.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut users: Vec<NodeId> = self
            .graph
            .edges_directed(ix(id), Direction::Outgoing)
            .map(|e| NodeId(e.target().index() as u32))
            .collect();
        users.sort_unstable();
        users
    }

    /// The underlying petgraph graph (edge weight = operand position), for graph
    /// algorithms.
    pub fn petgraph(&self) -> &DiGraph<Node, usize> {
        &self.graph
    }

    /// The named outputs, in the order they were set.
    pub fn outputs(&self) -> &[(String, NodeId)] {
        &self.outputs
    }

    /// The node of a named output.
    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, id)| id)
    }

    /// Names `id` as an output. Names are unique.
    pub fn set_output(&mut self, name: &str, id: NodeId) -> Result<()> {
        if self.get(id).is_none() {
            return Err(GraphError::new(
                ErrorKind::UnknownNode,
                "output",
                &[],
                format!("{id} does not exist"),
            ));
        }
        if self.output(name).is_some() {
            return Err(GraphError::new(
                ErrorKind::DuplicateName,
                "output",
                &[],
                format!("output {name:?} is already set"),
            ));
        }
        self.outputs.push((name.to_string(), id));
        Ok(())
    }

    /// Points the existing output `name` at `id` instead (of the same type, so that an
    /// update it is declared stays valid), keeping its place and any update.
    pub fn replace_output(&mut self, name: &str, id: NodeId) -> Result<()> {
        let err = |kind, reason: String| Err(GraphError::new(kind, "output", &[], reason));
        if self.get(id).is_none() {
            return err(ErrorKind::UnknownNode, format!("{id} does not exist"));
        }
        let Some(slot) = self.outputs.iter().position(|(n, _)| n == name) else {
            return err(
                ErrorKind::UnknownNode,
                format!("there is no output {name:?}"),
            );
        };
        let old = self.outputs[slot].1;
        if self.ty(old) != self.ty(id) {
            return err(
                ErrorKind::DTypeMismatch,
                format!(
                    "output {name:?} is {}, the replacement {}",
                    self.ty(old),
                    self.ty(id)
                ),
            );
        }
        self.outputs[slot].1 = id;
        Ok(())
    }

    /// Declares output `output` the new value of the input or parameter named `feed` (same
    /// dtype and shape): running the graph "with updates" writes it back into that feed,
    /// as a training step updates its parameters and optimizer state. Each output and
    /// each feed is updated at most once.
    ///
    /// ```
    /// use xenon_compiler::ir::{DType, Graph};
    /// let mut g = Graph::new();
    /// let w = g.parameter("W", DType::F32, &[3]).unwrap();
    /// let w2 = g.add_(w, w).unwrap();
    /// g.set_output("new/W", w2).unwrap();
    /// g.set_update("new/W", "W").unwrap();
    /// assert_eq!(g.update_of("new/W"), Some("W"));
    /// assert!(g.set_update("new/W", "W").is_err());
    /// ```
    pub fn set_update(&mut self, output: &str, feed: &str) -> Result<()> {
        let err = |kind, detail: String| Err(GraphError::new(kind, "update", &[], detail));
        let Some(out) = self.output(output) else {
            return err(
                ErrorKind::UnknownNode,
                format!("no output named {output:?}"),
            );
        };
        let target = self.ids().find(|&id| match &self.node(id).op {
            Op::Input { name } | Op::Parameter { name } => name == feed,
            _ => false,
        });
        let Some(target) = target else {
            return err(
                ErrorKind::UnknownNode,
                format!("no input or parameter named {feed:?}"),
            );
        };
        if self.ty(out) != self.ty(target) {
            return err(
                ErrorKind::ShapeMismatch,
                format!(
                    "output {output:?} is {}, {feed:?} is {}",
                    self.ty(out),
                    self.ty(target)
                ),
            );
        }
        if self.updates.iter().any(|(o, f)| o == output || f == feed) {
            return err(
                ErrorKind::DuplicateName,
                format!("output {output:?} or feed {feed:?} is already in an update"),
            );
        }
        self.updates.push((output.to_string(), feed.to_string()));
        Ok(())
    }

    /// Every `(output, feed)` update, in the order declared (see [`Graph::set_update`]).
    pub fn updates(&self) -> &[(String, String)] {
        &self.updates
    }

    /// The feed output `output` updates, if it is an update.
    pub fn update_of(&self, output: &str) -> Option<&str> {
        self.updates
            .iter()
            .find(|(o, _)| o == output)
            .map(|(_, f)| f.as_str())
    }

    /// `(name, id)` of every `input` node, in id order.
    pub fn inputs(&self) -> Vec<(String, NodeId)> {
        self.named_leaves(|op| matches!(op, Op::Input { .. }))
    }

    /// `(name, id)` of every `parameter` node, in id order.
    pub fn parameters(&self) -> Vec<(String, NodeId)> {
        self.named_leaves(|op| matches!(op, Op::Parameter { .. }))
    }

    fn named_leaves(&self, pick: impl Fn(&Op) -> bool) -> Vec<(String, NodeId)> {
        self.ids()
            .filter_map(|id| match &self.node(id).op {
                op @ (Op::Input { name } | Op::Parameter { name }) if pick(op) => {
                    Some((name.clone(), id))
                }
                _ => None,
            })
            .collect()
    }

    /// The input or parameter called `name`.
    pub fn find_leaf(&self, name: &str) -> Option<NodeId> {
        self.ids().find(|&id| matches!(&self.node(id).op, Op::Input { name: n } | Op::Parameter { name: n } if n == name))
    }

    /// The current scope, `/`-joined.
    pub fn scope(&self) -> String {
        self.scope.join("/")
    }

    /// Runs `f` with `name` pushed on the scope stack: nodes built inside carry the scope,
    /// and errors name it.
    pub fn in_scope<R>(&mut self, name: &str, f: impl FnOnce(&mut Graph) -> R) -> R {
        self.scope.push(name.to_string());
        let r = f(self);
        self.scope.pop();
        r
    }

    /// Adds a node for a computed op (not a leaf or random op), inferring its type.
    pub fn add(&mut self, op: Op, operands: &[NodeId]) -> Result<NodeId> {
        self.add_node(op, operands, None)
    }

    /// Adds a node; `declared` gives the type of leaves and random ops (see
    /// [`super::infer::infer`]). The one place nodes are created.
    pub fn add_node(
        &mut self,
        op: Op,
        operands: &[NodeId],
        declared: Option<TensorType>,
    ) -> Result<NodeId> {
        let scope = self.scope();
        let mut types = Vec::with_capacity(operands.len());
        for &o in operands {
            match self.get(o) {
                Some(n) => types.push(n.ty.clone()),
                None => {
                    return Err(GraphError::new(
                        ErrorKind::UnknownNode,
                        op.name(),
                        &types,
                        format!("operand {o} does not exist"),
                    )
                    .in_scope(&scope));
                }
            }
        }
        if let Op::Input { name } | Op::Parameter { name } = &op
            && self.find_leaf(name).is_some()
        {
            return Err(GraphError::new(
                ErrorKind::DuplicateName,
                op.name(),
                &[],
                format!("the name {name:?} is already used"),
            )
            .in_scope(&scope));
        }
        let ty = infer(&op, &types, declared.as_ref()).map_err(|e| e.in_scope(&scope))?;
        let id = self.graph.add_node(Node { op, ty, scope });
        for (pos, &o) in operands.iter().enumerate() {
            self.graph.add_edge(ix(o), id, pos);
        }
        Ok(NodeId(id.index() as u32))
    }

    /// A new graph holding only the nodes that the outputs depend on, plus every input and
    /// parameter (they are the graph's interface). Returns it with the old→new id map.
    pub fn prune(&self) -> (Graph, Vec<Option<NodeId>>) {
        let mut live = vec![false; self.len()];
        let mut stack: Vec<NodeId> = self.outputs.iter().map(|&(_, id)| id).collect();
        stack.extend(
            self.ids()
                .filter(|&id| matches!(self.node(id).op, Op::Input { .. } | Op::Parameter { .. })),
        );
        while let Some(id) = stack.pop() {
            if !live[id.index()] {
                live[id.index()] = true;
                stack.extend(self.operands(id));
            }
        }
        let mut out = Graph::new();
        let mut map = vec![None; self.len()];
        for id in self.ids().filter(|id| live[id.index()]) {
            let node = self.node(id).clone();
            let new = out.graph.add_node(node);
            for (pos, o) in self.operands(id).into_iter().enumerate() {
                let src = map[o.index()].expect("operands precede users");
                out.graph.add_edge(ix(src), new, pos);
            }
            map[id.index()] = Some(NodeId(new.index() as u32));
        }
        out.outputs = self
            .outputs
            .iter()
            .map(|(n, id)| (n.clone(), map[id.index()].expect("outputs are live")))
            .collect();
        out.updates = self.updates.clone();
        (out, map)
    }

    /// The same graph with every [`Op::ScaleGrad`] node replaced by its operand: the same
    /// values, for the stages after autodiff (the optimizer and the lowering), where the
    /// gradient factor has done its work. A graph without such nodes (every graph the
    /// optimizer gives back) is borrowed, not copied.
    pub fn without_grad_scales(&self) -> std::borrow::Cow<'_, Graph> {
        if !self
            .ids()
            .any(|id| matches!(self.node(id).op, Op::ScaleGrad { .. }))
        {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut out = Graph::new();
        let mut map: Vec<NodeId> = Vec::with_capacity(self.len());
        for id in self.ids() {
            let node = self.node(id);
            let operands = self.operands(id);
            if let Op::ScaleGrad { .. } = node.op {
                map.push(map[operands[0].index()]);
                continue;
            }
            let new = out.graph.add_node(node.clone());
            for (pos, o) in operands.into_iter().enumerate() {
                out.graph.add_edge(ix(map[o.index()]), new, pos);
            }
            map.push(NodeId(new.index() as u32));
        }
        out.outputs = self
            .outputs
            .iter()
            .map(|(n, id)| (n.clone(), map[id.index()]))
            .collect();
        out.updates = self.updates.clone();
        std::borrow::Cow::Owned(out)
    }

    /// A copy of the graph computing in `dtype` where it computes in another float type:
    /// every float node (inputs, parameters, constants, random samples, casts to a float)
    /// takes `dtype`; i32 nodes stay. Verify mode runs the f64 copy of an f32 graph as the
    /// exact result its rounding errors are measured against.
    ///
    /// ```
    /// use xenon_compiler::ir::{DType, Graph};
    /// let mut g = Graph::new();
    /// let x = g.input("x", DType::F32, &[2]).unwrap();
    /// let y = g.exp(x).unwrap();
    /// g.set_output("y", y).unwrap();
    /// let g64 = g.with_float_dtype(DType::F64);
    /// assert_eq!(g64.ty(y).dtype, DType::F64);
    /// ```
    pub fn with_float_dtype(&self, dtype: DType) -> Graph {
        let mut out = self.clone();
        for id in self.ids() {
            let node = &mut out.graph[ix(id)];
            if node.ty.dtype.is_float() {
                node.ty.dtype = dtype;
            }
            if let Op::Cast { to } = &mut node.op
                && to.is_float()
            {
                *to = dtype;
            }
        }
        out
    }

    // ----- leaves -------------------------------------------------------------------------

    /// A value fed at run time.
    pub fn input(&mut self, name: &str, dtype: DType, shape: &[usize]) -> Result<NodeId> {
        self.add_node(
            Op::Input { name: name.into() },
            &[],
            Some(TensorType::new(dtype, shape)),
        )
    }

    /// A trainable value or optimizer state.
    pub fn parameter(&mut self, name: &str, dtype: DType, shape: &[usize]) -> Result<NodeId> {
        self.add_node(
            Op::Parameter { name: name.into() },
            &[],
            Some(TensorType::new(dtype, shape)),
        )
    }

    /// A constant with one value per element (row-major) or one value for all.
    pub fn constant(&mut self, dtype: DType, shape: &[usize], values: Vec<f64>) -> Result<NodeId> {
        self.add_node(
            Op::Constant {
                value: Literal { values },
            },
            &[],
            Some(TensorType::new(dtype, shape)),
        )
    }

    /// A constant with every element equal to `value`.
    pub fn full(&mut self, dtype: DType, shape: &[usize], value: f64) -> Result<NodeId> {
        self.constant(dtype, shape, vec![value])
    }

    /// A rank-0 constant.
    pub fn scalar(&mut self, dtype: DType, value: f64) -> Result<NodeId> {
        self.full(dtype, &[], value)
    }

    /// Uniform samples on `[low, high)`; `counter` (an i32 scalar node) varies the stream.
    pub fn random_uniform(
        &mut self,
        dtype: DType,
        shape: &[usize],
        seed: u64,
        low: f64,
        high: f64,
        counter: Option<NodeId>,
    ) -> Result<NodeId> {
        let ops: Vec<NodeId> = counter.into_iter().collect();
        self.add_node(
            Op::RandomUniform { seed, low, high },
            &ops,
            Some(TensorType::new(dtype, shape)),
        )
    }

    /// Normal samples with mean `mean` and standard deviation `std`.
    pub fn random_normal(
        &mut self,
        dtype: DType,
        shape: &[usize],
        seed: u64,
        mean: f64,
        std: f64,
        counter: Option<NodeId>,
    ) -> Result<NodeId> {
        let ops: Vec<NodeId> = counter.into_iter().collect();
        self.add_node(
            Op::RandomNormal { seed, mean, std },
            &ops,
            Some(TensorType::new(dtype, shape)),
        )
    }

    // ----- elementwise --------------------------------------------------------------------

    /// `func(x)`.
    pub fn unary(&mut self, func: UnaryOp, x: NodeId) -> Result<NodeId> {
        self.add(Op::Unary { func }, &[x])
    }

    /// `-x`.
    pub fn neg(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Neg, x)
    }
    /// `|x|`.
    pub fn abs(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Abs, x)
    }
    /// `sign(x)`.
    pub fn sign(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Sign, x)
    }
    /// `e^x`.
    pub fn exp(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Exp, x)
    }
    /// `ln x`.
    pub fn log(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Log, x)
    }
    /// `√x`.
    pub fn sqrt(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Sqrt, x)
    }
    /// `1/x`.
    pub fn recip(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Recip, x)
    }
    /// `tanh x`.
    pub fn tanh(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(UnaryOp::Tanh, x)
    }

    /// Broadcasts the operands of `op` to their common (numpy) shape, adding `broadcast`
    /// nodes where a shape differs. Nothing is added unless `op` accepts the broadcast
    /// operands, so a failed call leaves the graph unchanged.
    fn broadcast_all(&mut self, op: &Op, xs: &[NodeId]) -> Result<Vec<NodeId>> {
        let name = op.name();
        let mut types: Vec<TensorType> = Vec::with_capacity(xs.len());
        for &x in xs {
            match self.get(x) {
                Some(n) => types.push(n.ty.clone()),
                None => {
                    return Err(GraphError::new(
                        ErrorKind::UnknownNode,
                        name,
                        &types,
                        format!("operand {x} does not exist"),
                    )
                    .in_scope(&self.scope()));
                }
            }
        }
        let mut shape: Vec<usize> = Vec::new();
        for t in &types {
            shape = broadcast_shapes(&shape, &t.shape).ok_or_else(|| {
                GraphError::new(
                    ErrorKind::ShapeMismatch,
                    name.clone(),
                    &types,
                    "operand shapes do not broadcast together",
                )
                .in_scope(&self.scope())
            })?;
        }
        let broadcast: Vec<TensorType> = types
            .iter()
            .map(|t| TensorType::new(t.dtype, shape.clone()))
            .collect();
        infer(op, &broadcast, None).map_err(|e| e.in_scope(&self.scope()))?;
        xs.iter().map(|&x| self.broadcast_to(x, &shape)).collect()
    }

    /// `func(a, b)`, broadcasting the operands numpy-style first.
    pub fn binary(&mut self, func: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId> {
        let op = Op::Binary { func };
        let v = self.broadcast_all(&op, &[a, b])?;
        self.add(op, &v)
    }

    /// `a + b` (broadcasting).
    pub fn add_(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Add, a, b)
    }
    /// `a - b` (broadcasting).
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Sub, a, b)
    }
    /// `a * b` (broadcasting).
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Mul, a, b)
    }
    /// `a / b` (broadcasting).
    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Div, a, b)
    }
    /// `max(a, b)` (broadcasting).
    pub fn max(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Max, a, b)
    }
    /// `min(a, b)` (broadcasting).
    pub fn min(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Min, a, b)
    }

    /// A 0/1 mask of `a ∘ b` (broadcasting).
    pub fn compare(&mut self, func: CompareOp, a: NodeId, b: NodeId) -> Result<NodeId> {
        let op = Op::Compare { func };
        let v = self.broadcast_all(&op, &[a, b])?;
        self.add(op, &v)
    }

    /// `cond ≠ 0 ? a : b` (broadcasting all three).
    pub fn select(&mut self, cond: NodeId, a: NodeId, b: NodeId) -> Result<NodeId> {
        let v = self.broadcast_all(&Op::Select, &[cond, a, b])?;
        self.add(Op::Select, &v)
    }

    /// Converts `x` to `to`.
    pub fn cast(&mut self, x: NodeId, to: DType) -> Result<NodeId> {
        self.add(Op::Cast { to }, &[x])
    }

    // ----- reductions ---------------------------------------------------------------------

    /// Reduces `x` over `axes`.
    pub fn reduce(
        &mut self,
        func: ReduceOp,
        x: NodeId,
        axes: &[usize],
        keepdims: bool,
    ) -> Result<NodeId> {
        self.add(
            Op::Reduce {
                func,
                axes: axes.to_vec(),
                keepdims,
            },
            &[x],
        )
    }
    /// Sum over `axes`.
    pub fn sum(&mut self, x: NodeId, axes: &[usize], keepdims: bool) -> Result<NodeId> {
        self.reduce(ReduceOp::Sum, x, axes, keepdims)
    }
    /// Maximum over `axes`.
    pub fn reduce_max(&mut self, x: NodeId, axes: &[usize], keepdims: bool) -> Result<NodeId> {
        self.reduce(ReduceOp::Max, x, axes, keepdims)
    }
    /// Mean over `axes`.
    pub fn mean(&mut self, x: NodeId, axes: &[usize], keepdims: bool) -> Result<NodeId> {
        self.reduce(ReduceOp::Mean, x, axes, keepdims)
    }
    /// Index of the first maximum along `axis` (i32).
    pub fn argmax(&mut self, x: NodeId, axis: usize, keepdims: bool) -> Result<NodeId> {
        self.add(Op::ArgMax { axis, keepdims }, &[x])
    }

    // ----- movement -----------------------------------------------------------------------

    /// `x` with a new shape of the same element count.
    pub fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId> {
        if self.get(x).is_some_and(|n| n.ty.shape == shape) {
            return Ok(x);
        }
        self.add(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    pub fn permute(&mut self, x: NodeId, perm: &[usize]) -> Result<NodeId> {
        self.add(
            Op::Permute {
                perm: perm.to_vec(),
            },
            &[x],
        )
    }
    /// Swaps the last two axes.
    pub fn transpose(&mut self, x: NodeId) -> Result<NodeId> {
        let Some(r) = self.get(x).map(|n| n.ty.rank()) else {
            // Reports the unknown operand.
            return self.permute(x, &[1, 0]);
        };
        if r < 2 {
            let t = self
                .get(x)
                .map(|n| n.ty.clone())
                .into_iter()
                .collect::<Vec<_>>();
            return Err(GraphError::new(
                ErrorKind::AxisOutOfRange,
                "permute",
                &t,
                "transpose needs rank 2 or more",
            )
            .in_scope(&self.scope()));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(x, &perm)
    }
    /// Numpy broadcast to `shape` (no node when the shape already matches).
    pub fn broadcast_to(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId> {
        if self.get(x).is_some_and(|n| n.ty.shape == shape) {
            return Ok(x);
        }
        self.add(
            Op::Broadcast {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }
    /// `x`, with its gradient scaled by `factor` (see [`Op::ScaleGrad`]).
    pub fn scale_grad(&mut self, x: NodeId, factor: f64) -> Result<NodeId> {
        self.add(Op::ScaleGrad { factor }, &[x])
    }
    /// `x` summed over the ranks of a data-parallel run (see [`Op::AllReduce`]).
    pub fn all_reduce(&mut self, x: NodeId) -> Result<NodeId> {
        self.add(Op::AllReduce, &[x])
    }
    /// Strided slice.
    pub fn slice(
        &mut self,
        x: NodeId,
        start: &[usize],
        end: &[usize],
        step: &[usize],
    ) -> Result<NodeId> {
        self.add(
            Op::Slice {
                start: start.to_vec(),
                end: end.to_vec(),
                step: step.to_vec(),
            },
            &[x],
        )
    }
    /// Padding with `value` (low, high and interior per axis).
    pub fn pad(
        &mut self,
        x: NodeId,
        low: &[usize],
        high: &[usize],
        interior: &[usize],
        value: f64,
    ) -> Result<NodeId> {
        self.add(
            Op::Pad {
                low: low.to_vec(),
                high: high.to_vec(),
                interior: interior.to_vec(),
                value,
            },
            &[x],
        )
    }
    /// Concatenation along `axis`.
    pub fn concat(&mut self, xs: &[NodeId], axis: usize) -> Result<NodeId> {
        self.add(Op::Concat { axis }, xs)
    }

    // ----- contractions, windows, indexing ------------------------------------------------

    /// Batched `op(a)·op(b)`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId, trans_a: bool, trans_b: bool) -> Result<NodeId> {
        self.add(Op::MatMul { trans_a, trans_b }, &[a, b])
    }
    /// Sliding-window unfold.
    pub fn im2col(&mut self, x: NodeId, window: &Window) -> Result<NodeId> {
        self.add(
            Op::Im2Col {
                window: window.clone(),
            },
            &[x],
        )
    }
    /// Sliding-window fold (the adjoint of [`Graph::im2col`]).
    pub fn col2im(&mut self, cols: NodeId, window: &Window, spatial: &[usize]) -> Result<NodeId> {
        self.add(
            Op::Col2Im {
                window: window.clone(),
                spatial: spatial.to_vec(),
            },
            &[cols],
        )
    }
    /// Rows of `data` at `indices`.
    pub fn gather(&mut self, data: NodeId, indices: NodeId) -> Result<NodeId> {
        self.add(Op::Gather, &[data, indices])
    }
    /// Adds update rows into a zero tensor of `rows` rows at `indices`.
    pub fn scatter_add(&mut self, updates: NodeId, indices: NodeId, rows: usize) -> Result<NodeId> {
        self.add(Op::ScatterAdd { rows }, &[updates, indices])
    }
}
