//! `xenon dump MODEL --stage graph|autodiff|optimized|kernels|schedule --format
//! text|dot|json [--batch N] [--opt-node-limit N] [--opt-iter-limit N] [--opt-time-ms MS]
//! [--timings]`.
//!
//! - `graph`: the forward (inference) graph, input `x`, output `y`;
//! - `autodiff`: the training-step graph (forward, cost, gradients, optimizer update)
//!   before optimization;
//! - `optimized`: the same graph after the e-graph optimizer, with its fusion groups and
//!   report;
//! - `kernels`, `schedule`: arrive with the CPU backend.
//!
//! The formats are described in `xenon_compiler::opt::dump`. Without `--timings` the
//! output is byte-identical from run to run; `--timings` adds the optimizer's wall-clock
//! times. Render DOT with `dot -Tsvg out.dot -o out.svg`.

use super::common::{dataset_shape, load_model_file};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;
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

pub fn run(a: DumpArgs) -> anyhow::Result<()> {
    if matches!(a.stage, Stage::Kernels | Stage::Schedule) {
        let name = if a.stage == Stage::Kernels {
            "kernels"
        } else {
            "schedule"
        };
        bail!(
            "the {name} stage arrives with the CPU backend; available stages: graph, autodiff, optimized"
        );
    }
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
        Stage::Autodiff | Stage::Optimized => {
            let optimizer = file
                .optimizer
                .clone()
                .context("the model file has no optimizer")?;
            let g = model.train_graph(batch, nclass, &file.cost, &optimizer)?;
            if a.stage == Stage::Autodiff {
                (g, None, "autodiff")
            } else {
                let cfg = OptConfig::default().with_limits(
                    a.opt_node_limit,
                    a.opt_iter_limit,
                    a.opt_time_ms.map(Duration::from_millis),
                );
                let (g, r) = opt::optimize(&g, &cfg)?;
                let r = if a.timings { r } else { r.without_timings() };
                (g, Some(r), "optimized")
            }
        }
        Stage::Kernels | Stage::Schedule => unreachable!("rejected above"),
    };
    let out = match a.format {
        Format::Text => dump::to_text(&graph, report.as_ref()),
        Format::Dot => dump::to_dot(&graph, report.as_ref()),
        Format::Json => {
            let mut s =
                serde_json::to_string_pretty(&dump::to_json(&graph, stage, report.as_ref()))?;
            s.push('\n');
            s
        }
    };
    print!("{out}");
    Ok(())
}
