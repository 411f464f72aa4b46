//! Replays every seed (`fuzz/corpus/<target>/`) and every regression input
//! (`fuzz/regressions/<target>/`) through its target: none may panic, and none may take
//! longer than [`LIMIT`] (the inputs of fixed hangs). An input that still
//! fails because its fix belongs to code outside the fuzzing work is listed in
//! [`KNOWN_OPEN`] with the panic it gives, and skipped until it is fixed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};
use xenon_fuzz::{TARGETS, files_in};

/// Regression inputs whose fix is open elsewhere (`target/file`, why). Each is still
/// replayed by `xenon-fuzz replay TARGET fuzz/regressions/TARGET/FILE`; remove its line
/// when it passes.
const KNOWN_OPEN: &[(&str, &str)] = &[];

/// The longest an input may take (the fuzzing harness calls an input that runs over 10 s
/// a hang).
const LIMIT: Duration = Duration::from_secs(10);

fn replay(dir_of: impl Fn(&xenon_fuzz::Target) -> std::path::PathBuf, need_files: bool) {
    let mut failures = Vec::new();
    let mut count = 0;
    for t in TARGETS {
        let dir = dir_of(t);
        let files = files_in(&dir);
        if need_files {
            assert!(!files.is_empty(), "{} has no seeds", dir.display());
        }
        for f in files {
            let key = format!(
                "{}/{}",
                t.name,
                f.file_name().and_then(|n| n.to_str()).unwrap_or("")
            );
            if KNOWN_OPEN.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let bytes = std::fs::read(&f).expect("a readable file");
            count += 1;
            let start = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| (t.run)(&bytes)));
            let took = start.elapsed();
            if took > LIMIT {
                failures.push(format!("{}: took {:.1} s", f.display(), took.as_secs_f64()));
            }
            if let Err(e) = result {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", f.display()));
            }
        }
    }
    xenon_fuzz::targets::remove_scratch();
    assert!(
        failures.is_empty(),
        "{} of {count} inputs panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_seed_runs_without_a_panic() {
    replay(|t| t.corpus_dir(), true);
}

#[test]
fn every_regression_input_runs_without_a_panic() {
    replay(|t| t.regressions_dir(), false);
}

#[test]
fn known_open_inputs_exist() {
    for (key, _) in KNOWN_OPEN {
        let (target, file) = key.split_once('/').expect("target/file");
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("regressions")
            .join(target)
            .join(file);
        assert!(
            path.is_file(),
            "{} is listed in KNOWN_OPEN but missing",
            path.display()
        );
    }
}
