//! neon's `examples/char_lstm.py` in Xenon: a character-level language model on the
//! tinyshakespeare text bundled with Xenon (first 90 % train, last 10 % validate), then
//! text sampled from a prompt.
//!
//! One-hot characters → 2 × LSTM(128) (tanh, logistic gates; `--gru` for GRUs) →
//! Affine(vocabulary, bias) with Softmax at every step; sequences of 50 characters,
//! batch 64, states carried from one minibatch to the next; cross-entropy (reported in
//! nats and bits per character); RMSProp (learning rate 2e-3, decay 0.95) with gradients
//! clipped to ±5; Uniform(±0.08) weights. Two epochs reach about 2.0 nats/char.
//!
//! ```sh
//! cargo run --release --example char_lstm [-- --gru --epochs 2 --threads 1 --prompt "ROMEO:"]
//! ```

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use xenon::compiler::backend::Cpu;
use xenon::frontend::data::text::{BUNDLED_TEXT, Tokenizer, load_split, text_dataset};
use xenon::frontend::layer::{Gru, Layer, Lstm};
use xenon::frontend::model::SampleOptions;
use xenon::frontend::optimizer::RmsProp;
use xenon::frontend::prelude::*;

#[derive(Parser)]
struct Args {
    /// A text file (raw or gzipped); default: the bundled tinyshakespeare.
    #[arg(long)]
    text: Option<PathBuf>,
    /// GRU layers instead of LSTMs (neon's `--rlayer_type gru`).
    #[arg(long)]
    gru: bool,
    /// Epochs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Characters per sequence (the unrolled length).
    #[arg(long, default_value_t = 50)]
    seq: usize,
    /// Hidden units per recurrent layer.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Seed of the weight initialization and of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads of the CPU backend (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The text the trained model continues.
    #[arg(long, default_value = "ROMEO:")]
    prompt: String,
    /// How many characters to sample after training.
    #[arg(long, default_value_t = 200)]
    chars: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let start = Instant::now();
    let path = args
        .text
        .clone()
        .unwrap_or_else(|| PathBuf::from(BUNDLED_TEXT));
    let split = load_split(&path, Tokenizer::Chars, 0.1)?;
    let v = split.vocab.len();
    let train_set = text_dataset(&split.train, v, args.seq, true)?;
    let valid_set = text_dataset(&split.valid, v, args.seq, true)?;
    println!(
        "{}: {} training and {} validation characters, {v} distinct",
        path.display(),
        split.train.len(),
        split.valid.len()
    );

    let init = Initializer::Uniform {
        low: -0.08,
        high: 0.08,
    };
    let recurrent = |k: usize| -> Layer {
        let name = format!("rec{k}");
        let (tanh, logistic) = (Activation::Tanh, Activation::Logistic { shortcut: false });
        match args.gru {
            true => Gru::new(args.hidden, init.clone(), tanh, logistic)
                .with_name(name)
                .into(),
            false => Lstm::new(args.hidden, init.clone(), tanh, logistic)
                .with_name(name)
                .into(),
        }
    };
    let output = Affine::new(v, init.clone())
        .with_bias(init.clone())
        .with_activation(Activation::Softmax {
            axis: 0,
            epsilon: 2f64.powi(-23),
        });
    let layers = Sequential::new(vec![recurrent(0), recurrent(1), output.into()]);
    let backend = match args.threads {
        Some(t) => Arc::new(Cpu::with_threads(t)),
        None => Arc::new(Cpu::default()),
    };
    // Fed the character ids: the layers read their one-hot rows, which the compiler turns
    // into row gathers instead of products.
    let mut model = Model::new(layers, &train_set.input_shape(), args.seed)?
        .with_token_ids()?
        .with_backend(backend);
    println!(
        "{} parameters ({}), backend {}",
        model.num_params(),
        if args.gru { "GRU" } else { "LSTM" },
        model.backend_name()
    );

    // neon's char_lstm: CrossEntropyMulti(usebits=True), RMSProp(clip value 5).
    let cost = Cost::CrossEntropyMulti {
        scale: 1.0,
        usebits: true,
    };
    let optimizer = Optimizer::RmsProp(RmsProp {
        gradient_clip_value: Some(5.0),
        ..RmsProp::default()
    });
    let mut train = BatchIterator::new(&train_set, BatchOptions::new(args.batch))?;
    let mut progress = ProgressBarCallback::new(true);
    let mut eval = EvalCallback::new(&valid_set, args.batch, vec![Metric::LogLoss]).with_report(
        |s, m| {
            println!(
                "Epoch {:<2} train cost {:.4} bits  valid {:.4} nats/char ({:.4} bits)  ({} batches, {:.2}s)",
                s.epoch,
                s.train_cost,
                m[0].1,
                m[0].1 / std::f64::consts::LN_2,
                s.batches,
                s.seconds
            )
        },
    );
    model.fit(
        &mut train,
        &cost,
        &optimizer,
        args.epochs,
        &mut [&mut progress, &mut eval],
    )?;
    let nats = eval.history.last().map_or(f64::NAN, |(_, m)| m[0].1);
    println!(
        "Validation cross-entropy = {nats:.4} nats/char ({:.4} bits/char), whole run {:.1}s",
        nats / std::f64::consts::LN_2,
        start.elapsed().as_secs_f64()
    );

    // One character at a time, the states carried from each to the next.
    let mut sampler = model.for_input(&[1, v])?;
    let prompt = split
        .vocab
        .encode(Tokenizer::Chars.tokenize(&args.prompt), "the prompt")?;
    let opts = SampleOptions {
        temperature: 1.0,
        seed: args.seed,
    };
    let mut out = std::io::stdout().lock();
    write!(out, "\n{}", args.prompt)?;
    sampler.sample(&prompt, args.chars, opts, |id| {
        let _ = write!(out, "{}", split.vocab.token(id).unwrap_or("?"));
    })?;
    writeln!(out)?;
    Ok(())
}
