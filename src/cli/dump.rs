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
//!   buffer plan (arena offsets) and its size against the naive sum;
//! - `opencl`: the OpenCL C the OpenCL backend generates for the program's loop kernels
//!   (text only; needs no OpenCL device).
//!
//! Each is the [`Dump`] hook of the compile pipeline (`xenon_compiler::pipeline`) on that
//! stage. The formats are described in `xenon_compiler::opt::dump`. Without `--timings` the
//! output is byte-identical from run to run; `--timings` adds the optimizer's wall-clock
//! times. Render DOT with `dot -Tsvg out.dot -o out.svg`.

use super::common::{
    MAX_BATCH, MAX_OPT_ITERS, MAX_OPT_MS, MAX_OPT_NODES, check_count, count, data_model,
    load_model_file,
};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use xenon_compiler::backend::Cpu;
use xenon_compiler::opt::OptConfig;
use xenon_compiler::pipeline::{
    Dump, DumpFormat, LoweredView, Pipeline, Request, Stage as PipelineStage,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    Graph,
    Autodiff,
    Optimized,
    Kernels,
    Schedule,
    Opencl,
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
    #[arg(long, value_parser = count::<MAX_BATCH>)]
    pub batch: Option<usize>,
    /// E-node limit of every optimizer phase (default 100000).
    #[arg(long, value_parser = count::<MAX_OPT_NODES>)]
    pub opt_node_limit: Option<usize>,
    /// Iteration limit of every optimizer phase (default 30 for simplify, 5 for fuse).
    #[arg(long, value_parser = count::<MAX_OPT_ITERS>)]
    pub opt_iter_limit: Option<usize>,
    /// Time limit of every optimizer phase in milliseconds (default 2000 for simplify,
    /// 1000 for fuse).
    #[arg(long, value_parser = count::<MAX_OPT_MS>)]
    pub opt_time_ms: Option<usize>,
    /// Include the optimizer's wall-clock times (the output then differs between runs).
    #[arg(long)]
    pub timings: bool,
}

/// The optimizer limits from the command line.
fn opt_config(a: &DumpArgs) -> OptConfig {
    OptConfig::default().with_limits(
        a.opt_node_limit,
        a.opt_iter_limit,
        a.opt_time_ms.map(|ms| Duration::from_millis(ms as u64)),
    )
}

pub fn run(a: DumpArgs) -> anyhow::Result<()> {
    let file = load_model_file(&a.model)?;
    let (model, _, nclass) = data_model(&file, &a.model, None, None)?;
    let batch =
        check_count(a.batch.or(file.batchsize).unwrap_or(128), MAX_BATCH).context("batch size")?;
    let (stage, view) = match a.stage {
        Stage::Graph => (PipelineStage::Graph, LoweredView::Kernels),
        Stage::Autodiff => (PipelineStage::Autodiff, LoweredView::Kernels),
        Stage::Optimized => (PipelineStage::Optimized, LoweredView::Kernels),
        Stage::Kernels => (PipelineStage::Lowered, LoweredView::Kernels),
        Stage::Schedule | Stage::Opencl => (PipelineStage::Lowered, LoweredView::Schedule),
    };
    let format = match a.format {
        Format::Text => DumpFormat::Text,
        Format::Dot => DumpFormat::Dot,
        Format::Json => DumpFormat::Json,
    };
    let dump = Arc::new(Dump::new(stage, format).view(view).timings(a.timings));
    // The kernels and schedule are the CPU backend's lowering.
    let pipeline = Pipeline::new(Arc::new(Cpu::with_threads(1)))
        .with_optimize(Some(opt_config(&a)))
        .with_hook(dump.clone());
    let model = model.with_pipeline(pipeline);
    let pipeline = model.pipeline();
    if stage == PipelineStage::Graph {
        pipeline.graph(Request::new(model.inference_graph(batch)?), stage)?;
    } else {
        let optimizer = file
            .optimizer
            .clone()
            .context("the model file has no optimizer")?;
        let request = model.train_request(batch, nclass, &file.cost, &optimizer)?;
        if a.stage == Stage::Opencl {
            if a.format != Format::Text {
                bail!("--stage opencl prints OpenCL C: use --format text");
            }
            let (_, lowered) = pipeline.lower(request)?;
            print!(
                "{}",
                xenon_compiler::codegen::opencl::program_listing(&lowered.program)?
            );
            return Ok(());
        }
        if stage == PipelineStage::Lowered {
            pipeline.lower(request)?;
        } else {
            pipeline.graph(request, stage)?;
        }
    }
    print!(
        "{}",
        dump.text()
            .context("the pipeline did not reach the stage")?
    );
    Ok(())
}
