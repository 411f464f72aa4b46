//! The AFL++ harness (feature `afl`): `afl TARGET` runs the target named on the command
//! line on the inputs AFL++ hands it, with AFL's coverage instrumentation (see
//! `docs/fuzzing.md`). A panic aborts, which AFL++ records as a crash; so does an
//! allocation above the cap (`guard::CappedAlloc`).

use xenon_fuzz::{TARGETS, guard};

#[global_allocator]
static ALLOC: guard::CappedAlloc = guard::CappedAlloc;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = xenon_fuzz::target(&name) else {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        eprintln!("usage: afl TARGET (one of {})", names.join(", "));
        std::process::exit(2);
    };
    guard::arm(
        &target.artifacts_dir(),
        Some(guard::DEFAULT_SINGLE_CAP),
        Some(guard::DEFAULT_TOTAL_CAP),
    );
    afl::fuzz!(|data: &[u8]| {
        guard::begin(data);
        (target.run)(data);
        guard::end();
    });
}
