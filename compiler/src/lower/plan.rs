//! Memory planning: packs constants and temporaries into one arena by liveness.
//!
//! Each temporary lives from the step that first writes it to the last step that reads it
//! (to the end for outputs; through every step of a group the CPU executor interleaves,
//! [`xenon_runtime::cpu::interleave`]). A loop kernel may write its result *in place* over an operand
//! that dies in that step, when it reads that operand element for element where it writes
//! (same offset and strides, same dtype and size, no reduction): the two then share memory.
//! Buffers (or in-place groups) are placed largest first, each at the lowest 64-byte-aligned
//! offset where it overlaps no placed buffer alive at the same time.

use xenon_runtime::cpu::interleave::interleaving;
use xenon_runtime::kernel::Instr;
use xenon_runtime::program::{BufferKind, MemoryPlan, Program, Step};

const ALIGN: usize = 64;

/// The buffer a loop step can overwrite in place for output `out`, if any.
fn in_place_partner(step: &Step, out: usize, dying: &[usize], program: &Program) -> Option<usize> {
    let Step::Loop(k) = step else { return None };
    if k.reduce.is_some() {
        return None;
    }
    let store = k
        .stores
        .iter()
        .find(|s| k.args[s.access.arg].buffer == out)?;
    let ob = &program.buffers[out];
    k.body
        .iter()
        .find_map(|i| match i {
            Instr::Load(a) => {
                let b = k.args[a.arg].buffer;
                let ib = &program.buffers[b];
                let same = a.offset == store.access.offset && a.strides == store.access.strides;
                (same
                    && dying.contains(&b)
                    && b != out
                    && matches!(ib.kind, BufferKind::Temp)
                    && ib.dtype == ob.dtype
                    && ib.len == ob.len)
                    .then_some(b)
            }
            _ => None,
        })
        // Every other load of that buffer must also be element for element.
        .filter(|&b| {
            k.instrs().all(|i| match i {
                Instr::Load(a) if k.args[a.arg].buffer == b => {
                    a.offset == store.access.offset && a.strides == store.access.strides
                }
                _ => true,
            })
        })
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
    let mut in_place = 0;
    let mut order: Vec<usize> = (0..n).filter(|&i| is_temp(&program.buffers[i])).collect();
    order.sort_by_key(|&i| (def[i], i));
    for &i in &order {
        if def[i] == usize::MAX {
            def[i] = 0;
            continue;
        }
        let d = def[i];
        let group_last = |g: usize, members: &Vec<Vec<usize>>| {
            members[g].iter().map(|&m| last[m]).max().unwrap_or(0)
        };
        let dying: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&b| b != i && def[b] < d && group_last(group[b], &members) == d)
            .collect();
        // Never over another output of the same step (their stores would race).
        let written_here =
            |g: usize, members: &Vec<Vec<usize>>| members[g].iter().any(|&m| m != i && def[m] == d);
        if let Some(p) = in_place_partner(&program.steps[d], i, &dying, program)
            .filter(|&p| !written_here(group[p], &members))
        {
            let g = group[p];
            group[i] = g;
            let moved = std::mem::take(&mut members[i]);
            members[g].extend(moved);
            in_place += 1;
        }
    }
    // Place groups, largest first, at the lowest 64-byte-aligned offset that overlaps no
    // placed group alive at the same time (inclusive step ranges).
    let mut naive = 0;
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, size, first, last)
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
        let mut live: Vec<(usize, usize)> = placed
            .iter()
            .filter(|p| p.2 <= lastg && p.3 >= first)
            .map(|p| (p.0, p.1))
            .collect();
        live.sort();
        let mut at = 0;
        for (o, s) in live {
            if at + size <= o {
                break;
            }
            at = at.max(o + s);
        }
        placed.push((at, size, first, lastg));
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
        arena_bytes: placed.iter().map(|p| p.0 + p.1).max().unwrap_or(0),
        naive_bytes: naive,
        in_place,
    };
}

type BufferDeclRef = xenon_runtime::program::BufferDecl;
