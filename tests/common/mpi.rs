//! What the MPI tests share: finding `mpirun`, and launching without the environment of an
//! enclosing MPI job. (Each test binary uses part of it.)
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// `mpirun`, or `None` (with a note naming the `skipped` tests) where it is missing.
pub fn mpirun(skipped: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("mpirun"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("note: mpirun is not installed; skipping the {skipped}");
    }
    found
}

/// The launcher variables an enclosing MPI job would leave (they would make a lone
/// `xenon` a rank, and confuse a nested `mpirun`).
const LAUNCHER_VARS: [&str; 5] = [
    "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_RANK",
    "PMIX_RANK",
    "PMI_RANK",
    "PMI_SIZE",
];

/// Removes the launcher variables from `cmd`'s environment.
pub fn without_launcher(cmd: &mut Command) -> &mut Command {
    for v in LAUNCHER_VARS {
        cmd.env_remove(v);
    }
    cmd
}

/// A finished command's standard output, then its standard error.
pub fn output_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
