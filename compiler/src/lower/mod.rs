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
//! indexing ops). Everything else is *inlined*: elementwise ops fuse into the kernel of
//! the node that consumes them, and movement ops (reshape, permute, broadcast, slice)
//! become strides of loads. So a group never drops a value that is used outside it, and
//! recomputes only those cheap ones (the same operations on the same values: the same
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

pub mod affine;
pub mod dump;
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
    fn consumers(&self, id: NodeId, out: &mut Vec<(NodeId, bool)>, stretched: bool) {
        for &u in &self.users[id.index()] {
            let op = self.op(u);
            if is_view(op) && !self.is_output(u) {
                let grows =
                    matches!(op, Op::Broadcast { .. }) && self.ty(u).numel() > self.ty(id).numel();
                self.consumers(u, out, stretched || grows);
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
                                )
                        })
                }
                _ => false,
            };
            self.mat[id.index()] = m || (self.is_output(id) && !is_view(op));
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
        for id in self.g.ids() {
            self.host[id.index()] = self.host_of(id);
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
    /// hosted by its own first consumer).
    fn final_host(&self, id: NodeId) -> Option<NodeId> {
        let mut h = self.host[id.index()]?;
        while let Some(next) = self.host[h.index()] {
            h = next;
        }
        Some(h)
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
        if let Some(l) = &self.placed[id.index()] {
            return Some(l.clone());
        }
        if let Some(b) = self.buffer_of[id.index()] {
            return Some(Layout::dense(b, &self.ty(id).shape));
        }
        let ops = self.g.operands(id);
        match self.op(id) {
            Op::Permute { perm } => self.layout(ops[0]).map(|l| l.permuted(perm)),
            Op::Broadcast { shape } => self
                .layout(ops[0])
                .map(|l| l.broadcast(&self.ty(ops[0]).shape, shape)),
            Op::Slice { start, step, .. } => self.layout(ops[0]).map(|l| l.sliced(start, step)),
            Op::Reshape { shape } => self.layout(ops[0])?.reshaped(&self.ty(ops[0]).shape, shape),
            _ => None,
        }
    }

    /// Node `id` in memory: its layout, or a copy into a new buffer (a loop kernel; for a
    /// reshape the copy iterates over the operand's shape, which preserves row-major order).
    fn require_layout(&mut self, id: NodeId) -> Result<Layout> {
        if let Some(l) = self.layout(id) {
            return Ok(l);
        }
        let (space, src) = match self.op(id) {
            Op::Reshape { .. } => {
                let x = self.g.operands(id)[0];
                (self.ty(x).shape.clone(), x)
            }
            _ => (self.ty(id).shape.clone(), id),
        };
        let mut kb = KernelBuilder::default();
        let map = AffineMap::identity(space.len());
        let v = self.emit(&mut kb, src, &map)?;
        let b = self.temp_for(id);
        let dense = Layout::dense(b, &space);
        self.finish_elementwise(kb, format!("copy_{}", id.0), space, b, dense, v, id);
        Ok(Layout::dense(b, &self.ty(id).shape))
    }

    /// The value of node `id` at the kernel's iteration point mapped by `map`.
    fn emit(&mut self, kb: &mut KernelBuilder, id: NodeId, map: &AffineMap) -> Result<ValueId> {
        if let Some(&v) = kb.memo.get(&(id, map.clone())) {
            return Ok(v);
        }
        let hosted_here = kb.root.is_some()
            && self.final_host(id) == kb.root
            && *map == AffineMap::identity(self.ty(id).rank());
        let v = if hosted_here {
            kb.nodes.push(id);
            let v = self.emit_op(kb, id, map)?;
            kb.hosted.push((id, v));
            v
        } else if let Some(c) = splat(self.op(id)) {
            kb.constant(self.ty(id).dtype, c)
        } else if let Some(l) = self.layout(id) {
            let (offset, strides) = l.access(map);
            let decl = self.buffers[l.buffer].clone();
            let arg = kb.arg(l.buffer, &decl);
            let offset =
                usize::try_from(offset).map_err(|_| self.unsupported(id, "negative offset"))?;
            kb.push(Instr::Load(Access {
                arg,
                offset,
                strides,
            }))
        } else {
            let ops = self.g.operands(id);
            match self.op(id).clone() {
                Op::Permute { perm } => self.emit(kb, ops[0], &map.through_permute(&perm))?,
                Op::Broadcast { .. } => {
                    let from = self.ty(ops[0]).shape.clone();
                    self.emit(kb, ops[0], &map.through_broadcast(&from))?
                }
                Op::Slice { start, step, .. } => {
                    self.emit(kb, ops[0], &map.through_slice(&start, &step))?
                }
                Op::Reshape { shape } => {
                    // In memory: a load. Otherwise, when the reshape only splits axes,
                    // its operand is computed inline at the mapped index; else a copy.
                    let from = self.ty(ops[0]).shape.clone();
                    match (self.layout(id), map.through_reshape(&from, &shape)) {
                        (None, Some(inner)) => self.emit(kb, ops[0], &inner)?,
                        _ => {
                            let l = self.require_layout(id)?;
                            return self.emit_load(kb, l, map);
                        }
                    }
                }
                _ => {
                    kb.nodes.push(id);
                    self.emit_op(kb, id, map)?
                }
            }
        };
        kb.memo.insert((id, map.clone()), v);
        Ok(v)
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
        let ops = self.g.operands(id);
        let mut v = Vec::with_capacity(ops.len());
        for &o in &ops {
            v.push(self.emit(kb, o, map)?);
        }
        Ok(match self.op(id).clone() {
            Op::Unary { func } => kb.push(Instr::Unary { func, a: v[0] }),
            Op::Binary { func } => kb.push(Instr::Binary {
                func,
                a: v[0],
                b: v[1],
            }),
            Op::Compare { func } => kb.push(Instr::Compare {
                func,
                a: v[0],
                b: v[1],
            }),
            Op::Select => kb.push(Instr::Select {
                cond: v[0],
                a: v[1],
                b: v[2],
            }),
            Op::Cast { to } => kb.push(Instr::Cast { to, a: v[0] }),
            _ if is_view(self.op(id)) => self.emit(kb, id, map)?,
            op => return Err(self.unsupported(id, &format!("{} is not elementwise", op.name()))),
        })
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
                let hosted: Vec<NodeId> = self
                    .g
                    .ids()
                    .filter(|&h| self.final_host(h) == Some(id))
                    .collect();
                for h in hosted {
                    if !kb.hosted.iter().any(|(n, _)| *n == h) {
                        self.host[h.index()] = None;
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
