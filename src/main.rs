//! The `xenon` command line: train, summarize and evaluate neon-style models.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    quiet_broken_pipe();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints `error: MESSAGE` to standard error in one write, so that the lines of several
/// processes sharing it (the ranks of an MPI job) do not interleave.
pub(crate) fn report(e: &anyhow::Error) {
    use std::io::Write;
    let line = format!("error: {}\n", message(e));
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The error and its causes joined by ": " (as `{:#}` prints them), leaving out a cause
/// whose text the message already ends with: an error that prints its source and also
/// returns it from `source()` would otherwise repeat it ("…(os error 2): No such file or
/// directory (os error 2)").
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Output into a closed pipe (`xenon train M | head -1`) ends the process as it does other
/// Unix tools, by `SIGPIPE`, instead of a panic in `println!`: Rust ignores the signal by
/// default, which turns it into an error every print would have to handle.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
