//! A program's `all_reduce` steps on one rank of a data-parallel run: grouped into buckets
//! and summed over the ranks by a communication thread while the executor runs the steps
//! that do not need the sums (the rest of the backward pass).
//!
//! At an `all_reduce` step the executor copies `x` into `out`; when the step is the last
//! of its bucket, it hands the bucket to the thread, which sums the bucket's `out` buffers
//! over the ranks (in place for a large one, packed into one message for small ones) and
//! reports back. Before a step that reads or writes a bucket's buffer, and at the end of
//! the run, the executor waits for that bucket. Buckets depend only on the program, so
//! every rank running the same program makes the same sequence of collective calls.

use crate::DType;
use crate::collective::{Collective, CollectiveError, ReduceBuf};
use crate::program::{LibraryStep, Program, Step};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Buckets close at this size (bytes): a larger `out` is summed alone, in place; smaller
/// consecutive ones of one dtype share a message.
pub const BUCKET_BYTES: usize = 1 << 20;

/// One message's worth of `all_reduce` steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// The `all_reduce` steps, in program order.
    pub steps: Vec<usize>,
    pub dtype: DType,
}

/// When each bucket is sent and awaited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CommPlan {
    pub buckets: Vec<Bucket>,
    /// Per step: the bucket it completes (it is that bucket's last `all_reduce` step).
    pub sends: Vec<Option<usize>>,
    /// Per step: the buckets that must be summed before it runs.
    pub waits: Vec<Vec<usize>>,
}

impl CommPlan {
    /// Buckets `program`'s `all_reduce` steps (see the module documentation): consecutive
    /// ones of one dtype below [`BUCKET_BYTES`] in all share a bucket, unless a step
    /// between them touches the bucket's buffers.
    pub fn new(program: &Program) -> CommPlan {
        let n = program.steps.len();
        let mut plan = CommPlan {
            buckets: Vec::new(),
            sends: vec![None; n],
            waits: vec![Vec::new(); n],
        };
        // The open bucket: its steps, their `out` buffers, its size in bytes.
        let mut open: Option<(Bucket, HashSet<usize>, usize)> = None;
        let close = |plan: &mut CommPlan, open: &mut Option<(Bucket, HashSet<usize>, usize)>| {
            if let Some((b, _, _)) = open.take() {
                plan.sends[*b.steps.last().unwrap()] = Some(plan.buckets.len());
                plan.buckets.push(b);
            }
        };
        // The sent buckets not yet awaited: their `out` buffers.
        let mut in_flight: Vec<(usize, HashSet<usize>)> = Vec::new();
        for (s, step) in program.steps.iter().enumerate() {
            let (reads, writes) = step.buffers();
            let touches =
                |outs: &HashSet<usize>| reads.iter().chain(&writes).any(|b| outs.contains(b));
            // Sent buckets whose buffers this step touches are awaited first.
            in_flight.retain(|(b, outs)| {
                let wait = touches(outs);
                if wait {
                    plan.waits[s].push(*b);
                }
                !wait
            });
            if let Some((_, outs, _)) = &open
                && touches(outs)
            {
                let before = plan.buckets.len();
                close(&mut plan, &mut open);
                // Sent at the previous `all_reduce` step, needed now.
                plan.waits[s].push(before);
            }
            if let Step::Library(LibraryStep::AllReduce {
                out, dtype, len, ..
            }) = step
            {
                let bytes = len * dtype.size_bytes();
                if let Some((b, _, size)) = &open
                    && (b.dtype != *dtype || size + bytes > BUCKET_BYTES)
                {
                    let id = plan.buckets.len();
                    let outs = open.as_ref().unwrap().1.clone();
                    close(&mut plan, &mut open);
                    in_flight.push((id, outs));
                }
                let (b, outs, size) = open.get_or_insert_with(|| {
                    (
                        Bucket {
                            steps: Vec::new(),
                            dtype: *dtype,
                        },
                        HashSet::new(),
                        0,
                    )
                });
                b.steps.push(s);
                outs.insert(*out);
                *size += bytes;
                if *size >= BUCKET_BYTES {
                    let id = plan.buckets.len();
                    let outs = open.as_ref().unwrap().1.clone();
                    close(&mut plan, &mut open);
                    in_flight.push((id, outs));
                }
            }
        }
        close(&mut plan, &mut open);
        plan
    }

    /// Whether the program has any `all_reduce` step.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// An address the communication thread may use while the executor leaves it alone.
struct Region(*mut u8, usize);
// SAFETY: the executor does not touch a sent bucket's buffers until the thread has
// reported the bucket done (see `CommPlan::waits`), and waits for every bucket before the
// run returns, so the thread has exclusive use of the memory while it holds a region.
unsafe impl Send for Region {}

/// What a job does with its regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// Every rank gets the sum ([`Collective::all_reduce_sum`]).
    Sum,
    /// This rank's part gets the sum ([`Collective::reduce_scatter_sum`]; one region).
    SumPart,
    /// Every rank gets each rank's part ([`Collective::all_gather`]; one region each).
    Gather,
}

/// A bucket to sum (or gather): its buffers' addresses and element counts.
struct Job {
    bucket: usize,
    dtype: DType,
    exchange: Exchange,
    regions: Vec<Region>,
}

/// The communication thread of one executor.
pub(crate) struct CommWorker {
    jobs: Option<Sender<Job>>,
    done: Receiver<(usize, Result<(), CollectiveError>)>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Buckets sent and not yet reported.
    pending: Vec<usize>,
    /// Buckets reported done (by bucket index) since the run began.
    finished: Vec<bool>,
    /// The first failure of this run.
    failed: Option<CollectiveError>,
}

impl CommWorker {
    /// A thread summing over `comm`'s ranks.
    pub fn new(comm: Arc<dyn Collective>) -> CommWorker {
        let (jobs, rx) = channel::<Job>();
        let (tx, done) = channel();
        let name = format!("xenon-comm-{}", comm.rank());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut staging: Vec<f64> = Vec::new();
                for job in rx {
                    let r = sum(&*comm, &job, &mut staging);
                    if tx.send((job.bucket, r)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        CommWorker {
            jobs: Some(jobs),
            done,
            thread,
            pending: Vec::new(),
            finished: Vec::new(),
            failed: None,
        }
    }

    /// Forgets the last run's buckets.
    pub fn begin(&mut self, buckets: usize) {
        self.finished.clear();
        self.finished.resize(buckets, false);
        self.failed = None;
    }

    /// Sends `bucket` (whose buffers start at `ptrs[out]`, `len` elements each).
    pub fn send(
        &mut self,
        bucket: usize,
        dtype: DType,
        exchange: Exchange,
        regions: Vec<(*mut u8, usize)>,
    ) {
        let job = Job {
            bucket,
            dtype,
            exchange,
            regions: regions.into_iter().map(|(p, n)| Region(p, n)).collect(),
        };
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if sent {
            self.pending.push(bucket);
        } else if self.failed.is_none() {
            self.failed = Some(CollectiveError::Transport(
                "the communication thread is gone".into(),
            ));
        }
    }

    /// Blocks until `bucket` (or every pending one, for `None`) is summed. Returns the
    /// run's first failure.
    pub fn wait(&mut self, bucket: Option<usize>) -> Result<(), CollectiveError> {
        let ready = |f: &Vec<bool>| bucket.is_some_and(|b| f.get(b).copied().unwrap_or(false));
        while !self.pending.is_empty() && !ready(&self.finished) {
            match self.done.recv() {
                Ok((b, r)) => {
                    self.pending.retain(|&p| p != b);
                    if let Some(f) = self.finished.get_mut(b) {
                        *f = true;
                    }
                    if let (Err(e), None) = (r, &self.failed) {
                        self.failed = Some(e);
                    }
                }
                Err(_) => {
                    self.pending.clear();
                    self.failed.get_or_insert(CollectiveError::Transport(
                        "the communication thread is gone".into(),
                    ));
                }
            }
        }
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Drop for CommWorker {
    fn drop(&mut self) {
        let _ = self.wait(None);
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sums one bucket over the ranks: a single buffer in place, several packed into
/// `staging` and back.
fn sum(comm: &dyn Collective, job: &Job, staging: &mut Vec<f64>) -> Result<(), CollectiveError> {
    let size = job.dtype.size_bytes();
    // SAFETY (every slice below): a region is a validated buffer of that many elements,
    // aligned for its dtype, that nothing else touches while the job runs (see `Region`).
    let one = |r: &Region| match job.dtype {
        DType::F32 => {
            ReduceBuf::F32(unsafe { std::slice::from_raw_parts_mut(r.0 as *mut f32, r.1) })
        }
        _ => ReduceBuf::F64(unsafe { std::slice::from_raw_parts_mut(r.0 as *mut f64, r.1) }),
    };
    match (job.exchange, &job.regions[..]) {
        (Exchange::Sum, [r]) => return comm.all_reduce_sum(one(r)),
        (Exchange::SumPart, [r]) => return comm.reduce_scatter_sum(one(r)),
        (Exchange::Gather, regions) => {
            return regions.iter().try_for_each(|r| comm.all_gather(one(r)));
        }
        (Exchange::SumPart, _) => {
            return Err(CollectiveError::Transport(
                "a sharded sum of several buffers".into(),
            ));
        }
        (Exchange::Sum, _) => {}
    }
    let total: usize = job.regions.iter().map(|r| r.1).sum();
    // f64 words keep the staging aligned for either dtype.
    let words = (total * size).div_ceil(8);
    if staging.len() < words {
        staging.resize(words, 0.0);
    }
    let base = staging.as_mut_ptr() as *mut u8;
    let mut at = 0;
    for r in &job.regions {
        unsafe { std::ptr::copy_nonoverlapping(r.0, base.add(at), r.1 * size) };
        at += r.1 * size;
    }
    let result = match job.dtype {
        DType::F32 => comm.all_reduce_sum(ReduceBuf::F32(unsafe {
            std::slice::from_raw_parts_mut(base as *mut f32, total)
        })),
        _ => comm.all_reduce_sum(ReduceBuf::F64(&mut staging[..total])),
    };
    let mut at = 0;
    for r in &job.regions {
        unsafe { std::ptr::copy_nonoverlapping(base.add(at), r.0, r.1 * size) };
        at += r.1 * size;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{BufferDecl, BufferKind, MemoryPlan};

    fn temp(len: usize) -> BufferDecl {
        BufferDecl {
            kind: BufferKind::Temp,
            dtype: DType::F32,
            len,
            offset: 0,
            node: None,
        }
    }

    fn reduce(x: usize, out: usize, len: usize) -> Step {
        Step::Library(LibraryStep::AllReduce {
            x,
            out,
            dtype: DType::F32,
            len,
        })
    }

    fn copy(src: usize, dst: usize) -> Step {
        Step::Library(LibraryStep::Copy {
            src,
            dst,
            dtype: DType::F32,
            src_offset: 0,
            dst_offset: 0,
            len: 1,
        })
    }

    fn program(buffers: Vec<BufferDecl>, steps: Vec<Step>) -> Program {
        Program {
            buffers,
            steps,
            outputs: Vec::new(),
            updates: Vec::new(),
            plan: MemoryPlan::default(),
        }
    }

    #[test]
    fn small_reductions_share_a_bucket_and_large_ones_go_alone() {
        let big = BUCKET_BYTES / 4;
        let bufs = vec![
            temp(4),
            temp(4),
            temp(8),
            temp(8),
            temp(big),
            temp(big),
            temp(4),
            temp(4),
        ];
        let p = program(
            bufs,
            vec![
                reduce(0, 1, 4),
                reduce(2, 3, 8),
                reduce(4, 5, big),
                reduce(6, 7, 4),
                copy(1, 0),
                copy(5, 4),
            ],
        );
        let plan = CommPlan::new(&p);
        let steps: Vec<Vec<usize>> = plan.buckets.iter().map(|b| b.steps.clone()).collect();
        assert_eq!(steps, vec![vec![0, 1], vec![2], vec![3]]);
        assert_eq!(
            plan.sends,
            vec![None, Some(0), Some(1), Some(2), None, None]
        );
        assert_eq!(plan.waits[4], vec![0]);
        assert_eq!(plan.waits[5], vec![1]);
    }

    #[test]
    fn a_step_reading_an_open_bucket_closes_it() {
        let p = program(
            vec![temp(4), temp(4), temp(4), temp(4), temp(4)],
            vec![reduce(0, 1, 4), copy(1, 4), reduce(2, 3, 4)],
        );
        let plan = CommPlan::new(&p);
        let steps: Vec<Vec<usize>> = plan.buckets.iter().map(|b| b.steps.clone()).collect();
        assert_eq!(steps, vec![vec![0], vec![2]]);
        assert_eq!(plan.sends, vec![Some(0), None, Some(1)]);
        assert_eq!(plan.waits[1], vec![0]);
    }
}
