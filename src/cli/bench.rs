//! `xenon bench MODEL --batch N [--threads T] [--backend B] [--reps R] [--json]`:
//! microseconds per training step (as `Model::fit` runs it: parameters and optimizer state
//! updated in place; without fit's NaN/Inf scan of the new values) and per inference, with
//! the time in GEMM alone.

use super::common::{backend, dataset_shape, load_model_file};
use anyhow::Context;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xenon_compiler::interp::Feeds;
use xenon_frontend::model::state_name;
use xenon_frontend::optimizer::LR_INPUT;
use xenon_frontend::prelude::*;
use xenon_runtime::{DType, Tensor, rng};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The model file.
    pub model: PathBuf,
    /// Batch size of the training step and of inference.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Worker threads of the cpu backend (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Backend: cpu or interp.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Timed repetitions of each (default: as many as fit in about one second, 5 to 1000).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Median, minimum and maximum of microsecond samples.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// The machine, for reports: CPU model and core count.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

fn random(shape: Vec<usize>, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| rng::uniform_f32(seed, 0, i))
        .collect();
    Tensor::from_f32(shape, v).expect("sized")
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let file = load_model_file(&a.model)?;
    let name = file.dataset.as_ref().map_or("mnist", |d| d.name.as_str());
    let (input_shape, nclass) = dataset_shape(name)?;
    let optimizer = file
        .optimizer
        .clone()
        .context("the model file has no optimizer")?;
    let be = backend(&a.backend, a.threads)?;
    let model = Model::new(file.layers.clone(), &input_shape, 0)?;
    let b = a.batch.max(1);

    let mut x_shape = vec![b];
    x_shape.extend_from_slice(&input_shape);
    let mut feeds: Feeds = Feeds::new();
    feeds.insert("x".into(), random(x_shape, 1));
    let mut t = vec![0f32; b * nclass];
    for i in 0..b {
        t[i * nclass + (rng::bits(2, 0, i as u64) % nclass as u64) as usize] = 1.0;
    }
    feeds.insert("t".into(), Tensor::from_f32(vec![b, nclass], t)?);
    feeds.insert(
        LR_INPUT.into(),
        Tensor::full(DType::F32, vec![], optimizer.learning_rate(0)),
    );
    for p in model.params() {
        feeds.insert(
            p.name.clone(),
            model.value(&p.name).expect("initialized").clone(),
        );
        for st in optimizer.state_names() {
            feeds.insert(
                state_name(&p.name, st),
                Tensor::zeros(DType::F32, p.shape.clone()),
            );
        }
    }

    let compile_start = Instant::now();
    let train_graph = model.optimized_train_graph(b, nclass, &file.cost, &optimizer)?;
    let mut train = be.compile(&train_graph)?;
    let compile_ms = compile_start.elapsed().as_secs_f64() * 1e3;
    let mut infer = be.compile(&model.inference_graph(b)?)?;

    // Warm up, then size the repetitions to about one second.
    let first = Instant::now();
    train.run_update(&mut feeds, false)?;
    let once = first.elapsed().max(Duration::from_micros(1));
    for _ in 0..2 {
        train.run_update(&mut feeds, false)?;
        infer.run(&feeds)?;
    }
    let reps = a
        .reps
        .unwrap_or_else(|| (1.0 / once.as_secs_f64()).clamp(5.0, 1000.0) as usize)
        .max(1);

    let mut train_us = Vec::with_capacity(reps);
    let (mut gemm_us, mut loop_us) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    train.set_profiling(true);
    for _ in 0..reps {
        let before = train.profile();
        let s = Instant::now();
        train.run_update(&mut feeds, false)?;
        train_us.push(s.elapsed().as_secs_f64() * 1e6);
        if let (Some(b0), Some(p)) = (before, train.profile()) {
            gemm_us.push((p.gemm - b0.gemm).as_secs_f64() * 1e6);
            loop_us.push((p.loops + p.library - b0.loops - b0.library).as_secs_f64() * 1e6);
        }
    }
    let mut infer_us = Vec::with_capacity(reps);
    for _ in 0..reps {
        let s = Instant::now();
        infer.run(&feeds)?;
        infer_us.push(s.elapsed().as_secs_f64() * 1e6);
    }
    let (tm, tmin, tmax) = stats(train_us);
    let (im, imin, imax) = stats(infer_us);
    let gemm = (!gemm_us.is_empty()).then(|| stats(gemm_us).0);
    let loops = (!loop_us.is_empty()).then(|| stats(loop_us).0);
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if a.json {
        println!(
            "{}",
            json!({
                "model": a.model.display().to_string(), "backend": be.name(), "batch": b, "threads": threads, "reps": reps,
                "train_step_us_median": tm, "train_step_us_min": tmin, "train_step_us_max": tmax,
                "infer_us_median": im, "infer_us_min": imin, "infer_us_max": imax,
                "gemm_us_median": gemm, "kernels_us_median": loops, "compile_ms": compile_ms, "machine": machine(),
            })
        );
    } else {
        println!(
            "{} on {} ({} thread(s)), batch {b}, {reps} repetitions, {}",
            a.model.display(),
            be.name(),
            threads,
            machine()
        );
        println!("training step: median {tm:.1} µs (min {tmin:.1}, max {tmax:.1})");
        if let (Some(g), Some(l)) = (gemm, loops) {
            println!(
                "  of which GEMM: median {g:.1} µs ({:.0}% of the step); other kernels {l:.1} µs",
                100.0 * g / tm
            );
        }
        println!("inference:     median {im:.1} µs (min {imin:.1}, max {imax:.1})");
        println!("compile (training step): {compile_ms:.1} ms");
    }
    Ok(())
}
