//! Collective communication between the ranks of a data-parallel run: the interface the
//! executors call for the IR's `all_reduce` op, and an in-process group of ranks.
//!
//! A [`Collective`] is one rank's handle on a group of `size` ranks that run the same
//! program on different data. Every rank must make the same sequence of calls with the
//! same lengths; a rank that stops calling (it died, or it stalled) makes the others' calls
//! fail with [`CollectiveError::Lost`] after the implementation's timeout, never hang.
//!
//! [`LocalGroup`] runs the ranks as threads of one process (tests, and a model trained on
//! several executors of one machine); the MPI implementation is
//! `xenon::distributed::mpi::MpiCollective` (Cargo feature `mpi` of the `xenon` crate).
//!
//! ```
//! use xenon_runtime::collective::{Collective, LocalGroup, ReduceBuf};
//! let ranks = LocalGroup::new(2);
//! let sums: Vec<Vec<f32>> = std::thread::scope(|s| {
//!     let handles: Vec<_> = ranks
//!         .iter()
//!         .map(|r| {
//!             s.spawn(move || {
//!                 let mut v = vec![r.rank() as f32 + 1.0; 3];
//!                 r.all_reduce_sum(ReduceBuf::F32(&mut v)).unwrap();
//!                 v
//!             })
//!         })
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).collect()
//! });
//! assert_eq!(sums, vec![vec![3.0; 3], vec![3.0; 3]]);
//! ```

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The data of an all-reduce, summed in place.
#[derive(Debug)]
pub enum ReduceBuf<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
}

impl ReduceBuf<'_> {
    /// Elements.
    pub fn len(&self) -> usize {
        match self {
            ReduceBuf::F32(d) => d.len(),
            ReduceBuf::F64(d) => d.len(),
        }
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a collective call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectiveError {
    /// Ranks stopped taking part: they died, stalled, or left the run. `ranks` names them
    /// where the implementation can tell (empty where it cannot).
    #[error("{}", lost_message(.ranks, .what, .detail))]
    Lost {
        ranks: Vec<usize>,
        /// The call that failed (`all-reduce of 5,820,416 f32`).
        what: String,
        /// How it was noticed (`no answer within 30 s`, `process 1234 is gone`).
        detail: String,
    },
    /// The ranks made different calls (lengths, programs, data sets): a bug or a
    /// mismatched launch, named.
    #[error("the ranks disagree: {0}")]
    Mismatch(String),
    /// The transport itself failed.
    #[error("{0}")]
    Transport(String),
}

fn lost_message(ranks: &[usize], what: &str, detail: &str) -> String {
    let who = match ranks {
        [] => "a rank".to_string(),
        [r] => format!("rank {r}"),
        rs => format!(
            "ranks {}",
            rs.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("lost {who} during the {what}: {detail}")
}

/// One rank's handle on a group of ranks (see the [module documentation](self)).
pub trait Collective: Send + Sync + std::fmt::Debug {
    /// This rank's index, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Replaces `data` on every rank by its elementwise sum over the ranks. Every rank
    /// gets the same bits (the implementation sums in one order for all), so ranks that
    /// apply the same update to the same weights stay identical.
    fn all_reduce_sum(&self, data: ReduceBuf<'_>) -> Result<(), CollectiveError>;
    /// Every rank's `value`, in rank order (agreement checks: program and weight hashes).
    fn all_gather_u64(&self, value: u64) -> Result<Vec<u64>, CollectiveError>;
    /// Replaces `data` by rank `root`'s `data` on every rank; the lengths must be equal.
    fn broadcast(&self, root: usize, data: &mut [u8]) -> Result<(), CollectiveError>;
    /// Sums `data` over the ranks into this rank's part of it ([`part`]: the first half of
    /// the all-reduce); the rest of `data` is left unspecified. With
    /// [`Collective::all_gather`] after it, every rank gets what
    /// [`Collective::all_reduce_sum`] gives. Default: the whole all-reduce.
    fn reduce_scatter_sum(&self, data: ReduceBuf<'_>) -> Result<(), CollectiveError> {
        self.all_reduce_sum(data)
    }
    /// Copies each rank's part of `data` ([`part`]) to every rank (the second half of the
    /// all-reduce): afterwards every rank holds the same elements. This rank's own part is
    /// only read (another thread may read it meanwhile). Default: a broadcast of each
    /// rank's part in turn (this rank's from a copy).
    fn all_gather(&self, data: ReduceBuf<'_>) -> Result<(), CollectiveError> {
        let (bytes, width): (&mut [u8], usize) = match data {
            ReduceBuf::F32(d) => (as_bytes_mut(d), 4),
            ReduceBuf::F64(d) => (as_bytes_mut(d), 8),
        };
        let len = bytes.len() / width;
        for root in 0..self.size() {
            let r = part(len, root, self.size());
            let bytes = &mut bytes[r.start * width..r.end * width];
            if root == self.rank() {
                self.broadcast(root, &mut bytes.to_vec())?;
            } else {
                self.broadcast(root, bytes)?;
            }
        }
        Ok(())
    }
    /// How many ranks (this one included) run on this machine and share its cores.
    /// Default 1. An executor overlaps the sums with computation on a thread of its own
    /// only when a core is left for it.
    fn local_ranks(&self) -> usize {
        1
    }
}

/// Rank `rank`'s part of `len` elements shared by `size` ranks in
/// [`Collective::reduce_scatter_sum`] and [`Collective::all_gather`]: consecutive equal
/// blocks in rank order, the first `len % size` one element longer.
///
/// ```
/// use xenon_runtime::collective::part;
/// assert_eq!(part(10, 0, 3), 0..4);
/// assert_eq!(part(10, 2, 3), 7..10);
/// ```
pub fn part(len: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// The bytes of a slice of plain numbers.
fn as_bytes_mut<T: Copy>(d: &mut [T]) -> &mut [u8] {
    let n = std::mem::size_of_val(d);
    // SAFETY: f32 and f64 have no padding and every byte pattern is a valid u8; the
    // slice is borrowed mutably for the result's lifetime.
    unsafe { std::slice::from_raw_parts_mut(d.as_mut_ptr().cast(), n) }
}

/// Checks that every rank passed the same `value` (a hash of what must agree), naming the
/// first rank that differs from rank 0 and `what` it is.
pub fn check_agreement(
    comm: &dyn Collective,
    value: u64,
    what: &str,
) -> Result<(), CollectiveError> {
    let all = comm.all_gather_u64(value)?;
    match all.iter().position(|&v| v != all[0]) {
        None => Ok(()),
        Some(r) => Err(CollectiveError::Mismatch(format!(
            "rank {r}'s {what} differs from rank 0's"
        ))),
    }
}

/// The ranks of one process: `LocalGroup::new(n)` gives `n` handles, one for each thread
/// that acts as a rank. Sums are taken in rank order. A call waits at most the group's
/// timeout (default 60 s, [`LocalGroup::with_timeout`]) for the other ranks, then fails
/// with [`CollectiveError::Lost`] naming those that did not arrive.
#[derive(Debug)]
pub struct LocalGroup {
    rank: usize,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    size: usize,
    timeout: Duration,
    state: Mutex<Round>,
    turn: Condvar,
}

/// One collective call in progress: what each rank brought, and the result.
#[derive(Debug, Default)]
struct Round {
    /// Incremented when a round's result is ready.
    generation: u64,
    kind: Option<&'static str>,
    arrived: Vec<Option<Vec<u8>>>,
    result: Vec<u8>,
    /// Ranks that have read the result of the finished round (a new one waits for all).
    readers: usize,
    /// The call that failed and stopped the group (every later call fails too).
    broken: Option<CollectiveError>,
}

impl LocalGroup {
    /// `size` ranks (at least 1) with the default 60 s timeout.
    pub fn new(size: usize) -> Vec<LocalGroup> {
        Self::with_timeout(size, Duration::from_secs(60))
    }

    /// `size` ranks whose calls wait at most `timeout` for the others.
    pub fn with_timeout(size: usize, timeout: Duration) -> Vec<LocalGroup> {
        let size = size.max(1);
        let shared = Arc::new(Shared {
            size,
            timeout,
            state: Mutex::new(Round {
                arrived: vec![None; size],
                readers: size,
                ..Round::default()
            }),
            turn: Condvar::new(),
        });
        (0..size)
            .map(|rank| LocalGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Brings `mine` to a round of `kind`; when every rank has, `combine` makes the result
    /// from all contributions (in rank order), and every rank gets it.
    fn round(
        &self,
        kind: &'static str,
        what: impl Fn() -> String,
        mine: Vec<u8>,
        combine: impl FnOnce(&[Vec<u8>]) -> Result<Vec<u8>, CollectiveError>,
    ) -> Result<Vec<u8>, CollectiveError> {
        let sh = &*self.shared;
        let deadline = Instant::now() + sh.timeout;
        let lost = |s: &Round, waiting_for_readers: bool| {
            let ranks = if waiting_for_readers {
                Vec::new()
            } else {
                (0..sh.size).filter(|&r| s.arrived[r].is_none()).collect()
            };
            CollectiveError::Lost {
                ranks,
                what: what(),
                detail: format!("no answer within {} s", sh.timeout.as_secs_f64()),
            }
        };
        let mut s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        // The previous round's result must have been read by every rank.
        s = sh.wait_while(s, deadline, |s| s.readers < sh.size, |s| lost(s, true))?;
        if let Some(e) = &s.broken {
            return Err(e.clone());
        }
        match s.kind {
            Some(k) if k != kind => {
                let e = CollectiveError::Mismatch(format!(
                    "rank {} called {kind} while another rank called {k}",
                    self.rank
                ));
                return Err(sh.break_group(&mut s, e));
            }
            _ => s.kind = Some(kind),
        }
        s.arrived[self.rank] = Some(mine);
        let generation = s.generation;
        if s.arrived.iter().all(Option::is_some) {
            let all: Vec<Vec<u8>> = s.arrived.iter_mut().map(|a| a.take().unwrap()).collect();
            match combine(&all) {
                Ok(r) => s.result = r,
                Err(e) => return Err(sh.break_group(&mut s, e)),
            }
            s.kind = None;
            s.readers = 0;
            s.generation += 1;
            sh.turn.notify_all();
        } else {
            s = sh.wait_while(
                s,
                deadline,
                |s| s.generation == generation,
                |s| lost(s, false),
            )?;
        }
        let result = s.result.clone();
        s.readers += 1;
        if s.readers == sh.size {
            sh.turn.notify_all();
        }
        Ok(result)
    }
}

impl Shared {
    /// Waits while `waiting(state)`, until `deadline`; then the group breaks with
    /// `timed_out(state)`. A group broken meanwhile by another rank is that rank's error.
    fn wait_while<'a>(
        &self,
        mut s: std::sync::MutexGuard<'a, Round>,
        deadline: Instant,
        waiting: impl Fn(&Round) -> bool,
        timed_out: impl Fn(&Round) -> CollectiveError,
    ) -> Result<std::sync::MutexGuard<'a, Round>, CollectiveError> {
        while waiting(&s) {
            if let Some(e) = &s.broken {
                return Err(e.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let e = timed_out(&s);
                return Err(self.break_group(&mut s, e));
            }
            s = self
                .turn
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(s)
    }

    /// Marks the group broken by `e` (every later call fails with it), wakes the waiting
    /// ranks, and returns `e`.
    fn break_group(&self, s: &mut Round, e: CollectiveError) -> CollectiveError {
        s.broken = Some(e.clone());
        self.turn.notify_all();
        e
    }
}

/// `all` contributions of equal length, or a mismatch naming the first that differs.
fn same_lengths(all: &[Vec<u8>], what: &str) -> Result<usize, CollectiveError> {
    let n = all[0].len();
    match all.iter().position(|a| a.len() != n) {
        None => Ok(n),
        Some(r) => Err(CollectiveError::Mismatch(format!(
            "{what}: rank {r} gave {} bytes, rank 0 {n}",
            all[r].len()
        ))),
    }
}

impl Collective for LocalGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn all_reduce_sum(&self, data: ReduceBuf<'_>) -> Result<(), CollectiveError> {
        let what = || match &data {
            ReduceBuf::F32(d) => format!("all-reduce of {} f32", d.len()),
            ReduceBuf::F64(d) => format!("all-reduce of {} f64", d.len()),
        };
        let (kind, mine): (&'static str, Vec<u8>) = match &data {
            ReduceBuf::F32(d) => (
                "all-reduce f32",
                d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            ReduceBuf::F64(d) => (
                "all-reduce f64",
                d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        };
        let f64s = matches!(data, ReduceBuf::F64(_));
        let sum = self.round(kind, what, mine, |all| {
            same_lengths(all, "all-reduce")?;
            Ok(if f64s {
                sum_bytes::<8, f64>(all, f64::from_le_bytes, |v| v.to_le_bytes())
            } else {
                sum_bytes::<4, f32>(all, f32::from_le_bytes, |v| v.to_le_bytes())
            })
        })?;
        match data {
            ReduceBuf::F32(d) => {
                for (v, b) in d.iter_mut().zip(sum.chunks_exact(4)) {
                    *v = f32::from_le_bytes(b.try_into().unwrap());
                }
            }
            ReduceBuf::F64(d) => {
                for (v, b) in d.iter_mut().zip(sum.chunks_exact(8)) {
                    *v = f64::from_le_bytes(b.try_into().unwrap());
                }
            }
        }
        Ok(())
    }

    fn local_ranks(&self) -> usize {
        self.shared.size
    }

    fn all_gather_u64(&self, value: u64) -> Result<Vec<u64>, CollectiveError> {
        let all = self.round(
            "all-gather",
            || "all-gather".to_string(),
            value.to_le_bytes().to_vec(),
            |all| Ok(all.concat()),
        )?;
        Ok(all
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .collect())
    }

    fn broadcast(&self, root: usize, data: &mut [u8]) -> Result<(), CollectiveError> {
        if root >= self.size() {
            return Err(CollectiveError::Mismatch(format!(
                "broadcast from rank {root} of {}",
                self.size()
            )));
        }
        let len = data.len();
        let got = self.round(
            "broadcast",
            || format!("broadcast of {len} bytes"),
            data.to_vec(),
            |all| {
                same_lengths(all, "broadcast")?;
                Ok(all[root].clone())
            },
        )?;
        data.copy_from_slice(&got);
        Ok(())
    }
}

/// The elementwise sum, in rank order, of equal-length little-endian arrays.
fn sum_bytes<const W: usize, V: std::ops::Add<Output = V> + Copy>(
    all: &[Vec<u8>],
    read: impl Fn([u8; W]) -> V,
    write: impl Fn(V) -> [u8; W],
) -> Vec<u8> {
    let n = all[0].len() / W;
    let mut out = Vec::with_capacity(n * W);
    for i in 0..n {
        let at = |a: &Vec<u8>| read(a[i * W..(i + 1) * W].try_into().unwrap());
        let mut s = at(&all[0]);
        for a in &all[1..] {
            s = s + at(a);
        }
        out.extend_from_slice(&write(s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_ranks<R: Send>(ranks: &[LocalGroup], f: impl Fn(&LocalGroup) -> R + Sync) -> Vec<R> {
        std::thread::scope(|s| {
            let hs: Vec<_> = ranks.iter().map(|r| s.spawn(|| f(r))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn sums_gathers_and_broadcasts_in_repeated_rounds() {
        let ranks = LocalGroup::new(3);
        let out = on_ranks(&ranks, |r| {
            let mut acc = Vec::new();
            for round in 0..50 {
                let mut v = vec![(r.rank() * 10 + round) as f64, 0.5];
                r.all_reduce_sum(ReduceBuf::F64(&mut v)).unwrap();
                acc.push(v[0]);
                let g = r.all_gather_u64(r.rank() as u64 + round as u64).unwrap();
                assert_eq!(g, vec![round as u64, round as u64 + 1, round as u64 + 2]);
                let mut b = [r.rank() as u8; 4];
                r.broadcast(2, &mut b).unwrap();
                assert_eq!(b, [2; 4]);
            }
            acc
        });
        for acc in &out {
            let want: Vec<f64> = (0..50).map(|k| (30 + 3 * k) as f64).collect();
            assert_eq!(acc, &want);
        }
    }

    #[test]
    fn a_reduce_scatter_then_an_all_gather_is_the_all_reduce() {
        for size in [1, 2, 3] {
            let ranks = LocalGroup::new(size);
            let out = on_ranks(&ranks, |r| {
                let data = |k: usize| (r.rank() * 100 + k) as f32 * 0.37;
                let mut whole: Vec<f32> = (0..10).map(data).collect();
                r.all_reduce_sum(ReduceBuf::F32(&mut whole)).unwrap();
                let mut halves: Vec<f32> = (0..10).map(data).collect();
                r.reduce_scatter_sum(ReduceBuf::F32(&mut halves)).unwrap();
                let mine = part(10, r.rank(), r.size());
                assert_eq!(halves[mine.clone()], whole[mine.clone()]);
                // Only this rank's part counts: the others' are overwritten.
                for (k, v) in halves.iter_mut().enumerate() {
                    if !mine.contains(&k) {
                        *v = f32::NAN;
                    }
                }
                r.all_gather(ReduceBuf::F32(&mut halves)).unwrap();
                assert_eq!(halves, whole);
                whole
            });
            assert!(out.iter().all(|w| w == &out[0]));
        }
    }

    #[test]
    fn parts_are_disjoint_and_cover_the_elements() {
        for (len, size) in [(0, 1), (1, 3), (10, 3), (12, 4), (7, 7)] {
            let parts: Vec<_> = (0..size).map(|r| part(len, r, size)).collect();
            assert_eq!(parts[0].start, 0);
            assert_eq!(parts[size - 1].end, len);
            assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
            assert!(parts.iter().all(|p| p.len() + 1 >= len / size));
        }
    }

    #[test]
    fn sums_in_rank_order_so_every_rank_gets_the_same_bits() {
        let ranks = LocalGroup::new(3);
        let out = on_ranks(&ranks, |r| {
            let mut v = vec![[1e8f32, 1.0, -1e8][r.rank()]];
            r.all_reduce_sum(ReduceBuf::F32(&mut v)).unwrap();
            v[0]
        });
        // (1e8 + 1) + −1e8 in f32: the 1 is lost, on every rank alike.
        assert_eq!(out, vec![0.0; 3]);
    }

    #[test]
    fn a_rank_that_never_comes_is_named_after_the_timeout() {
        let ranks = LocalGroup::with_timeout(3, Duration::from_millis(200));
        let out = on_ranks(&ranks, |r| {
            if r.rank() == 1 {
                return None;
            }
            let mut v = vec![1.0f32; 4];
            Some(r.all_reduce_sum(ReduceBuf::F32(&mut v)).unwrap_err())
        });
        for e in out.into_iter().flatten() {
            assert!(
                matches!(&e, CollectiveError::Lost { ranks, .. } if ranks == &[1]),
                "{e}"
            );
            assert!(
                e.to_string()
                    .starts_with("lost rank 1 during the all-reduce of 4 f32"),
                "{e}"
            );
        }
    }

    #[test]
    fn mismatched_calls_are_errors() {
        let ranks = LocalGroup::with_timeout(2, Duration::from_secs(5));
        let out = on_ranks(&ranks, |r| {
            let mut v = vec![0.0f32; 2 + r.rank()];
            r.all_reduce_sum(ReduceBuf::F32(&mut v)).unwrap_err()
        });
        for e in out {
            assert!(
                e.to_string().contains("rank 1 gave 12 bytes, rank 0 8"),
                "{e}"
            );
        }
        let ranks = LocalGroup::with_timeout(2, Duration::from_secs(5));
        let out = on_ranks(&ranks, |r| {
            check_agreement(r, 7 + r.rank() as u64, "program")
        });
        for e in out {
            assert_eq!(
                e.unwrap_err().to_string(),
                "the ranks disagree: rank 1's program differs from rank 0's"
            );
        }
    }
}
