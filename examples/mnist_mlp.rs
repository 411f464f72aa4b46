//! neon's canonical example, `examples/mnist_mlp.py`, in Xenon: a 784-100-10 MLP (no
//! biases, Gaussian(0, 0.01) weights, ReLU then logistic outputs) trained with binary
//! cross-entropy and SGD with momentum (lr 0.1, momentum 0.9), batch 128, 10 epochs, on the
//! MNIST subset bundled with Xenon (or full MNIST with `--data DIR`).
//!
//! ```sh
//! cargo run --release --example mnist_mlp [-- --seed 3 --epochs 10 --data ~/mnist --threads 1]
//! ```

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use xenon::compiler::backend::{Backend, Cpu, Interpreter};
use xenon::frontend::prelude::*;

#[derive(Parser)]
struct Args {
    /// Directory with MNIST IDX files (raw or .gz); default: the bundled 8k/1k subset.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed for the weight initialization.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Worker threads of the CPU backend (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run on the reference interpreter instead of the CPU backend.
    #[arg(long)]
    interp: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let start = Instant::now();
    let mnist = match &args.data {
        Some(dir) => Mnist::load(dir)?,
        None => Mnist::bundled()?,
    };
    println!("{mnist}");

    let init = Initializer::Gaussian {
        loc: 0.0,
        scale: 0.01,
    };
    let layers = Sequential::new(vec![
        Affine::new(100, init.clone())
            .with_activation(Activation::Rectlin { slope: 0.0 })
            .into(),
        Affine::new(10, init)
            .with_activation(Activation::Logistic { shortcut: true })
            .into(),
    ]);
    let backend: Arc<dyn Backend> = match (args.interp, args.threads) {
        (true, _) => Arc::new(Interpreter),
        (false, Some(t)) => Arc::new(Cpu::with_threads(t)),
        (false, None) => Arc::new(Cpu::default()),
    };
    let mut model =
        Model::new(layers, &mnist.train.feature_shape, args.seed)?.with_backend(backend);
    println!(
        "{} parameters, backend {}",
        model.num_params(),
        model.backend_name()
    );

    let cost = Cost::CrossEntropyBinary { scale: 1.0 };
    let optimizer = Optimizer::gdm(0.1, 0.9);
    let mut train = BatchIterator::new(&mnist.train, BatchOptions::new(args.batch))?;
    let mut progress = ProgressBarCallback::new(true);
    let mut eval = EvalCallback::new(
        &mnist.test,
        args.batch,
        vec![Metric::Misclassification { steps: 1 }],
    )
    .with_report(|s, m| {
        println!(
            "Epoch {:<2} train cost {:.4}  test misclassification {:5.2}%  ({} batches, {:.2}s)",
            s.epoch,
            s.train_cost,
            100.0 * m[0].1,
            s.batches,
            s.seconds
        )
    });
    let history = model.fit(
        &mut train,
        &cost,
        &optimizer,
        args.epochs,
        &mut [&mut progress, &mut eval],
    )?;
    let final_misclass = eval
        .history
        .last()
        .map_or(f64::NAN, |(_, m)| 100.0 * m[0].1);
    let train_seconds: f64 = history.iter().map(|h| h.seconds).sum();
    println!(
        "Misclassification error = {final_misclass:.2}%  (training {train_seconds:.2}s, whole run {:.2}s)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
