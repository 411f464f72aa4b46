//! The built-in, in-process mutation engine: picks an input from the corpus (the seeds,
//! the regression inputs and every input that produced a new [`feedback`] note), mutates
//! it ([`mutate`]), runs the target under `catch_unwind` with the panic hook silenced, and
//! saves each input whose panic message it has not seen to
//! `fuzz/artifacts/<target>/crash-<hash>` (the message beside it in `.txt`). Aborts,
//! signals, huge allocations and hangs end the process; [`guard`] saves their input first.

use crate::mutate::{Mutator, Rng};
use crate::{Target, feedback, files_in, fnv64, guard};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long to fuzz and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wall-clock time to fuzz.
    pub duration: Duration,
    /// The random seed.
    pub seed: u64,
    /// Keep inputs that produce new notes.
    pub feedback: bool,
    /// The most inputs the corpus grows to.
    pub max_corpus: usize,
    /// An input that runs longer is saved as `slow-<hash>` (not a finding; at most 5 per
    /// run, the slowest first reported).
    pub slow: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            duration: Duration::from_secs(10),
            seed: 0,
            feedback: true,
            max_corpus: 2048,
            slow: Duration::from_secs(1),
        }
    }
}

/// What a run of the engine did.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Inputs run.
    pub execs: u64,
    /// Time spent.
    pub elapsed: Duration,
    /// Seeds and regression inputs at the start.
    pub seeds: usize,
    /// Corpus size at the end (seeds plus kept inputs).
    pub corpus: usize,
    /// Inputs that panicked (every one, saved or not).
    pub panics: u64,
    /// The saved inputs of distinct panics.
    pub saved: Vec<PathBuf>,
    /// The slowest input's run time.
    pub slowest: Duration,
    /// Inputs that ran longer than [`Options::slow`].
    pub slow: u64,
}

static PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook with one that records the message and location instead of
/// printing them (the engine reports them).
pub fn silence_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => match info.payload().downcast_ref::<String>() {
                Some(s) => s.clone(),
                None => "(a panic with a non-text payload)".to_string(),
            },
        };
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut p) = PANIC.lock() {
            *p = Some(format!("panicked at {at}: {msg}"));
        }
    }));
}

/// Runs `target` once on `input`; `Err(message)` when it panicked.
pub fn run_once(target: &Target, input: &[u8]) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| (target.run)(input))) {
        Ok(()) => Ok(()),
        Err(_) => Err(PANIC
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .unwrap_or_else(|| "panicked (no message)".into())),
    }
}

/// The inputs a target starts from: its seed corpus and its regression inputs.
pub fn seeds(target: &Target) -> Vec<Vec<u8>> {
    files_in(&target.corpus_dir())
        .into_iter()
        .chain(files_in(&target.regressions_dir()))
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// The message of a panic without its numbers: what tells two panics apart.
fn signature(msg: &str) -> String {
    feedback::blank(msg).chars().take(200).collect()
}

/// Fuzzes `target` in this process for `opts.duration`; `progress` is called about once
/// a second with the stats so far. [`guard::arm`] and [`silence_panics`] must have been
/// called.
pub fn fuzz(target: &Target, opts: &Options, mut progress: impl FnMut(&Stats)) -> Stats {
    let start = Instant::now();
    let mut corpus = seeds(target);
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    // Per corpus input, how many stages its run passed (seeds: filled in on their run).
    let mut depth: Vec<u32> = vec![0; corpus.len()];
    let mut stats = Stats {
        seeds: corpus.len(),
        ..Stats::default()
    };
    let mutator = Mutator::new(&corpus, target.text);
    let mut rng = Rng::new(opts.seed ^ fnv64(target.name.as_bytes()));
    let mut seen: HashSet<u64> = HashSet::new();
    let mut panics: HashSet<String> = HashSet::new();
    let artifacts = target.artifacts_dir();
    let max_len = corpus
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(target.max_len);
    // One buffer for every input: the guard's view of the running input stays valid.
    let mut input: Vec<u8> = Vec::with_capacity(max_len + 64);
    let mut next_report = Duration::from_secs(1);
    let mut first = true;
    let mut seed_index = 0;
    while start.elapsed() < opts.duration || first {
        first = false;
        input.clear();
        let running_seed = (seed_index < corpus.len()).then_some(seed_index);
        if seed_index < corpus.len() {
            // Every corpus input runs once as it is, first.
            input.extend_from_slice(&corpus[seed_index]);
            seed_index += 1;
        } else {
            // The deeper of two random inputs: mutants of inputs that parse reach the
            // later stages, mutants of rejected ones mostly the first.
            let (a, b) = (rng.below(corpus.len()), rng.below(corpus.len()));
            let parent = &corpus[if depth[a] >= depth[b] { a } else { b }];
            input.extend_from_slice(&parent[..parent.len().min(max_len)]);
            let other = &corpus[rng.below(corpus.len())];
            mutator.mutate(&mut rng, &mut input, other, max_len);
        }
        if opts.feedback {
            feedback::start();
        }
        let t0 = Instant::now();
        guard::begin(&input);
        let result = run_once(target, &input);
        guard::end();
        let took = t0.elapsed();
        stats.execs += 1;
        if took > opts.slow {
            stats.slow += 1;
            if stats.slow <= 5 {
                let _ = std::fs::create_dir_all(&artifacts);
                let path = artifacts.join(format!("slow-{:016x}", fnv64(&input)));
                let _ = std::fs::write(&path, &input);
                eprintln!(
                    "xenon-fuzz: {}: an input took {:.2} s; saved as {}",
                    target.name,
                    took.as_secs_f64(),
                    path.display()
                );
            }
        }
        stats.slowest = stats.slowest.max(took);
        if let Err(msg) = result {
            stats.panics += 1;
            if panics.insert(signature(&msg)) {
                let _ = std::fs::create_dir_all(&artifacts);
                let path = artifacts.join(format!("crash-{:016x}", fnv64(&input)));
                let _ = std::fs::write(&path, &input);
                let _ = std::fs::write(path.with_extension("txt"), format!("{msg}\n"));
                eprintln!(
                    "xenon-fuzz: {}: {msg}\n  input saved as {}",
                    target.name,
                    path.display()
                );
                stats.saved.push(path);
            }
        }
        if opts.feedback {
            let notes = feedback::take();
            let oks = feedback::oks();
            let mut new = false;
            for n in notes {
                new |= seen.insert(n);
            }
            if let Some(i) = running_seed {
                // A corpus input's own run: record its depth.
                depth[i] = oks;
            } else if new && corpus.len() < opts.max_corpus {
                corpus.push(input.clone());
                depth.push(oks);
                seed_index = corpus.len();
            }
        }
        if start.elapsed() >= next_report {
            next_report += Duration::from_secs(1);
            stats.elapsed = start.elapsed();
            stats.corpus = corpus.len();
            progress(&stats);
        }
    }
    stats.elapsed = start.elapsed();
    stats.corpus = corpus.len();
    crate::targets::remove_scratch();
    stats
}
