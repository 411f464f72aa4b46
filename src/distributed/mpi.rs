//! The MPI transport of data-parallel training: [`MpiCollective`], a
//! [`Collective`] over `MPI_COMM_WORLD` (Cargo feature `mpi`; Open MPI, MPICH and their
//! derivatives, through rsmpi's raw bindings).
//!
//! # Fault model
//!
//! MPI itself has none: a blocking `MPI_Allreduce` whose partner is stopped waits forever,
//! and what happens when a partner dies is up to the launcher. Open MPI's `mpirun` (4.1)
//! notices a rank that died (a signal, or an exit without `MPI_Finalize`) within
//! milliseconds, and after `odls_base_sigkill_timeout` (1 s) sends the others `SIGTERM`
//! and prints which rank died (`mpirun noticed that process rank 1 with PID 0 on node vm
//! exited on signal 9 (Killed)`); so a death ends the job before a call here could time
//! out, though a survivor on the same host says what happened first (see below). A rank
//! that *stalls* (`SIGSTOP`, a debugger, a hung file system, a host that stopped
//! answering) is noticed by nobody: that is the case this type exists for.
//!
//! Every call of an [`MpiCollective`] is made of non-blocking MPI operations polled with
//! `MPI_Testall` until they complete or their deadline passes. A call has two phases,
//! each with the deadline `timeout` (given to [`MpiCollective::init`]; [`DEFAULT_TIMEOUT`]
//! is 60 s):
//!
//! 1. *Arrival*: a small `MPI_Iallgather` of what each rank is calling (kind, length,
//!    root). It completes when every rank has come to the call, and turns calls that
//!    differ between ranks (an all-reduce of other lengths, a broadcast from another root)
//!    into [`CollectiveError::Mismatch`] naming the first rank that differs from rank 0,
//!    instead of the undefined behaviour MPI would give them. (It is also the whole of
//!    [`all_gather_u64`](Collective::all_gather_u64).) While waiting here the caller backs
//!    off (yields, then sleeps up to 1 ms) so that a rank waiting for a slow one does not
//!    take its CPU.
//! 2. *Transfer*: all-reduces of at least 64 KiB take a ring (reduce-scatter, then
//!    all-gather) of `MPI_Isend`/`MPI_Irecv` with `MPI_Reduce_local` for the sums:
//!    bandwidth-optimal, as fast as a blocking `MPI_Allreduce` (6M f32 on 2 ranks:
//!    within ±4%), and every element is summed along one path and copied to every rank,
//!    so all ranks get the same bits whatever the library. Smaller all-reduces take one
//!    `MPI_Iallreduce` (Open MPI: a binomial tree and a broadcast; MPICH: recursive
//!    doubling; both give every rank the same bits), broadcasts `MPI_Ibcast`. Each
//!    message moves at most `i32::MAX` elements (MPI counts are C `int`s), with a
//!    deadline of its own, polled without sleeping (as a blocking MPI call would).
//!
//! When a deadline passes, the call fails with [`CollectiveError::Lost`] naming the ranks
//! that are gone, stalled or absent, as far as they can be told apart:
//!
//! - ranks on this host (same host name, boot id and pid namespace) are looked up in
//!   `/proc/PID/stat`: gone (or the pid reused by another process), exited, or stopped;
//!   a local rank found gone ends the wait at once (the process table is read every
//!   200 ms while waiting), without waiting for the deadline;
//! - every rank runs a heartbeat thread that sends each other rank its call count on a
//!   private duplicate of `MPI_COMM_WORLD`, every [`MpiCollective::heartbeat_period`]
//!   (an eighth of the timeout, clamped to 50 ms–1 s): a rank on another host that sent
//!   none for 3 periods is reported silent (stalled, dead or unreachable); one that is
//!   alive but has not come to the call is reported as such. (Ranks on this host are
//!   judged by heartbeats too where [`MpiCollective::set_process_checks`] turned the
//!   process table off.)
//!
//! A rank's host name and process id are exchanged at [`MpiCollective::init`], so the
//! messages say where the lost rank ran (`rank 1 (pid 4242 on node7)`).
//!
//! # After a failure
//!
//! The first `Lost` or `Transport` error breaks the group for good: MPI has no way to
//! cancel a collective, so the failed operation stays posted (and may still refer to the
//! data of the failed call), the heartbeats stop, and every later call returns the same
//! error without calling MPI. `MPI_Finalize` would wait for the lost rank, so it is not
//! called: dropping a broken `MpiCollective` leaves MPI unfinalized, and the process
//! should end soon after, by [`MpiCollective::abandon`] (`_exit` with a status, after
//! flushing standard output and error) or by `std::process::exit` with a non-zero
//! status after dropping the group (both tried with Open MPI 4.1: neither blocks).
//! `mpirun` then sees a rank end without `MPI_Finalize`, prints `mpirun detected that
//! one or more processes exited with non-zero status … Exit code: 3`, and ends the other
//! ranks, stalled ones included (`SIGCONT`, then `SIGTERM` 1 s later), and exits with
//! that status. (`MPI_Abort` ends the run faster, in about 70 ms instead of 1.2 s, but
//! Open MPI 4.1.4 prints an internal `ORTE_ERROR_LOG: Data unpack had inadequate space`
//! instead of a message.) Until the process ends no MPI call is made, so with transports
//! that move data only inside MPI calls (shared memory, TCP) the failed call's buffer is
//! not touched again; with RDMA transports a peer that wakes up could still write into
//! it, one more reason to exit promptly. A [`CollectiveError::Mismatch`] is found before
//! any data moves and does not break the group.
//!
//! # Threads
//!
//! MPI is initialized with `MPI_THREAD_SERIALIZED` (calls from any thread, one at a time);
//! a library that grants less is an error. All MPI calls of this module (the caller's and
//! the heartbeat thread's) take one lock, so callers may use the group from any thread;
//! collective calls are additionally serialized with each other. `MPI_Finalize` runs when
//! the group is dropped (or [`MpiCollective::finalize`]), which MPI wants on the thread
//! that initialized it, normally the main thread.

use std::ffi::{c_int, c_void};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mpi::environment::{Threading, Universe};
use mpi::ffi;
use xenon_runtime::collective::{Collective, CollectiveError, ReduceBuf, part};

/// The timeout of a call where the caller has no better value: 60 s, as
/// [`LocalGroup`](xenon_runtime::collective::LocalGroup)'s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most elements one MPI call moves: MPI counts are C `int`s.
const MPI_MAX_COUNT: usize = i32::MAX as usize;

/// The tag of heartbeat messages (on their own communicator).
const HEARTBEAT_TAG: c_int = 7;

/// The tag of the ring all-reduce's messages (on their own communicator).
const RING_TAG: c_int = 8;

/// All-reduces of at least this many bytes (and at least one element per rank) take the
/// ring (see [`Shared::ring_all_reduce`]); smaller ones one `MPI_Iallreduce`.
const RING_MIN_BYTES: usize = 64 << 10;

/// Bytes of each rank's self-description exchanged at start.
const RECORD_BYTES: usize = 512;

/// Heartbeats missed before a rank counts as silent.
const SILENT_PERIODS: u32 = 3;

/// How often a waiting call reads the process table for local ranks that are gone (a
/// read of `/proc/PID/stat` per local rank: microseconds). Shorter than the 1 s after
/// which Open MPI's `mpirun` sends `SIGTERM` to the survivors of a dead rank, so that
/// they can say what happened first.
const PROCESS_CHECK: Duration = Duration::from_millis(200);

/// Set by the first [`MpiCollective::init`]: MPI can be initialized once per process.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Where one rank runs, as it said at [`MpiCollective::init`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The host name (`MPI_Get_processor_name`; at most 255 bytes).
    pub host: String,
    /// The process id on that host.
    pub pid: u32,
    /// Boot id and pid namespace: ranks with the same host name and machine can see each
    /// other's processes.
    machine: String,
    /// The process's start time (`/proc/PID/stat` field 22, clock ticks after boot; 0
    /// where unknown), which tells a reused pid from the rank's.
    start_time: u64,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

impl Peer {
    /// This process, on the host MPI names (after `MPI_Init`).
    fn this_process() -> Peer {
        Peer::this_process_on(mpi::environment::processor_name().unwrap_or_default())
    }

    fn this_process_on(mut host: String) -> Peer {
        if host.is_empty() {
            host = "an unnamed host".to_string();
        }
        while host.len() > 255 {
            host.pop();
        }
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let pid_ns = std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let start_time = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_stat(&s))
            .map_or(0, |(_, t)| t);
        Peer {
            host,
            pid: std::process::id(),
            machine: format!("{} {}", boot.trim(), pid_ns),
            start_time,
        }
    }

    /// The fixed-size record sent to the other ranks.
    fn encode(&self) -> [u8; RECORD_BYTES] {
        let text = format!(
            "{}\n{}\n{}\n{}\n",
            self.host, self.machine, self.pid, self.start_time
        );
        let mut out = [0u8; RECORD_BYTES];
        let n = text.len().min(RECORD_BYTES);
        out[..n].copy_from_slice(&text.as_bytes()[..n]);
        out
    }

    fn decode(record: &[u8]) -> Peer {
        let end = record.iter().position(|&b| b == 0).unwrap_or(record.len());
        let text = String::from_utf8_lossy(&record[..end]);
        let mut lines = text.lines();
        let host = lines.next().unwrap_or("?").to_string();
        let machine = lines.next().unwrap_or("").to_string();
        let pid = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
        let start_time = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
        Peer {
            host,
            pid,
            machine,
            start_time,
        }
    }
}

/// The state and start time in a `/proc/PID/stat` line.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// What the process table says about a rank's process on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcessState {
    Running,
    Stopped,
    Exited,
    Gone,
    Unknown,
}

fn process_state(peer: &Peer) -> ProcessState {
    if cfg!(target_os = "linux") {
        return match std::fs::read_to_string(format!("/proc/{}/stat", peer.pid)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ProcessState::Gone,
            Err(_) => ProcessState::Unknown,
            Ok(s) => match parse_stat(&s) {
                None => ProcessState::Unknown,
                Some((_, start)) if peer.start_time != 0 && start != peer.start_time => {
                    ProcessState::Gone
                }
                Some(('T' | 't', _)) => ProcessState::Stopped,
                Some(('Z' | 'X' | 'x', _)) => ProcessState::Exited,
                Some(_) => ProcessState::Running,
            },
        };
    }
    #[cfg(unix)]
    {
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(peer.pid as libc::pid_t, 0) };
        if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return ProcessState::Gone;
        }
    }
    ProcessState::Unknown
}

/// `MPI_Request`s and communicators are raw pointers (Open MPI) or integers (MPICH); all
/// of them are only touched under [`Shared::mpi`].
struct Mpi {
    /// Collectives (a duplicate of `MPI_COMM_WORLD`).
    comm: ffi::MPI_Comm,
    /// The ring all-reduce's point-to-point messages (another duplicate).
    ring_comm: ffi::MPI_Comm,
    /// Heartbeats (another duplicate, so they never match anything else).
    heartbeat_comm: ffi::MPI_Comm,
    /// One entry per rank (this rank's is unused).
    beats: Vec<Beat>,
    /// The error that broke the group (see the module documentation).
    broken: Option<CollectiveError>,
}

// SAFETY: MPI handles may be used from any thread under MPI_THREAD_SERIALIZED, which
// `init` checks; the mutex around `Mpi` serializes the calls.
unsafe impl Send for Mpi {}

/// The heartbeat exchange with one other rank.
struct Beat {
    recv: ffi::MPI_Request,
    /// `[their call count, 0]`; boxed so that its address survives moves.
    recv_buf: Box<[u64; 2]>,
    send: ffi::MPI_Request,
    send_buf: Box<[u64; 2]>,
    last_heard: Instant,
    /// Calls that rank had entered at its last heartbeat.
    their_calls: u64,
    heard: bool,
}

/// What an [`MpiCollective`] and its heartbeat thread share.
struct Shared {
    rank: usize,
    size: usize,
    timeout: Duration,
    heartbeat: Duration,
    /// Every rank's self-description, in rank order (set once at start).
    peers: OnceLock<Vec<Peer>>,
    /// Every MPI call takes it.
    mpi: Mutex<Mpi>,
    /// Collective calls take it for their whole duration; it holds the ring all-reduce's
    /// receive buffer (kept between calls, leaked after a failure).
    call: Mutex<Vec<u8>>,
    /// Collective calls entered by this rank (sent in heartbeats).
    calls: AtomicU64,
    /// The heartbeat thread waits for `mpi`: the polling caller lets it in.
    heartbeat_waiting: AtomicBool,
    stop: AtomicBool,
    /// `MPI_IN_PLACE` of this library, where known.
    in_place: Option<usize>,
    /// Elements per MPI call (at most `i32::MAX`).
    max_chunk: AtomicUsize,
    /// Whether ranks on this host are looked up in the process table.
    process_checks: AtomicBool,
}

/// What a call waits for (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Arrival,
    Transfer,
}

/// One rank's handle on the ranks of an MPI job (`MPI_COMM_WORLD`); see the [module
/// documentation](self) for the fault model. Created once per process by
/// [`MpiCollective::init`]; dropping it finalizes MPI (unless a call failed).
pub struct MpiCollective {
    shared: Arc<Shared>,
    heartbeat: Option<JoinHandle<()>>,
    /// `None` once finalized or abandoned.
    universe: Option<Universe>,
    library: String,
    threading: Threading,
}

impl fmt::Debug for MpiCollective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiCollective")
            .field("rank", &self.shared.rank)
            .field("size", &self.shared.size)
            .field("timeout", &self.shared.timeout)
            .field("threading", &self.threading)
            .field("library", &self.library.lines().next().unwrap_or(""))
            .finish()
    }
}

fn transport(what: &str, rc: c_int) -> CollectiveError {
    let mut buf = vec![0u8; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters.
    let ok = unsafe { ffi::MPI_Error_string(rc, buf.as_mut_ptr().cast(), &mut len) };
    let text = if ok == ffi::MPI_SUCCESS as c_int {
        String::from_utf8_lossy(&buf[..len.max(0) as usize]).into_owned()
    } else {
        format!("error code {rc}")
    };
    CollectiveError::Transport(format!("MPI: {what} failed: {text}"))
}

fn check(what: &str, rc: c_int) -> Result<(), CollectiveError> {
    if rc == ffi::MPI_SUCCESS as c_int {
        Ok(())
    } else {
        Err(transport(what, rc))
    }
}

/// The `MPI_IN_PLACE` of the library (a C macro that bindgen does not bring): Open MPI's
/// is `(void *) 1`, MPICH's and its derivatives' `(void *) -1`. `None` for others, which
/// then get a copy of the send data.
fn in_place_of(library: &str) -> Option<usize> {
    if library.contains("Open MPI") {
        Some(1)
    } else if ["MPICH", "Intel(R) MPI", "MVAPICH"]
        .iter()
        .any(|n| library.contains(n))
    {
        Some(usize::MAX)
    } else {
        None
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 || s == s.trunc() {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// What a call is: its kind, length and root, exchanged in the arrival phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// 1: all-reduce f32, 2: all-reduce f64, 3: all-gather of a word, 4: broadcast,
    /// 5 and 6: reduce-scatter f32 and f64, 7 and 8: all-gather of parts f32 and f64.
    kind: u64,
    len: u64,
    root: u64,
    chunk: u64,
    /// The all-gather's value (the header exchange is the all-gather).
    value: u64,
}

const HEADER_WORDS: usize = 5;

impl Header {
    fn words(&self) -> [u64; HEADER_WORDS] {
        [self.kind, self.len, self.root, self.chunk, self.value]
    }

    fn from_words(w: &[u64]) -> Header {
        Header {
            kind: w[0],
            len: w[1],
            root: w[2],
            chunk: w[3],
            value: w[4],
        }
    }

    fn describe(&self) -> String {
        match self.kind {
            1 => format!("an all-reduce of {} f32", self.len),
            2 => format!("an all-reduce of {} f64", self.len),
            3 => "an all-gather".to_string(),
            4 => format!("a broadcast of {} bytes from rank {}", self.len, self.root),
            5 => format!("a reduce-scatter of {} f32", self.len),
            6 => format!("a reduce-scatter of {} f64", self.len),
            7 => format!("an all-gather of {} f32", self.len),
            8 => format!("an all-gather of {} f64", self.len),
            k => format!("an unknown call ({k})"),
        }
    }

    /// A call on `len` elements of `kind` (no root, no value), sent in chunks of `chunk`.
    fn data(kind: u64, len: usize, chunk: usize) -> Header {
        Header {
            kind,
            len: len as u64,
            root: 0,
            chunk: chunk as u64,
            value: 0,
        }
    }

    /// Whether two ranks' calls match (the all-gather's values may differ).
    fn matches(&self, other: &Header) -> bool {
        Header { value: 0, ..*self } == Header { value: 0, ..*other }
    }
}

impl Shared {
    fn lock_mpi(&self) -> MutexGuard<'_, Mpi> {
        self.mpi.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn peers(&self) -> &[Peer] {
        self.peers.get().map_or(&[], Vec::as_slice)
    }

    fn name(&self, rank: usize) -> String {
        match self.peers().get(rank) {
            Some(p) => format!("rank {rank} ({p})"),
            None => format!("rank {rank}"),
        }
    }

    fn is_local(&self, rank: usize) -> bool {
        if !self.process_checks.load(Ordering::Relaxed) {
            return false;
        }
        let peers = self.peers();
        match (peers.get(rank), peers.get(self.rank)) {
            (Some(p), Some(me)) => p.host == me.host && p.machine == me.machine,
            _ => false,
        }
    }

    fn broken(&self) -> Option<CollectiveError> {
        self.lock_mpi().broken.clone()
    }

    fn set_broken(&self, e: &CollectiveError) {
        let mut m = self.lock_mpi();
        if m.broken.is_none() {
            m.broken = Some(e.clone());
        }
    }

    /// Polls `reqs` until all of them complete, or fails at `deadline` (or earlier, when a
    /// local rank is gone). `from`: the rank whose message is awaited, where one is. The
    /// caller leaks the buffers of requests that did not complete.
    fn wait(
        &self,
        reqs: &mut [ffi::MPI_Request],
        deadline: Instant,
        phase: Phase,
        from: Option<usize>,
        what: &dyn Fn() -> String,
    ) -> Result<(), CollectiveError> {
        let start = Instant::now();
        let mut next_check = start + PROCESS_CHECK;
        let mut polls: u64 = 0;
        loop {
            {
                let _m = self.lock_mpi();
                let mut done: c_int = 0;
                // SAFETY: `reqs` are requests of this process (active or null); MPI calls
                // are serialized by the lock.
                let rc = unsafe {
                    ffi::MPI_Testall(
                        reqs.len() as c_int,
                        reqs.as_mut_ptr(),
                        &mut done,
                        ffi::RSMPI_STATUSES_IGNORE,
                    )
                };
                check("MPI_Testall", rc)?;
                if done != 0 {
                    return Ok(());
                }
            }
            polls += 1;
            // Reading the clock costs a few ns; MPI_Test costs more.
            if !polls.is_multiple_of(16) {
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.lost(what(), phase, from, now - start, false));
            }
            if now >= next_check {
                next_check = now + PROCESS_CHECK;
                let gone = (0..self.size).any(|r| {
                    r != self.rank
                        && self.is_local(r)
                        && matches!(
                            process_state(&self.peers()[r]),
                            ProcessState::Gone | ProcessState::Exited
                        )
                });
                if gone {
                    return Err(self.lost(what(), phase, from, now - start, true));
                }
            }
            while self.heartbeat_waiting.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            let waited = now - start;
            if phase == Phase::Arrival && waited > Duration::from_millis(50) {
                // Waiting for a slow rank: give the CPU away.
                let nap = (waited / 64).min(Duration::from_millis(1));
                std::thread::sleep(nap);
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// The `Lost` error of a call that waited `waited` in `phase`: which ranks are gone,
    /// stalled, silent or absent (see the module documentation). `early`: a local rank was
    /// found gone before the deadline.
    fn lost(
        &self,
        what: String,
        phase: Phase,
        from: Option<usize>,
        waited: Duration,
        early: bool,
    ) -> CollectiveError {
        let now = Instant::now();
        let my_calls = self.calls.load(Ordering::Relaxed);
        let beats: Vec<(Instant, u64, bool)> = {
            let mut m = self.lock_mpi();
            // Take in the heartbeats that arrived since the last tick (none before the
            // communicators exist).
            if self.peers.get().is_some() && m.heartbeat_comm != unsafe { ffi::RSMPI_COMM_NULL } {
                let _ = m.tick(self.rank, my_calls, false);
            }
            m.beats
                .iter()
                .map(|b| (b.last_heard, b.their_calls, b.heard))
                .collect()
        };
        let silent_after = self.heartbeat * SILENT_PERIODS;
        let mut ranks = Vec::new();
        let mut reasons = Vec::new();
        for r in (0..self.size).filter(|&r| r != self.rank) {
            let local = self.is_local(r);
            let state = if local {
                process_state(&self.peers()[r])
            } else {
                ProcessState::Unknown
            };
            let (last, their_calls, heard) = beats.get(r).copied().unwrap_or((now, 0, false));
            let quiet = now.saturating_duration_since(last);
            let reason = match state {
                ProcessState::Gone => Some("its process is gone".to_string()),
                ProcessState::Exited => Some("its process has exited".to_string()),
                ProcessState::Stopped => Some(
                    "its process is stopped (SIGSTOP, a debugger or a job-control stop)"
                        .to_string(),
                ),
                _ if !self.peers().is_empty() && quiet > silent_after => Some(if heard {
                    format!(
                        "no heartbeat for {} (stalled, dead or unreachable)",
                        seconds(quiet)
                    )
                } else {
                    "no heartbeat since the start (stalled, dead or unreachable)".to_string()
                }),
                _ if phase == Phase::Arrival && heard && their_calls < my_calls => Some(format!(
                    "it is alive but has not come to this call (it is at call {their_calls}, \
                     this is call {my_calls})"
                )),
                _ => None,
            };
            if let Some(reason) = reason {
                ranks.push(r);
                reasons.push(format!("{}: {reason}", self.name(r)));
            }
        }
        let head = if early {
            format!("gave up after {}", seconds(waited))
        } else {
            format!("no answer within {}", seconds(self.timeout))
        };
        let detail = if reasons.is_empty() {
            format!(
                "{head}; every rank is alive{}, but MPI made no progress{}",
                if phase == Phase::Transfer {
                    " and came to this call"
                } else {
                    ""
                },
                match from {
                    Some(r) => format!(" (waiting for data from {})", self.name(r)),
                    None => String::new(),
                }
            )
        } else {
            format!("{head}: {}", reasons.join("; "))
        };
        CollectiveError::Lost {
            ranks,
            what,
            detail,
        }
    }

    /// One collective call: the arrival phase (the header exchange, which checks that the
    /// ranks agree), then `body` unless the call is the all-gather. Returns the headers.
    fn call(
        &self,
        header: Header,
        what: &dyn Fn() -> String,
        body: impl FnOnce(&Shared, &mut Vec<u8>) -> Result<(), CollectiveError>,
    ) -> Result<Vec<Header>, CollectiveError> {
        let mut scratch = self.call.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = self.broken() {
            return Err(e);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let result = self.arrive(header, what).and_then(|headers| {
            body(self, &mut scratch)?;
            Ok(headers)
        });
        if let Err(e @ (CollectiveError::Lost { .. } | CollectiveError::Transport(_))) = &result {
            self.set_broken(e);
            // MPI may still write into it.
            std::mem::forget(std::mem::take(&mut *scratch));
        }
        result
    }

    /// Every rank's `mine` (records of one length), in rank order, by an all-gather with
    /// the call timeout (the arrival phase's wait: a slow rank is waited for without
    /// spinning). On a failure the buffers are leaked, as MPI may still use them.
    fn gather_records(
        &self,
        mine: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<Vec<u8>, CollectiveError> {
        let deadline = Instant::now() + self.timeout;
        let mine = mine.to_vec().into_boxed_slice();
        let mut all = vec![0u8; mine.len() * self.size];
        let mut req: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
        {
            let m = self.lock_mpi();
            // SAFETY: the buffers live until the request completes (they are leaked if
            // it does not).
            let rc = unsafe {
                ffi::MPI_Iallgather(
                    mine.as_ptr().cast(),
                    mine.len() as c_int,
                    ffi::RSMPI_UINT8_T,
                    all.as_mut_ptr().cast(),
                    mine.len() as c_int,
                    ffi::RSMPI_UINT8_T,
                    m.comm,
                    &mut req,
                )
            };
            check("MPI_Iallgather", rc)?;
        }
        if let Err(e) = self.wait(
            std::slice::from_mut(&mut req),
            deadline,
            Phase::Arrival,
            None,
            what,
        ) {
            std::mem::forget(mine);
            std::mem::forget(all);
            return Err(e);
        }
        Ok(all)
    }

    /// The arrival phase: every rank's header, checked against rank 0's.
    fn arrive(
        &self,
        header: Header,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<Header>, CollectiveError> {
        let mine: Vec<u8> = header
            .words()
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        let all = self.gather_records(&mine, what)?;
        let words: Vec<u64> = all
            .chunks_exact(8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let headers: Vec<Header> = words
            .chunks_exact(HEADER_WORDS)
            .map(Header::from_words)
            .collect();
        if let Some(r) = headers.iter().position(|h| !h.matches(&headers[0])) {
            let (a, b) = (&headers[r], &headers[0]);
            let same_call = Header { chunk: 0, ..*a } == Header { chunk: 0, ..*b };
            let text = if same_call {
                format!(
                    "rank {r} splits MPI calls at {} elements, rank 0 at {}",
                    a.chunk, b.chunk
                )
            } else {
                format!(
                    "rank {r} called {} while rank 0 called {}",
                    a.describe(),
                    b.describe()
                )
            };
            return Err(CollectiveError::Mismatch(text));
        }
        Ok(headers)
    }

    /// Runs `start` (which posts one non-blocking operation on the collectives'
    /// communicator into the request) on each chunk of `len` elements, and waits for it.
    fn chunked(
        &self,
        len: usize,
        what: &dyn Fn() -> String,
        mut start: impl FnMut(ffi::MPI_Comm, usize, c_int, &mut ffi::MPI_Request) -> c_int,
        name: &str,
    ) -> Result<(), CollectiveError> {
        let chunk = self.max_chunk.load(Ordering::Relaxed);
        let mut at = 0;
        while at < len {
            let n = chunk.min(len - at);
            let mut req: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
            {
                let m = self.lock_mpi();
                check(name, start(m.comm, at, n as c_int, &mut req))?;
            }
            self.wait(
                std::slice::from_mut(&mut req),
                Instant::now() + self.timeout,
                Phase::Transfer,
                None,
                what,
            )?;
            at += n;
        }
        Ok(())
    }

    /// The all-reduce (sum) of `len` elements of `width` bytes at `data`: a ring
    /// reduce-scatter then a ring all-gather over point-to-point messages, 2 (size − 1)
    /// steps that each send one block of about `len / size` elements to the next rank and
    /// receive one from the previous (in pieces of at most the chunk size). Each block is
    /// summed along one path of the ring and then copied to every rank, so every rank gets
    /// the same bits; the additions are `MPI_Reduce_local`'s. Rank `r` holds the sum of
    /// block [`part`]`(len, r, size)` between the halves: `steps` `0..size − 1` are the
    /// reduce-scatter, `size − 1..2 (size − 1)` the all-gather. (Open MPI 4.1's
    /// `MPI_Iallreduce` takes a binomial tree when it works in place or on fewer than 4
    /// ranks: a whole-buffer reduce to one rank, then a broadcast, about 30% slower than
    /// `MPI_Allreduce` on 6M f32 on 2 ranks, where this ring is on a par with it.)
    ///
    /// # Safety
    /// `data` points at `len` elements of `width` bytes of type `datatype`, writable, and
    /// not otherwise used during the call.
    unsafe fn ring_all_reduce(
        &self,
        data: *mut u8,
        len: usize,
        (width, datatype): (usize, ffi::MPI_Datatype),
        scratch: &mut Vec<u8>,
        what: &dyn Fn() -> String,
        steps: std::ops::Range<usize>,
    ) -> Result<(), CollectiveError> {
        let (p, r) = (self.size, self.rank);
        let (left, right) = ((r + p - 1) % p, (r + 1) % p);
        // Ring block k is summed last on rank k − 1: that rank's part.
        let block = |k: usize| {
            let at = part(len, (k + p - 1) % p, p);
            (at.start, at.len())
        };
        let piece = self.max_chunk.load(Ordering::Relaxed);
        let scratch_len = len.div_ceil(p).min(piece) * width;
        if scratch.len() < scratch_len {
            scratch.resize(scratch_len, 0);
        }
        // Steps 0..p-1 reduce and scatter, p-1..2(p-1) gather.
        for step in steps {
            let reduce = step < p - 1;
            let s = if reduce { step } else { step - (p - 1) };
            let (send_block, recv_block) = if reduce {
                ((r + p - s) % p, (r + 2 * p - s - 1) % p)
            } else {
                ((r + 1 + p - s) % p, (r + p - s) % p)
            };
            let ((send_at, send_n), (recv_at, recv_n)) = (block(send_block), block(recv_block));
            let mut i = 0;
            while i < send_n.max(recv_n) {
                let a = piece.min(send_n.saturating_sub(i));
                let b = piece.min(recv_n.saturating_sub(i));
                // SAFETY (the blocks below): pieces of blocks of the `len` elements at
                // `data`; the receive buffer is `scratch` (at least `piece` elements) or
                // a block that is not sent in this step.
                let target = unsafe { data.add((recv_at + i) * width) };
                let mut reqs = unsafe { [ffi::RSMPI_REQUEST_NULL; 2] };
                {
                    let m = self.lock_mpi();
                    if a > 0 {
                        let rc = unsafe {
                            ffi::MPI_Isend(
                                data.add((send_at + i) * width).cast(),
                                a as c_int,
                                datatype,
                                right as c_int,
                                RING_TAG,
                                m.ring_comm,
                                &mut reqs[0],
                            )
                        };
                        check("MPI_Isend", rc)?;
                    }
                    if b > 0 {
                        let into = if reduce { scratch.as_mut_ptr() } else { target };
                        let rc = unsafe {
                            ffi::MPI_Irecv(
                                into.cast(),
                                b as c_int,
                                datatype,
                                left as c_int,
                                RING_TAG,
                                m.ring_comm,
                                &mut reqs[1],
                            )
                        };
                        check("MPI_Irecv", rc)?;
                    }
                }
                let deadline = Instant::now() + self.timeout;
                self.wait(&mut reqs, deadline, Phase::Transfer, Some(left), what)?;
                if reduce && b > 0 {
                    let _m = self.lock_mpi();
                    let rc = unsafe {
                        ffi::MPI_Reduce_local(
                            scratch.as_ptr().cast(),
                            target.cast(),
                            b as c_int,
                            datatype,
                            ffi::RSMPI_SUM,
                        )
                    };
                    check("MPI_Reduce_local", rc)?;
                }
                i += piece;
            }
        }
        Ok(())
    }
}

impl Mpi {
    /// Takes in the heartbeats that arrived, and (with `send`) sends this rank's call count
    /// to every rank whose previous heartbeat has left.
    fn tick(&mut self, me: usize, calls: u64, send: bool) -> Result<(), CollectiveError> {
        let now = Instant::now();
        let comm = self.heartbeat_comm;
        for (r, b) in self.beats.iter_mut().enumerate() {
            if r == me {
                continue;
            }
            // SAFETY (all blocks below): the buffers are boxed in `self`, which outlives
            // the requests (they are completed, cancelled or leaked with it).
            unsafe {
                loop {
                    if b.recv == ffi::RSMPI_REQUEST_NULL {
                        let rc = ffi::MPI_Irecv(
                            b.recv_buf.as_mut_ptr().cast(),
                            2,
                            ffi::RSMPI_UINT64_T,
                            r as c_int,
                            HEARTBEAT_TAG,
                            comm,
                            &mut b.recv,
                        );
                        check("MPI_Irecv (heartbeat)", rc)?;
                    }
                    let mut done: c_int = 0;
                    let rc = ffi::MPI_Test(&mut b.recv, &mut done, ffi::RSMPI_STATUS_IGNORE);
                    check("MPI_Test (heartbeat)", rc)?;
                    if done == 0 {
                        break;
                    }
                    b.last_heard = now;
                    b.their_calls = b.recv_buf[0];
                    b.heard = true;
                }
                if send {
                    if b.send != ffi::RSMPI_REQUEST_NULL {
                        let mut done: c_int = 0;
                        let rc = ffi::MPI_Test(&mut b.send, &mut done, ffi::RSMPI_STATUS_IGNORE);
                        check("MPI_Test (heartbeat)", rc)?;
                    }
                    if b.send == ffi::RSMPI_REQUEST_NULL {
                        *b.send_buf = [calls, 0];
                        let rc = ffi::MPI_Isend(
                            b.send_buf.as_ptr().cast(),
                            2,
                            ffi::RSMPI_UINT64_T,
                            r as c_int,
                            HEARTBEAT_TAG,
                            comm,
                            &mut b.send,
                        );
                        check("MPI_Isend (heartbeat)", rc)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the heartbeat exchange after every rank has stopped sending: cancels the
    /// receives, lets the sends finish (or frees them), frees the communicators.
    fn close(&mut self) -> Result<(), CollectiveError> {
        let give_up = Instant::now() + Duration::from_secs(1);
        for b in &mut self.beats {
            // SAFETY: the requests are this process's; their buffers are alive.
            unsafe {
                if b.recv != ffi::RSMPI_REQUEST_NULL {
                    check("MPI_Cancel (heartbeat)", ffi::MPI_Cancel(&mut b.recv))?;
                    check(
                        "MPI_Wait (heartbeat)",
                        ffi::MPI_Wait(&mut b.recv, ffi::RSMPI_STATUS_IGNORE),
                    )?;
                }
                while b.send != ffi::RSMPI_REQUEST_NULL {
                    let mut done: c_int = 0;
                    let rc = ffi::MPI_Test(&mut b.send, &mut done, ffi::RSMPI_STATUS_IGNORE);
                    check("MPI_Test (heartbeat)", rc)?;
                    if done == 0 && Instant::now() > give_up {
                        check("MPI_Request_free", ffi::MPI_Request_free(&mut b.send))?;
                    }
                }
            }
        }
        // SAFETY: no request on either communicator is pending.
        unsafe {
            check(
                "MPI_Comm_free",
                ffi::MPI_Comm_free(&mut self.heartbeat_comm),
            )?;
            check("MPI_Comm_free", ffi::MPI_Comm_free(&mut self.ring_comm))?;
            check("MPI_Comm_free", ffi::MPI_Comm_free(&mut self.comm))?;
        }
        Ok(())
    }
}

impl MpiCollective {
    /// Initializes MPI (`MPI_Init_thread` with `MPI_THREAD_SERIALIZED`) and returns this
    /// process's rank of `MPI_COMM_WORLD`, whose calls wait at most `timeout` for the
    /// other ranks ([`DEFAULT_TIMEOUT`], 60 s, where the caller has nothing better; the
    /// heartbeat period is derived from it). Exchanges the ranks' host names and process
    /// ids (a collective call with the same timeout) and starts the heartbeat thread.
    ///
    /// `timeout` is wall-clock time per phase of a call (see the module documentation); a
    /// zero timeout fails every call that has to wait. Takes about 0.25 s with Open MPI 4.1
    /// on one host (mostly `MPI_Init`); `MPI_Init` itself has no deadline (it waits for the
    /// launcher).
    ///
    /// Once per process: a second call, or a call after other code initialized MPI, is a
    /// [`CollectiveError::Transport`] error; so is a library that grants less than
    /// `MPI_THREAD_SERIALIZED`. A process not started by an MPI launcher gets a group of
    /// one where the library supports that (singleton init: Open MPI and MPICH do); ask
    /// [`launched_by_mpi`](crate::distributed::launched_by_mpi) first to tell the cases
    /// apart. On an error after `MPI_Init`, MPI is left unfinalized (a peer may be lost):
    /// end the process.
    pub fn init(timeout: Duration) -> Result<MpiCollective, CollectiveError> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(CollectiveError::Transport(
                "MPI was already initialized by this process (MpiCollective::init is once per process)"
                    .to_string(),
            ));
        }
        let library = mpi::environment::library_version()
            .unwrap_or_default()
            .trim_end_matches(['\0', '\n', ' '])
            .to_string();
        let Some((universe, threading)) = mpi::initialize_with_threading(Threading::Serialized)
        else {
            return Err(CollectiveError::Transport(
                "MPI was already initialized in this process by other code".to_string(),
            ));
        };
        if threading < Threading::Serialized {
            drop(universe);
            return Err(CollectiveError::Transport(format!(
                "the MPI library ({}) grants only {threading:?} threading; Xenon needs \
                 Serialized or Multiple",
                library.lines().next().unwrap_or("unknown")
            )));
        }
        // SAFETY: MPI is initialized; errors return instead of aborting from here on.
        let (rank, size) = unsafe {
            let world = ffi::RSMPI_COMM_WORLD;
            ffi::MPI_Comm_set_errhandler(world, ffi::RSMPI_ERRORS_RETURN);
            let (mut rank, mut size): (c_int, c_int) = (0, 0);
            let setup = check("MPI_Comm_rank", ffi::MPI_Comm_rank(world, &mut rank))
                .and_then(|_| check("MPI_Comm_size", ffi::MPI_Comm_size(world, &mut size)));
            if let Err(e) = setup {
                std::mem::forget(universe);
                return Err(e);
            }
            (rank as usize, size as usize)
        };
        let heartbeat = (timeout / 8).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let now = Instant::now();
        let beats = (0..size)
            .map(|_| Beat {
                recv: unsafe { ffi::RSMPI_REQUEST_NULL },
                recv_buf: Box::new([0; 2]),
                send: unsafe { ffi::RSMPI_REQUEST_NULL },
                send_buf: Box::new([0; 2]),
                last_heard: now,
                their_calls: 0,
                heard: false,
            })
            .collect();
        let shared = Arc::new(Shared {
            rank,
            size,
            timeout,
            heartbeat,
            peers: OnceLock::new(),
            // Until `duplicate_world`, the world itself.
            mpi: Mutex::new(Mpi {
                comm: unsafe { ffi::RSMPI_COMM_WORLD },
                ring_comm: unsafe { ffi::RSMPI_COMM_NULL },
                heartbeat_comm: unsafe { ffi::RSMPI_COMM_NULL },
                beats,
                broken: None,
            }),
            call: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            heartbeat_waiting: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            in_place: in_place_of(&library),
            max_chunk: AtomicUsize::new(MPI_MAX_COUNT),
            process_checks: AtomicBool::new(true),
        });
        let mut group = MpiCollective {
            shared,
            heartbeat: None,
            universe: Some(universe),
            library,
            threading,
        };
        if let Err(e) = group.exchange_peers().and_then(|_| group.duplicate_world()) {
            // Dropping the group leaves MPI unfinalized.
            group.shared.set_broken(&e);
            return Err(e);
        }
        if size > 1 {
            let shared = group.shared.clone();
            let thread = std::thread::Builder::new()
                .name("xenon-mpi-heartbeat".to_string())
                .spawn(move || heartbeat_loop(&shared))
                .map_err(|e| {
                    CollectiveError::Transport(format!("cannot start the heartbeat thread: {e}"))
                });
            match thread {
                Ok(t) => group.heartbeat = Some(t),
                Err(e) => {
                    group.shared.set_broken(&e);
                    return Err(e);
                }
            }
        }
        Ok(group)
    }

    /// The private communicators (three duplicates of `MPI_COMM_WORLD`, by
    /// `MPI_Comm_idup` with the call timeout).
    fn duplicate_world(&self) -> Result<(), CollectiveError> {
        let sh = &*self.shared;
        // Boxed: MPI writes each handle when its duplication completes.
        let mut comms = Box::new([unsafe { ffi::RSMPI_COMM_NULL }; 3]);
        for c in comms.iter_mut() {
            let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
            {
                let _m = sh.lock_mpi();
                // SAFETY: `c` is written when the request completes (leaked if not).
                let rc = unsafe { ffi::MPI_Comm_idup(ffi::RSMPI_COMM_WORLD, c, &mut req) };
                check("MPI_Comm_idup", rc)?;
            }
            let what = || "duplication of MPI_COMM_WORLD at start".to_string();
            let deadline = Instant::now() + sh.timeout;
            if let Err(e) = sh.wait(
                std::slice::from_mut(&mut req),
                deadline,
                Phase::Arrival,
                None,
                &what,
            ) {
                Box::leak(comms);
                return Err(e);
            }
        }
        let mut m = sh.lock_mpi();
        [m.comm, m.ring_comm, m.heartbeat_comm] = *comms;
        Ok(())
    }

    /// Every rank's [`Peer`] record, by an all-gather with the call timeout.
    fn exchange_peers(&self) -> Result<(), CollectiveError> {
        let sh = &*self.shared;
        let me = Peer::this_process();
        if sh.size == 1 {
            let _ = sh.peers.set(vec![me]);
            return Ok(());
        }
        let what = || "exchange of host names at start".to_string();
        let all = sh.gather_records(&me.encode(), &what)?;
        let peers = all.chunks_exact(RECORD_BYTES).map(Peer::decode).collect();
        let _ = sh.peers.set(peers);
        Ok(())
    }

    /// The timeout of each phase of a call (given to [`MpiCollective::init`]).
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// How often the heartbeat thread sends its call count to every other rank: an eighth
    /// of the timeout, at least 50 ms and at most 1 s. A rank silent for 3 periods counts
    /// as stalled when a call times out.
    pub fn heartbeat_period(&self) -> Duration {
        self.shared.heartbeat
    }

    /// Every rank's host and process id, in rank order.
    pub fn peers(&self) -> &[Peer] {
        self.shared.peers()
    }

    /// The MPI library's version string (`MPI_Get_library_version`, e.g. `Open MPI v4.1.4,
    /// package: …`).
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The threading level MPI granted (`Serialized` or `Multiple`).
    pub fn threading(&self) -> Threading {
        self.threading
    }

    /// The error that broke the group, if a call failed with `Lost` or `Transport` (every
    /// later call returns it; see the module documentation).
    pub fn failure(&self) -> Option<CollectiveError> {
        self.shared.broken()
    }

    /// Sets the most elements (f32, f64, u8) that one MPI operation (a message of the
    /// ring, a collective) moves; longer buffers are moved in several. Default and maximum `i32::MAX` (MPI counts are C `int`s);
    /// smaller values only serve tests of the splitting. Every rank must set the same
    /// value (calls are a [`CollectiveError::Mismatch`] otherwise).
    pub fn set_max_chunk(&self, elements: usize) {
        self.shared
            .max_chunk
            .store(elements.clamp(1, MPI_MAX_COUNT), Ordering::Relaxed);
    }

    /// Whether ranks on this host are looked up in the process table (`/proc/PID/stat`)
    /// while a call waits and when it times out (default: on). Off, they are judged by
    /// their heartbeats alone, as ranks on other hosts always are: for tests of that path.
    pub fn set_process_checks(&self, on: bool) {
        self.shared.process_checks.store(on, Ordering::Relaxed);
    }

    /// Runs `f` with the MPI lock held, on the communicator of this type's collectives (a
    /// duplicate of `MPI_COMM_WORLD`): for measurements against plain MPI and for calls this
    /// type does not offer. No deadline applies; every rank must make the same calls; the
    /// heartbeat thread waits meanwhile (a long `f` makes this rank look silent to the
    /// others). Errors return (`MPI_ERRORS_RETURN`) rather than abort.
    pub fn with_raw_comm<R>(&self, f: impl FnOnce(ffi::MPI_Comm) -> R) -> R {
        let _call = self.shared.call.lock().unwrap_or_else(|p| p.into_inner());
        let m = self.shared.lock_mpi();
        f(m.comm)
    }

    /// Finalizes MPI: stops the heartbeats, waits (at most the timeout) until every rank
    /// has, frees the communicators and calls `MPI_Finalize` (which waits for every rank
    /// to finalize). Dropping the group does the same and ignores errors. On a broken
    /// group, or when the ranks do not all come, MPI is left unfinalized and the error is
    /// returned: end the process then (see [`MpiCollective::abandon`]).
    pub fn finalize(mut self) -> Result<(), CollectiveError> {
        self.shutdown()
    }

    /// Ends the process with exit status `code` (non-zero, so that `mpirun` ends the run)
    /// without finalizing MPI, after flushing standard output and error: what a rank does
    /// after a `Lost` error, since `MPI_Finalize` would wait for the lost rank. `mpirun`
    /// then reports the rank's exit status and kills the remaining ranks, stalled ones
    /// included, and exits with that status. (`_exit`: no destructors or `atexit` handlers
    /// run, so nothing can block in MPI.)
    pub fn abandon(mut self, code: i32) -> ! {
        self.stop_heartbeat();
        if let Some(u) = self.universe.take() {
            std::mem::forget(u);
        }
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        #[cfg(unix)]
        // SAFETY: ends the process at once; nothing runs afterwards.
        unsafe {
            libc::_exit(code)
        }
        #[cfg(not(unix))]
        std::process::exit(code)
    }

    fn stop_heartbeat(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.heartbeat.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }

    fn shutdown(&mut self) -> Result<(), CollectiveError> {
        let Some(universe) = self.universe.take() else {
            return Ok(());
        };
        self.stop_heartbeat();
        let result = self.close_mpi();
        match result {
            Ok(()) => drop(universe),
            Err(_) => std::mem::forget(universe),
        }
        result
    }

    /// The collective end of the heartbeats, then the communicators.
    fn close_mpi(&self) -> Result<(), CollectiveError> {
        let sh = &*self.shared;
        if let Some(e) = sh.broken() {
            return Err(e);
        }
        if sh.size > 1 {
            // After this barrier no rank sends heartbeats any more.
            let what = || "barrier at the end of the run".to_string();
            let _call = sh.call.lock().unwrap_or_else(|p| p.into_inner());
            sh.calls.fetch_add(1, Ordering::Relaxed);
            let mut req: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
            {
                let m = sh.lock_mpi();
                // SAFETY: a barrier has no buffers.
                check("MPI_Ibarrier", unsafe {
                    ffi::MPI_Ibarrier(m.comm, &mut req)
                })?;
            }
            let deadline = Instant::now() + sh.timeout;
            if let Err(e) = sh.wait(
                std::slice::from_mut(&mut req),
                deadline,
                Phase::Arrival,
                None,
                &what,
            ) {
                sh.set_broken(&e);
                return Err(e);
            }
        }
        let result = sh.lock_mpi().close();
        if let Err(e) = &result {
            sh.set_broken(e);
        }
        result
    }
}

impl Drop for MpiCollective {
    /// Finalizes MPI as [`MpiCollective::finalize`] does, or leaves it unfinalized on a
    /// broken group.
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The heartbeat thread: every period, takes in heartbeats and sends this rank's call
/// count to every other rank, until stopped or the group breaks.
fn heartbeat_loop(sh: &Shared) {
    loop {
        std::thread::park_timeout(sh.heartbeat);
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        sh.heartbeat_waiting.store(true, Ordering::Relaxed);
        let mut m = sh.lock_mpi();
        sh.heartbeat_waiting.store(false, Ordering::Relaxed);
        if m.broken.is_some() || sh.stop.load(Ordering::SeqCst) {
            return;
        }
        let calls = sh.calls.load(Ordering::Relaxed);
        if let Err(e) = m.tick(sh.rank, calls, true) {
            m.broken = Some(e);
            return;
        }
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.shared.rank
    }

    /// The ranks whose host name and machine match this one's.
    fn local_ranks(&self) -> usize {
        let peers = self.peers();
        match peers.get(self.shared.rank) {
            Some(me) => peers
                .iter()
                .filter(|p| p.host == me.host && p.machine == me.machine)
                .count()
                .max(1),
            None => 1,
        }
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn all_reduce_sum(&self, data: ReduceBuf<'_>) -> Result<(), CollectiveError> {
        let sh = &*self.shared;
        let (kind, len, datatype, width) = match &data {
            ReduceBuf::F32(d) => (1, d.len(), unsafe { ffi::RSMPI_FLOAT }, 4),
            ReduceBuf::F64(d) => (2, d.len(), unsafe { ffi::RSMPI_DOUBLE }, 8),
        };
        let what = || {
            format!(
                "all-reduce of {len} {}",
                if kind == 1 { "f32" } else { "f64" }
            )
        };
        if sh.size == 1 {
            return Ok(());
        }
        let ptr: *mut u8 = match data {
            ReduceBuf::F32(d) => d.as_mut_ptr().cast(),
            ReduceBuf::F64(d) => d.as_mut_ptr().cast(),
        };
        let header = Header::data(kind, len, sh.max_chunk.load(Ordering::Relaxed));
        sh.call(header, &what, |sh, scratch| {
            if len * width >= RING_MIN_BYTES && len >= sh.size {
                // SAFETY: `ptr` points at the `len` elements borrowed for this call.
                return unsafe {
                    sh.ring_all_reduce(
                        ptr,
                        len,
                        (width, datatype),
                        scratch,
                        &what,
                        0..2 * (sh.size - 1),
                    )
                };
            }
            let in_place = sh.in_place;
            // Libraries whose MPI_IN_PLACE is unknown get a copy of each chunk to send.
            let mut send: Vec<u8> = Vec::new();
            let r = sh.chunked(
                len,
                &what,
                |comm, at, n, req| {
                    // SAFETY: `ptr` points at `len` elements of `width` bytes, borrowed
                    // mutably for this call; chunk `at..at + n` is within them.
                    unsafe {
                        let recv = ptr.add(at * width);
                        let sendbuf: *const c_void = match in_place {
                            Some(p) => std::ptr::without_provenance::<c_void>(p),
                            None => {
                                send.clear();
                                send.extend_from_slice(std::slice::from_raw_parts(
                                    recv,
                                    n as usize * width,
                                ));
                                send.as_ptr().cast()
                            }
                        };
                        ffi::MPI_Iallreduce(
                            sendbuf,
                            recv.cast(),
                            n,
                            datatype,
                            ffi::RSMPI_SUM,
                            comm,
                            req,
                        )
                    }
                },
                "MPI_Iallreduce",
            );
            if r.is_err() {
                std::mem::forget(send);
            }
            r
        })?;
        Ok(())
    }

    fn reduce_scatter_sum(&self, data: ReduceBuf<'_>) -> Result<(), CollectiveError> {
        self.ring_half(data, true)
    }

    fn all_gather(&self, data: ReduceBuf<'_>) -> Result<(), CollectiveError> {
        self.ring_half(data, false)
    }

    fn all_gather_u64(&self, value: u64) -> Result<Vec<u64>, CollectiveError> {
        let sh = &*self.shared;
        if sh.size == 1 {
            return Ok(vec![value]);
        }
        let header = Header {
            kind: 3,
            len: 1,
            root: 0,
            chunk: sh.max_chunk.load(Ordering::Relaxed) as u64,
            value,
        };
        let headers = sh.call(header, &|| "all-gather".to_string(), |_, _| Ok(()))?;
        Ok(headers.iter().map(|h| h.value).collect())
    }

    fn broadcast(&self, root: usize, data: &mut [u8]) -> Result<(), CollectiveError> {
        let sh = &*self.shared;
        if root >= sh.size {
            return Err(CollectiveError::Mismatch(format!(
                "broadcast from rank {root} of {}",
                sh.size
            )));
        }
        if sh.size == 1 {
            return Ok(());
        }
        let len = data.len();
        let what = || format!("broadcast of {len} bytes");
        let header = Header {
            kind: 4,
            len: len as u64,
            root: root as u64,
            chunk: sh.max_chunk.load(Ordering::Relaxed) as u64,
            value: 0,
        };
        let ptr = data.as_mut_ptr();
        sh.call(header, &what, |sh, _| {
            sh.chunked(
                len,
                &what,
                // SAFETY: chunk `at..at + n` of the `len` bytes borrowed for this call.
                |comm, at, n, req| unsafe {
                    ffi::MPI_Ibcast(
                        ptr.add(at).cast(),
                        n,
                        ffi::RSMPI_UINT8_T,
                        root as c_int,
                        comm,
                        req,
                    )
                },
                "MPI_Ibcast",
            )
        })?;
        Ok(())
    }
}

impl MpiCollective {
    /// One half of the ring all-reduce over `data`: the reduce-scatter (`reduce`) or the
    /// all-gather of the ranks' parts ([`part`]).
    fn ring_half(&self, data: ReduceBuf<'_>, reduce: bool) -> Result<(), CollectiveError> {
        let sh = &*self.shared;
        let (f64s, len) = (matches!(data, ReduceBuf::F64(_)), data.len());
        let (datatype, width) = if f64s {
            (unsafe { ffi::RSMPI_DOUBLE }, 8)
        } else {
            (unsafe { ffi::RSMPI_FLOAT }, 4)
        };
        let kind = match (reduce, f64s) {
            (true, false) => 5,
            (true, true) => 6,
            (false, false) => 7,
            (false, true) => 8,
        };
        let header = Header::data(kind, len, sh.max_chunk.load(Ordering::Relaxed));
        let what = || {
            header
                .describe()
                .replacen("a ", "", 1)
                .replacen("an ", "", 1)
        };
        if sh.size == 1 {
            return Ok(());
        }
        let ptr: *mut u8 = match data {
            ReduceBuf::F32(d) => d.as_mut_ptr().cast(),
            ReduceBuf::F64(d) => d.as_mut_ptr().cast(),
        };
        let p = sh.size;
        let steps = if reduce { 0..p - 1 } else { p - 1..2 * (p - 1) };
        sh.call(header, &what, |sh, scratch| {
            // SAFETY: `ptr` points at the `len` elements borrowed for this call.
            unsafe { sh.ring_all_reduce(ptr, len, (width, datatype), scratch, &what, steps) }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_parsed_past_odd_command_names() {
        let line =
            "4242 (a (b) c) T 1 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('T', 987654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn peer_records_round_trip() {
        let p = Peer {
            host: "node7".into(),
            pid: 4242,
            machine: "b00t-id pid:[4026531836]".into(),
            start_time: 123,
        };
        assert_eq!(Peer::decode(&p.encode()), p);
        assert_eq!(p.to_string(), "pid 4242 on node7");
    }

    #[test]
    fn this_process_is_running_and_a_dead_pid_is_gone() {
        let me = Peer::this_process_on("here".into());
        assert_eq!(process_state(&me), ProcessState::Running);
        let reused = Peer {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        if cfg!(target_os = "linux") {
            assert_eq!(process_state(&reused), ProcessState::Gone);
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Peer {
            pid,
            start_time: 0,
            ..me
        };
        assert_eq!(process_state(&gone), ProcessState::Gone);
    }

    #[test]
    fn headers_describe_and_compare_calls() {
        let a = Header {
            kind: 1,
            len: 3,
            root: 0,
            chunk: 9,
            value: 0,
        };
        assert_eq!(a.describe(), "an all-reduce of 3 f32");
        assert!(a.matches(&Header { value: 5, ..a }));
        assert!(!a.matches(&Header { len: 4, ..a }));
        let b = Header {
            kind: 4,
            len: 8,
            root: 1,
            chunk: 9,
            value: 0,
        };
        assert_eq!(b.describe(), "a broadcast of 8 bytes from rank 1");
        assert_eq!(in_place_of("Open MPI v4.1.4, package: Debian"), Some(1));
        assert_eq!(in_place_of("MPICH Version: 4.1"), Some(usize::MAX));
        assert_eq!(in_place_of("something else"), None);
    }
}
