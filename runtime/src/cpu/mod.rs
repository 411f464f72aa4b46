//! The CPU executor: runs a validated [`Program`] on host memory.
//!
//! Loop steps call native kernels compiled by a backend ([`KernelFn`], e.g. Cranelift) or,
//! for a kernel without native code, the reference evaluator; GEMM steps call Xenon's
//! [`gemm`] (packing kept across runs for weights that do not change); library steps call
//! [`library`]. Temporaries and constants live in one arena laid
//! out by the program's memory plan.
//!
//! # Threads and determinism
//!
//! With `threads > 1` a loop kernel's first outer axis is split into contiguous ranges run
//! on a thread pool, and large GEMMs use the pool too. Every output element is computed by
//! exactly one kernel call or GEMM micro-tile, in the same order whatever the split, so the
//! results are bit-identical for every thread count.

mod comm;
pub mod gemm;
pub mod interleave;
mod shard;

pub use comm::BUCKET_BYTES;

use crate::collective::ReduceBuf;
use crate::exec::{ExecError, Slice, SliceMut, StepTimes};
use crate::kernel::{self, Memory, Scalar};
use crate::library;
use crate::program::{BufferKind, LibraryStep, Program, ProgramError, Step};
use crate::{DType, Tensor, TensorData};
use std::any::Any;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// A compiled loop kernel: runs first-outer-axis indices `start..end`; `args[i]` points to
/// the first element of kernel argument `i`'s buffer.
pub type KernelFn = unsafe extern "C" fn(args: *const *mut u8, start: usize, end: usize);

/// Element counts of work below which a step runs on the calling thread only.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 18;
/// Multiply-adds below which a GEMM runs single-threaded.
const PARALLEL_MIN_GEMM: usize = 1 << 20;

/// A raw pointer that may cross threads: kernels write disjoint ranges.
#[derive(Clone, Copy)]
struct SendPtr(*const *mut u8);
// SAFETY: the pointer table and the buffers it points to outlive the scoped threads, and
// concurrent calls write disjoint first-axis ranges of the outputs.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Runs one program on the CPU.
pub struct CpuExecutor {
    program: Program,
    kernels: Vec<Option<KernelFn>>,
    /// Keeps the code behind `kernels` alive (e.g. the JIT module).
    _code: Arc<dyn Any + Send + Sync>,
    arena: Vec<u128>,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    /// `(name, buffer)` of each input buffer.
    inputs: Vec<(String, usize)>,
    /// Per loop step: the buffer of each kernel argument.
    arg_buffers: Vec<Vec<usize>>,
    /// Accumulated step times, when profiling.
    profile: Option<StepTimes>,
    /// The GEMM code path.
    isa: gemm::Isa,
    /// Spare storage per program output (for the updates), traded with the feeds by
    /// [`CpuExecutor::run_update`].
    spares: Vec<Option<TensorData>>,
    /// Per step: for a (single) GEMM whose B is a feed, the feed's index in `inputs` and
    /// the slot of `packs` that keeps B's packing, once per [`Tensor::stamp`]. The steps
    /// that read the same view of the same feed share one slot: a recurrent layer's
    /// weight, read by every unrolled time step, is packed once per run. A feed the
    /// program updates (a weight during training) gets a slot only when two or more steps
    /// share it; a feed it does not update (a weight during inference) always, since its
    /// packing lasts from run to run.
    reuse_b: Vec<Option<(usize, usize)>>,
    /// The kept packings, one per slot.
    packs: Vec<gemm::PackedB>,
    /// Per slot: how many products read its packing in one run.
    pack_uses: Vec<usize>,
    /// The stamp of each input's feed in the current run.
    stamps: Vec<u64>,
    /// The buffer pointer table of [`CpuExecutor::run_slices`], kept between runs.
    ptrs: PtrTable,
    /// Per step: whether it runs chunk by chunk with the next ([`interleave`]).
    interleave: Vec<Option<interleave::Interleave>>,
    /// The buckets of the `all_reduce` steps ([`comm`]).
    comm_plan: comm::CommPlan,
    /// The thread that sums them over the ranks ([`CpuExecutor::set_collective`]); none:
    /// one rank.
    comm: Option<comm::CommWorker>,
    /// Whether sums run while later steps do ([`CpuExecutor::set_collective`]).
    comm_overlap: bool,
    /// The group, when this executor is one of several ranks.
    collective: Option<Arc<dyn crate::collective::Collective>>,
    /// The optimizer updates sharded over the ranks ([`shard`]; empty for one rank or
    /// when turned off, [`CpuExecutor::set_sharded_updates`]).
    shards: Vec<shard::Sharded>,
    /// Whether the current run shards its updates (runs with updates only).
    sharding: bool,
    /// Whether feeds hold only this rank's part of their values (local optimizer state
    /// after a sharded run), until [`CpuExecutor::sync_updates`].
    partial: bool,
}

/// A buffer pointer table kept between runs (its entries are only meaningful during one).
#[derive(Default)]
struct PtrTable(Vec<*mut u8>);
// SAFETY: the table is plain addresses, rewritten at the start of every run before any is
// read; nothing is dereferenced through a stale entry, so moving or sharing it across
// threads cannot cause a data race.
unsafe impl Send for PtrTable {}
unsafe impl Sync for PtrTable {}

/// One bound input: address, dtype, element count and stamp.
struct InputRef {
    ptr: *mut u8,
    dtype: DType,
    len: usize,
    stamp: u64,
}

impl CpuExecutor {
    /// Validates `program` and prepares it to run with `threads` threads (at least 1).
    /// `kernels[s]` is native code for step `s` (a loop step) or `None` to use the
    /// reference evaluator; `code` keeps that code alive as long as the executor.
    pub fn new(
        program: Program,
        kernels: Vec<Option<KernelFn>>,
        code: Arc<dyn Any + Send + Sync>,
        threads: usize,
    ) -> Result<CpuExecutor, ExecError> {
        program.validate()?;
        if kernels.len() != program.steps.len()
            || kernels
                .iter()
                .zip(&program.steps)
                .any(|(k, s)| k.is_some() && !matches!(s, Step::Loop(_)))
        {
            return Err(ExecError::KernelTable {
                got: kernels.len(),
                steps: program.steps.len(),
            });
        }
        let threads = threads.max(1);
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .ok()
            })
            .flatten();
        crate::memory::check(
            "the program's buffers (its arena)",
            program.plan.arena_bytes as u128,
        )?;
        let words = program.plan.arena_bytes.div_ceil(16);
        let mut arena = vec![0u128; words];
        // Constants are written once.
        for b in &program.buffers {
            if let BufferKind::Const { values } = &b.kind {
                let base = unsafe { (arena.as_mut_ptr() as *mut u8).add(b.offset) };
                for i in 0..b.len {
                    let v = if values.len() == 1 {
                        values[0]
                    } else {
                        values[i]
                    };
                    // SAFETY: validate() checked offset + bytes ≤ arena_bytes.
                    unsafe { write_scalar(base, b.dtype, i, Scalar::from_f64(b.dtype, v)) };
                }
            }
        }
        let inputs = program
            .buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match &b.kind {
                BufferKind::Input { name } => Some((name.clone(), i)),
                _ => None,
            })
            .collect();
        let arg_buffers = program
            .steps
            .iter()
            .map(|s| match s {
                Step::Loop(k) => k.args.iter().map(|a| a.buffer).collect(),
                _ => Vec::new(),
            })
            .collect();
        let spares = vec![None; program.outputs.len()];
        let updated = |name: &str| program.updates.iter().any(|(_, f)| f == name);
        let inputs: Vec<(String, usize)> = inputs;
        let (reuse_b, pack_uses) = pack_slots(&program, &inputs, &updated);
        let packs = pack_uses.iter().map(|_| gemm::PackedB::default()).collect();
        let stamps = vec![0; inputs.len()];
        let comm_plan = comm::CommPlan::new(&program);
        let mut executor = CpuExecutor {
            program,
            kernels,
            _code: code,
            arena,
            threads,
            pool,
            inputs,
            arg_buffers,
            profile: None,
            isa: gemm::Isa::detect(),
            spares,
            reuse_b,
            packs,
            pack_uses,
            stamps,
            ptrs: PtrTable::default(),
            interleave: Vec::new(),
            comm_plan,
            comm: None,
            comm_overlap: true,
            collective: None,
            shards: Vec::new(),
            sharding: false,
            partial: false,
        };
        executor.set_interleaving(true);
        Ok(executor)
    }

    /// Makes this executor one rank of `comm`'s group: its `all_reduce` steps sum over the
    /// ranks, on a communication thread that runs while the steps not needing the sums do
    /// (see [`BUCKET_BYTES`] for how they are grouped into messages). Every rank must run
    /// the same program. Without a group (the default) `all_reduce` is a copy.
    ///
    /// The sums overlap the steps that do not need them when the machine has a core for
    /// the communication thread (more cores than this executor's threads times the ranks
    /// on this machine, [`Collective::local_ranks`](crate::collective::Collective::local_ranks));
    /// otherwise the thread would only take turns with the computation, and each bucket is
    /// awaited as soon as it is sent. [`CpuExecutor::set_comm_overlap`] overrides this.
    pub fn set_collective(&mut self, comm: Arc<dyn crate::collective::Collective>) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.comm_overlap = cores > self.threads * comm.local_ranks().max(1);
        self.comm = (!self.comm_plan.is_empty()).then(|| comm::CommWorker::new(comm.clone()));
        self.collective = (comm.size() > 1).then_some(comm);
        self.set_sharded_updates(true);
    }

    /// Turns the sharding of optimizer updates over the ranks ([`shard`]: each rank
    /// sums, updates and checks its part of a large parameter, then the ranks exchange
    /// the updated parts) on (the default with a group of several ranks) or off. Either
    /// way the ranks' values after a step are the same, bit for bit.
    pub fn set_sharded_updates(&mut self, on: bool) {
        self.shards = match &self.collective {
            Some(_) if on => shard::sharded_updates(&self.program)
                .into_iter()
                .filter(|sh| {
                    // No loop that runs chunk by chunk with a product.
                    !sh.steps.iter().any(|&u| {
                        (0..=u).any(|s| self.interleave[s].is_some_and(|il| s + il.steps > u))
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
    }

    /// This rank's part of `len` elements, when the executor shards updates.
    fn my_part(&self, len: usize) -> Option<Range<usize>> {
        let c = self.collective.as_ref()?;
        Some(crate::collective::part(len, c.rank(), c.size()))
    }

    /// The sharded update whose `all_reduce` (`reduce`) or loop is step `s`, in a run that
    /// shards.
    fn sharded(&self, s: usize, reduce: bool) -> Option<&shard::Sharded> {
        if !self.sharding {
            return None;
        }
        self.shards.iter().find(|sh| {
            if reduce {
                sh.reduce == s
            } else {
                sh.steps.contains(&s)
            }
        })
    }

    /// Whether the sums of `all_reduce` steps overlap the computation (see
    /// [`CpuExecutor::set_collective`]).
    pub fn set_comm_overlap(&mut self, on: bool) {
        self.comm_overlap = on;
    }

    /// Whether the sums overlap the computation.
    pub fn comm_overlap(&self) -> bool {
        self.comm_overlap
    }

    /// Turns the chunked running of step pairs ([`interleave`]) on (the default) or off;
    /// the results are the same either way, bit for bit.
    pub fn set_interleaving(&mut self, on: bool) {
        self.interleave = (0..self.program.steps.len())
            .map(|s| interleave::interleaving(&self.program, s).filter(|_| on))
            .collect();
        // Groups do not overlap: a step inside one starts none.
        let mut s = 0;
        while s < self.interleave.len() {
            match self.interleave[s] {
                Some(il) => {
                    for t in s + 1..(s + il.steps).min(self.interleave.len()) {
                        self.interleave[t] = None;
                    }
                    s += il.steps;
                }
                None => s += 1,
            }
        }
    }

    /// The first steps of the groups that run chunk by chunk (when their buffers are
    /// disjoint in a run).
    pub fn interleaved_steps(&self) -> Vec<usize> {
        (0..self.interleave.len())
            .filter(|&s| self.interleave[s].is_some())
            .collect()
    }

    /// Turns per-step timing on (from zero) or off. Off by default: timing costs two clock
    /// reads per step.
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(|| StepTimes {
            steps: self
                .program
                .steps
                .iter()
                .map(|s| (s.describe(), std::time::Duration::ZERO))
                .collect(),
            ..StepTimes::default()
        });
    }

    /// The step times accumulated since profiling was turned on.
    pub fn profile(&self) -> Option<StepTimes> {
        self.profile.clone()
    }

    /// The program being run.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The GEMM code path (by default [`gemm::Isa::detect`]: the best the processor has,
    /// capped by `XENON_ISA`).
    pub fn isa(&self) -> gemm::Isa {
        self.isa
    }

    /// Uses the GEMM path `isa`, capped to what the processor has; returns the path used.
    pub fn set_isa(&mut self, isa: gemm::Isa) -> gemm::Isa {
        self.isa = isa.capped();
        self.isa
    }

    /// Runs the program. `feeds` supplies every input buffer by name (dtype and element
    /// count are checked); returns the named outputs with the given shapes.
    pub fn run(
        &mut self,
        feeds: &HashMap<String, Tensor>,
        output_shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<HashMap<String, Tensor>, ExecError> {
        let ptrs = self.execute(feeds)?;
        let mut out = HashMap::new();
        for (name, id) in &self.program.outputs {
            out.insert(name.clone(), self.output(&ptrs, name, *id, output_shapes)?);
        }
        Ok(out)
    }

    /// Runs the program and writes every update (`Program::updates`: an output declared the
    /// new value of an input) back into that input's feed; returns the other outputs. With
    /// `check_finite`, nothing is written back when an updated value holds NaN or infinity:
    /// the error names the first such output (in program order). This is how a training
    /// step updates parameters and optimizer state without allocating or copying: each
    /// updated value is computed into a spare buffer the executor owns, which then trades
    /// places with the feed's storage (the old values become the next step's spare).
    pub fn run_update(
        &mut self,
        feeds: &mut HashMap<String, Tensor>,
        output_shapes: &HashMap<String, Vec<usize>>,
        check_finite: bool,
    ) -> Result<HashMap<String, Tensor>, ExecError> {
        // (output name, feed name, buffer, spare slot when the buffer is redirected).
        let mut updates: Vec<(String, String, usize, Option<usize>)> = Vec::new();
        let mut redirect: Vec<(usize, *mut u8)> = Vec::new();
        for (slot, (name, id)) in self.program.outputs.iter().enumerate() {
            let b = &self.program.buffers[*id];
            // Validated: the feed is an input of the same dtype and length.
            let Some(target) = self
                .program
                .updates
                .iter()
                .find(|(o, _)| o == name)
                .map(|(_, f)| f.as_str())
            else {
                continue;
            };
            let first_use =
                matches!(b.kind, BufferKind::Temp) && !redirect.iter().any(|(r, _)| r == id);
            let slot = first_use.then(|| {
                let data =
                    self.spares[slot].get_or_insert_with(|| TensorData::zeros(b.dtype, b.len));
                redirect.push((*id, data_ptr_mut(data)));
                slot
            });
            updates.push((name.clone(), target.to_string(), *id, slot));
        }
        self.sharding = !self.shards.is_empty();
        let ran = self.execute_with(feeds, &redirect);
        self.sharding = false;
        if let Err(ExecError::Collective(_)) = &ran {
            // The parts can no longer be gathered (the group is broken): the feeds keep
            // this rank's.
            self.partial = false;
        }
        let ptrs = ran?;
        let mut out = HashMap::new();
        for (name, id) in &self.program.outputs {
            if !updates.iter().any(|u| &u.0 == name) {
                out.insert(name.clone(), self.output(&ptrs, name, *id, output_shapes)?);
            }
        }
        if check_finite {
            self.check_finite(&updates, &ptrs)?;
        }
        // Copies first (outputs sharing a redirected buffer read it), then the trades.
        for (_, target, id, slot) in &updates {
            if slot.is_some() {
                continue;
            }
            let b = &self.program.buffers[*id];
            let t = feeds.get_mut(target).expect("checked above");
            // SAFETY: the source holds b.len elements (validated); the destination tensor
            // has the same dtype and element count; the steps that read the feed have
            // finished.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    ptrs[*id] as *const u8,
                    data_ptr_mut(t.data_mut()),
                    b.bytes(),
                )
            };
        }
        for (_, target, _, slot) in updates {
            if let Some(slot) = slot {
                let t = feeds.get_mut(&target).expect("checked above");
                let spare = self.spares[slot].as_mut().expect("allocated above");
                std::mem::swap(t.data_mut(), spare);
            }
        }
        self.partial |= self.shards.iter().any(|sh| !sh.local.is_empty());
        Ok(out)
    }

    /// The first non-finite element of the updates (in `updates` order), as an error. With
    /// several ranks, whose updated values are the same, each checks its part of every
    /// update and the ranks agree on the first finding.
    fn check_finite(
        &self,
        updates: &[(String, String, usize, Option<usize>)],
        ptrs: &[*mut u8],
    ) -> Result<(), ExecError> {
        let mut first = None;
        for (slot, (_, _, id, _)) in updates.iter().enumerate() {
            let b = &self.program.buffers[*id];
            let part = self.my_part(b.len).unwrap_or(0..b.len);
            // SAFETY: the buffer holds b.len elements of b.dtype (validated, or a spare
            // of that size), and `part` lies within them.
            let bad =
                unsafe {
                    let at = ptrs[*id].add(part.start * b.dtype.size_bytes());
                    match b.dtype {
                        DType::F32 => crate::tensor::first_non_finite_f32(
                            std::slice::from_raw_parts(at as *const f32, part.len()),
                        ),
                        DType::F64 => crate::tensor::first_non_finite_f64(
                            std::slice::from_raw_parts(at as *const f64, part.len()),
                        ),
                        DType::I32 => None,
                    }
                };
            if let Some(e) = bad {
                first = Some((slot, part.start + e));
                break;
            }
        }
        if let Some(c) = &self.collective {
            // (slot, element) packed into one word, u64::MAX for none; the least wins.
            let word = first.map_or(u64::MAX, |(slot, e)| ((slot as u64) << 40) | e as u64);
            let all = c.all_gather_u64(word).map_err(ExecError::Collective)?;
            let least = all.into_iter().min().unwrap_or(u64::MAX);
            first = (least != u64::MAX)
                .then_some(((least >> 40) as usize, (least & ((1 << 40) - 1)) as usize));
        }
        match first {
            Some((slot, element)) => Err(ExecError::NonFinite {
                output: updates[slot].0.clone(),
                element,
            }),
            None => Ok(()),
        }
    }

    /// Completes the feeds that hold only this rank's part of their values after sharded
    /// runs ([`CpuExecutor::set_sharded_updates`]: optimizer state only the update reads)
    /// by gathering the other ranks' parts. Every rank must call it at the same point;
    /// a no-op when nothing is partial.
    pub fn sync_updates(&mut self, feeds: &mut HashMap<String, Tensor>) -> Result<(), ExecError> {
        if !self.partial {
            return Ok(());
        }
        let Some(c) = self.collective.clone() else {
            return Ok(());
        };
        // Every rank gathers the same feeds, in program order.
        for sh in &self.shards {
            for (_, feed) in &sh.local {
                let t = feeds
                    .get_mut(feed)
                    .ok_or_else(|| ExecError::MissingInput(feed.clone()))?;
                let r = match t.data_mut() {
                    TensorData::F32(v) => c.all_gather(ReduceBuf::F32(v)),
                    TensorData::F64(v) => c.all_gather(ReduceBuf::F64(v)),
                    TensorData::I32(_) => Ok(()),
                };
                r.map_err(ExecError::Collective)?;
            }
        }
        self.partial = false;
        Ok(())
    }

    /// Output `name` (buffer `id`) as a new tensor.
    fn output(
        &self,
        ptrs: &[*mut u8],
        name: &str,
        id: usize,
        output_shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<Tensor, ExecError> {
        let b = &self.program.buffers[id];
        // SAFETY: the buffer holds b.len elements of b.dtype (validated).
        let data = unsafe { read_buffer(ptrs[id], b.dtype, b.len) };
        let shape = output_shapes
            .get(name)
            .cloned()
            .unwrap_or_else(|| vec![b.len]);
        Ok(Tensor::new(shape, data).map_err(|e| ProgramError::Buffer {
            buffer: id,
            reason: format!("output {name:?}: {e}"),
        })?)
    }

    /// Checks the feeds and runs every step; returns the buffer pointer table.
    fn execute(&mut self, feeds: &HashMap<String, Tensor>) -> Result<Vec<*mut u8>, ExecError> {
        self.execute_with(feeds, &[])
    }

    /// [`CpuExecutor::execute`] with some temporaries placed outside the arena:
    /// `(buffer, address)`, each address holding the buffer's elements.
    fn execute_with(
        &mut self,
        feeds: &HashMap<String, Tensor>,
        redirect: &[(usize, *mut u8)],
    ) -> Result<Vec<*mut u8>, ExecError> {
        let find = |_: usize, name: &str| {
            let t = feeds
                .get(name)
                .ok_or_else(|| ExecError::MissingInput(name.to_string()))?;
            Ok(InputRef {
                // Inputs are only read (the program never stores into an input buffer).
                ptr: data_ptr(t.data()) as *mut u8,
                dtype: t.dtype(),
                len: t.numel(),
                stamp: t.stamp(),
            })
        };
        let mut ptrs = Vec::with_capacity(self.program.buffers.len());
        self.execute_inputs(&find, redirect, &mut ptrs)?;
        Ok(ptrs)
    }

    /// Binds every input through `find(position, name)`, checks its dtype and length,
    /// places the redirected temporaries and runs every step; `ptrs` receives the buffer
    /// pointer table.
    fn execute_inputs(
        &mut self,
        find: &dyn Fn(usize, &str) -> Result<InputRef, ExecError>,
        redirect: &[(usize, *mut u8)],
        ptrs: &mut Vec<*mut u8>,
    ) -> Result<(), ExecError> {
        let arena = self.arena.as_mut_ptr() as *mut u8;
        ptrs.clear();
        for b in &self.program.buffers {
            // SAFETY: offsets of arena buffers were validated against the arena size.
            ptrs.push(unsafe { arena.add(b.offset) });
        }
        for (i, (name, id)) in self.inputs.iter().enumerate() {
            let b = &self.program.buffers[*id];
            let input = find(i, name)?;
            if input.dtype != b.dtype || input.len != b.len {
                return Err(ExecError::InputType {
                    name: name.clone(),
                    dtype: b.dtype,
                    len: b.len,
                    got_dtype: input.dtype,
                    got: input.len,
                });
            }
            ptrs[*id] = input.ptr;
            self.stamps[i] = input.stamp;
        }
        for &(id, p) in redirect {
            ptrs[id] = p;
        }
        let mut packs = std::mem::take(&mut self.packs);
        let run = self.run_steps(ptrs, &mut packs);
        self.packs = packs;
        run?;
        if let Some(p) = &mut self.profile {
            p.runs += 1;
        }
        Ok(())
    }

    /// The names of the program's inputs, in the order [`CpuExecutor::run_slices`] takes
    /// them.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().map(|(n, _)| n.as_str())
    }

    /// Runs the program on inputs given by position (in [`CpuExecutor::input_names`]
    /// order), each with the [`Tensor::stamp`] of its contents (or `None`: contents that
    /// may have changed since the last run), and copies every output into `outputs`
    /// (in [`Program::outputs`] order; dtype and element count must match). No allocation:
    /// the fast path for embedded inference. Updates are not written back (see
    /// [`CpuExecutor::run_update`]).
    pub fn run_slices(
        &mut self,
        inputs: &[(Slice<'_>, Option<u64>)],
        outputs: &mut [SliceMut<'_>],
    ) -> Result<(), ExecError> {
        if inputs.len() != self.inputs.len() {
            return Err(ExecError::Arity {
                what: "inputs",
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        if outputs.len() != self.program.outputs.len() {
            return Err(ExecError::Arity {
                what: "outputs",
                expected: self.program.outputs.len(),
                got: outputs.len(),
            });
        }
        for ((name, id), out) in self.program.outputs.iter().zip(outputs.iter()) {
            let b = &self.program.buffers[*id];
            if out.dtype() != b.dtype || out.len() != b.len {
                return Err(ExecError::OutputType {
                    name: name.clone(),
                    dtype: b.dtype,
                    len: b.len,
                    got_dtype: out.dtype(),
                    got: out.len(),
                });
            }
        }
        let find = |i: usize, _: &str| {
            let (s, stamp) = &inputs[i];
            Ok(InputRef {
                ptr: s.as_ptr() as *mut u8,
                dtype: s.dtype(),
                len: s.len(),
                stamp: stamp.unwrap_or_else(crate::tensor::fresh_stamp),
            })
        };
        let mut ptrs = std::mem::take(&mut self.ptrs.0);
        let result = self.execute_inputs(&find, &[], &mut ptrs);
        if result.is_ok() {
            for ((_, id), out) in self.program.outputs.iter().zip(outputs.iter_mut()) {
                let b = &self.program.buffers[*id];
                // SAFETY: the buffer holds b.len elements of b.dtype (validated), and `out`
                // has the same dtype and length (checked above); a program output never
                // aliases the caller's output slices.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        ptrs[*id] as *const u8,
                        out.as_mut_ptr(),
                        b.bytes(),
                    )
                };
            }
        }
        self.ptrs.0 = ptrs;
        result
    }

    /// Runs every step in turn (`packs`: the kept packings of reused GEMM operands); pairs
    /// of steps marked in `interleave` run chunk by chunk when their buffers are disjoint.
    fn run_steps(
        &mut self,
        ptrs: &[*mut u8],
        packs: &mut [gemm::PackedB],
    ) -> Result<(), ExecError> {
        let Some(mut worker) = self.comm.take() else {
            return self.run_steps_on(ptrs, packs, None);
        };
        let gathers: usize = self.shards.iter().map(|sh| sh.gather.len()).sum();
        worker.begin(self.comm_plan.buckets.len() + gathers);
        let run = self.run_steps_on(ptrs, packs, Some(&mut worker));
        // Nothing may return while the thread still uses the buffers.
        let summed = worker.wait(None);
        self.comm = Some(worker);
        run?;
        summed.map_err(ExecError::Collective)
    }

    /// Waits for the buckets step `s` needs, if any.
    fn await_buckets(
        &mut self,
        s: usize,
        worker: &mut Option<&mut comm::CommWorker>,
    ) -> Result<(), ExecError> {
        let Some(w) = worker else { return Ok(()) };
        if self.comm_plan.waits[s].is_empty() {
            return Ok(());
        }
        let t = std::time::Instant::now();
        for &b in &self.comm_plan.waits[s] {
            w.wait(Some(b)).map_err(ExecError::Collective)?;
        }
        if let Some(p) = &mut self.profile {
            let d = t.elapsed();
            p.steps[s].1 += d;
            p.library += d;
        }
        Ok(())
    }

    /// Sends the bucket step `s` completes, if any.
    fn send_bucket(&self, s: usize, ptrs: &[*mut u8], worker: &mut Option<&mut comm::CommWorker>) {
        let (Some(w), Some(b)) = (worker, self.comm_plan.sends[s]) else {
            return;
        };
        let bucket = &self.comm_plan.buckets[b];
        let regions = bucket
            .steps
            .iter()
            .map(|&t| match &self.program.steps[t] {
                Step::Library(LibraryStep::AllReduce { out, len, .. }) => (ptrs[*out], *len),
                _ => unreachable!("a bucket holds all_reduce steps"),
            })
            .collect();
        let exchange = match bucket.steps[..] {
            [t] if self.sharded(t, true).is_some() => comm::Exchange::SumPart,
            _ => comm::Exchange::Sum,
        };
        w.send(b, bucket.dtype, exchange, regions);
        if !self.comm_overlap {
            // Its error, if any, is the run's (reported by the final wait).
            let _ = w.wait(Some(b));
        }
    }

    /// After sharded update step `s`: sends the all-gather of its outputs that other steps
    /// read (one job per output after the buckets, awaited at the end of the run).
    fn send_gather(&self, s: usize, ptrs: &[*mut u8], worker: &mut Option<&mut comm::CommWorker>) {
        let Some(w) = worker else {
            return;
        };
        let gathers = self
            .shards
            .iter()
            .flat_map(|sh| sh.gather.iter().map(|g| (g, sh.len)));
        for (k, (&(step, b), len)) in gathers.enumerate() {
            if step != s {
                continue;
            }
            let job = self.comm_plan.buckets.len() + k;
            let dtype = self.program.buffers[b].dtype;
            w.send(job, dtype, comm::Exchange::Gather, vec![(ptrs[b], len)]);
            if !self.comm_overlap {
                let _ = w.wait(Some(job));
            }
        }
    }

    /// [`CpuExecutor::run_steps`] with the communication thread, if any.
    fn run_steps_on(
        &mut self,
        ptrs: &[*mut u8],
        packs: &mut [gemm::PackedB],
        mut worker: Option<&mut comm::CommWorker>,
    ) -> Result<(), ExecError> {
        let mut s = 0;
        while s < self.program.steps.len() {
            let group = self.interleave[s].map_or(1, |il| il.steps);
            for t in s..s + group {
                self.await_buckets(t, &mut worker)?;
            }
            if let Some(il) = self.interleave[s]
                && interleave::disjoint(&self.program, s, il.steps, ptrs)
            {
                if il.direct {
                    self.timed_window_argmax(s, ptrs);
                    s += 2;
                    continue;
                }
                for images in il.chunks() {
                    for t in s..s + il.steps {
                        let part = Part {
                            images: images.clone(),
                            of: il.images,
                        };
                        self.timed_step(t, ptrs, None, Some(part))?;
                    }
                }
                for t in s..s + il.steps {
                    self.send_bucket(t, ptrs, &mut worker);
                }
                s += il.steps;
                continue;
            }
            let reuse = self.reuse_b[s].map(|(i, slot)| gemm::Reuse {
                stamp: self.stamps[i],
                pack: &mut packs[slot],
                uses: self.pack_uses[slot],
            });
            if let Some(sh) = self.sharded(s, false) {
                let part = self
                    .my_part(sh.len)
                    .map(|images| Part { images, of: sh.len });
                self.timed_step(s, ptrs, reuse, part)?;
                self.send_gather(s, ptrs, &mut worker);
            } else {
                self.timed_step(s, ptrs, reuse, None)?;
            }
            self.send_bucket(s, ptrs, &mut worker);
            s += 1;
        }
        Ok(())
    }

    /// Steps `s` (an unfold) and `s + 1` (the arg-max over its windows) as one
    /// [`library::window_argmax`] pass ([`interleave::Interleave::direct`]); the time goes
    /// to step `s + 1` in the profile.
    fn timed_window_argmax(&mut self, s: usize, ptrs: &[*mut u8]) {
        let t = std::time::Instant::now();
        let (
            Step::Library(LibraryStep::Im2Col {
                x,
                dtype,
                image,
                window,
                ..
            }),
            Step::Library(LibraryStep::ArgMax { out, .. }),
        ) = (&self.program.steps[s], &self.program.steps[s + 1])
        else {
            unreachable!("interleaving() marks an unfold and an arg-max direct")
        };
        let pixels: usize = image.iter().product();
        let found = self.program.buffers[*out].len;
        // SAFETY: validated buffers of these lengths, disjoint (checked by the caller).
        let out = unsafe { std::slice::from_raw_parts_mut(ptrs[*out] as *mut i32, found) };
        fn run<T: crate::element::Element>(
            x: *mut u8,
            pixels: usize,
            image: &[usize],
            window: &crate::program::WindowSpec,
            out: &mut [i32],
        ) {
            // SAFETY: as above; the image buffer holds `pixels` elements of `T`.
            let x = unsafe { std::slice::from_raw_parts(x as *const T, pixels) };
            library::window_argmax(x, image, window, out)
        }
        match dtype {
            DType::F32 => run::<f32>(ptrs[*x], pixels, image, window, out),
            DType::F64 => run::<f64>(ptrs[*x], pixels, image, window, out),
            DType::I32 => run::<i32>(ptrs[*x], pixels, image, window, out),
        }
        if let Some(p) = &mut self.profile {
            let d = t.elapsed();
            p.steps[s + 1].1 += d;
            p.library += d;
        }
    }

    /// [`CpuExecutor::run_step`], its time added to the profile when profiling.
    fn timed_step(
        &mut self,
        s: usize,
        ptrs: &[*mut u8],
        reuse: Option<gemm::Reuse<'_>>,
        part: Option<Part>,
    ) -> Result<(), ExecError> {
        if self.profile.is_none() {
            return self.run_step(s, ptrs, reuse, part);
        }
        let count = part.as_ref().map(|p| p.images.len());
        let t = std::time::Instant::now();
        self.run_step(s, ptrs, reuse, part)?;
        let d = t.elapsed();
        if let Some(p) = &mut self.profile {
            p.steps[s].1 += d;
            match &self.program.steps[s] {
                Step::Loop(_) => p.loops += d,
                Step::Gemm(g) => {
                    p.gemm += d;
                    let products = count.unwrap_or(g.batch);
                    p.gemm_flops += 2 * (g.m * g.n * g.k * products) as u64;
                }
                Step::Library(_) => p.library += d,
            }
        }
        Ok(())
    }

    /// Runs step `s`; `reuse` keeps the packing of its GEMM operand B
    /// ([`CpuExecutor::reuse_b`]); `part` restricts a batched GEMM, a window step, an
    /// arg-max or an epilogue loop to some images of its minibatch ([`interleave`]).
    fn run_step(
        &self,
        s: usize,
        ptrs: &[*mut u8],
        mut reuse: Option<gemm::Reuse<'_>>,
        part: Option<Part>,
    ) -> Result<(), ExecError> {
        let images = part.as_ref().map(|p| p.images.clone());
        match &self.program.steps[s] {
            Step::Loop(k) => {
                // The argument table, on the stack for the usual few arguments.
                let bufs = &self.arg_buffers[s];
                let mut stack = [std::ptr::null_mut::<u8>(); 16];
                let heap: Vec<*mut u8>;
                let args: &[*mut u8] = if bufs.len() <= stack.len() {
                    for (d, &b) in stack.iter_mut().zip(bufs) {
                        *d = ptrs[b];
                    }
                    &stack[..bufs.len()]
                } else {
                    heap = bufs.iter().map(|&b| ptrs[b]).collect();
                    &heap
                };
                // The outer indices to run: all, or those of some images (an epilogue's
                // first axis walks the images, `extent / of` indices each).
                let extent = k.outer_extent();
                let (start, end) = match &part {
                    Some(p) => {
                        let per = extent / p.of;
                        (p.images.start * per, p.images.end * per)
                    }
                    None => (0, extent),
                };
                let span = end - start;
                match self.kernels[s] {
                    Some(f) => {
                        let work = k.shape.iter().product::<usize>() / extent.max(1) * span;
                        let table = SendPtr(args.as_ptr());
                        match &self.pool {
                            Some(pool) if work >= PARALLEL_MIN_ELEMENTS && span > 1 => {
                                let chunks = self.threads.min(span);
                                pool.scope(|scope| {
                                    for c in 0..chunks {
                                        let (lo, hi) = (
                                            start + span * c / chunks,
                                            start + span * (c + 1) / chunks,
                                        );
                                        scope.spawn(move |_| {
                                            let t = table;
                                            // SAFETY: the program was validated, so every access of
                                            // the kernel stays inside its argument buffers; ranges
                                            // are disjoint.
                                            unsafe { f(t.0, lo, hi) }
                                        });
                                    }
                                });
                            }
                            // SAFETY: as above.
                            _ => unsafe { f(table.0, start, end) },
                        }
                    }
                    None => {
                        let mut mem = RawMemory {
                            ptrs: args,
                            dtypes: k.args.iter().map(|a| a.dtype).collect(),
                        };
                        kernel::eval(k, &mut mem, start..end);
                    }
                }
            }
            Step::Gemm(g) => {
                let par = match &self.pool {
                    Some(pool) if g.m * g.n * g.k * g.batch >= PARALLEL_MIN_GEMM => {
                        Some(gemm::Parallel {
                            pool,
                            threads: self.threads,
                        })
                    }
                    _ => None,
                };
                // Product `b`'s matrix of view `v`.
                let at = |v: &crate::program::MatView, b: usize| -> *mut u8 {
                    let elem = v.offset as isize + b as isize * v.batch_stride;
                    // SAFETY: validated view ranges.
                    unsafe { ptrs[v.buffer].offset(elem * g.dtype.size_bytes() as isize) }
                };
                if g.sum_batch {
                    let (a, bm, c) = (at(&g.a, 0), at(&g.b, 0), at(&g.c, 0));
                    // SAFETY: the views of every product were validated against the
                    // buffers' lengths, and the output does not overlap the operands.
                    unsafe {
                        match g.dtype {
                            DType::F32 => gemm_sum_views::<f32>(self.isa, g, a, bm, c, par),
                            DType::F64 => gemm_sum_views::<f64>(self.isa, g, a, bm, c, par),
                            DType::I32 => {}
                        }
                    }
                    return Ok(());
                }
                for b in images.unwrap_or(0..g.batch) {
                    let (a, bm, c) = (at(&g.a, b), at(&g.b, b), at(&g.c, b));
                    // The operand is kept only for a single product (batch 1).
                    let reuse = reuse.take().filter(|_| g.batch == 1);
                    // SAFETY: the views were validated against the buffers' lengths, and
                    // the output does not overlap the operands; the stamp is B's feed's.
                    unsafe {
                        match g.dtype {
                            DType::F32 => gemm_views::<f32>(self.isa, g, a, bm, c, par, reuse),
                            DType::F64 => gemm_views::<f64>(self.isa, g, a, bm, c, par, reuse),
                            DType::I32 => {}
                        }
                    }
                }
            }
            Step::Library(l) => self.run_library(l, ptrs, images)?,
        }
        Ok(())
    }

    /// Runs library step `l`; `images` restricts a window step (or the arg-max over its columns) to those images.
    fn run_library(
        &self,
        l: &LibraryStep,
        ptrs: &[*mut u8],
        images: Option<Range<usize>>,
    ) -> Result<(), ExecError> {
        let bufs = &self.program.buffers;
        // SAFETY (for every slice below): validate() checked each buffer's dtype and that
        // it holds at least the elements used; distinct buffers do not overlap in memory
        // except where the memory plan reuses a dead buffer's space.
        macro_rules! slice {
            ($id:expr, $t:ty) => {
                unsafe { std::slice::from_raw_parts(ptrs[$id] as *const $t, bufs[$id].len) }
            };
        }
        macro_rules! slice_mut {
            ($id:expr, $t:ty) => {
                unsafe { std::slice::from_raw_parts_mut(ptrs[$id] as *mut $t, bufs[$id].len) }
            };
        }
        macro_rules! typed {
            ($dtype:expr, $T:ident => $body:expr) => {
                match $dtype {
                    DType::F32 => {
                        type $T = f32;
                        $body
                    }
                    DType::F64 => {
                        type $T = f64;
                        $body
                    }
                    DType::I32 => {
                        type $T = i32;
                        $body
                    }
                }
            };
        }
        match l {
            LibraryStep::Im2Col {
                x,
                out,
                dtype,
                image,
                window,
            } => typed!(dtype, T => {
                let (x, out) = (slice!(*x, T), slice_mut!(*out, T));
                let (x, out) = images_of(x, out, image, window, images, false);
                library::im2col::<T>(x, image, window, out)
            }),
            LibraryStep::Col2Im {
                cols,
                out,
                dtype,
                image,
                window,
            } => typed!(dtype, T => {
                let (cols, out) = (slice!(*cols, T), slice_mut!(*out, T));
                let (cols, out) = images_of(cols, out, image, window, images, true);
                library::col2im::<T>(cols, image, window, out)
            }),
            LibraryStep::Gather {
                data,
                indices,
                out,
                dtype,
                row_len,
                ..
            } => typed!(dtype, T => {
                library::gather::<T>(slice!(*data, T), *row_len, slice!(*indices, i32), slice_mut!(*out, T))
                    .map_err(|source| ExecError::Index { op: "gather", source })?
            }),
            LibraryStep::ScatterAdd {
                updates,
                indices,
                out,
                dtype,
                row_len,
                ..
            } => typed!(dtype, T => {
                library::scatter_add::<T>(slice!(*updates, T), *row_len, slice!(*indices, i32), slice_mut!(*out, T))
                    .map_err(|source| ExecError::Index { op: "scatter_add", source })?
            }),
            LibraryStep::Random {
                out,
                dtype,
                normal,
                seed,
                a,
                b,
                counter,
            } => {
                let c = library::counter(counter.map(|c| slice!(c, i32)[0]));
                match (dtype, normal) {
                    (DType::F32, false) => {
                        library::uniform_f32(slice_mut!(*out, f32), *seed, c, *a, *b)
                    }
                    (DType::F32, true) => {
                        library::normal_f32(slice_mut!(*out, f32), *seed, c, *a, *b)
                    }
                    (DType::F64, false) => {
                        library::uniform_f64(slice_mut!(*out, f64), *seed, c, *a, *b)
                    }
                    (DType::F64, true) => {
                        library::normal_f64(slice_mut!(*out, f64), *seed, c, *a, *b)
                    }
                    (DType::I32, _) => {}
                }
            }
            LibraryStep::ArgMax {
                x,
                out,
                dtype,
                outer,
                axis,
                inner,
            } => typed!(dtype, T => {
                let (x, out) = (slice!(*x, T), slice_mut!(*out, i32));
                // The outer indices `images` only (their columns follow an unfold's).
                let r = images.unwrap_or(0..*outer);
                let per = axis * inner;
                library::argmax::<T>(
                    &x[r.start * per..r.end * per],
                    r.len(),
                    *axis,
                    *inner,
                    &mut out[r.start * inner..r.end * inner],
                )
            }),
            // The sum over the ranks follows on the communication thread (`send_bucket`).
            LibraryStep::AllReduce { x, out, dtype, len } => {
                if ptrs[*x] != ptrs[*out] {
                    // SAFETY: validated buffers of `len` elements; `copy` allows overlap.
                    unsafe { std::ptr::copy(ptrs[*x], ptrs[*out], len * dtype.size_bytes()) }
                }
            }
            LibraryStep::Copy {
                src,
                dst,
                dtype,
                src_offset,
                dst_offset,
                len,
            } => {
                let size = dtype.size_bytes();
                // SAFETY: validated ranges; copy handles overlap.
                unsafe {
                    std::ptr::copy(
                        ptrs[*src].add(src_offset * size),
                        ptrs[*dst].add(dst_offset * size),
                        len * size,
                    )
                }
            }
        }
        Ok(())
    }
}

/// The parts of a window step's operands that hold `images` (all when `None`): `src` and
/// `dst` are the image and the columns for `im2col`, the columns and the image for
/// `col2im` (`fold`). The routines walk whole images, so a part is a run of them.
/// Some images of a minibatch of `of`: the part of a step an interleaved group runs at a
/// time ([`interleave`]).
#[derive(Clone, Debug)]
struct Part {
    images: Range<usize>,
    of: usize,
}

fn images_of<'a, T>(
    src: &'a [T],
    dst: &'a mut [T],
    image: &[usize],
    window: &crate::program::WindowSpec,
    images: Option<Range<usize>>,
    fold: bool,
) -> (&'a [T], &'a mut [T]) {
    let Some(r) = images else {
        return (src, dst);
    };
    let pixels: usize = image[1..].iter().product();
    let cols = interleave::columns_per_image(image, window);
    let (src_per, dst_per) = if fold { (cols, pixels) } else { (pixels, cols) };
    (
        &src[r.start * src_per..r.end * src_per],
        &mut dst[r.start * dst_per..r.end * dst_per],
    )
}

/// The packing slots of [`CpuExecutor::reuse_b`]: per step, `(feed index in inputs,
/// slot)` for a single GEMM whose B is a feed, the steps reading the same view of the same
/// feed sharing a slot; and per slot, its number of steps. `updated` tells the feeds the
/// program updates: those get a slot only when it is shared.
fn pack_slots(
    program: &Program,
    inputs: &[(String, usize)],
    updated: &dyn Fn(&str) -> bool,
) -> (Vec<Option<(usize, usize)>>, Vec<usize>) {
    // The key of a view: feed, offset, strides and the product's depth and width.
    let key = |s: &Step| match s {
        Step::Gemm(g) if g.batch == 1 && !g.sum_batch => match &program.buffers[g.b.buffer].kind {
            BufferKind::Input { name } => {
                let feed = inputs.iter().position(|(n, _)| n == name)?;
                let v = &g.b;
                Some((
                    feed,
                    v.offset,
                    v.row_stride,
                    v.col_stride,
                    g.k,
                    g.n,
                    g.dtype,
                ))
            }
            _ => None,
        },
        _ => None,
    };
    let keys: Vec<_> = program.steps.iter().map(key).collect();
    let mut count: HashMap<_, usize> = HashMap::new();
    for k in keys.iter().flatten() {
        *count.entry(*k).or_default() += 1;
    }
    // Slots in order of first use; an updated feed read once per run keeps no packing (it
    // would be stale by the next run).
    let mut slot: HashMap<_, usize> = HashMap::new();
    let mut uses = Vec::new();
    let reuse = keys
        .iter()
        .map(|k| {
            let k = (*k)?;
            let n = count[&k];
            if n == 1 && updated(&inputs[k.0].0) {
                return None;
            }
            let s = *slot.entry(k).or_insert_with(|| {
                uses.push(n);
                uses.len() - 1
            });
            Some((k.0, s))
        })
        .collect();
    (reuse, uses)
}

/// Runs one matrix of a GEMM step on the executor's ISA path.
///
/// # Safety
/// The pointers must address the step's views (validated by the program).
unsafe fn gemm_views<T: gemm::Element>(
    isa: gemm::Isa,
    g: &crate::program::GemmStep,
    a: *mut u8,
    b: *mut u8,
    c: *mut u8,
    par: Option<gemm::Parallel<'_>>,
    reuse: Option<gemm::Reuse<'_>>,
) {
    let (a, b, c) = mat_refs::<T>(g, a, b, c);
    // SAFETY: the caller's contract.
    unsafe { gemm::gemm_with::<T>(isa, g.m, g.n, g.k, a, b, c, false, par, reuse) }
}

/// [`gemm_views`] for a product summed over its batch ([`gemm::gemm_sum`]).
///
/// # Safety
/// As [`gemm_views`], for every product of the batch.
unsafe fn gemm_sum_views<T: gemm::Element>(
    isa: gemm::Isa,
    g: &crate::program::GemmStep,
    a: *mut u8,
    b: *mut u8,
    c: *mut u8,
    par: Option<gemm::Parallel<'_>>,
) {
    let (a, b, c) = mat_refs::<T>(g, a, b, c);
    let (ab, bb) = (g.a.batch_stride, g.b.batch_stride);
    // SAFETY: the caller's contract.
    unsafe { gemm::gemm_sum::<T>(isa, g.m, g.n, g.k, g.batch, a, ab, b, bb, c, false, par) }
}

/// The step's three views at the given addresses.
fn mat_refs<T>(
    g: &crate::program::GemmStep,
    a: *mut u8,
    b: *mut u8,
    c: *mut u8,
) -> (gemm::MatRef<T>, gemm::MatRef<T>, gemm::MatMut<T>) {
    (
        gemm::MatRef::new(a as *const T, g.a.row_stride, g.a.col_stride),
        gemm::MatRef::new(b as *const T, g.b.row_stride, g.b.col_stride),
        gemm::MatMut::new(c as *mut T, g.c.row_stride, g.c.col_stride),
    )
}

fn data_ptr(d: &TensorData) -> *const u8 {
    match d {
        TensorData::F32(v) => v.as_ptr() as *const u8,
        TensorData::F64(v) => v.as_ptr() as *const u8,
        TensorData::I32(v) => v.as_ptr() as *const u8,
    }
}

fn data_ptr_mut(d: &mut TensorData) -> *mut u8 {
    match d {
        TensorData::F32(v) => v.as_mut_ptr() as *mut u8,
        TensorData::F64(v) => v.as_mut_ptr() as *mut u8,
        TensorData::I32(v) => v.as_mut_ptr() as *mut u8,
    }
}

/// # Safety
/// `base` must point to at least `index + 1` elements of `dtype`.
unsafe fn write_scalar(base: *mut u8, dtype: DType, index: usize, v: Scalar) {
    unsafe {
        match (dtype, v.cast(dtype)) {
            (DType::F32, Scalar::F32(x)) => (base as *mut f32).add(index).write_unaligned(x),
            (DType::F64, Scalar::F64(x)) => (base as *mut f64).add(index).write_unaligned(x),
            (DType::I32, Scalar::I32(x)) => (base as *mut i32).add(index).write_unaligned(x),
            _ => {}
        }
    }
}

/// # Safety
/// `base` must point to at least `index + 1` elements of `dtype`.
unsafe fn read_scalar(base: *const u8, dtype: DType, index: usize) -> Scalar {
    unsafe {
        match dtype {
            DType::F32 => Scalar::F32((base as *const f32).add(index).read_unaligned()),
            DType::F64 => Scalar::F64((base as *const f64).add(index).read_unaligned()),
            DType::I32 => Scalar::I32((base as *const i32).add(index).read_unaligned()),
        }
    }
}

/// # Safety
/// `base` must point to `len` elements of `dtype`.
unsafe fn read_buffer(base: *const u8, dtype: DType, len: usize) -> TensorData {
    unsafe {
        match dtype {
            DType::F32 => {
                TensorData::F32(std::slice::from_raw_parts(base as *const f32, len).to_vec())
            }
            DType::F64 => {
                TensorData::F64(std::slice::from_raw_parts(base as *const f64, len).to_vec())
            }
            DType::I32 => {
                TensorData::I32(std::slice::from_raw_parts(base as *const i32, len).to_vec())
            }
        }
    }
}

/// Kernel memory over raw buffer pointers (for the reference evaluator).
struct RawMemory<'a> {
    ptrs: &'a [*mut u8],
    dtypes: Vec<DType>,
}

impl Memory for RawMemory<'_> {
    fn load(&self, arg: usize, index: usize) -> Scalar {
        // SAFETY: the kernel was validated against the buffer lengths.
        unsafe { read_scalar(self.ptrs[arg], self.dtypes[arg], index) }
    }
    fn store(&mut self, arg: usize, index: usize, value: Scalar) {
        // SAFETY: as above.
        unsafe { write_scalar(self.ptrs[arg], self.dtypes[arg], index, value) }
    }
}
