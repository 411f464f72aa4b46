//! Lowering: from a graph to a [`Program`] of fused kernels over planned buffers.
//!
//! # Partitioning
//!
//! Walking the graph in id (topological) order, a node gets its own buffer — is
//! *materialized* — when it is a graph input, parameter, non-splat constant or output;
//! when it is an anchor (matmul, reduction, arg-max, window, gather/scatter, random,
//! concat, pad); or when it is elementwise and used by more than one consumer (counting
//! through movement ops) unless it is cheap (at most two additions, subtractions,
//! multiplications, maxima, minima, negations or absolute values from stored values: each
//! consumer then computes it again, as `x − mean` in a batch norm), used through a
//! broadcast that repeats it, or used by an op that needs it in memory (matmul, window and
//! indexing ops), or when its inlined expression would make a kernel larger than
//! [`MAX_FUSED`] nodes (an elementwise chain as long as the model is deep is cut into
//! kernels of bounded size). Everything else is *inlined*: elementwise ops fuse into the
//! kernel of the node that consumes them, and movement ops (reshape, permute, broadcast,
//! slice) become strides of loads. So a group never drops a value that is used outside it,
//! and recomputes only those cheap ones (the same operations on the same values: the same
//! bits, though a sum over one may then run as a loop instead of a GEMM).
//!
//! Each materialized node becomes one step:
//! - elementwise: a loop kernel over its shape whose body inlines its producers
//!   (an elementwise chain with broadcasting);
//! - reductions: a loop kernel over the operand's shape reducing the given axes, with the
//!   operand's elementwise producers as its prologue (a mean divides in `post`);
//! - sums over the leading axes of a dense operand in memory (bias gradients): a GEMM
//!   `1ᵀ·X` that streams the rows (see `column_sum`);
//! - matmul: a [`GemmStep`] whose operands are strided views (transposes are free); the
//!   elementwise consumers of the product (bias, activation, scaling) form the next loop
//!   kernel, one fused pass over the output;
//! - concat and pad: loop kernels that store into the right part of the output (an
//!   operand stored there already by its own kernel — see `Lowerer::place_in_concats` —
//!   needs none);
//! - the rest: runtime library routines.
//!
//! An elementwise node materialized only because it has several consumers is *hosted* by
//! its first consumer when that consumer is an elementwise kernel over the same shape: the
//! host computes it inline and stores it as a second output (multi-output fusion), so
//! `z = x·W + b; h = relu(z)` with `z` kept for the backward pass, or a momentum update
//! `v' = μv − ηg; w' = w + v'`, is one pass over memory instead of two. Every later reader
//! comes after the host, so it finds the value in memory.
//!
//! Then [`plan`] packs the temporaries into one arena.
//!
//! Nothing here recurses on the graph's depth: the fused expressions are built by a
//! post-order walk with an explicit stack (`Lowerer::walk`), and chains of movement ops or
//! hosts are followed by loops, so graphs 100,000 nodes deep lower in the default stack.

pub mod affine;
pub mod dump;
mod overlap;
pub mod plan;
pub mod reshape_loops;

use crate::ir::{Graph, GraphError, NodeId, Op, OpGroup, ReduceOp, TensorType, Window};
use affine::{AffineMap, Layout};
use std::collections::HashMap;
use xenon_runtime::DType;
use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Reduction, Store, ValueId};
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, LibraryStep, MatView, MemoryPlan, Program, Step, WindowSpec,
};

/// A lowered graph.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The program.
    pub program: Program,
    /// Shape of each named output.
    pub output_shapes: HashMap<String, Vec<usize>>,
    /// For each step, the graph nodes it computes (the materialized node first, then the
    /// inlined ones), for dumps.
    pub groups: Vec<Vec<NodeId>>,
}

/// Why a graph could not be lowered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LowerError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("cannot lower {op} (node {node}): {reason}")]
    Unsupported {
        op: String,
        node: NodeId,
        reason: String,
    },
}

type Result<T> = std::result::Result<T, LowerError>;

/// Lowers `graph` (every node; prune it first) to a program.
pub fn lower(graph: &Graph) -> Result<Lowered> {
    // Gradient factors are identities once autodiff has run.
    let graph = &graph.without_grad_scales();
    let mut l = Lowerer::new(graph);
    l.partition();
    l.place_in_concats();
    l.run()?;
    for step in &mut l.steps {
        if let Step::Loop(k) = step {
            reshape_loops::coalesce_axes(k);
            reshape_loops::choose_partials(k);
        }
    }
    overlap::delay_reduced_consumers(&mut l.steps, &mut l.groups);
    let mut program = Program {
        buffers: l.buffers,
        steps: l.steps,
        outputs: l.outputs,
        updates: graph.updates().to_vec(),
        plan: MemoryPlan::default(),
    };
    plan::plan(&mut program);
    let output_shapes = graph
        .outputs()
        .iter()
        .map(|(n, id)| (n.clone(), graph.ty(*id).shape.clone()))
        .collect();
    Ok(Lowered {
        program,
        output_shapes,
        groups: l.groups,
    })
}

struct Lowerer<'g> {
    g: &'g Graph,
    users: Vec<Vec<NodeId>>,
    mat: Vec<bool>,
    /// The consumer whose kernel computes and stores this node (multi-output fusion).
    host: Vec<Option<NodeId>>,
    /// The kernel root that computes each hosted node, following chained hosts
    /// ([`Lowerer::final_host`]); set by [`Lowerer::run`].
    final_hosts: Vec<Option<NodeId>>,
    /// The nodes each kernel root hosts, in id order; set by [`Lowerer::run`].
    hosted_by: Vec<Vec<NodeId>>,
    buffer_of: Vec<Option<usize>>,
    buffers: Vec<BufferDecl>,
    steps: Vec<Step>,
    groups: Vec<Vec<NodeId>>,
    outputs: Vec<(String, usize)>,
    /// Sums over a batched product's batch axes, with that product (computed by one GEMM
    /// summed over the batch).
    summed_product: HashMap<NodeId, NodeId>,
    /// Materialized nodes stored in their part of a concat's buffer instead of a buffer
    /// of their own ([`Lowerer::place_in_concats`]): their layout there.
    placed: Vec<Option<Layout>>,
    /// `(concat, operand index)` pairs whose operand is already in place: nothing to copy.
    in_place: std::collections::HashSet<(NodeId, usize)>,
}

/// One loop kernel under construction.
#[derive(Default)]
struct KernelBuilder {
    args: Vec<KernelArg>,
    arg_of: HashMap<usize, usize>,
    body: Vec<Instr>,
    memo: HashMap<(NodeId, AffineMap), ValueId>,
    consts: HashMap<(DType, u64), ValueId>,
    nodes: Vec<NodeId>,
    /// The materialized node this kernel computes (hosted nodes name it as their host).
    root: Option<NodeId>,
    /// Hosted nodes computed here, with their values: each gets a store.
    hosted: Vec<(NodeId, ValueId)>,
}

impl KernelBuilder {
    fn push(&mut self, i: Instr) -> ValueId {
        self.body.push(i);
        (self.body.len() - 1) as ValueId
    }

    fn arg(&mut self, buffer: usize, decl: &BufferDecl) -> usize {
        *self.arg_of.entry(buffer).or_insert_with(|| {
            self.args.push(KernelArg {
                buffer,
                dtype: decl.dtype,
                len: decl.len,
            });
            self.args.len() - 1
        })
    }

    fn constant(&mut self, dtype: DType, value: f64) -> ValueId {
        if let Some(&v) = self.consts.get(&(dtype, value.to_bits())) {
            return v;
        }
        let v = self.push(Instr::Const { dtype, value });
        self.consts.insert((dtype, value.to_bits()), v);
        v
    }
}

/// What a finished [`Frame::Apply`] does with its value besides returning it.
#[derive(Clone, Copy)]
enum Use {
    /// Nothing: the kernel's root (or a hosted node's own kernel), computed by `emit_op`.
    Root,
    /// An inlined node: memoized.
    Inline,
    /// A node hosted by the kernel's root: stored as a second output, and memoized.
    Hosted,
}

/// One pending step of [`Lowerer::walk`].
enum Frame {
    /// Compute node `id` at `map`; `true` when it is known not to be in memory (a movement
    /// op over it is not, and no node between them is stored), so its layout is not
    /// looked for again.
    Enter(NodeId, AffineMap, bool),
    /// A movement op computed as its operand at the mapped index (the value just
    /// returned): memoize it at `map`.
    Alias(NodeId, AffineMap),
    /// Elementwise node `id`: its operands' values so far; when all are there, its
    /// instruction, then `then`.
    Apply {
        id: NodeId,
        map: AffineMap,
        ops: Vec<NodeId>,
        vals: Vec<ValueId>,
        then: Use,
    },
    /// Do `then` with the value just returned.
    Record(NodeId, AffineMap, Use),
    /// The copy kernel of reshape `id` has its value: push it, then load from the copy at
    /// `map`.
    Copied(NodeId, AffineMap),
}

/// The most nodes one loop kernel computes, counted as its expression's operations, loads
/// and constants (a node read by several consumers of the kernel counted each time, and a
/// hosted node's expression with its host's; movement ops count nothing): an elementwise
/// node whose inlined expression would be larger is stored by a kernel of its own, and a
/// host computes no more guests than fit. Example models' kernels stay far below it (at most
/// about 20); a chain of elementwise ops as long as a model is deep — the backward pass of
/// 100,000 activations is one such chain — is cut into kernels of this size, which keeps
/// each kernel's register allocation in Cranelift cheap (it grows faster than linearly with
/// the values live in the loop: one pointer per buffer read).
pub const MAX_FUSED: usize = 256;

/// The most arithmetic operations an elementwise value with several consumers may take to
/// be computed again in each of them instead of stored ([`Lowerer::cheap`]).
const RECOMPUTE_OPS: usize = 2;
/// The most nodes (movement ops included) between such a value and the stored values it
/// is computed from.
const RECOMPUTE_DEPTH: usize = 8;

fn is_elementwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary { .. } | Op::Binary { .. } | Op::Compare { .. } | Op::Select | Op::Cast { .. }
    )
}

fn is_view(op: &Op) -> bool {
    matches!(
        op,
        Op::Reshape { .. } | Op::Permute { .. } | Op::Broadcast { .. } | Op::Slice { .. }
    )
}

fn splat(op: &Op) -> Option<f64> {
    match op {
        Op::Constant { value } => value.as_splat(),
        _ => None,
    }
}

impl<'g> Lowerer<'g> {
    fn new(g: &'g Graph) -> Lowerer<'g> {
        let users = g.ids().map(|id| g.users(id)).collect();
        Lowerer {
            g,
            users,
            mat: vec![false; g.len()],
            host: vec![None; g.len()],
            final_hosts: vec![None; g.len()],
            hosted_by: vec![Vec::new(); g.len()],
            buffer_of: vec![None; g.len()],
            buffers: Vec::new(),
            steps: Vec::new(),
            groups: Vec::new(),
            summed_product: HashMap::new(),
            outputs: Vec::new(),
            placed: vec![None; g.len()],
            in_place: Default::default(),
        }
    }

    fn ty(&self, id: NodeId) -> &TensorType {
        self.g.ty(id)
    }

    fn op(&self, id: NodeId) -> &Op {
        &self.g.node(id).op
    }

    /// Consumers of `id`, looking through (non-materialized) movement ops; each entry is
    /// `(consumer, repeats)`, where `repeats` says a broadcast on the way stretches it.
    /// Depth first, users in order, with an explicit stack (a chain of movement ops may be
    /// as long as the model is deep).
    fn consumers(&self, id: NodeId, out: &mut Vec<(NodeId, bool)>, stretched: bool) {
        // (user, the node it uses, stretched on the way to that node)
        let mut todo: Vec<(NodeId, NodeId, bool)> = self.users[id.index()]
            .iter()
            .rev()
            .map(|&u| (u, id, stretched))
            .collect();
        while let Some((u, from, stretched)) = todo.pop() {
            let op = self.op(u);
            if is_view(op) && !self.is_output(u) {
                let grows = matches!(op, Op::Broadcast { .. })
                    && self.ty(u).numel() > self.ty(from).numel();
                todo.extend(
                    self.users[u.index()]
                        .iter()
                        .rev()
                        .map(|&w| (w, u, stretched || grows)),
                );
            } else {
                out.push((u, stretched));
            }
        }
    }

    fn is_output(&self, id: NodeId) -> bool {
        self.g.outputs().iter().any(|(_, o)| *o == id)
    }

    /// Decides which nodes get buffers (see the module docs).
    fn partition(&mut self) {
        // The size of each elementwise or movement node's expression in a kernel
        // ([`MAX_FUSED`]), at most `MAX_FUSED + 1`.
        let mut cost = vec![0usize; self.g.len()];
        for id in self.g.ids() {
            let op = self.op(id);
            let m = match op.group() {
                _ if splat(op).is_some() => false,
                OpGroup::Opaque | OpGroup::Reduction | OpGroup::OutElementwiseFusable => true,
                _ if matches!(
                    op,
                    Op::Concat { .. } | Op::Pad { .. } | Op::Gather | Op::Im2Col { .. }
                ) =>
                {
                    true
                }
                _ if matches!(op, Op::RandomUniform { .. } | Op::RandomNormal { .. }) => true,
                _ if is_elementwise(op) => {
                    let mut cons = Vec::new();
                    self.consumers(id, &mut cons, false);
                    // A consumer reading the node twice (`x + x`) computes it once.
                    cons.sort_unstable();
                    cons.dedup();
                    // Several consumers share a stored copy, unless the node is cheaper
                    // to compute again in each than to write and read back.
                    (cons.len() > 1 && !self.cheap(id))
                        || cons.iter().any(|&(c, stretched)| {
                            stretched
                                || matches!(
                                    self.op(c),
                                    Op::MatMul { .. }
                                        | Op::Im2Col { .. }
                                        | Op::Col2Im { .. }
                                        | Op::Gather
                                        | Op::ScatterAdd { .. }
                                        | Op::ArgMax { .. }
                                        | Op::AllReduce
                                )
                        })
                }
                _ => false,
            };
            let mut m = m || (self.is_output(id) && !is_view(op));
            if is_elementwise(op) || is_view(op) {
                let inputs = self.g.operands(id).iter().fold(0usize, |n, &x| {
                    let c = if self.mat[x.index()] || splat(self.op(x)).is_some() {
                        1
                    } else {
                        cost[x.index()]
                    };
                    n.saturating_add(c)
                });
                let own = usize::from(!is_view(op));
                cost[id.index()] = (own + inputs).min(MAX_FUSED + 1);
                // Too large to inline into one more kernel: stored, and read by its
                // consumers.
                m |= is_elementwise(op) && cost[id.index()] > MAX_FUSED;
            }
            self.mat[id.index()] = m;
        }
        // A batched product read only by a sum over its batch axes (a weight gradient over a
        // minibatch) is computed by that sum's GEMM, its batch folded into the depth.
        for id in self.g.ids() {
            if let Op::Reduce {
                func: ReduceOp::Sum,
                axes,
                ..
            } = self.op(id)
            {
                let x = self.g.operands(id)[0];
                let r = self.ty(x).rank();
                let batch_axes = r >= 3 && *axes == (0..r - 2).collect::<Vec<_>>();
                if batch_axes
                    && matches!(self.op(x), Op::MatMul { .. })
                    && self.ty(x).dtype.is_float()
                    && self.users[x.index()] == [id]
                    && !self.is_output(x)
                {
                    self.mat[x.index()] = false;
                    self.summed_product.insert(id, x);
                }
            }
        }
        // A host computes its guests (and theirs) in its kernel too: hosting stops where
        // that kernel would grow past `MAX_FUSED`. Guests have earlier ids than their host,
        // so each node's guests are counted before it is given its own host.
        let mut total = cost;
        for id in self.g.ids() {
            let host = self.host_of(id).filter(|h| {
                let (i, h) = (id.index(), h.index());
                total[h].saturating_add(total[i]) <= MAX_FUSED
            });
            if let Some(h) = host {
                total[h.index()] += total[id.index()];
            }
            self.host[id.index()] = host;
        }
    }

    /// Places concat operands in the concat's buffer: a materialized elementwise or concat
    /// node that is one operand of a concat (itself, or through a reshape the concat's
    /// strides can express) is stored straight into its part of the concat's buffer, and
    /// the concat copies nothing for it. Its other consumers read it there. An unrolled
    /// recurrent layer's step outputs (and their gradients) so land in the sequence (or the
    /// stacked operand of the weight gradient's one product) where they are computed.
    /// Outputs, nodes stored by a host's kernel, and nodes a concat reads twice stay in
    /// buffers of their own; a node that two concats read goes into the later one. Concats
    /// are visited from the last, so a concat placed in another places its own operands
    /// inside that.
    fn place_in_concats(&mut self) {
        let ids: Vec<NodeId> = self.g.ids().collect();
        for &c in ids.iter().rev() {
            let Op::Concat { axis } = *self.op(c) else {
                continue;
            };
            let ops = self.g.operands(c).to_vec();
            // The stored node behind each operand (through one reshape).
            let base = |l: &Self, o: NodeId| match l.op(o) {
                Op::Reshape { .. } => l.g.operands(o)[0],
                _ => o,
            };
            let shape = self.ty(c).shape.clone();
            let mut at = 0;
            for (i, &o) in ops.iter().enumerate() {
                let os = self.ty(o).shape.clone();
                let start = at;
                at += os[axis];
                let x = base(self, o);
                let placeable = self.mat[x.index()]
                    && (is_elementwise(self.op(x)) || matches!(self.op(x), Op::Concat { .. }))
                    && self.host[x.index()].is_none()
                    && !self.is_output(x)
                    && self.placed[x.index()].is_none()
                    && ops.iter().filter(|&&p| base(self, p) == x).count() == 1;
                if !placeable {
                    continue;
                }
                let whole = match &self.placed[c.index()] {
                    Some(l) => l.clone(),
                    None => {
                        let b = self.temp_for(c);
                        Layout::dense(b, &shape)
                    }
                };
                let mut corner = vec![0; os.len()];
                corner[axis] = start;
                let part = whole
                    .sliced(&corner, &vec![1; os.len()])
                    .reshaped(&os, &self.ty(x).shape);
                if let Some(l) = part {
                    self.placed[x.index()] = Some(l);
                    self.in_place.insert((c, i));
                }
            }
        }
    }

    /// Whether elementwise node `id` is cheap enough for every consumer to compute it
    /// inline instead of reading a stored copy: at most [`RECOMPUTE_OPS`] arithmetic
    /// operations from materialized values (counting its inlined producers), each an
    /// addition, subtraction, multiplication, maximum, minimum, negation or absolute
    /// value. `x − mean` in a batch norm is: its variance and its normalization then
    /// both read `x` instead of a centred copy of it. Decided in id order, so the
    /// producers' decisions are known. The value is the same bits either way; a sum over
    /// it may run in another order (a leading-axis sum is a GEMM only over an operand in
    /// memory, [`Lowerer::column_sum`]).
    fn cheap(&self, id: NodeId) -> bool {
        self.inline_ops(id, 0).is_some_and(|n| n <= RECOMPUTE_OPS)
    }

    /// The arithmetic operations computing `id` inline from materialized values (through
    /// movement ops), or `None` when one is not cheap ([`Lowerer::cheap`]) or the values
    /// lie more than [`RECOMPUTE_DEPTH`] nodes up.
    fn inline_ops(&self, id: NodeId, depth: usize) -> Option<usize> {
        let op = self.op(id);
        if self.mat[id.index()] || splat(op).is_some() {
            return Some(0);
        }
        if depth > RECOMPUTE_DEPTH {
            return None;
        }
        let own = match op {
            _ if is_view(op) => 0,
            Op::Binary { func } => {
                use crate::ir::BinaryOp as B;
                matches!(func, B::Add | B::Sub | B::Mul | B::Max | B::Min).then_some(1)?
            }
            Op::Unary { func } => {
                use crate::ir::UnaryOp as U;
                matches!(func, U::Neg | U::Abs).then_some(1)?
            }
            _ => return None,
        };
        self.g.operands(id).iter().try_fold(own, |n, &x| {
            let more = self.inline_ops(x, depth + 1)?;
            (n + more <= RECOMPUTE_OPS).then_some(n + more)
        })
    }

    /// The kernel root that computes `id` when hosts are chained (a host may itself be
    /// hosted by its own first consumer), as [`Lowerer::run`] found it before emitting any
    /// kernel. A chain may be as long as the model is deep (`relu(relu(…))` with every
    /// activation kept for the backward pass is one kernel storing them all), so it is
    /// looked up, not walked: [`Lowerer::materialize`] only drops the hosts of nodes whose
    /// root it has just emitted, so every node whose root is still to come keeps its entry,
    /// and that is all the lookup is compared with (the root of the kernel being built).
    fn final_host(&self, id: NodeId) -> Option<NodeId> {
        self.final_hosts[id.index()]
    }

    /// Fills [`Lowerer::final_hosts`] and [`Lowerer::hosted_by`] from `host`: from the last
    /// node back, since a host has a later id than the node it hosts.
    fn find_final_hosts(&mut self) {
        for id in self.g.ids().collect::<Vec<_>>().into_iter().rev() {
            self.final_hosts[id.index()] =
                self.host[id.index()].map(|h| self.final_hosts[h.index()].unwrap_or(h));
        }
        for id in self.g.ids() {
            if let Some(root) = self.final_hosts[id.index()] {
                self.hosted_by[root.index()].push(id);
            }
        }
    }

    /// The consumer that can compute materialized elementwise node `id` inside its own
    /// kernel: its first user, when that is a materialized elementwise node of the same
    /// shape (so it reads `id` element for element). Every other reader has a later id,
    /// so its step comes after the host's.
    fn host_of(&self, id: NodeId) -> Option<NodeId> {
        if !self.mat[id.index()] || !is_elementwise(self.op(id)) {
            return None;
        }
        let first = *self.users[id.index()].iter().min()?;
        (self.mat[first.index()]
            && is_elementwise(self.op(first))
            && self.ty(first).shape == self.ty(id).shape)
            .then_some(first)
    }

    fn new_buffer(
        &mut self,
        dtype: DType,
        len: usize,
        kind: BufferKind,
        node: Option<NodeId>,
    ) -> usize {
        self.buffers.push(BufferDecl {
            dtype,
            len,
            kind,
            offset: 0,
            node: node.map(|n| n.0),
        });
        self.buffers.len() - 1
    }

    fn temp_for(&mut self, id: NodeId) -> usize {
        if let Some(b) = self.buffer_of[id.index()] {
            return b;
        }
        if let Some(l) = &self.placed[id.index()] {
            self.buffer_of[id.index()] = Some(l.buffer);
            return l.buffer;
        }
        let t = self.ty(id).clone();
        let b = self.new_buffer(t.dtype, t.numel(), BufferKind::Temp, Some(id));
        self.buffer_of[id.index()] = Some(b);
        b
    }

    /// Where node `id`'s elements are, if they are in memory (its own buffer, or a
    /// movement op over one).
    fn layout(&self, id: NodeId) -> Option<Layout> {
        self.find_layout(id).0
    }

    /// [`Lowerer::layout`], and whether `id` or a node under its movement ops is stored
    /// (when not, neither is any node down to the first that is not a movement op). Down
    /// the chain of movement ops to the stored node, then its layout through each of them
    /// back up: a loop, not recursion, as the chain may be as long as the model is deep.
    fn find_layout(&self, id: NodeId) -> (Option<Layout>, bool) {
        let mut views = Vec::new();
        let mut at = id;
        let mut l = loop {
            if let Some(l) = &self.placed[at.index()] {
                break l.clone();
            }
            if let Some(b) = self.buffer_of[at.index()] {
                break Layout::dense(b, &self.ty(at).shape);
            }
            if !is_view(self.op(at)) {
                return (None, false);
            }
            views.push(at);
            at = self.g.operands(at)[0];
        };
        for &v in views.iter().rev() {
            let x = self.g.operands(v)[0];
            l = match self.op(v) {
                Op::Permute { perm } => l.permuted(perm),
                Op::Broadcast { shape } => l.broadcast(&self.ty(x).shape, shape),
                Op::Slice { start, step, .. } => l.sliced(start, step),
                Op::Reshape { shape } => match l.reshaped(&self.ty(x).shape, shape) {
                    Some(l) => l,
                    None => return (None, true),
                },
                _ => unreachable!("only movement ops are walked through"),
            };
        }
        (Some(l), true)
    }

    /// Node `id` in memory: its layout, or a copy into a new buffer (a loop kernel; for a
    /// reshape the copy iterates over the operand's shape, which preserves row-major order).
    fn require_layout(&mut self, id: NodeId) -> Result<Layout> {
        if let Some(l) = self.layout(id) {
            return Ok(l);
        }
        let (space, src) = self.copy_source(id);
        let mut kb = KernelBuilder::default();
        let map = AffineMap::identity(space.len());
        let v = self.emit(&mut kb, src, &map)?;
        Ok(self.finish_copy(kb, id, space, v))
    }

    /// What the copy of node `id` into memory iterates over, and the node it computes
    /// there: a reshape copies its operand over the operand's shape.
    fn copy_source(&self, id: NodeId) -> (Vec<usize>, NodeId) {
        match self.op(id) {
            Op::Reshape { .. } => {
                let x = self.g.operands(id)[0];
                (self.ty(x).shape.clone(), x)
            }
            _ => (self.ty(id).shape.clone(), id),
        }
    }

    /// Pushes the copy kernel `kb` (value `v` over `space`) storing node `id` into a buffer
    /// of its own; returns `id`'s layout there.
    fn finish_copy(
        &mut self,
        kb: KernelBuilder,
        id: NodeId,
        space: Vec<usize>,
        v: ValueId,
    ) -> Layout {
        let b = self.temp_for(id);
        let dense = Layout::dense(b, &space);
        self.finish_elementwise(kb, format!("copy_{}", id.0), space, b, dense, v, id);
        Layout::dense(b, &self.ty(id).shape)
    }

    /// The value of node `id` at the kernel's iteration point mapped by `map`.
    fn emit(&mut self, kb: &mut KernelBuilder, id: NodeId, map: &AffineMap) -> Result<ValueId> {
        self.walk(kb, Frame::Enter(id, map.clone(), false))
    }

    fn emit_load(&mut self, kb: &mut KernelBuilder, l: Layout, map: &AffineMap) -> Result<ValueId> {
        let (offset, strides) = l.access(map);
        let decl = self.buffers[l.buffer].clone();
        let arg = kb.arg(l.buffer, &decl);
        Ok(kb.push(Instr::Load(Access {
            arg,
            offset: offset.max(0) as usize,
            strides,
        })))
    }

    /// The op of elementwise node `id` applied to its operands' values.
    fn emit_op(&mut self, kb: &mut KernelBuilder, id: NodeId, map: &AffineMap) -> Result<ValueId> {
        let frame = self.apply(id, map.clone(), Use::Root);
        self.walk(kb, frame)
    }

    /// The frame computing node `id`'s op from its operands.
    fn apply(&self, id: NodeId, map: AffineMap, then: Use) -> Frame {
        Frame::Apply {
            ops: self.g.operands(id),
            vals: Vec::new(),
            id,
            map,
            then,
        }
    }

    /// Records value `v` of node `id` at `map` as `then` says.
    fn record(kb: &mut KernelBuilder, id: NodeId, map: AffineMap, then: Use, v: ValueId) {
        match then {
            Use::Root => {}
            Use::Inline => {
                kb.memo.insert((id, map), v);
            }
            Use::Hosted => {
                kb.hosted.push((id, v));
                kb.memo.insert((id, map), v);
            }
        }
    }

    /// Builds the expression of `start` into `kb`: a post-order walk of the fused
    /// expression with an explicit stack of [`Frame`]s (a fused kernel may chain as many
    /// elementwise ops as the model has layers), emitting exactly what a recursive walk
    /// would, in the same order. Each `(node, map)` is computed once per kernel
    /// (`KernelBuilder::memo`); a node hosted by the kernel's root is computed and stored;
    /// splat constants are constants; a node in memory is a load; a movement op maps the
    /// index into its operand; other elementwise nodes are inlined, operands first, in
    /// order. A reshape the index cannot be mapped through is copied into memory by a
    /// kernel of its own, built here too (on `copies`, innermost last), and loaded.
    fn walk(&mut self, kb: &mut KernelBuilder, start: Frame) -> Result<ValueId> {
        let mut stack = vec![start];
        let mut copies: Vec<KernelBuilder> = Vec::new();
        // The value of the frame that finished last, for the frame under it; `None` when a
        // frame is entered fresh.
        let mut ret: Option<ValueId> = None;
        // The kernel being built: the innermost copy, else `kb`.
        macro_rules! cur {
            () => {
                match copies.last_mut() {
                    Some(c) => c,
                    None => &mut *kb,
                }
            };
        }
        while let Some(frame) = stack.pop() {
            match frame {
                Frame::Enter(id, map, unstored) => {
                    debug_assert!(ret.is_none());
                    let cur = cur!();
                    if let Some(&v) = cur.memo.get(&(id, map.clone())) {
                        ret = Some(v);
                        continue;
                    }
                    let hosted_here = cur.root.is_some()
                        && self.final_host(id) == cur.root
                        && map == AffineMap::identity(self.ty(id).rank());
                    if hosted_here {
                        cur.nodes.push(id);
                        stack.push(self.apply(id, map, Use::Hosted));
                        continue;
                    }
                    let (layout, stored) = match unstored {
                        true => (None, false),
                        false => self.find_layout(id),
                    };
                    let v = if let Some(c) = splat(self.op(id)) {
                        cur.constant(self.ty(id).dtype, c)
                    } else if let Some(l) = layout {
                        let (offset, strides) = l.access(&map);
                        let arg = cur.arg(l.buffer, &self.buffers[l.buffer]);
                        let offset = usize::try_from(offset)
                            .map_err(|_| self.unsupported(id, "negative offset"))?;
                        cur.push(Instr::Load(Access {
                            arg,
                            offset,
                            strides,
                        }))
                    } else {
                        let x = || self.g.operands(id)[0];
                        let inner = match self.op(id) {
                            Op::Permute { perm } => map.through_permute(perm),
                            Op::Broadcast { .. } => map.through_broadcast(&self.ty(x()).shape),
                            Op::Slice { start, step, .. } => map.through_slice(start, step),
                            Op::Reshape { shape } => {
                                // Not in memory: when the reshape only splits axes, its
                                // operand is computed inline at the mapped index; else a
                                // copy.
                                let (space, src) = self.copy_source(id);
                                match map.through_reshape(&space, shape) {
                                    Some(inner) => inner,
                                    None => {
                                        copies.push(KernelBuilder::default());
                                        stack.push(Frame::Copied(id, map));
                                        stack.push(Frame::Enter(
                                            src,
                                            AffineMap::identity(space.len()),
                                            !stored,
                                        ));
                                        continue;
                                    }
                                }
                            }
                            _ => {
                                cur.nodes.push(id);
                                stack.push(self.apply(id, map, Use::Inline));
                                continue;
                            }
                        };
                        stack.push(Frame::Alias(id, map));
                        stack.push(Frame::Enter(x(), inner, !stored));
                        continue;
                    };
                    cur.memo.insert((id, map), v);
                    ret = Some(v);
                }
                Frame::Alias(id, map) => {
                    let v = ret.expect("the operand's value");
                    cur!().memo.insert((id, map), v);
                }
                Frame::Apply {
                    id,
                    map,
                    ops,
                    mut vals,
                    then,
                } => {
                    vals.extend(ret.take());
                    if let Some(&next) = ops.get(vals.len()) {
                        let at = map.clone();
                        stack.push(Frame::Apply {
                            id,
                            map,
                            ops,
                            vals,
                            then,
                        });
                        stack.push(Frame::Enter(next, at, false));
                        continue;
                    }
                    let v = vals;
                    let cur = cur!();
                    let value = match *self.op(id) {
                        Op::Unary { func } => cur.push(Instr::Unary { func, a: v[0] }),
                        Op::Binary { func } => cur.push(Instr::Binary {
                            func,
                            a: v[0],
                            b: v[1],
                        }),
                        Op::Compare { func } => cur.push(Instr::Compare {
                            func,
                            a: v[0],
                            b: v[1],
                        }),
                        Op::Select => cur.push(Instr::Select {
                            cond: v[0],
                            a: v[1],
                            b: v[2],
                        }),
                        Op::Cast { to } => cur.push(Instr::Cast { to, a: v[0] }),
                        ref op if is_view(op) => {
                            stack.push(Frame::Record(id, map.clone(), then));
                            stack.push(Frame::Enter(id, map, false));
                            continue;
                        }
                        ref op => {
                            let reason = format!("{} is not elementwise", op.name());
                            return Err(self.unsupported(id, &reason));
                        }
                    };
                    Self::record(cur, id, map, then, value);
                    ret = Some(value);
                }
                Frame::Record(id, map, then) => {
                    let v = ret.expect("the view's value");
                    Self::record(cur!(), id, map, then, v);
                }
                Frame::Copied(id, map) => {
                    let v = ret.take().expect("the copied value");
                    let copy = copies.pop().expect("a copy kernel is being built");
                    let (space, _) = self.copy_source(id);
                    let l = self.finish_copy(copy, id, space, v);
                    ret = Some(self.emit_load(cur!(), l, &map)?);
                }
            }
        }
        Ok(ret.expect("the walk computes a value"))
    }

    fn unsupported(&self, id: NodeId, reason: &str) -> LowerError {
        LowerError::Unsupported {
            op: self.op(id).name(),
            node: id,
            reason: reason.into(),
        }
    }

    /// Pushes a loop kernel over `space` storing `v` through `out` (a layout of buffer `b`
    /// over the iteration space).
    #[allow(clippy::too_many_arguments)]
    fn finish_elementwise(
        &mut self,
        mut kb: KernelBuilder,
        name: String,
        space: Vec<usize>,
        b: usize,
        out: Layout,
        v: ValueId,
        root: NodeId,
    ) {
        let decl = self.buffers[b].clone();
        let arg = kb.arg(b, &decl);
        let store = Store {
            access: Access {
                arg,
                offset: out.offset as usize,
                strides: out.strides,
            },
            value: v,
        };
        let mut stores = vec![store];
        for (node, value) in std::mem::take(&mut kb.hosted) {
            let hb = self.buffer_of[node.index()].expect("a hosted node has its buffer");
            let decl = self.buffers[hb].clone();
            let arg = kb.arg(hb, &decl);
            stores.push(Store {
                access: Access {
                    arg,
                    offset: 0,
                    strides: Layout::dense(hb, &self.ty(node).shape).strides,
                },
                value,
            });
        }
        let mut nodes = vec![root];
        nodes.extend(kb.nodes.iter().copied().filter(|&n| n != root));
        self.steps.push(Step::Loop(LoopKernel {
            name,
            shape: space,
            args: kb.args,
            body: kb.body,
            reduce: None,
            stores,
        }));
        self.groups.push(nodes);
    }

    /// Emits the steps of every materialized node, then the outputs.
    fn run(&mut self) -> Result<()> {
        self.find_final_hosts();
        for id in self.g.ids() {
            if !self.mat[id.index()] {
                continue;
            }
            self.materialize(id)?;
        }
        for (name, id) in self.g.outputs().to_vec() {
            let b = match self.buffer_of[id.index()] {
                Some(b) if matches!(self.buffers[b].kind, BufferKind::Temp) => b,
                _ => {
                    // An input, parameter, constant or view: copy it into its own buffer.
                    let t = self.ty(id).clone();
                    let b = self.new_buffer(t.dtype, t.numel(), BufferKind::Temp, Some(id));
                    let mut kb = KernelBuilder::default();
                    let map = AffineMap::identity(t.rank());
                    let v = self.emit(&mut kb, id, &map)?;
                    let dense = Layout::dense(b, &t.shape);
                    self.finish_elementwise(
                        kb,
                        format!("output_{name}"),
                        t.shape.clone(),
                        b,
                        dense,
                        v,
                        id,
                    );
                    b
                }
            };
            self.outputs.push((name, b));
        }
        Ok(())
    }

    fn materialize(&mut self, id: NodeId) -> Result<()> {
        let t = self.ty(id).clone();
        let ops = self.g.operands(id);
        match self.op(id).clone() {
            Op::Input { name } | Op::Parameter { name } => {
                let b = self.new_buffer(t.dtype, t.numel(), BufferKind::Input { name }, Some(id));
                self.buffer_of[id.index()] = Some(b);
            }
            Op::Constant { value } => {
                let b = self.new_buffer(
                    t.dtype,
                    t.numel(),
                    BufferKind::Const {
                        values: value.values,
                    },
                    Some(id),
                );
                self.buffer_of[id.index()] = Some(b);
            }
            _ if self.host[id.index()].is_some() => {
                // Computed and stored by its host's kernel (see the module docs).
                self.temp_for(id);
            }
            op if is_elementwise(&op) || is_view(&op) => {
                let mut kb = KernelBuilder {
                    root: Some(id),
                    ..KernelBuilder::default()
                };
                let map = AffineMap::identity(t.rank());
                let v = self.emit_op(&mut kb, id, &map)?;
                // A hosted node this kernel does not reach gets its own kernel first.
                let hosted = std::mem::take(&mut self.hosted_by[id.index()]);
                let reached: std::collections::HashSet<NodeId> =
                    kb.hosted.iter().map(|&(n, _)| n).collect();
                for h in hosted {
                    if !reached.contains(&h) {
                        self.host[h.index()] = None;
                        self.final_hosts[h.index()] = None;
                        let hb = self.buffer_of[h.index()].expect("allocated when visited");
                        let mut own = KernelBuilder::default();
                        let hv =
                            self.emit_op(&mut own, h, &AffineMap::identity(self.ty(h).rank()))?;
                        let hs = self.ty(h).shape.clone();
                        let dense = Layout::dense(hb, &hs);
                        let name = format!("{}_{}", self.op(h).name(), h.0);
                        self.finish_elementwise(own, name, hs, hb, dense, hv, h);
                    }
                }
                let b = self.temp_for(id);
                let out = self.layout(id).expect("a buffer was just given");
                self.finish_elementwise(
                    kb,
                    format!("{}_{}", op.name(), id.0),
                    t.shape.clone(),
                    b,
                    out,
                    v,
                    id,
                );
            }
            Op::Reduce {
                func,
                axes,
                keepdims,
            } => self.reduction(id, func, &axes, keepdims)?,
            Op::MatMul { trans_a, trans_b } => self.matmul(id, ops[0], ops[1], trans_a, trans_b)?,
            Op::Concat { axis } => {
                let b = self.temp_for(id);
                let out = self.layout(id).expect("a buffer was just given");
                let mut at = 0;
                for (i, &o) in ops.iter().enumerate() {
                    let os = self.ty(o).shape.clone();
                    if self.in_place.contains(&(id, i)) {
                        at += os[axis];
                        continue;
                    }
                    let mut kb = KernelBuilder::default();
                    let v = self.emit(&mut kb, o, &AffineMap::identity(os.len()))?;
                    let mut start = vec![0; os.len()];
                    start[axis] = at;
                    let step = vec![1; os.len()];
                    self.finish_elementwise(
                        kb,
                        format!("concat_{}", id.0),
                        os.clone(),
                        b,
                        out.sliced(&start, &step),
                        v,
                        id,
                    );
                    at += os[axis];
                }
            }
            Op::Pad {
                low,
                interior,
                value,
                ..
            } => {
                let b = self.temp_for(id);
                let out = Layout::dense(b, &t.shape);
                let mut kb = KernelBuilder::default();
                let c = kb.constant(t.dtype, value);
                self.finish_elementwise(
                    kb,
                    format!("pad_fill_{}", id.0),
                    t.shape.clone(),
                    b,
                    out.clone(),
                    c,
                    id,
                );
                let xs = self.ty(ops[0]).shape.clone();
                let mut kb = KernelBuilder::default();
                let v = self.emit(&mut kb, ops[0], &AffineMap::identity(xs.len()))?;
                let step: Vec<usize> = interior.iter().map(|i| i + 1).collect();
                self.finish_elementwise(
                    kb,
                    format!("pad_{}", id.0),
                    xs,
                    b,
                    out.sliced(&low, &step),
                    v,
                    id,
                );
            }
            op => self.library(id, &op, &ops)?,
        }
        Ok(())
    }

    fn reduction(
        &mut self,
        id: NodeId,
        func: ReduceOp,
        axes: &[usize],
        keepdims: bool,
    ) -> Result<()> {
        let x = self.g.operands(id)[0];
        let xs = self.ty(x).shape.clone();
        let t = self.ty(id).clone();
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        if let Some(&product) = self.summed_product.get(&id) {
            return self.summed_matmul(id, product);
        }
        if func == ReduceOp::Sum && self.column_sum(id, x, &axes)? {
            return Ok(());
        }
        let mut kb = KernelBuilder::default();
        let v = self.emit(&mut kb, x, &AffineMap::identity(xs.len()))?;
        let b = self.temp_for(id);
        let op = if func == ReduceOp::Max {
            ReduceOp::Max
        } else {
            ReduceOp::Sum
        };
        let count: usize = axes.iter().map(|&a| xs[a]).product();
        let mean = (func == ReduceOp::Mean).then_some(count);
        let mut nodes = vec![id];
        nodes.extend(kb.nodes.iter().copied());
        let name = format!("reduce_{}_{}", func.name(), id.0);
        // Reduced axes on both sides of an outer one (a batch norm's [N, C, H, W] over N,
        // H and W): the trailing ones are reduced first, walking memory in order, then the
        // rest over that much smaller partial result.
        let last_outer = (0..xs.len()).rev().find(|d| !axes.contains(d));
        let (leading, trailing): (Vec<usize>, Vec<usize>) = axes
            .iter()
            .partition(|&&a| last_outer.is_some_and(|o| a < o));
        let inner: usize = trailing.iter().map(|&a| xs[a]).product();
        if !leading.is_empty() && inner >= reshape_loops::PARTIALS as usize && t.dtype.is_float() {
            let mid: Vec<usize> = (0..xs.len())
                .filter(|d| !trailing.contains(d))
                .map(|d| xs[d])
                .collect();
            let len = mid.iter().product();
            let part = self.new_buffer(t.dtype, len, BufferKind::Temp, None);
            let out = ReduceOut {
                buffer: part,
                decl: self.buffers[part].clone(),
                shape: &mid,
                keepdims: false,
            };
            let stage1 = reduce_kernel(
                format!("{name}_partial"),
                xs,
                kb,
                (op, &trailing, v),
                out,
                None,
            );
            self.steps.push(Step::Loop(stage1));
            self.groups.push(nodes.clone());
            let mut kb2 = KernelBuilder::default();
            let whole = AffineMap::identity(mid.len());
            let v2 = self.emit_load(&mut kb2, Layout::dense(part, &mid), &whole)?;
            let out = ReduceOut {
                buffer: b,
                decl: self.buffers[b].clone(),
                shape: &t.shape,
                keepdims,
            };
            let stage2 = reduce_kernel(name, mid.clone(), kb2, (op, &leading, v2), out, mean);
            self.steps.push(Step::Loop(stage2));
            self.groups.push(nodes);
            return Ok(());
        }
        let out = ReduceOut {
            buffer: b,
            decl: self.buffers[b].clone(),
            shape: &t.shape,
            keepdims,
        };
        let kernel = reduce_kernel(name, xs, kb, (op, &axes, v), out, mean);
        self.steps.push(Step::Loop(kernel));
        self.groups.push(nodes);
        Ok(())
    }

    /// A matmul operand as a (batched) strided matrix: rows, cols, view.
    fn mat_view(&mut self, x: NodeId, trans: bool) -> Result<(usize, usize, usize, MatView)> {
        let shape = self.ty(x).shape.clone();
        let r = shape.len();
        let mut l = self.require_layout(x)?;
        // Batch axes must collapse into one stride; otherwise copy densely.
        let collapsible = (0..r.saturating_sub(3))
            .all(|i| shape[i + 1] == 1 || l.strides[i] == l.strides[i + 1] * shape[i + 1] as isize);
        if !collapsible {
            let b = self.temp_for(x);
            let mut kb = KernelBuilder::default();
            let v = self.emit_load(&mut kb, l, &AffineMap::identity(r))?;
            self.finish_elementwise(
                kb,
                format!("dense_{}", x.0),
                shape.clone(),
                b,
                Layout::dense(b, &shape),
                v,
                x,
            );
            l = Layout::dense(b, &shape);
        }
        let batch: usize = shape[..r - 2].iter().product();
        let batch_stride = if r > 2 { l.strides[r - 3] } else { 0 };
        let (s0, s1) = (l.strides[r - 2], l.strides[r - 1]);
        let (rows, cols, rs, cs) = if trans {
            (shape[r - 1], shape[r - 2], s1, s0)
        } else {
            (shape[r - 2], shape[r - 1], s0, s1)
        };
        let offset =
            usize::try_from(l.offset).map_err(|_| self.unsupported(x, "negative offset"))?;
        Ok((
            rows,
            cols,
            batch,
            MatView {
                buffer: l.buffer,
                offset,
                row_stride: rs,
                col_stride: cs,
                batch_stride,
            },
        ))
    }

    fn matmul(&mut self, id: NodeId, a: NodeId, b: NodeId, ta: bool, tb: bool) -> Result<()> {
        let (m, k, ba, av) = self.mat_view(a, ta)?;
        let (_, n, bb, bv) = self.mat_view(b, tb)?;
        let t = self.ty(id).clone();
        let c = self.temp_for(id);
        let batch = ba.max(bb);
        let cv = MatView {
            buffer: c,
            offset: 0,
            row_stride: n as isize,
            col_stride: 1,
            batch_stride: (m * n) as isize,
        };
        self.steps.push(Step::Gemm(GemmStep {
            dtype: t.dtype,
            m,
            n,
            k,
            batch,
            a: av,
            b: bv,
            c: cv,
            sum_batch: false,
        }));
        self.groups.push(vec![id]);
        Ok(())
    }

    /// `id = Σ_batch product`, the product's batch folded into the GEMM's depth
    /// ([`GemmStep::sum_batch`]).
    fn summed_matmul(&mut self, id: NodeId, product: NodeId) -> Result<()> {
        let Op::MatMul { trans_a, trans_b } = *self.op(product) else {
            return Err(self.unsupported(product, "not a matmul"));
        };
        let ops = self.g.operands(product);
        let (m, k, ba, av) = self.mat_view(ops[0], trans_a)?;
        let (_, n, bb, bv) = self.mat_view(ops[1], trans_b)?;
        let c = self.temp_for(id);
        self.steps.push(Step::Gemm(GemmStep {
            dtype: self.ty(id).dtype,
            m,
            n,
            k,
            batch: ba.max(bb),
            a: av,
            b: bv,
            c: MatView {
                buffer: c,
                offset: 0,
                row_stride: n as isize,
                col_stride: 1,
                batch_stride: 0,
            },
            sum_batch: true,
        }));
        self.groups.push(vec![id, product]);
        Ok(())
    }

    /// A sum over the leading axes of a dense float operand in memory, as a matrix–vector
    /// product `1ᵀ·X` (the GEMM's small-`m` path streams the rows of X once with vector
    /// adds; a loop kernel would walk each column down the rows). It adds the rows in the
    /// same order as the loop kernel, one rounding each (`1·x + s` is exact before
    /// rounding), so the result is bit-identical. Returns false when it does not apply.
    fn column_sum(&mut self, id: NodeId, x: NodeId, axes: &[usize]) -> Result<bool> {
        let xs = self.ty(x).shape.clone();
        let dtype = self.ty(x).dtype;
        let leading = !axes.is_empty()
            && axes.len() < xs.len()
            && axes.iter().enumerate().all(|(i, &a)| a == i);
        if !leading || dtype == DType::I32 {
            return Ok(false);
        }
        let Some(l) = self.layout(x) else {
            return Ok(false);
        };
        if !l.is_dense(&xs) || l.offset < 0 {
            return Ok(false);
        }
        let rows: usize = xs[..axes.len()].iter().product();
        let cols: usize = xs[axes.len()..].iter().product();
        let ones = self.new_buffer(dtype, rows, BufferKind::Const { values: vec![1.0] }, None);
        let out = self.temp_for(id);
        let view = |buffer: usize, offset: usize, row_stride: usize| MatView {
            buffer,
            offset,
            row_stride: row_stride as isize,
            col_stride: 1,
            batch_stride: 0,
        };
        self.steps.push(Step::Gemm(GemmStep {
            dtype,
            m: 1,
            n: cols,
            k: rows,
            batch: 1,
            a: view(ones, 0, rows),
            b: view(l.buffer, l.offset as usize, cols),
            c: view(out, 0, cols),
            sum_batch: false,
        }));
        self.groups.push(vec![id]);
        Ok(true)
    }

    fn window(&self, id: NodeId, w: &Window, image: &[usize]) -> Result<WindowSpec> {
        w.spec(image)
            .ok_or_else(|| self.unsupported(id, "the window does not fit the image"))
    }

    /// A dense buffer holding node `x`.
    fn dense_buffer(&mut self, x: NodeId) -> Result<usize> {
        let shape = self.ty(x).shape.clone();
        let l = self.require_layout(x)?;
        if l.is_dense(&shape) && l.offset == 0 {
            return Ok(l.buffer);
        }
        let b = self.temp_for(x);
        let mut kb = KernelBuilder::default();
        let v = self.emit_load(&mut kb, l, &AffineMap::identity(shape.len()))?;
        self.finish_elementwise(
            kb,
            format!("dense_{}", x.0),
            shape.clone(),
            b,
            Layout::dense(b, &shape),
            v,
            x,
        );
        Ok(b)
    }

    fn library(&mut self, id: NodeId, op: &Op, ops: &[NodeId]) -> Result<()> {
        let t = self.ty(id).clone();
        let dtype = t.dtype;
        let step = match op {
            Op::Im2Col { window } => {
                let x = self.dense_buffer(ops[0])?;
                let image = self.ty(ops[0]).shape.clone();
                let out = self.temp_for(id);
                LibraryStep::Im2Col {
                    x,
                    out,
                    dtype,
                    window: self.window(id, window, &image)?,
                    image,
                }
            }
            Op::Col2Im { window, .. } => {
                let cols = self.dense_buffer(ops[0])?;
                let out = self.temp_for(id);
                LibraryStep::Col2Im {
                    cols,
                    out,
                    dtype,
                    window: self.window(id, window, &t.shape)?,
                    image: t.shape.clone(),
                }
            }
            Op::Gather => {
                let data = self.dense_buffer(ops[0])?;
                let indices = self.dense_buffer(ops[1])?;
                let ds = self.ty(ops[0]).shape.clone();
                let out = self.temp_for(id);
                LibraryStep::Gather {
                    data,
                    indices,
                    out,
                    dtype,
                    rows: ds[0],
                    row_len: ds[1..].iter().product(),
                }
            }
            Op::ScatterAdd { rows } => {
                let updates = self.dense_buffer(ops[0])?;
                let indices = self.dense_buffer(ops[1])?;
                let out = self.temp_for(id);
                LibraryStep::ScatterAdd {
                    updates,
                    indices,
                    out,
                    dtype,
                    rows: *rows,
                    row_len: t.shape[1..].iter().product(),
                }
            }
            Op::RandomUniform { seed, low, high }
            | Op::RandomNormal {
                seed,
                mean: low,
                std: high,
            } => {
                let counter = match ops.first() {
                    Some(&c) => Some(self.dense_buffer(c)?),
                    None => None,
                };
                let out = self.temp_for(id);
                LibraryStep::Random {
                    out,
                    dtype,
                    normal: matches!(op, Op::RandomNormal { .. }),
                    seed: *seed,
                    a: *low,
                    b: *high,
                    counter,
                }
            }
            Op::ArgMax { axis, .. } => {
                let x = self.dense_buffer(ops[0])?;
                let xs = self.ty(ops[0]).shape.clone();
                let out = self.temp_for(id);
                LibraryStep::ArgMax {
                    x,
                    out,
                    dtype: self.ty(ops[0]).dtype,
                    outer: xs[..*axis].iter().product(),
                    axis: xs[*axis],
                    inner: xs[axis + 1..].iter().product(),
                }
            }
            Op::AllReduce => {
                let x = self.dense_buffer(ops[0])?;
                // In place over a temporary that nothing else reads (a gradient): no copy.
                let b = &self.buffers[x];
                let out = if matches!(b.kind, BufferKind::Temp)
                    && b.node == Some(ops[0].0)
                    && self.users[ops[0].index()] == [id]
                    && !self.is_output(ops[0])
                    && self.buffer_of[id.index()].is_none()
                {
                    self.buffer_of[id.index()] = Some(x);
                    x
                } else {
                    self.temp_for(id)
                };
                LibraryStep::AllReduce {
                    x,
                    out,
                    dtype,
                    len: t.shape.iter().product(),
                }
            }
            _ => return Err(self.unsupported(id, "no lowering rule")),
        };
        self.steps.push(Step::Library(step));
        self.groups.push(vec![id]);
        Ok(())
    }
}

/// Where a reduction kernel stores: a buffer holding `shape`, with the reduced axes kept
/// as size 1 when `keepdims`.
struct ReduceOut<'a> {
    buffer: usize,
    decl: BufferDecl,
    shape: &'a [usize],
    keepdims: bool,
}

/// A reduction kernel over `shape`: the body built in `kb` (value `v`) reduced with `op`
/// over `axes` (increasing) into `out`, divided by `mean` points when given.
fn reduce_kernel(
    name: String,
    shape: Vec<usize>,
    mut kb: KernelBuilder,
    (op, axes, v): (ReduceOp, &[usize], ValueId),
    out: ReduceOut<'_>,
    mean: Option<usize>,
) -> LoopKernel {
    let n = kb.body.len() as ValueId;
    let mut post = vec![Instr::Accumulator];
    let mut value = n;
    if let Some(count) = mean {
        post.push(Instr::Const {
            dtype: out.decl.dtype,
            value: count as f64,
        });
        post.push(Instr::Binary {
            func: crate::ir::BinaryOp::Div,
            a: n,
            b: n + 1,
        });
        value = n + 2;
    }
    // Output strides per iteration axis: 0 along reduced axes.
    let ostr = Layout::dense(out.buffer, out.shape).strides;
    let mut strides = Vec::with_capacity(shape.len());
    let mut k = 0;
    for d in 0..shape.len() {
        if axes.contains(&d) {
            strides.push(0);
            if out.keepdims {
                k += 1;
            }
        } else {
            strides.push(ostr[k]);
            k += 1;
        }
    }
    let arg = kb.arg(out.buffer, &out.decl);
    LoopKernel {
        name,
        shape,
        args: kb.args,
        body: kb.body,
        reduce: Some(Reduction {
            op,
            axes: axes.to_vec(),
            value: v,
            post,
            partials: 1,
        }),
        stores: vec![Store {
            access: Access {
                arg,
                offset: 0,
                strides,
            },
            value,
        }],
    }
}
