//! The `xenon` command line: train, summarize and evaluate neon-style models.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    quiet_broken_pipe();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
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
