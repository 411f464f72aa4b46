//! `MpiCollective` under a real `mpirun` (Cargo feature `mpi`): runs `examples/mpi_probe.rs`
//! on 2 ranks for the sums, and stops or kills one rank to check that the other reports
//! it (`Lost`, naming rank 1) within the timeout instead of hanging. Skipped, with a note,
//! where `mpirun` is not installed.
#![cfg(all(feature = "mpi", unix))]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "common/mpi.rs"]
mod mpi_common;
use mpi_common::{output_text, without_launcher};

/// `mpirun`, or `None` (with a note) where it is missing.
fn mpirun() -> Option<PathBuf> {
    mpi_common::mpirun("MPI tests")
}

/// The probe example, brought up to date by `cargo build --profile test --example
/// mpi_probe --features mpi` once per test process (a no-op after `cargo test --features
/// mpi`, which builds examples with the test profile; `cargo test --test mpi_collective`
/// does not build them).
fn probe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "--profile", "test", "--features", "mpi"])
                .args(["--example", "mpi_probe", "--message-format", "json"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stderr(Stdio::inherit())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "building the mpi_probe example failed"
            );
            // The executable, from cargo's `compiler-artifact` message.
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("mpi_probe"))
                .find_map(|l| {
                    let at = l.find("\"executable\":\"")? + "\"executable\":\"".len();
                    let end = at + l[at..].find('"')?;
                    Some(PathBuf::from(&l[at..end]))
                })
                .expect("cargo named no mpi_probe executable")
        })
        .clone()
}

fn launch(mpirun: &PathBuf, ranks: usize, args: &[&str]) -> Command {
    let mut cmd = Command::new(mpirun);
    cmd.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &ranks.to_string(),
    ])
    .arg(probe())
    .args(args);
    // Open MPI's own environment of an enclosing run would confuse this one.
    without_launcher(&mut cmd);
    cmd
}

#[test]
fn two_ranks_sum_gather_broadcast_and_report_mismatches() {
    let Some(mpirun) = mpirun() else { return };
    let out = launch(&mpirun, 2, &["check"]).output().unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    for r in 0..2 {
        assert!(text.contains(&format!("rank {r}: check passed")), "{text}");
        assert!(text.contains(&format!("rank {r}: finalized")), "{text}");
    }
    assert!(
        text.contains("the ranks disagree: rank 1 called an all-reduce of 3 f32 while rank 0 called an all-reduce of 2 f32"),
        "{text}"
    );
}

#[test]
fn three_ranks_get_the_same_bits() {
    let Some(mpirun) = mpirun() else { return };
    // With 3 ranks the order of summation matters: the probe compares hashes of the sums.
    let out = launch(&mpirun, 3, &["check"]).output().unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    for r in 0..3 {
        assert!(text.contains(&format!("rank {r}: check passed")), "{text}");
    }
}

#[test]
fn a_process_without_mpirun_is_a_group_of_one() {
    if mpirun().is_none() {
        return;
    }
    let out = Command::new(probe())
        .arg("check")
        .env_remove("OMPI_COMM_WORLD_SIZE")
        .env_remove("OMPI_COMM_WORLD_RANK")
        .env_remove("PMIX_RANK")
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rank 0 of 1 pid"), "{text}");
    assert!(text.contains("launched by MPI: false"), "{text}");
    assert!(text.contains("rank 0: check passed"), "{text}");
}

/// A `loop` run of the probe whose rank 1 gets `signal` once both ranks run: returns the
/// lines (with their time after the signal) and mpirun's exit code, having ended whatever
/// of the run was left.
fn signal_rank_1(
    mpirun: &PathBuf,
    signal: i32,
    loop_args: &[&str],
) -> (Vec<(f64, String)>, Option<i32>) {
    let mut args = vec!["loop"];
    args.extend_from_slice(loop_args);
    let mut child: Child = launch(mpirun, 2, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        })
    })
    .collect();
    drop(tx);
    let mut pids = [0i32; 2];
    let mut lines = Vec::new();
    let start = Instant::now();
    while pids.contains(&0) {
        let line = rx
            .recv_timeout(Duration::from_secs(60).saturating_sub(start.elapsed()))
            .unwrap_or_else(|_| panic!("the ranks did not start: {lines:?}"));
        if let Some(rest) = line.strip_prefix("rank ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let ["0" | "1", "pid", pid, "ready"] = words[..] {
                pids[words[0].parse::<usize>().unwrap()] = pid.parse().unwrap();
            }
        }
        lines.push((0.0, line));
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    // SAFETY: signals a process this test started.
    assert_eq!(unsafe { libc::kill(pids[1], signal) }, 0);
    // mpirun ends the run after the survivor gives up (or on its own, after a death).
    let give_up = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > give_up {
            break None;
        }
        while let Ok(line) = rx.try_recv() {
            lines.push((signalled.elapsed().as_secs_f64(), line));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for pid in pids {
        // SAFETY: the ranks this test started (gone already, normally).
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for r in readers {
        let _ = r.join();
    }
    lines.extend(
        rx.try_iter()
            .map(|l| (signalled.elapsed().as_secs_f64(), l)),
    );
    (lines, code)
}

/// The survivor's report: `rank 0: error after S s: MESSAGE`, and when it was printed.
fn report(lines: &[(f64, String)]) -> Option<(f64, String)> {
    lines
        .iter()
        .find(|(_, l)| l.starts_with("rank 0: error after"))
        .cloned()
}

#[test]
fn a_stopped_rank_is_named_by_the_other_within_the_timeout() {
    let Some(mpirun) = mpirun() else { return };
    let (lines, code) = signal_rank_1(&mpirun, libc::SIGSTOP, &["2000", "abandon"]);
    let (_, line) = report(&lines).unwrap_or_else(|| panic!("no report: {lines:#?}"));
    assert!(
        line.contains("lost rank 1 during the all-reduce of 100000 f32"),
        "{line}"
    );
    assert!(line.contains("no answer within 2 s"), "{line}");
    assert!(line.contains("its process is stopped"), "{line}");
    // Time since its last successful call: the timeout, not a hang.
    let waited: f64 = line["rank 0: error after ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1.9..6.0).contains(&waited), "{line}");
    assert_eq!(
        code,
        Some(3),
        "mpirun passes on the survivor's status: {lines:#?}"
    );
}

#[test]
fn a_stalled_rank_is_named_by_its_missing_heartbeats() {
    let Some(mpirun) = mpirun() else { return };
    // Process-table checks off: rank 1 is judged as a rank on another host would be.
    let (lines, code) = signal_rank_1(&mpirun, libc::SIGSTOP, &["2000", "abandon", "heartbeats"]);
    let (_, line) = report(&lines).unwrap_or_else(|| panic!("no report: {lines:#?}"));
    assert!(line.contains("lost rank 1 during the all-reduce"), "{line}");
    assert!(line.contains("no heartbeat for"), "{line}");
    assert_eq!(code, Some(3), "{lines:#?}");
}

#[test]
fn a_killed_rank_is_named_and_the_run_ends() {
    let Some(mpirun) = mpirun() else { return };
    let (lines, code) = signal_rank_1(&mpirun, libc::SIGKILL, &["20000", "abandon"]);
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    // mpirun ends the run on its own (SIGTERM to the survivor after 1 s) and names the
    // rank; the survivor, which reads the process table every 200 ms, says it first
    // (mpirun forwards its output late).
    assert!(code.is_some_and(|c| c != 0), "{text:#?}");
    let (_, line) = report(&lines).unwrap_or_else(|| panic!("no report: {text:#?}"));
    assert!(line.contains("lost rank 1"), "{line}");
    assert!(line.contains("its process is gone"), "{line}");
    assert!(line.contains("gave up after"), "{line}");
}
