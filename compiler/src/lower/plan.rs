//! Memory planning: packs constants and temporaries into one arena by liveness.
//!
//! Each temporary lives from the step that first writes it to the last step that reads it
//! (to the end for outputs; through every step of a group the CPU executor interleaves,
//! [`xenon_runtime::cpu::interleave`]). A loop kernel may write its result *in place* over an operand
//! that dies in that step, when it reads that operand element for element where it writes
//! (same offset and strides, same dtype and size, no reduction): the two then share memory.
//! Buffers (or in-place groups) are placed largest first, each at the lowest 64-byte-aligned
//! offset where it overlaps no placed buffer alive at the same time.
//!
//! Both passes stay near-linear on programs 100,000 steps long, where a model's activations
//! are all alive at once: the in-place test indexes each step's loads and stores once, and
//! the placement looks for the lowest free offset bucket by bucket (`Placed`), stepping over
//! runs of blocks that leave no gap, with the same result as visiting every live block.

use std::collections::HashMap;
use xenon_runtime::cpu::interleave::interleaving;
use xenon_runtime::kernel::{Access, Instr};
use xenon_runtime::program::{BufferKind, MemoryPlan, Program, Step};

const ALIGN: usize = 64;

/// What the in-place test needs of one loop step, gathered once for all the buffers it
/// writes (a kernel may store thousands of hosted values: testing each against every load
/// would be quadratic).
struct StepAccesses<'k> {
    /// The first store of each buffer the step writes.
    store_of: HashMap<usize, &'k Access>,
    /// The buffers of the body's loads, in body order, per `(offset, strides)`.
    loads_at: HashMap<(usize, &'k [isize]), Vec<usize>>,
    /// Per loaded buffer: the one `(offset, strides)` all its loads use, or `None`.
    uniform: HashMap<usize, Option<(usize, &'k [isize])>>,
}

impl<'k> StepAccesses<'k> {
    /// `None` for any step but a loop kernel without a reduction.
    fn of(step: &'k Step) -> Option<StepAccesses<'k>> {
        let Step::Loop(k) = step else { return None };
        if k.reduce.is_some() {
            return None;
        }
        let mut store_of = HashMap::new();
        for s in &k.stores {
            store_of
                .entry(k.args[s.access.arg].buffer)
                .or_insert(&s.access);
        }
        let mut loads_at: HashMap<_, Vec<usize>> = HashMap::new();
        let mut uniform = HashMap::new();
        for i in k.instrs() {
            if let Instr::Load(a) = i {
                let b = k.args[a.arg].buffer;
                let key = (a.offset, &a.strides[..]);
                loads_at.entry(key).or_default().push(b);
                uniform
                    .entry(b)
                    .and_modify(|u: &mut Option<_>| {
                        if *u != Some(key) {
                            *u = None;
                        }
                    })
                    .or_insert(Some(key));
            }
        }
        Some(StepAccesses {
            store_of,
            loads_at,
            uniform,
        })
    }
}

/// The buffer a loop step can overwrite in place for output `out`, if any: the buffer of
/// the first load (in body order) that reads a `dying` temporary of `out`'s dtype and size
/// element for element where `out` is stored, when every other load of that buffer does
/// too.
fn in_place_partner(
    step: &StepAccesses<'_>,
    out: usize,
    dying: impl Fn(usize) -> bool,
    program: &Program,
) -> Option<usize> {
    let store = step.store_of.get(&out)?;
    let key = (store.offset, &store.strides[..]);
    let ob = &program.buffers[out];
    let b = step.loads_at.get(&key)?.iter().copied().find(|&b| {
        let ib = &program.buffers[b];
        dying(b)
            && b != out
            && matches!(ib.kind, BufferKind::Temp)
            && ib.dtype == ob.dtype
            && ib.len == ob.len
    })?;
    // Every other load of that buffer must also be element for element.
    (step.uniform[&b] == Some(key)).then_some(b)
}

/// Assigns arena offsets to `program`'s constants and temporaries and fills in its plan.
pub fn plan(program: &mut Program) {
    let n = program.buffers.len();
    let nsteps = program.steps.len();
    let mut def = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (s, step) in program.steps.iter().enumerate() {
        let (reads, writes) = step.buffers();
        for b in reads {
            last[b] = last[b].max(s);
        }
        for b in writes {
            def[b] = def[b].min(s);
            last[b] = last[b].max(s);
        }
    }
    // Steps the CPU executor runs chunk by chunk, interleaved: every buffer a group touches
    // is alive through all of it (so none shares memory with another of the group).
    for s in 0..nsteps {
        if let Some(il) = interleaving(program, s) {
            for step in &program.steps[s..s + il.steps] {
                let (reads, writes) = step.buffers();
                for b in reads.into_iter().chain(writes) {
                    def[b] = def[b].min(s);
                    last[b] = last[b].max(s + il.steps - 1);
                }
            }
        }
    }
    for (_, b) in &program.outputs {
        last[*b] = nsteps;
    }
    let is_temp = |b: &BufferDeclRef| matches!(b.kind, BufferKind::Temp);
    // In-place groups: a temporary written over an operand that dies in the same step
    // shares that operand's group (and so its memory).
    let mut group: Vec<usize> = (0..n).collect();
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    // Per group: its members' last step and their latest first write (buffers join
    // groups in order of their first write, so that is the last to join).
    let mut group_last = last.clone();
    let mut group_def = def.clone();
    let mut in_place = 0;
    let mut order: Vec<usize> = (0..n).filter(|&i| is_temp(&program.buffers[i])).collect();
    order.sort_by_key(|&i| (def[i], i));
    // The accesses of the step whose outputs are being placed (`order` visits each step's
    // outputs together).
    let mut accesses: Option<(usize, Option<StepAccesses>)> = None;
    for &i in &order {
        if def[i] == usize::MAX {
            def[i] = 0;
            continue;
        }
        let d = def[i];
        // Temporaries written before this step whose group is last read here.
        let dying = |b: usize| {
            b != i && is_temp(&program.buffers[b]) && def[b] < d && group_last[group[b]] == d
        };
        // Never over another output of the same step (their stores would race): a group
        // another buffer written here joined. Its members were all written at `d` or
        // before, and `i` is in none.
        let written_here = |g: usize| group_def[g] == d;
        if accesses.as_ref().is_none_or(|(s, _)| *s != d) {
            accesses = Some((d, StepAccesses::of(&program.steps[d])));
        }
        let step = accesses.as_ref().and_then(|(_, a)| a.as_ref());
        if let Some(p) = step
            .and_then(|step| in_place_partner(step, i, dying, program))
            .filter(|&p| !written_here(group[p]))
        {
            let g = group[p];
            group[i] = g;
            group_last[g] = group_last[g].max(group_last[i]);
            group_def[g] = group_def[g].max(group_def[i]);
            let moved = std::mem::take(&mut members[i]);
            members[g].extend(moved);
            in_place += 1;
        }
    }
    // Place groups, largest first, at the lowest 64-byte-aligned offset that overlaps no
    // placed group alive at the same time (inclusive step ranges).
    let mut naive = 0;
    let mut placed = Placed::default();
    let mut offset_of = vec![usize::MAX; n];
    let mut groups: Vec<(usize, usize, usize, usize)> = Vec::new(); // (size, first, last, group)
    for (i, b) in program.buffers.iter().enumerate() {
        let size = b.bytes().next_multiple_of(ALIGN);
        match b.kind {
            BufferKind::Const { .. } => {
                naive += size;
                groups.push((size, 0, nsteps, i));
            }
            BufferKind::Temp => {
                naive += size;
                if group[i] == i {
                    let first = members[i].iter().map(|&m| def[m]).min().unwrap_or(0);
                    let lastg = members[i].iter().map(|&m| last[m]).max().unwrap_or(0);
                    let gsize = members[i]
                        .iter()
                        .map(|&m| program.buffers[m].bytes().next_multiple_of(ALIGN))
                        .max()
                        .unwrap_or(size);
                    groups.push((gsize, first, lastg, i));
                }
            }
            BufferKind::Input { .. } => {}
        }
    }
    groups.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.3.cmp(&b.3)));
    for (size, first, lastg, g) in groups {
        let at = placed.lowest_free(size, first, lastg);
        placed.insert(Block {
            offset: at,
            size,
            first,
            last: lastg,
        });
        for &m in &members[g] {
            offset_of[m] = at;
        }
    }
    for (i, b) in program.buffers.iter_mut().enumerate() {
        if offset_of[i] != usize::MAX {
            b.offset = offset_of[i];
        }
    }
    program.plan = MemoryPlan {
        arena_bytes: placed.end,
        naive_bytes: naive,
        in_place,
    };
}

type BufferDeclRef = xenon_runtime::program::BufferDecl;

/// A placed group: its bytes at `offset..offset + size`, alive from step `first` to step
/// `last` (inclusive).
#[derive(Clone, Copy, Debug)]
struct Block {
    offset: usize,
    size: usize,
    first: usize,
    last: usize,
}

impl Block {
    fn end(&self) -> usize {
        self.offset + self.size
    }
}

/// The most blocks in one [`Bucket`] before it is split.
const BUCKET: usize = 128;

/// The placed blocks in `(offset, size)` order, cut into buckets that summarize their step
/// ranges and gaps, so that [`Placed::lowest_free`] steps over whole buckets where it can:
/// a model `n` layers deep keeps `n` activations alive at once, and visiting every live
/// block for every placement would be quadratic.
#[derive(Default)]
struct Placed {
    buckets: Vec<Bucket>,
    /// The end of the highest block.
    end: usize,
}

#[derive(Default)]
struct Bucket {
    /// Sorted by `(offset, size)`.
    blocks: Vec<Block>,
    min_first: usize,
    max_first: usize,
    min_last: usize,
    max_last: usize,
    max_end: usize,
    /// The largest gap between a block (not the first) and the furthest end of the blocks
    /// before it in the bucket.
    max_gap: usize,
}

impl Bucket {
    fn summarize(&mut self) {
        let b = &self.blocks;
        self.min_first = b.iter().map(|x| x.first).min().unwrap_or(usize::MAX);
        self.max_first = b.iter().map(|x| x.first).max().unwrap_or(0);
        self.min_last = b.iter().map(|x| x.last).min().unwrap_or(usize::MAX);
        self.max_last = b.iter().map(|x| x.last).max().unwrap_or(0);
        self.max_end = b.iter().map(Block::end).max().unwrap_or(0);
        let mut reach = 0;
        self.max_gap = 0;
        for (j, x) in b.iter().enumerate() {
            if j > 0 {
                self.max_gap = self.max_gap.max(x.offset.saturating_sub(reach));
            }
            reach = reach.max(x.end());
        }
    }
}

impl Placed {
    /// The lowest offset where `size` bytes overlap no placed block alive during any of
    /// steps `first..=last`: going up through the blocks alive then, in offset order, the
    /// first gap that fits (0, or the end of such a block).
    fn lowest_free(&self, size: usize, first: usize, last: usize) -> usize {
        let mut at = 0;
        for bucket in &self.buckets {
            if bucket.min_first > last || bucket.max_last < first {
                continue; // none alive then
            }
            let all_alive = bucket.max_first <= last && bucket.min_last >= first;
            // All alive and no gap that fits inside, nor before the first: past them all.
            if all_alive
                && bucket.max_gap < size
                && bucket.blocks.first().is_none_or(|x| x.offset < at + size)
            {
                at = at.max(bucket.max_end);
                continue;
            }
            for x in &bucket.blocks {
                if x.first <= last && x.last >= first {
                    if at + size <= x.offset {
                        return at;
                    }
                    at = at.max(x.end());
                }
            }
        }
        at
    }

    fn insert(&mut self, block: Block) {
        self.end = self.end.max(block.end());
        let key = |x: &Block| (x.offset, x.size);
        // The last bucket starting at or before the block (the first if none does).
        let i = self
            .buckets
            .partition_point(|b| b.blocks.first().is_some_and(|x| key(x) <= key(&block)))
            .saturating_sub(1);
        if self.buckets.is_empty() {
            self.buckets.push(Bucket::default());
        }
        let bucket = &mut self.buckets[i];
        let at = bucket.blocks.partition_point(|x| key(x) <= key(&block));
        bucket.blocks.insert(at, block);
        if bucket.blocks.len() > 2 * BUCKET {
            let rest = bucket.blocks.split_off(BUCKET);
            bucket.summarize();
            let mut next = Bucket {
                blocks: rest,
                ..Bucket::default()
            };
            next.summarize();
            self.buckets.insert(i + 1, next);
        } else {
            bucket.summarize();
        }
    }
}
