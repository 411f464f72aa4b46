//! `xenon dump MODEL --stage graph|autodiff|optimized|kernels|schedule --format
//! text|dot|json [--batch N] [--opt-node-limit N] [--opt-iter-limit N] [--opt-time-ms MS]
//! [--timings]`.
//!
//! - `graph`: the forward (inference) graph, input `x`, output `y`;
//! - `autodiff`: the training-step graph (forward, cost, gradients, optimizer update)
//!   before optimization;
//! - `optimized`: the same graph after the e-graph optimizer, with its fusion groups and
//!   report;
//! - `kernels`: the optimized training step partitioned into the CPU backend's steps
//!   (fused loop kernels, GEMMs, library routines), one group per step, and the memory plan;
//! - `schedule`: the program's steps in order with the buffers they read and write, the
//!   buffer plan (arena offsets) and its size against the naive sum.
//!
//! The formats are described in `xenon_compiler::opt::dump`. Without `--timings` the
//! output is byte-identical from run to run; `--timings` adds the optimizer's wall-clock
//! times. Render DOT with `dot -Tsvg out.dot -o out.svg`.

use super::common::{dataset_shape, load_model_file};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;
use xenon_compiler::lower::{self, dump as ldump};
use xenon_compiler::opt::{self, OptConfig, dump};
use xenon_frontend::model::Model;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    Graph,
    Autodiff,
    Optimized,
    Kernels,
    Schedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Dot,
    Json,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The model file (neon-style YAML, or JSON of the same shape).
    pub model: PathBuf,
    /// Which stage of the pipeline to show.
    #[arg(long, value_enum)]
    pub stage: Stage,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Batch size (default: the file's `batchsize`, else 128).
    #[arg(long)]
    pub batch: Option<usize>,
    /// E-node limit of every optimizer phase (default 100000).
    #[arg(long)]
    pub opt_node_limit: Option<usize>,
    /// Iteration limit of every optimizer phase (default 30 for simplify, 5 for fuse).
    #[arg(long)]
    pub opt_iter_limit: Option<usize>,
    /// Time limit of every optimizer phase in milliseconds (default 2000 for simplify,
    /// 1000 for fuse).
    #[arg(long)]
    pub opt_time_ms: Option<u64>,
    /// Include the optimizer's wall-clock times (the output then differs between runs).
    #[arg(long)]
    pub timings: bool,
}

/// The optimizer limits from the command line.
fn opt_config(a: &DumpArgs) -> OptConfig {
    OptConfig::default().with_limits(
        a.opt_node_limit,
        a.opt_iter_limit,
        a.opt_time_ms.map(Duration::from_millis),
    )
}

/// Pretty JSON with a final newline.
fn json_text(v: &serde_json::Value) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s)
}

pub fn run(a: DumpArgs) -> anyhow::Result<()> {
    let file = load_model_file(&a.model)?;
    let name = file.dataset.as_ref().map_or("mnist", |d| d.name.as_str());
    let (input_shape, nclass) = dataset_shape(name)?;
    let batch = a.batch.or(file.batchsize).unwrap_or(128);
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    let model = Model::new(file.layers.clone(), &input_shape, 0)?;
    let (graph, report, stage) = match a.stage {
        Stage::Graph => (model.inference_graph(batch)?, None, "graph"),
        Stage::Autodiff | Stage::Optimized | Stage::Kernels | Stage::Schedule => {
            let optimizer = file
                .optimizer
                .clone()
                .context("the model file has no optimizer")?;
            let g = model.train_graph(batch, nclass, &file.cost, &optimizer)?;
            if a.stage == Stage::Autodiff {
                (g, None, "autodiff")
            } else if matches!(a.stage, Stage::Kernels | Stage::Schedule) {
                let (g, _) = opt::optimize(&g, &opt_config(&a))?;
                let l = lower::lower(&g)?;
                let out = match (a.stage, a.format) {
                    (Stage::Kernels, Format::Text) => ldump::kernels_text(&g, &l),
                    (Stage::Kernels, Format::Dot) => ldump::kernels_dot(&g, &l),
                    (Stage::Kernels, Format::Json) => json_text(&ldump::kernels_json(&g, &l))?,
                    (_, Format::Text) => ldump::schedule_text(&l),
                    (_, Format::Dot) => ldump::schedule_dot(&l),
                    (_, Format::Json) => json_text(&ldump::schedule_json(&g, &l))?,
                };
                print!("{out}");
                return Ok(());
            } else {
                let (g, r) = opt::optimize(&g, &opt_config(&a))?;
                let r = if a.timings { r } else { r.without_timings() };
                (g, Some(r), "optimized")
            }
        }
    };
    let out = match a.format {
        Format::Text => dump::to_text(&graph, report.as_ref()),
        Format::Dot => dump::to_dot(&graph, report.as_ref()),
        Format::Json => json_text(&dump::to_json(&graph, stage, report.as_ref()))?,
    };
    print!("{out}");
    Ok(())
}
