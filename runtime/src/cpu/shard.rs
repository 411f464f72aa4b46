//! Optimizer updates sharded over the ranks of a data-parallel run (ZeRO stage 1): instead
//! of every rank summing a whole gradient and applying the same whole update, each rank
//! sums its part of the gradient ([`Collective::reduce_scatter_sum`]), updates its part of
//! the parameter and of the optimizer state, and the ranks then exchange the updated
//! parameter parts ([`Collective::all_gather`]). The bytes sent are those of the all-reduce;
//! the update's memory traffic and the non-finite check are divided among the ranks.
//!
//! A pair qualifies when an `all_reduce` step's sum (at least [`BUCKET_BYTES`], so it is a
//! bucket of its own) is read by exactly one later step, a flat elementwise loop over its
//! elements (`[len]`, every access either the same element or a broadcast scalar) whose
//! every output is an update of a feed and read by no step. Each output is then either
//! *gathered* after the loop (its feed is read by other steps: a parameter) or kept
//! *local* (its feed is read only by qualifying loops: optimizer state such as momentum),
//! in which case only this rank's part of the feed is current between runs; the executor
//! gathers those parts when the values leave it ([`super::CpuExecutor::sync_updates`]).
//!
//! [`Collective::reduce_scatter_sum`]: crate::collective::Collective::reduce_scatter_sum
//! [`Collective::all_gather`]: crate::collective::Collective::all_gather

use super::comm::BUCKET_BYTES;
use crate::kernel::{Access, Instr, LoopKernel};
use crate::program::{BufferKind, LibraryStep, Program, Step};

/// One sharded update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sharded {
    /// The `all_reduce` step (reduce-scattered instead).
    pub reduce: usize,
    /// The loop steps run on this rank's part only: those that read the sum, and those
    /// that read what these wrote (a momentum, then the parameter it moves).
    pub steps: Vec<usize>,
    /// Elements of every buffer involved.
    pub len: usize,
    /// `(step, buffer)`: outputs all-gathered after the step that writes them (the feeds
    /// other steps read).
    pub gather: Vec<(usize, usize)>,
    /// Output buffers left sharded, with the feed each one updates.
    pub local: Vec<(usize, String)>,
}

/// An output of a sharded update: `(step that writes it, buffer, feed it updates)`.
type Output = (usize, usize, String);

/// The sharded updates of `program` (see the module documentation).
pub(crate) fn sharded_updates(program: &Program) -> Vec<Sharded> {
    let mut found: Vec<(Sharded, Vec<Output>)> = (0..program.steps.len())
        .filter_map(|s| candidate(program, s))
        .collect();
    // A feed stays local only if every step that reads it is a sharded one.
    let sharded: Vec<usize> = found.iter().flat_map(|(f, _)| f.steps.clone()).collect();
    let feed_buffer = |feed: &str| {
        program
            .buffers
            .iter()
            .position(|b| matches!(&b.kind, BufferKind::Input { name } if name == feed))
    };
    let read_elsewhere = |feed: &str| {
        let Some(b) = feed_buffer(feed) else {
            return true;
        };
        program.outputs.iter().any(|(_, o)| *o == b)
            || program.steps.iter().enumerate().any(|(t, step)| {
                !sharded.contains(&t) && {
                    let (r, w) = step.buffers();
                    r.contains(&b) || w.contains(&b)
                }
            })
    };
    for (f, outputs) in &mut found {
        for (step, b, feed) in std::mem::take(outputs) {
            if read_elsewhere(&feed) {
                f.gather.push((step, b));
            } else {
                f.local.push((b, feed));
            }
        }
    }
    found.into_iter().map(|(f, _)| f).collect()
}

/// Step `s` as the `all_reduce` of a sharded update, with its outputs as `(step, buffer,
/// feed)` (sorted into gathered and local by [`sharded_updates`]).
fn candidate(program: &Program, s: usize) -> Option<(Sharded, Vec<Output>)> {
    let Step::Library(LibraryStep::AllReduce {
        out, dtype, len, ..
    }) = &program.steps[s]
    else {
        return None;
    };
    let (sum, len) = (*out, *len);
    if len * dtype.size_bytes() < BUCKET_BYTES {
        return None;
    }
    // The buffers current in this rank's part only: the sum, and what the steps below
    // write from it. Every later step touching one must be a flat elementwise loop.
    let mut partial = vec![sum];
    let mut steps = Vec::new();
    for t in s + 1..program.steps.len() {
        let (r, w) = program.steps[t].buffers();
        if !r.iter().chain(&w).any(|b| partial.contains(b)) {
            continue;
        }
        let Step::Loop(k) = &program.steps[t] else {
            return None;
        };
        if !elementwise(k, len) || w.iter().any(|b| partial.contains(b)) {
            return None;
        }
        for b in w {
            if program.buffers[b].dtype != *dtype
                || !matches!(program.buffers[b].kind, BufferKind::Temp)
                || program.steps[..t].iter().any(|st| {
                    let (r, w) = st.buffers();
                    r.contains(&b) || w.contains(&b)
                })
            {
                return None;
            }
            partial.push(b);
        }
        steps.push(t);
    }
    // Every buffer it wrote is an update of a feed (or read only within), nothing else is
    // an output.
    let mut outputs = Vec::new();
    for &b in &partial {
        let mut named = program.outputs.iter().filter(|(_, o)| *o == b);
        let Some((name, _)) = named.next() else {
            continue;
        };
        let feed = program.updates.iter().find(|(o, _)| o == name)?;
        if named.next().is_some() || b == sum {
            return None;
        }
        let step = *steps
            .iter()
            .find(|&&t| program.steps[t].buffers().1.contains(&b))?;
        outputs.push((step, b, feed.1.clone()));
    }
    (!outputs.is_empty()).then_some((
        Sharded {
            reduce: s,
            steps,
            len,
            gather: Vec::new(),
            local: Vec::new(),
        },
        outputs,
    ))
}

/// Whether `k` is a flat loop over `len` points that only reads and writes point `i` of
/// `len`-element buffers at point `i`, and reads scalars: then any range of points can
/// run alone, and the other points' elements are neither read nor written.
fn elementwise(k: &LoopKernel, len: usize) -> bool {
    let ok = |a: &Access| {
        let arg = &k.args[a.arg];
        match a.strides.as_slice() {
            [1] => a.offset == 0 && arg.len == len,
            // A scalar (never a buffer of the sharded size, whose parts may be stale).
            [0] => arg.len != len && a.offset < arg.len,
            _ => false,
        }
    };
    k.shape == [len]
        && k.reduce.is_none()
        && k.instrs().all(|i| !matches!(i, Instr::Load(a) if !ok(a)))
        && k.stores
            .iter()
            .all(|st| st.access.strides == [1] && ok(&st.access))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::kernel::{KernelArg, Store};
    use crate::ops::BinaryOp;
    use crate::program::{BufferDecl, MemoryPlan};

    const N: usize = 1 << 18;

    fn buffer(kind: BufferKind, len: usize) -> BufferDecl {
        BufferDecl::new(DType::F32, len, kind)
    }

    fn input(name: &str, len: usize) -> BufferDecl {
        buffer(
            BufferKind::Input {
                name: name.to_string(),
            },
            len,
        )
    }

    fn load(arg: usize, stride: isize) -> Instr {
        Instr::Load(Access {
            arg,
            offset: 0,
            strides: vec![stride],
        })
    }

    /// `w' = w − lr·(v' = v + g)` over `N` elements: buffers w 0, v 1, lr 2, g 3,
    /// sum 4, w' 5, v' 6; optionally a forward step reading `read`.
    fn program(read: Option<usize>) -> Program {
        let arg = |buffer: usize, len: usize| KernelArg {
            buffer,
            dtype: DType::F32,
            len,
        };
        let store = |arg: usize, value: u32| Store {
            access: Access {
                arg,
                offset: 0,
                strides: vec![1],
            },
            value,
        };
        let update = LoopKernel {
            name: "update".into(),
            shape: vec![N],
            args: vec![
                arg(0, N),
                arg(1, N),
                arg(2, 1),
                arg(4, N),
                arg(5, N),
                arg(6, N),
            ],
            body: vec![
                load(0, 1),
                load(1, 1),
                load(2, 0),
                load(3, 1),
                Instr::Binary {
                    func: BinaryOp::Add,
                    a: 1,
                    b: 3,
                },
                Instr::Binary {
                    func: BinaryOp::Mul,
                    a: 2,
                    b: 4,
                },
                Instr::Binary {
                    func: BinaryOp::Sub,
                    a: 0,
                    b: 5,
                },
            ],
            reduce: None,
            stores: vec![store(4, 6), store(5, 4)],
        };
        let mut steps = vec![
            Step::Library(LibraryStep::AllReduce {
                x: 3,
                out: 4,
                dtype: DType::F32,
                len: N,
            }),
            Step::Loop(update),
        ];
        if let Some(b) = read {
            steps.push(Step::Library(LibraryStep::AllReduce {
                x: b,
                out: 7,
                dtype: DType::F32,
                len: N,
            }));
        }
        Program {
            buffers: vec![
                input("w", N),
                input("v", N),
                input("lr", 1),
                buffer(BufferKind::Temp, N),
                buffer(BufferKind::Temp, N),
                buffer(BufferKind::Temp, N),
                buffer(BufferKind::Temp, N),
                buffer(BufferKind::Temp, N),
            ],
            steps,
            outputs: vec![("new/w".into(), 5), ("new/v".into(), 6)],
            updates: vec![("new/w".into(), "w".into()), ("new/v".into(), "v".into())],
            plan: MemoryPlan::default(),
        }
    }

    #[test]
    fn state_only_the_update_reads_stays_local() {
        let found = sharded_updates(&program(None));
        assert_eq!(
            found,
            vec![Sharded {
                reduce: 0,
                steps: vec![1],
                len: N,
                gather: vec![],
                local: vec![(5, "w".into()), (6, "v".into())],
            }]
        );
        // A feed another step reads is gathered.
        let found = sharded_updates(&program(Some(0)));
        assert_eq!(found[0].gather, vec![(1, 5)]);
        assert_eq!(found[0].local, vec![(6, "v".into())]);
    }

    #[test]
    fn small_sums_and_shared_outputs_do_not_qualify() {
        let mut p = program(None);
        p.updates.pop();
        assert!(
            sharded_updates(&p).is_empty(),
            "an output that updates nothing"
        );
        let mut p = program(None);
        p.outputs.push(("sum".into(), 4));
        assert!(sharded_updates(&p).is_empty(), "the sum is an output");
        let mut p = program(Some(4));
        p.steps.truncate(2);
        p.steps.push(Step::Library(LibraryStep::AllReduce {
            x: 4,
            out: 7,
            dtype: DType::F32,
            len: N,
        }));
        assert!(sharded_updates(&p).is_empty(), "a second reader of the sum");
        let mut p = program(None);
        if let Step::Loop(k) = &mut p.steps[1] {
            k.body[3] = load(3, 0);
        }
        assert!(
            sharded_updates(&p).is_empty(),
            "a broadcast read of a whole buffer is not elementwise"
        );
    }
}
