//! `xenon bench MODEL --batch N [--threads T] [--backend B] [--isa I] [--reps R] [--json]`:
//! microseconds per training step (as `Model::fit` runs it: parameters and optimizer state
//! updated in place; without fit's NaN/Inf scan of the new values) and per inference, with
//! the time in GEMM alone, the GEMMs' speed, and this machine's measured FMA peak for the
//! GEMM instruction-set path in use (so that "fraction of peak" is measured, not assumed).

use super::common::{
    MAX_BATCH, MAX_REPS, MAX_THREADS, backend, check_count, count, data_model, load_model_file,
    pipeline, report_verify,
};
use anyhow::Context;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xenon_compiler::backend::Executable;
use xenon_compiler::interp::Feeds;
use xenon_frontend::layer::STEP;
use xenon_frontend::model::step_counter;
use xenon_runtime::cpu::gemm::{Isa, cpu_name, peak::peak_gflops_f32};
use xenon_runtime::exec::StepTimes;
use xenon_runtime::{DType, Tensor, rng};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The model file.
    pub model: PathBuf,
    /// Batch size of the training step and of inference (default: the file's `batchsize`,
    /// else 128).
    #[arg(long, value_parser = count::<MAX_BATCH>)]
    pub batch: Option<usize>,
    /// Worker threads of the cpu backend (default: all cores).
    #[arg(long, value_parser = count::<MAX_THREADS>)]
    pub threads: Option<usize>,
    /// Backend: cpu, interp or opencl.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// OpenCL device for `--backend opencl` (an index from `xenon devices`; default 0).
    #[arg(long)]
    pub device: Option<usize>,
    /// GEMM instruction set of the cpu backend: avx512, avx2 or portable (default: the best
    /// this processor has, capped by the XENON_ISA environment variable).
    #[arg(long)]
    pub isa: Option<Isa>,
    /// Timed repetitions of each (default: as many as fit in about one second, 5 to 1000).
    #[arg(long, value_parser = count::<MAX_REPS>)]
    pub reps: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Check the first run of the training step and of inference against the reference
    /// interpreter (see `xenon train --verify`; with `--json`, one more JSON line each).
    #[arg(long)]
    pub verify: bool,
    /// Also list the program steps of the training step and of inference with their mean
    /// time, slowest first.
    #[arg(long)]
    pub steps: bool,
}

/// Each step's description and mean microseconds per run, slowest first.
fn mean_step_times(p: &StepTimes) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = p
        .steps
        .iter()
        .map(|(d, t)| (d.clone(), t.as_secs_f64() * 1e6 / p.runs.max(1) as f64))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{}, {cores} cores", cpu_name())
}

/// Random inputs of `shape`: uniform on `[0, 1)`, or token ids in `0..v` for a model fed
/// token ids of `Some(v)`.
fn random(shape: Vec<usize>, token_ids: Option<usize>, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| match token_ids {
            Some(v) => (rng::bits(seed, 0, i) % v as u64) as f32,
            None => rng::uniform_f32(seed, 0, i),
        })
        .collect();
    Tensor::from_f32(shape, v).expect("sized")
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let file = load_model_file(&a.model)?;
    let (model, _, nclass) = data_model(&file, &a.model, None, Some(0))?;
    let optimizer = file
        .optimizer
        .clone()
        .context("the model file has no optimizer")?;
    let (pipeline, verifier) = pipeline(backend(&a.backend, a.threads, a.isa, a.device)?, a.verify);
    let isa = a.isa.unwrap_or_else(Isa::detect).capped();
    let model = model.with_pipeline(pipeline);
    let backend_name = model.backend_name();
    let b =
        check_count(a.batch.or(file.batchsize).unwrap_or(128), MAX_BATCH).context("batch size")?;

    let mut x_shape = vec![b];
    x_shape.extend(model.fed_shape());
    // One-hot targets: one per example, or one per time step of a sequence output.
    let mut t_shape = vec![b];
    t_shape.extend(model.target_shape(nclass));
    let targets = |seed: u64| {
        let rows: usize = t_shape[..t_shape.len() - 1].iter().product();
        let mut t = vec![0f32; rows * nclass];
        for i in 0..rows {
            t[i * nclass + (rng::bits(seed, 0, i as u64) % nclass as u64) as usize] = 1.0;
        }
        Tensor::from_f32(t_shape.clone(), t)
    };
    let mut feeds: Feeds = Feeds::new();
    let ids = model.token_ids();
    feeds.insert("x".into(), random(x_shape.clone(), ids, 1));
    feeds.insert("t".into(), targets(2)?);
    // The other minibatch: training steps alternate between the two, as training feeds a
    // new minibatch every step (a device backend uploads the next one during the step).
    let mut other = (random(x_shape, ids, 3), targets(4)?);
    for (name, lr) in optimizer.learning_rates(0, 1) {
        feeds.insert(name, Tensor::full(DType::F32, vec![], lr));
    }
    // The counter of the step's random streams (dropout).
    feeds.insert(STEP.into(), step_counter(1));
    for p in model.params() {
        feeds.insert(
            p.name.clone(),
            model.value(&p.name).expect("initialized").clone(),
        );
    }
    for (name, p) in model.state_names(&optimizer) {
        feeds.insert(name, Tensor::zeros(DType::F32, p));
    }
    // Recurrent layers' states, zeros at the start of a sequence.
    for (name, per_row) in model.states() {
        feeds.insert(
            name.clone(),
            Tensor::zeros(DType::F32, [&[b][..], per_row].concat()),
        );
    }

    let compile_start = Instant::now();
    let mut train = model.compile_train_step(b, nclass, &file.cost, &optimizer)?;
    let compile_ms = compile_start.elapsed().as_secs_f64() * 1e3;
    let mut infer = model.compile_inference(b)?;

    // One training step as `Model::fit` runs it (without the NaN check): this minibatch
    // in, the updates kept by the backend (in place on the CPU, on the device on OpenCL),
    // the next minibatch prefetched.
    let mut step = |train: &mut Box<dyn Executable>, feeds: &mut Feeds| -> anyhow::Result<()> {
        for (name, next) in [("x", &mut other.0), ("t", &mut other.1)] {
            if let Some(now) = feeds.get_mut(name) {
                std::mem::swap(now, next);
            }
        }
        train.run_update_resident(feeds, false, &[("x", &other.0), ("t", &other.1)])?;
        Ok(())
    };
    // Warm up, then size the repetitions to about one second.
    let first = Instant::now();
    step(&mut train, &mut feeds)?;
    let once = first.elapsed().max(Duration::from_micros(1));
    for _ in 0..2 {
        step(&mut train, &mut feeds)?;
        infer.run(&feeds)?;
    }
    let reps = a
        .reps
        .unwrap_or_else(|| (1.0 / once.as_secs_f64()).clamp(5.0, 1000.0) as usize)
        .max(1);

    let mut train_us = Vec::with_capacity(reps);
    let (mut gemm_us, mut loop_us) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    let mut gemm_flops = 0;
    train.set_profiling(true);
    for _ in 0..reps {
        let before = train.profile();
        let s = Instant::now();
        step(&mut train, &mut feeds)?;
        train_us.push(s.elapsed().as_secs_f64() * 1e6);
        if let (Some(b0), Some(p)) = (&before, train.profile()) {
            gemm_us.push((p.gemm - b0.gemm).as_secs_f64() * 1e6);
            gemm_flops = p.gemm_flops - b0.gemm_flops;
            loop_us.push((p.loops + p.library - b0.loops - b0.library).as_secs_f64() * 1e6);
        }
    }
    let step_profile = train.profile().as_ref().map(mean_step_times);
    let mut infer_us = Vec::with_capacity(reps);
    for _ in 0..reps {
        let s = Instant::now();
        infer.run(&feeds)?;
        infer_us.push(s.elapsed().as_secs_f64() * 1e6);
    }
    // Per-step times of inference, from separate profiled runs (profiling adds clock reads).
    let infer_profile = if a.steps {
        infer.set_profiling(true);
        for _ in 0..reps {
            infer.run(&feeds)?;
        }
        infer.profile().as_ref().map(mean_step_times)
    } else {
        None
    };
    let (tm, tmin, tmax) = stats(train_us);
    let (im, imin, imax) = stats(infer_us);
    let gemm = (!gemm_us.is_empty()).then(|| stats(gemm_us).0);
    let loops = (!loop_us.is_empty()).then(|| stats(loop_us).0);
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let gemm_gflops = gemm
        .filter(|g| *g > 0.0)
        .map(|g| gemm_flops as f64 / g / 1e3);
    // The peak of one core on this path, measured now (about 0.3 s).
    let peak_gflops = (backend_name == "cpu").then(|| peak_gflops_f32(isa, 300));
    let isa_name = (backend_name == "cpu").then(|| isa.name());
    if a.json {
        let mut doc = json!({
                "model": a.model.display().to_string(), "backend": backend_name, "batch": b, "threads": threads, "reps": reps,
                "train_step_us_median": tm, "train_step_us_min": tmin, "train_step_us_max": tmax,
                "infer_us_median": im, "infer_us_min": imin, "infer_us_max": imax,
                "gemm_us_median": gemm, "kernels_us_median": loops, "compile_ms": compile_ms, "machine": machine(),
                "isa": isa_name, "gemm_gflops": gemm_gflops, "peak_gflops": peak_gflops,
        });
        let listed = |steps: &Vec<(String, f64)>| -> serde_json::Value {
            steps
                .iter()
                .map(|(d, us)| json!({"step": d, "us_mean": us}))
                .collect()
        };
        if let (true, Some(steps)) = (a.steps, &step_profile) {
            doc["steps"] = listed(steps);
        }
        if let Some(steps) = &infer_profile {
            doc["infer_steps"] = listed(steps);
        }
        println!("{doc}");
    } else {
        println!(
            "{} on {}{} ({} thread(s)), batch {b}, {reps} repetitions, {}",
            a.model.display(),
            backend_name,
            isa_name.map_or(String::new(), |i| format!(" (GEMM path {i})")),
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
        if let (Some(g), Some(p)) = (gemm_gflops, peak_gflops) {
            println!(
                "  GEMM speed {g:.1} GFLOP/s = {:.0}% of the measured FMA peak on this path ({p:.1} GFLOP/s per core × {threads})",
                100.0 * g / (p * threads as f64)
            );
        }
        println!("inference:     median {im:.1} µs (min {imin:.1}, max {imax:.1})");
        for (what, profile) in [
            ("training step", step_profile.as_ref().filter(|_| a.steps)),
            ("inference", infer_profile.as_ref()),
        ] {
            if let Some(steps) = profile {
                println!("{what} program, mean µs per step, slowest first:");
                for (d, us) in steps {
                    println!("  {us:10.1}  {d}");
                }
            }
        }
        println!("compile (training step): {compile_ms:.1} ms");
    }
    report_verify(verifier.as_ref(), a.json)
}
