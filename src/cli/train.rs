//! `xenon train MODEL [--data DIR|FILE.npz] [--epochs N] [--batch N] [--seed S] [--backend B]
//! [--threads T] [--save PATH [--serialize N]] [--resume CKPT] [--history FILE] [--json]`,
//! alone or as one rank of an MPI job (`mpirun -np N xenon train …`, feature `mpi`).

use super::common::{
    MAX_BATCH, MAX_EPOCHS, MAX_THREADS, backend, check_count, count, data_source, eval_metric,
    load_model_file, model_layers, new_model, pipeline, report_verify,
};
use anyhow::Context;
use clap::Args;
use serde_json::json;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use xenon_compiler::backend::Isa;
use xenon_frontend::history::{EpochRecord, History};
use xenon_frontend::prelude::*;
use xenon_runtime::DType;
use xenon_runtime::collective::Collective;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The model file (neon-style YAML, or JSON of the same shape).
    pub model: PathBuf,
    /// The data (neon's `-w`): for MNIST a directory of IDX files (raw or .gz; default: the
    /// bundled subset); for `dataset: {name: arrays}` the directory its relative paths are
    /// taken from (default: the model file's), or one `.npz` archive; a `.npz` archive of
    /// `x_train`, `y_train`, `x_test`, `y_test` (class ids) when the file names no data set.
    #[arg(long, short = 'w', alias = "data_dir")]
    pub data: Option<PathBuf>,
    /// Epochs (neon's `-e`; 1 to 1,000,000; default: the file's `epochs`, else 10). As
    /// with every flag, a value given here overrides the file (neon lets the file win for `batchsize`;
    /// Xenon keeps one rule: the command line is the more specific request).
    #[arg(long, short = 'e', value_parser = count::<MAX_EPOCHS>)]
    pub epochs: Option<usize>,
    /// Batch size (neon's `-z`; 1 to 1,048,576; default: the file's `batchsize`, else 128).
    #[arg(long, short = 'z', alias = "batch_size", value_parser = count::<MAX_BATCH>)]
    pub batch: Option<usize>,
    /// Seed for parameter initialization (neon's `-r`; default 0); a run is reproducible
    /// bit for bit.
    #[arg(long, short = 'r', alias = "rng_seed", default_value_t = 0)]
    pub seed: u64,
    /// Backend (neon's `-b`): cpu, interp or opencl (default: the file's `backend`, else
    /// cpu).
    #[arg(long, short = 'b')]
    pub backend: Option<String>,
    /// The dtype the model computes in: f32 (default) or f64 (neon's `-d`; f64 runs on
    /// the cpu and interp backends).
    #[arg(long = "datatype", short = 'd', value_name = "f32|f64", value_parser = parse_dtype)]
    pub dtype: Option<DType>,
    /// OpenCL device for `--backend opencl` (an index from `xenon devices`; default 0).
    #[arg(long)]
    pub device: Option<usize>,
    /// Worker threads of the cpu backend (1 to 4,096, at most the machine's cores: more are
    /// capped with a note; default: all cores; the interpreter always uses one).
    #[arg(long, value_parser = count::<MAX_THREADS>)]
    pub threads: Option<usize>,
    /// GEMM instruction set of the cpu backend: avx512, avx2 or portable (default: the best
    /// this processor has, capped by the XENON_ISA environment variable).
    #[arg(long)]
    pub isa: Option<Isa>,
    /// Save the trained model (safetensors: weights, optimizer state and where training
    /// stands, so the file is also a checkpoint for `--resume`) to this path (neon's `-s`).
    #[arg(long, short = 's')]
    pub save: Option<PathBuf>,
    /// Also save to the `--save` path every N epochs during training (neon's
    /// `--serialize N`; each save atomic).
    #[arg(long, value_name = "N", requires = "save", value_parser = count::<MAX_EPOCHS>)]
    pub serialize: Option<usize>,
    /// With `--serialize`, also keep the last K checkpoints as `<save>.<epoch>` (neon's
    /// `-H K`).
    #[arg(
        short = 'H',
        long = "keep-checkpoints",
        value_name = "K",
        requires = "serialize",
        value_parser = count::<MAX_EPOCHS>
    )]
    pub keep_checkpoints: Option<usize>,
    /// Continue the training saved in this checkpoint (a `--save` file) up to the total
    /// number of epochs, exactly as an uninterrupted run would (same seed and thread count
    /// give bit-identical weights). The model file must describe the same layers and
    /// optimizer; `--seed` is the checkpoint's.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Evaluate on the test split only every N epochs (and after the last; neon's `-eval
    /// N`, here a long flag).
    #[arg(long, value_name = "N", alias = "eval_freq", default_value_t = 1, value_parser = count::<MAX_EPOCHS>)]
    pub eval_freq: usize,
    /// Stop when this many evaluations in a row did not improve the test
    /// misclassification (the test cost for real-valued or input targets).
    #[arg(long, value_name = "PATIENCE", value_parser = count::<MAX_EPOCHS>)]
    pub early_stop: Option<usize>,
    /// Save the model (a checkpoint) to this path whenever the test misclassification
    /// (the test cost for real-valued or input targets) improves.
    #[arg(long, value_name = "PATH")]
    pub save_best: Option<PathBuf>,
    /// Write the training history to this file after every epoch: train cost and test
    /// misclassification (or cost) per epoch, as CSV for a `.csv` name, else JSON (`xenon plot`
    /// draws it). With `--resume`, an existing history is continued.
    #[arg(long, short = 'o', alias = "output_file", value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Also record every minibatch's cost in the (JSON) history.
    #[arg(long, requires = "history")]
    pub history_batches: bool,
    /// Before training, print what will run: the data (examples, shapes, targets), the
    /// model's parameters, backend, batch size, epochs and optimizer (neon's `-v`).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// One JSON object per line: one per epoch, then `{"event":"done", ...}`.
    #[arg(long)]
    pub json: bool,
    /// Visit the training examples in a new order every epoch, drawn from the model's seed
    /// (as `dataset: {shuffle: true}` in the model file does); without either, neon's
    /// fixed order.
    #[arg(long)]
    pub shuffle: bool,
    /// Check the first run of every compiled program (the training step, evaluation)
    /// against the reference interpreter and print the largest relative error per output;
    /// fails above 1e-5.
    #[arg(long)]
    pub verify: bool,
    /// Train as one rank of an MPI job (synchronous data parallelism; needs a build with
    /// `--features mpi`). Implied when an MPI launcher (`mpirun -np N xenon train …`)
    /// started the process. Each global minibatch of `--batch` examples is split evenly
    /// across the ranks; rank 0 prints, evaluates and saves.
    #[arg(long)]
    pub distributed: bool,
    /// Distributed: seconds a rank waits in one collective call for the others before it
    /// stops with an error naming the ranks that did not come (a rank whose process on this
    /// host is gone is noticed at once). Rank 0's evaluation between epochs must fit in it.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = count::<86_400>)]
    pub comm_timeout: usize,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let comm = join_group(&a)?;
    let result = train(a, comm.clone());
    match (&comm, result) {
        (Some(c), Err(e)) if c.size() > 1 => {
            // Said before the group is dropped: the first rank to exit makes the launcher
            // end the others, and a line still to be printed would be lost.
            crate::report(&e.context(format!("rank {} of {}", c.rank(), c.size())));
            std::process::exit(1)
        }
        (_, r) => r,
    }
}

/// The group of ranks this process trains in: MPI's world when an MPI launcher started it
/// or `--distributed` asks, else none.
fn join_group(a: &TrainArgs) -> anyhow::Result<Option<Arc<dyn Collective>>> {
    // Asked before MPI starts: a singleton MPI process sets the launcher's variables itself.
    let launched = xenon::distributed::launched_by_mpi();
    if !launched && !a.distributed {
        return Ok(None);
    }
    #[cfg(feature = "mpi")]
    {
        let timeout = std::time::Duration::from_secs(a.comm_timeout as u64);
        let c = xenon::distributed::mpi::MpiCollective::init(timeout)
            .context("starting MPI for distributed training")?;
        Ok(Some(Arc::new(c)))
    }
    #[cfg(not(feature = "mpi"))]
    {
        let ranks = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .map_or(String::new(), |n| format!(" with {n} ranks"));
        anyhow::bail!(
            "{}, but this build of Xenon has no MPI support (each rank would train alone): \
             build it with `cargo build --release --features mpi` (needs an MPI library such as \
             Debian's libopenmpi-dev, and libclang-dev)",
            if launched {
                format!("started by an MPI launcher{ranks}")
            } else {
                "--distributed asks for MPI".to_string()
            }
        )
    }
}

fn train(a: TrainArgs, comm: Option<Arc<dyn Collective>>) -> anyhow::Result<()> {
    // Rank 0 (or a process training alone) prints, evaluates and saves.
    let leader = comm.as_ref().is_none_or(|c| c.rank() == 0);
    let file = load_model_file(&a.model)?;
    let source = data_source(&file, &a.model, a.data.as_ref())?;
    let (input_shape, width) = source.shapes()?;
    let layers = model_layers(&file, &source)?;
    let (train_set, test_set) = source.load()?;
    let metric = eval_metric(&source, &file.cost);
    let classes = matches!(metric, Metric::Misclassification { .. });
    // Text: the validation cross-entropy per token, in nats (and bits).
    let per_token = matches!(metric, Metric::LogLoss);
    let backend = match (&a.backend, file.backend) {
        (Some(name), _) => backend(name, a.threads, a.isa, a.device)?,
        (None, Some(b)) => backend(b.xenon_backend(), a.threads, a.isa, a.device)
            .with_context(|| {
                format!(
                    "the model file's `backend: {b}` (Xenon's {} backend; --backend chooses another)",
                    b.xenon_backend()
                )
            })?,
        (None, None) => backend("cpu", a.threads, a.isa, a.device)?,
    };
    let (pipeline, verifier) = pipeline(backend, a.verify);
    let epochs =
        check_count(a.epochs.or(file.epochs).unwrap_or(10), MAX_EPOCHS).context("epochs")?;
    let batch =
        check_count(a.batch.or(file.batchsize).unwrap_or(128), MAX_BATCH).context("batch size")?;
    let optimizer = file
        .optimizer
        .clone()
        .context("the model file has no optimizer")?;
    let cost = file.cost.clone();

    let model = match &a.resume {
        Some(ckpt) => {
            let m = Model::load(ckpt)?;
            if m.layers() != &layers {
                anyhow::bail!(
                    "{}: the checkpoint is of another model (its layers differ from those of {})",
                    ckpt.display(),
                    a.model.display()
                );
            }
            if let Some(r) = m.resume_state()
                && r.optimizer != optimizer
            {
                anyhow::bail!(
                    "{}: the checkpoint was trained with another optimizer ({}) than {} gives ({})",
                    ckpt.display(),
                    r.optimizer.class(),
                    a.model.display(),
                    optimizer.class()
                );
            }
            m
        }
        None => new_model(layers, &input_shape, &source, Some(a.seed))?,
    };
    let model = match a.dtype {
        Some(d) if a.resume.is_some() && d != model.dtype() => {
            anyhow::bail!("the checkpoint computes in {}, not {d}", model.dtype())
        }
        Some(d) => model.with_dtype(d)?,
        None => model,
    };
    let mut model = model.with_pipeline(pipeline);
    model.set_collective(comm.clone());
    if a.verbose && !a.json && leader {
        if let Some(c) = &comm {
            println!(
                "distributed: {} ranks, each training on {} of every {batch} examples",
                c.size(),
                batch / c.size().max(1)
            );
        }
        println!(
            "data: {} training and {} test examples of shape {:?}; targets: {} ({} wide)",
            train_set.len(),
            test_set.len(),
            input_shape,
            source.targets().as_str(),
            width
        );
        println!(
            "model: {} parameters, output shape {:?}, {} cost, {} optimizer, computing in {}",
            model.num_params(),
            model.output_shape(),
            file.cost.name(),
            optimizer.class(),
            model.dtype()
        );
        println!(
            "training: backend {}, batch size {batch}, {} epochs from epoch {}{}",
            model.backend_name(),
            epochs.saturating_sub(model.epoch_index()),
            model.epoch_index(),
            if a.resume.is_some() { " (resumed)" } else { "" }
        );
    }
    let mut batching = BatchOptions::new(batch);
    if a.shuffle || file.dataset.as_ref().is_some_and(|d| d.shuffle) {
        batching = batching.shuffle(model.seed());
    }
    if let Some(a) = source.augment() {
        batching = batching.augment(a);
    }
    let mut train = BatchIterator::new(&train_set, batching)?;
    model.resume_batches(&mut train)?;
    // A resumed run trains the epochs left to the total.
    let epochs = epochs.saturating_sub(model.epoch_index());
    let mut checkpoint =
        CheckpointCallback::new(a.save.clone().unwrap_or_default(), a.serialize.unwrap_or(0))
            .keep(a.keep_checkpoints.unwrap_or(0));
    let json_out = a.json;
    let history = RefCell::new(match (&a.history, &a.resume) {
        (Some(path), Some(_)) if path.exists() => History::load(path)?,
        _ => History::default(),
    });
    let batch_costs = RefCell::new(Vec::new());
    let mut costs = BatchCostCallback(&batch_costs, a.history_batches);
    let mut history_error = None;
    let mut progress = ProgressBarCallback::new(!json_out && leader);
    let mut last = (f64::NAN, f64::NAN);
    // The test figure: misclassification in percent, or the cost.
    let test_name = match (classes, per_token) {
        (true, _) => "test_misclass",
        (_, true) => "valid_nats",
        _ => "test_cost",
    };
    let mut eval = EvalCallback::new(&test_set, batch, vec![metric.clone()]).with_report(|s, m| {
        let figure = if classes { 100.0 * m[0].1 } else { m[0].1 };
        last = (s.train_cost, figure);
        if let Some(path) = &a.history {
            let mut record = EpochRecord::new(s, m);
            if a.history_batches {
                record.batch_costs = Some(std::mem::take(&mut *batch_costs.borrow_mut()));
            }
            let mut h = history.borrow_mut();
            h.push(record);
            if let Err(e) = h.save(path) {
                history_error.get_or_insert(e);
            }
        }
        if json_out {
            println!(
                "{}",
                json!({"event": "epoch", "epoch": s.epoch, "train_cost": s.train_cost, test_name: figure,
                       "batches": s.batches, "seconds": s.seconds})
            );
        } else {
            println!(
                "Epoch {:<3} train cost {:.4}, {} ({} batches, {:.2}s)",
                s.epoch,
                s.train_cost,
                describe(&m[0].0, figure, classes, per_token),
                s.batches,
                s.seconds
            );
        }
    })
    .every(a.eval_freq);
    if let Some(p) = a.early_stop {
        eval = eval.early_stopping(p);
    }
    if let Some(path) = &a.save_best {
        eval = eval.save_best(path);
    }
    let start = Instant::now();
    // Ctrl-C: finish the minibatch, save a checkpoint, exit (a second Ctrl-C exits at once).
    ctrlc::set_handler(|| {
        if xenon_frontend::interrupt::stop_requested() {
            std::process::exit(130);
        }
        xenon_frontend::interrupt::request_stop();
    })
    .context("installing the Ctrl-C handler")?;
    // Only rank 0 evaluates, reports and saves (every rank holds the same weights).
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut costs];
    if leader {
        callbacks.extend([
            &mut progress as &mut dyn Callback,
            &mut eval,
            &mut checkpoint,
        ]);
    }
    let result = model.fit(&mut train, &cost, &optimizer, epochs, &mut callbacks);
    drop(callbacks);
    let seconds = start.elapsed().as_secs_f64();
    drop(eval);
    let history = match result {
        Err(ModelError::Interrupted { .. }) if !leader => std::process::exit(130),
        Err(ModelError::Interrupted { epoch, batch }) => {
            let path = a.save.clone().unwrap_or_else(|| {
                let stem = a.model.file_stem().unwrap_or_default().to_string_lossy();
                PathBuf::from(format!("{stem}.interrupted.xw"))
            });
            model.save(&path)?;
            eprintln!(
                "interrupted in epoch {epoch} after minibatch {batch}: saved a checkpoint to {} \
                 (continue with --resume {})",
                path.display(),
                path.display()
            );
            std::process::exit(130);
        }
        r => r?,
    };
    if !leader {
        return Ok(());
    }
    if let Some(e) = history_error {
        return Err(e.into());
    }
    if let Some(path) = &a.save {
        model.save(path)?;
    }
    let samples: usize = history.iter().map(|h| h.samples).sum();
    let train_seconds: f64 = history.iter().map(|h| h.seconds).sum();
    let (train_cost, figure) = last;
    if a.json {
        println!(
            "{}",
            json!({"event": "done", test_name: figure, "train_cost": train_cost, "epochs": model.epoch_index(),
                   "seconds": seconds, "train_seconds": train_seconds, "samples_per_sec": samples as f64 / train_seconds.max(1e-9),
                   "backend": model.backend_name(), "params": model.num_params()})
        );
    } else {
        let result = match (classes, per_token) {
            (true, _) => format!("Misclassification error = {figure:.2}%"),
            (_, true) => format!(
                "Validation cross-entropy = {figure:.4} nats/token ({:.4} bits/token)",
                figure / std::f64::consts::LN_2
            ),
            _ => format!("Test cost ({}) = {figure:.6}", file.cost.name()),
        };
        if samples == 0 {
            // A resumed run that had already reached its epochs.
            println!(
                "No epochs to train: the model has {} epochs; nothing evaluated",
                model.epoch_index()
            );
        } else {
            println!(
                "{result} after {} epochs ({seconds:.2}s, {:.0} samples/s)",
                model.epoch_index(),
                samples as f64 / train_seconds.max(1e-9)
            );
        }
        if let Some(p) = &a.save {
            println!("saved weights to {}", p.display());
        }
    }
    report_verify(verifier.as_ref(), a.json)
}

/// Collects every minibatch's cost (when on) for the history.
struct BatchCostCallback<'a>(&'a RefCell<Vec<f64>>, bool);

impl Callback for BatchCostCallback<'_> {
    fn on_minibatch_end(&mut self, _epoch: usize, _batch: usize, cost: f64) {
        if self.1 {
            self.0.borrow_mut().push(cost);
        }
    }
}

/// An evaluation for the epoch line: "test misclassification 4.60%", "valid 1.9812
/// nats/token (2.8583 bits)" or "test cost (MeanSquared) 0.0012".
fn describe(name: &str, figure: f64, classes: bool, per_token: bool) -> String {
    match (classes, per_token) {
        (true, _) => format!("test misclassification {figure:.2}%"),
        (_, true) => format!(
            "valid {figure:.4} nats/token ({:.4} bits)",
            figure / std::f64::consts::LN_2
        ),
        _ => format!("test cost ({name}) {figure:.6}"),
    }
}

/// `f32`/`float32` or `f64`/`float64`; neon's `f16` is not supported.
fn parse_dtype(s: &str) -> Result<DType, String> {
    match s {
        "f32" | "float32" => Ok(DType::F32),
        "f64" | "float64" => Ok(DType::F64),
        other => Err(format!(
            "unsupported datatype {other:?} (accepted: f32, f64)"
        )),
    }
}
