//! Probes `xenon::distributed::mpi::MpiCollective` under `mpirun` (Cargo feature `mpi`):
//!
//! ```text
//! mpirun -np 2 target/release/examples/mpi_probe check            # correctness
//! mpirun -np 2 target/release/examples/mpi_probe bench [ELEMS] [REPS]
//! mpirun -np 2 target/release/examples/mpi_probe loop [TIMEOUT_MS] [ON_ERROR] [CHECKS] [ELEMS]
//! target/release/examples/mpi_probe check                         # singleton: 1 rank
//! ```
//!
//! `check` exercises every call (chunked all-reduces, all-gathers, broadcasts, a deliberate
//! mismatch) and prints `rank R: check passed`. `bench` times a 6M-f32 all-reduce (by
//! default) against a plain blocking `MPI_Allreduce`, alternating, and prints medians.
//! `loop` all-reduces forever (printing `rank R pid P ready` first, then a line per 100
//! iterations); on an error it prints `rank R: error after S s: MESSAGE` and ends as
//! `ON_ERROR` says: `abandon` (default: `MpiCollective::abandon(3)`), `exit` (drop the
//! broken group, then `std::process::exit(3)`), or `abort` (`MPI_Abort`). `CHECKS`
//! `heartbeats` turns the process-table checks off (ranks judged as if on other hosts);
//! `ELEMS` is the all-reduce's length (default 100,000 f32).

use std::io::Write as _;
use std::time::{Duration, Instant};

use xenon::distributed::mpi::MpiCollective;
use xenon::runtime::collective::{Collective, CollectiveError, ReduceBuf};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("check");
    let arg = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let timeout = match mode {
        "loop" => Duration::from_millis(arg(1, 3000)),
        _ => Duration::from_secs(60),
    };
    // Before MPI_Init: Open MPI's singleton init sets OMPI_* variables in this process.
    let launched = xenon::distributed::launched_by_mpi();
    let t0 = Instant::now();
    let comm = match MpiCollective::init(timeout) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("init failed: {e}");
            std::process::exit(2);
        }
    };
    let r = comm.rank();
    say(&format!(
        "rank {r} of {} pid {} on {} (init {:.0} ms, heartbeat {} ms, {:?} threading; launched by MPI: {})",
        comm.size(),
        std::process::id(),
        comm.peers()[r].host,
        t0.elapsed().as_secs_f64() * 1e3,
        comm.heartbeat_period().as_millis(),
        comm.threading(),
        launched,
    ));
    match mode {
        "check" => check(&comm),
        "bench" => bench(&comm, arg(1, 6_000_000) as usize, arg(2, 15) as usize),
        "loop" => {
            let on_error = args.get(2).map(String::as_str).unwrap_or("abandon");
            if args.get(3).is_some_and(|a| a == "heartbeats") {
                comm.set_process_checks(false);
            }
            if let Err(e) = run_loop(&comm, arg(4, 100_000) as usize) {
                say(&format!(
                    "rank {r}: error after {:.2} s: {e}",
                    e.1.as_secs_f64()
                ));
                match on_error {
                    "exit" => {
                        drop(comm);
                        say(&format!("rank {r}: exiting"));
                        std::process::exit(3);
                    }
                    "abort" => comm.with_raw_comm(|c| unsafe {
                        mpi::ffi::MPI_Abort(c, 3);
                    }),
                    _ => comm.abandon(3),
                }
            }
        }
        m => {
            eprintln!("unknown mode {m}");
            std::process::exit(2);
        }
    }
    comm.finalize().expect("finalize");
    say(&format!("rank {r}: finalized"));
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A hash of bit patterns (FNV-1a).
fn hash_bits(words: impl Iterator<Item = u64>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in words {
        h = (h ^ w).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A deterministic pseudo-random value per (rank, index), spread over many magnitudes so
/// that the order of summation shows in the low bits.
fn noise(rank: usize, i: usize) -> f64 {
    let mut x = (rank as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 29;
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    (unit - 0.5) * 10f64.powi((i % 13) as i32 - 6)
}

/// All-reduces `len` f64 of [`noise`] and checks the sums to 1e-12.
fn check_noise_sum(comm: &MpiCollective, len: usize, what: &str) {
    let (r, n) = (comm.rank(), comm.size());
    let mut v: Vec<f64> = (0..len).map(|i| noise(r, i)).collect();
    comm.all_reduce_sum(ReduceBuf::F64(&mut v)).unwrap();
    for (i, x) in v.iter().enumerate() {
        let want: f64 = (0..n).map(|q| noise(q, i)).sum();
        assert!(
            (x - want).abs() <= 1e-12 * want.abs().max(1e-6),
            "{what} at {i}: {x} vs {want}"
        );
    }
}

fn check(comm: &MpiCollective) {
    let (r, n) = (comm.rank(), comm.size());
    // Exact sums: rank + 1 + index.
    for &len in &[1usize, 7, 1000, 100_003] {
        let mut v: Vec<f32> = (0..len).map(|i| (r + 1 + i % 100) as f32).collect();
        comm.all_reduce_sum(ReduceBuf::F32(&mut v)).unwrap();
        let ranks_sum = (n * (n + 1) / 2) as f32;
        for (i, x) in v.iter().enumerate() {
            assert_eq!(
                *x,
                ranks_sum + (n * (i % 100)) as f32,
                "f32 len {len} at {i}"
            );
        }
        let mut w: Vec<f64> = (0..len).map(|i| (r * len + i) as f64).collect();
        comm.all_reduce_sum(ReduceBuf::F64(&mut w)).unwrap();
        for (i, x) in w.iter().enumerate() {
            let want: usize = (0..n).map(|q| q * len + i).sum();
            assert_eq!(*x, want as f64, "f64 len {len} at {i}");
        }
    }
    // Chunked: 2,500 elements in calls of at most 1,000.
    comm.set_max_chunk(1000);
    check_noise_sum(comm, 2500, "chunked");
    // The ring (at least 64 KiB) in pieces of at most 7,000 elements.
    comm.set_max_chunk(7000);
    check_noise_sum(comm, 50_001, "ring in pieces");
    // The ring's halves: a reduce-scatter leaves this rank's part summed as the whole
    // all-reduce sums it (same bits); the all-gather then completes every rank's copy,
    // whatever the other parts held. Also pieces of 7,000, and lengths below the ranks.
    for len in [50_001usize, 2, 1] {
        let mut whole: Vec<f64> = (0..len).map(|i| noise(r, i)).collect();
        comm.all_reduce_sum(ReduceBuf::F64(&mut whole)).unwrap();
        let mut v: Vec<f64> = (0..len).map(|i| noise(r, i)).collect();
        comm.reduce_scatter_sum(ReduceBuf::F64(&mut v)).unwrap();
        let mine = xenon::runtime::collective::part(len, r, n);
        assert_eq!(
            v[mine.clone()],
            whole[mine.clone()],
            "reduce-scatter of {len}"
        );
        for (i, x) in v.iter_mut().enumerate() {
            if !mine.contains(&i) {
                *x = f64::NAN;
            }
        }
        comm.all_gather(ReduceBuf::F64(&mut v)).unwrap();
        assert!(
            v.iter()
                .zip(&whole)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "all-gather of {len}"
        );
    }
    comm.set_max_chunk(1000);
    let mut b: Vec<u8> = (0..2500).map(|i| (i * (r + 1)) as u8).collect();
    comm.broadcast(n - 1, &mut b).unwrap();
    assert!(
        b.iter().enumerate().all(|(i, &x)| x == (i * n) as u8),
        "chunked broadcast"
    );
    comm.set_max_chunk(usize::MAX);
    // Every rank gets the same bits, even where the order of summation matters (3 ranks
    // or more): the ring (1M f32) and one MPI_Iallreduce (1,000 f32).
    for len in [1_000_000, 1_000] {
        let mut v: Vec<f32> = (0..len).map(|i| noise(r, i) as f32).collect();
        comm.all_reduce_sum(ReduceBuf::F32(&mut v)).unwrap();
        let h = hash_bits(v.iter().map(|x| x.to_bits() as u64));
        let all = comm.all_gather_u64(h).unwrap();
        assert!(
            all.iter().all(|&x| x == all[0]),
            "ranks got different bits for {len} f32: {all:x?}"
        );
    }
    // All-gather and broadcast.
    let g = comm.all_gather_u64(100 + r as u64).unwrap();
    assert_eq!(g, (0..n as u64).map(|q| 100 + q).collect::<Vec<_>>());
    let mut b = [r as u8; 5];
    comm.broadcast(0, &mut b).unwrap();
    assert_eq!(b, [0; 5]);
    // A mismatch is named on every rank and leaves the group usable.
    if n > 1 {
        let mut v = vec![1.0f32; 2 + r];
        let e = comm.all_reduce_sum(ReduceBuf::F32(&mut v)).unwrap_err();
        assert_eq!(
            e,
            CollectiveError::Mismatch(
                "rank 1 called an all-reduce of 3 f32 while rank 0 called an all-reduce of 2 f32"
                    .into()
            )
        );
        say(&format!("rank {r}: mismatch reported: {e}"));
        let e = if r == 0 {
            comm.all_gather_u64(1).unwrap_err()
        } else {
            comm.broadcast(0, &mut [0u8; 4]).unwrap_err()
        };
        assert!(matches!(e, CollectiveError::Mismatch(_)), "{e}");
        say(&format!("rank {r}: mismatch reported: {e}"));
        let mut v = vec![1.0f64; 3];
        comm.all_reduce_sum(ReduceBuf::F64(&mut v)).unwrap();
        assert_eq!(v, vec![n as f64; 3]);
    }
    assert!(comm.broadcast(n, &mut [0u8]).is_err());
    // MPI is initialized once per process.
    let again = MpiCollective::init(Duration::from_secs(1)).unwrap_err();
    assert!(matches!(again, CollectiveError::Transport(_)), "{again}");
    say(&format!("rank {r}: check passed"));
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(comm: &MpiCollective, elems: usize, reps: usize) {
    use mpi::ffi;
    let r = comm.rank();
    let mut data = vec![1.0f32; elems];
    // Open MPI's MPI_IN_PLACE is (void *) 1.
    let in_place = std::ptr::without_provenance::<std::ffi::c_void>(1);
    // Plain MPI, with the lock held: 0 blocking MPI_Allreduce, 1 MPI_Iallreduce +
    // MPI_Wait, 2 MPI_Iallreduce + MPI_Test polled with yields.
    let plain = |data: &mut [f32], how: usize| {
        comm.with_raw_comm(|c| unsafe {
            let (p, n) = (data.as_mut_ptr().cast(), data.len() as i32);
            let (f, sum) = (ffi::RSMPI_FLOAT, ffi::RSMPI_SUM);
            if how == 0 {
                assert_eq!(ffi::MPI_Allreduce(in_place, p, n, f, sum, c), 0);
                return;
            }
            let mut req = ffi::RSMPI_REQUEST_NULL;
            assert_eq!(ffi::MPI_Iallreduce(in_place, p, n, f, sum, c, &mut req), 0);
            if how == 1 {
                assert_eq!(ffi::MPI_Wait(&mut req, ffi::RSMPI_STATUS_IGNORE), 0);
                return;
            }
            loop {
                let mut done = 0;
                assert_eq!(
                    ffi::MPI_Test(&mut req, &mut done, ffi::RSMPI_STATUS_IGNORE),
                    0
                );
                if done != 0 {
                    break;
                }
                std::thread::yield_now();
            }
        })
    };
    let names = [
        "MPI_Allreduce",
        "MPI_Iallreduce+MPI_Wait",
        "MPI_Iallreduce+MPI_Test loop",
        "MpiCollective::all_reduce_sum",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for rep in 0..reps + 2 {
        for (how, t) in times.iter_mut().enumerate() {
            let start = Instant::now();
            if how < 3 {
                plain(&mut data, how);
            } else {
                comm.all_reduce_sum(ReduceBuf::F32(&mut data)).unwrap();
            }
            if rep >= 2 {
                t.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let base = median(&mut times[0].clone());
    for (name, t) in names.iter().zip(&mut times) {
        let m = median(t);
        say(&format!(
            "rank {r}: {elems} f32 x {reps}: {name:<30} median {m:9.1} us  min {:9.1} us  {:+6.1}%",
            t[0],
            (m / base - 1.0) * 100.0
        ));
    }
    // The latency of a call: an all-gather of one u64 (the header exchange alone).
    let mut t = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        comm.all_gather_u64(7).unwrap();
        t.push(start.elapsed().as_secs_f64() * 1e6);
    }
    say(&format!(
        "rank {r}: all_gather_u64 x 200: median {:.1} us",
        median(&mut t)
    ));
}

/// All-reduces until an error; returns it with the time since the last success.
fn run_loop(comm: &MpiCollective, elems: usize) -> Result<(), Error> {
    let r = comm.rank();
    say(&format!("rank {r} pid {} ready", std::process::id()));
    let mut v = vec![0.0f32; elems];
    let mut last = Instant::now();
    for i in 0u64.. {
        v.fill(1.0);
        comm.all_reduce_sum(ReduceBuf::F32(&mut v))
            .map_err(|e| Error(e, last.elapsed()))?;
        assert_eq!(v[0], comm.size() as f32);
        last = Instant::now();
        if i % 100 == 0 {
            say(&format!("rank {r} iteration {i}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

#[derive(Debug)]
struct Error(CollectiveError, Duration);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
