//! Memory planning: packs constants and temporaries into one arena by liveness.
//!
//! Each temporary lives from the step that first writes it to the last step that reads it
//! (to the end for outputs). Buffers are placed in order of definition at the lowest
//! 64-byte-aligned offset where they overlap no buffer alive at the same time. A loop
//! kernel may write its result *in place* over an operand that dies in that step, when it
//! reads that operand element for element where it writes (same offset and strides, same
//! dtype and size, no reduction).

use xenon_runtime::kernel::Instr;
use xenon_runtime::program::{BufferKind, LibraryStep, MemoryPlan, Program, Step};

const ALIGN: usize = 64;

/// Buffers read and written by a step.
fn uses(step: &Step) -> (Vec<usize>, Vec<usize>) {
    match step {
        Step::Loop(k) => {
            let reads = k
                .instrs()
                .filter_map(|i| match i {
                    Instr::Load(a) => Some(k.args[a.arg].buffer),
                    _ => None,
                })
                .collect();
            let writes = k
                .stores
                .iter()
                .map(|s| k.args[s.access.arg].buffer)
                .collect();
            (reads, writes)
        }
        Step::Gemm(g) => (vec![g.a.buffer, g.b.buffer], vec![g.c.buffer]),
        Step::Library(l) => match l {
            LibraryStep::Im2Col { x, out, .. } => (vec![*x], vec![*out]),
            LibraryStep::Col2Im { cols, out, .. } => (vec![*cols], vec![*out]),
            LibraryStep::Gather {
                data, indices, out, ..
            } => (vec![*data, *indices], vec![*out]),
            LibraryStep::ScatterAdd {
                updates,
                indices,
                out,
                ..
            } => (vec![*updates, *indices], vec![*out]),
            LibraryStep::Random { out, counter, .. } => {
                (counter.iter().copied().collect(), vec![*out])
            }
            LibraryStep::ArgMax { x, out, .. } => (vec![*x], vec![*out]),
            LibraryStep::Copy { src, dst, .. } => (vec![*src], vec![*dst]),
        },
    }
}

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
        let (reads, writes) = uses(step);
        for b in reads {
            last[b] = last[b].max(s);
        }
        for b in writes {
            def[b] = def[b].min(s);
            last[b] = last[b].max(s);
        }
    }
    for (_, b) in &program.outputs {
        last[*b] = nsteps;
    }
    let mut naive = 0;
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, size, def, last)
    let mut in_place = 0;
    // Constants live for the whole program.
    for (i, b) in program.buffers.iter_mut().enumerate() {
        if let BufferKind::Const { .. } = b.kind {
            let size = b.bytes().next_multiple_of(ALIGN);
            let offset = placed.iter().map(|p| p.0 + p.1).max().unwrap_or(0);
            b.offset = offset;
            placed.push((offset, size, 0, nsteps));
            naive += size;
            def[i] = 0;
        }
    }
    let mut order: Vec<usize> = (0..n)
        .filter(|&i| matches!(program.buffers[i].kind, BufferKind::Temp))
        .collect();
    order.sort_by_key(|&i| (def[i], i));
    let mut offset_of = vec![usize::MAX; n];
    for i in order {
        let size = program.buffers[i].bytes().next_multiple_of(ALIGN);
        naive += size;
        if def[i] == usize::MAX {
            // Never written (cannot happen for a lowered graph): give it its own space.
            def[i] = 0;
        }
        let (d, l) = (def[i], last[i]);
        let dying: Vec<usize> = (0..n)
            .filter(|&b| last[b] == d && offset_of[b] != usize::MAX)
            .collect();
        if let Some(p) = in_place_partner(&program.steps[d], i, &dying, program) {
            offset_of[i] = offset_of[p];
            placed.push((offset_of[p], size, d, l));
            in_place += 1;
            continue;
        }
        // Lowest offset not overlapping any placed buffer alive during [d, l]. A buffer
        // whose last use is step d is still read there, so it counts as alive.
        let mut live: Vec<(usize, usize)> = placed
            .iter()
            .filter(|p| p.2 <= l && p.3 >= d)
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
        offset_of[i] = at;
        placed.push((at, size, d, l));
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
