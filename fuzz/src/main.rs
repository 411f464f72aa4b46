//! `xenon-fuzz`: the built-in fuzzing engine's command line (see `docs/fuzzing.md`).
//!
//! ```text
//! xenon-fuzz all|TARGET[,TARGET…] [--seconds N] [--timeout S] [--seed N] [--no-feedback]
//! xenon-fuzz list
//! xenon-fuzz replay TARGET FILE…
//! xenon-fuzz run TARGET --seconds N …     (one target in this process; what the above spawns)
//! ```
//!
//! `--seconds N` is the total time, shared evenly by the targets. Each target runs in a
//! child process (`run`), so that an abort, a signal, a huge allocation or a hang ends only
//! that child: its input is saved, the finding reported, and the target fuzzed on for the
//! rest of its time. The exit status is 0 when nothing was found, 1 otherwise.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use xenon_fuzz::engine::{self, Options};
use xenon_fuzz::{TARGETS, Target, guard, target};

#[global_allocator]
static ALLOC: guard::CappedAlloc = guard::CappedAlloc;

const USAGE: &str = "usage: xenon-fuzz all|TARGET[,TARGET...] [--seconds N] [--timeout S] [--seed N] [--no-feedback]
       xenon-fuzz list
       xenon-fuzz seeds
       xenon-fuzz replay TARGET FILE...
       xenon-fuzz run TARGET [--seconds N] [--timeout S] [--seed N] [--no-feedback]";

struct Args {
    seconds: f64,
    timeout: f64,
    seed: u64,
    feedback: bool,
    rest: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        seconds: 60.0,
        timeout: 10.0,
        seed: 0,
        feedback: true,
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .cloned()
        };
        match arg.as_str() {
            "--seconds" => {
                a.seconds = value("--seconds")?
                    .parse()
                    .map_err(|_| "--seconds takes a number".to_string())?
            }
            "--timeout" => {
                a.timeout = value("--timeout")?
                    .parse()
                    .map_err(|_| "--timeout takes a number".to_string())?
            }
            "--seed" => {
                a.seed = value("--seed")?
                    .parse()
                    .map_err(|_| "--seed takes a whole number".to_string())?
            }
            "--no-feedback" => a.feedback = false,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => a.rest.push(s.to_string()),
        }
    }
    if !(a.seconds >= 0.0 && a.seconds.is_finite() && a.timeout > 0.0 && a.timeout.is_finite()) {
        return Err("--seconds and --timeout take positive numbers".into());
    }
    Ok(a)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        Some("seeds") => match xenon_fuzz::seeds::make() {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                0
            }
            Err(e) => {
                eprintln!("xenon-fuzz seeds: {e}");
                1
            }
        },
        Some("list") => {
            for t in TARGETS {
                println!("{:<14} {}", t.name, t.about);
            }
            0
        }
        Some(cmd) => match parse(&args[1..]) {
            Err(e) => {
                eprintln!("xenon-fuzz: {e}\n{USAGE}");
                2
            }
            Ok(a) => match cmd {
                "run" => child(&a),
                "replay" => replay(&a),
                names => parent(names, &a),
            },
        },
    };
    std::process::exit(code);
}

fn lookup(name: &str) -> Result<&'static Target, String> {
    target(name).ok_or_else(|| {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        format!("no target {name:?}; targets: {}", names.join(", "))
    })
}

/// `run TARGET`: fuzz one target in this process, printing `progress` and `result` lines.
fn child(a: &Args) -> i32 {
    let [name] = a.rest.as_slice() else {
        eprintln!("xenon-fuzz run: give one target\n{USAGE}");
        return 2;
    };
    let t = match lookup(name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xenon-fuzz: {e}");
            return 2;
        }
    };
    let artifacts = t.artifacts_dir();
    guard::arm(
        &artifacts,
        Some(guard::DEFAULT_SINGLE_CAP),
        Some(guard::DEFAULT_TOTAL_CAP),
    );
    for p in guard::collect_pending(&artifacts) {
        eprintln!("xenon-fuzz: an earlier run left {}", p.display());
    }
    guard::watchdog(artifacts, Duration::from_secs_f64(a.timeout));
    engine::silence_panics();
    let opts = Options {
        duration: Duration::from_secs_f64(a.seconds),
        seed: a.seed,
        feedback: a.feedback,
        ..Options::default()
    };
    let stats = engine::fuzz(t, &opts, |s| println!("progress {}", s.execs));
    println!(
        "result {} {:.3} {} {} {} {:.3} {}",
        stats.execs,
        stats.elapsed.as_secs_f64(),
        stats.seeds,
        stats.corpus,
        stats.panics,
        stats.slowest.as_secs_f64(),
        stats.slow
    );
    i32::from(stats.panics > 0)
}

/// `replay TARGET FILE…`: runs each file once, reporting panics.
fn replay(a: &Args) -> i32 {
    let Some((name, files)) = a.rest.split_first() else {
        eprintln!("xenon-fuzz replay: give a target and files\n{USAGE}");
        return 2;
    };
    let t = match lookup(name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xenon-fuzz: {e}");
            return 2;
        }
    };
    guard::arm(
        &t.artifacts_dir(),
        Some(guard::DEFAULT_SINGLE_CAP),
        Some(guard::DEFAULT_TOTAL_CAP),
    );
    engine::silence_panics();
    let mut failed = 0;
    for f in files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{f}: {e}");
                failed += 1;
                continue;
            }
        };
        let start = Instant::now();
        guard::begin(&bytes);
        let r = engine::run_once(t, &bytes);
        guard::end();
        match r {
            Ok(()) => println!("{f}: ok ({:.3} s)", start.elapsed().as_secs_f64()),
            Err(msg) => {
                println!("{f}: {msg}");
                failed += 1;
            }
        }
    }
    i32::from(failed > 0)
}

/// One target's totals over its child processes.
#[derive(Default)]
struct Row {
    execs: u64,
    secs: f64,
    seeds: usize,
    corpus: usize,
    slowest: f64,
    slow: u64,
    findings: Vec<String>,
}

/// `all` or named targets: each in child processes for its share of the time.
fn parent(names: &str, a: &Args) -> i32 {
    let targets: Vec<&'static Target> = if names == "all" {
        TARGETS.iter().collect()
    } else {
        match names.split(',').map(lookup).collect() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("xenon-fuzz: {e}");
                return 2;
            }
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("xenon-fuzz: cannot find its own executable: {e}");
            return 2;
        }
    };
    let share = a.seconds / targets.len() as f64;
    println!(
        "xenon-fuzz: {} target(s), {:.1} s each, timeout {:.1} s",
        targets.len(),
        share,
        a.timeout
    );
    let mut rows = Vec::new();
    for t in &targets {
        let row = fuzz_target(&exe, t, share, a);
        println!(
            "{:<14} {:>10} execs {:>7.1} s {:>9.0} execs/s  corpus {:>4} -> {:<5} slowest {:>6.3} s ({} over 1 s)  findings {}",
            t.name,
            row.execs,
            row.secs,
            row.execs as f64 / row.secs.max(1e-9),
            row.seeds,
            row.corpus,
            row.slowest,
            row.slow,
            row.findings.len()
        );
        for f in &row.findings {
            println!("    {f}");
        }
        rows.push((t.name, row));
    }
    let execs: u64 = rows.iter().map(|(_, r)| r.execs).sum();
    let secs: f64 = rows.iter().map(|(_, r)| r.secs).sum();
    let findings: usize = rows.iter().map(|(_, r)| r.findings.len()).sum();
    println!(
        "total: {execs} execs in {secs:.1} s ({:.0} execs/s), {findings} finding(s)",
        execs as f64 / secs.max(1e-9)
    );
    i32::from(findings > 0)
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(guard::HANG_EXIT), _) => "a hang".to_string(),
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "an unknown end".to_string(),
    }
}

fn fuzz_target(exe: &std::path::Path, t: &Target, seconds: f64, a: &Args) -> Row {
    let mut row = Row::default();
    let start = Instant::now();
    let mut restart = 0u64;
    loop {
        let left = seconds - start.elapsed().as_secs_f64();
        if left <= 0.2 && restart > 0 {
            break;
        }
        let mut cmd = Command::new(exe);
        cmd.arg("run")
            .arg(t.name)
            .arg("--seconds")
            .arg(format!("{:.3}", left.max(0.0)))
            .arg("--timeout")
            .arg(a.timeout.to_string())
            .arg("--seed")
            .arg((a.seed + restart).to_string())
            .stdout(Stdio::piped());
        if !a.feedback {
            cmd.arg("--no-feedback");
        }
        restart += 1;
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                row.findings.push(format!("cannot start a child: {e}"));
                break;
            }
        };
        let child_start = Instant::now();
        let mut progress = 0u64;
        let mut result: Option<Vec<String>> = None;
        let mut hang: Option<String> = None;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut words = line.split_whitespace();
                match words.next() {
                    Some("progress") => {
                        progress = words
                            .next()
                            .and_then(|w| w.parse().ok())
                            .unwrap_or(progress)
                    }
                    Some("result") => result = Some(words.map(str::to_string).collect()),
                    Some("hang") => hang = words.next().map(str::to_string),
                    _ => println!("{line}"),
                }
            }
        }
        let status = child.wait();
        let ran = child_start.elapsed().as_secs_f64();
        match result {
            Some(r) => {
                let num = |i: usize| r.get(i).and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0);
                row.execs += num(0) as u64;
                row.secs += num(1);
                row.seeds = num(2) as usize;
                row.corpus = row.corpus.max(num(3) as usize);
                row.slowest = row.slowest.max(num(5));
                row.slow += num(6) as u64;
                if num(4) > 0.0 {
                    row.findings.push(format!(
                        "{} panicking input(s); distinct ones saved in {}",
                        num(4),
                        t.artifacts_dir().display()
                    ));
                }
            }
            None => {
                row.execs += progress;
                row.secs += ran;
                let how = status.map(describe).unwrap_or_else(|e| e.to_string());
                let mut saved: Vec<String> = guard::collect_pending(&t.artifacts_dir())
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                saved.extend(hang.take());
                row.findings.push(format!(
                    "the child ended by {how}; input: {}",
                    if saved.is_empty() {
                        "not saved".to_string()
                    } else {
                        saved.join(", ")
                    }
                ));
                continue;
            }
        }
        break;
    }
    row
}
