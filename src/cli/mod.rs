//! Subcommands of the `xenon` binary. The flags and the `--json` outputs are an interface
//! other tools rely on (see ARCHITECTURE.md).

mod bench;
mod common;
mod compile;
mod devices;
mod dump;
mod eval;
mod plot;
mod sample;
mod summary;
mod train;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Xenon: a static-graph deep-learning compiler and runtime with neon's layers, costs,
/// optimizers and model files.
#[derive(Parser, Debug)]
#[command(name = "xenon", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model described by a neon-style YAML (or JSON) file.
    Train(train::TrainArgs),
    /// Print each layer's output shape and parameter count.
    Summary {
        /// The model file.
        model: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate saved weights on a data set's test split.
    Eval(eval::EvalArgs),
    /// Time a model's training step and inference.
    Bench(bench::BenchArgs),
    /// Show a stage of the compiler pipeline (graph, autodiff, optimized) as text, DOT or
    /// JSON.
    Dump(dump::DumpArgs),
    /// Compile a model ahead of time into a bundle: object file, C header, weights,
    /// manifest and a self-contained artifact.
    Compile(compile::CompileArgs),
    /// Generate text with a trained text model: read a prompt, then draw one token at a
    /// time from the model's output.
    Sample(sample::SampleArgs),
    /// Draw training histories (`xenon train --history`) as an SVG: train cost and each
    /// validation metric per epoch, one line per file.
    Plot(plot::PlotArgs),
    /// List the OpenCL platforms and devices (`--device N` picks one).
    Devices {
        #[arg(long)]
        json: bool,
    },
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Summary { model, json } => summary::run(&model, json),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Dump(a) => dump::run(a),
        Command::Compile(a) => compile::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Devices { json } => devices::run(json),
    }
}
