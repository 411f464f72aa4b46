//! How long the e-graph optimizer takes on training-step graphs: neon's mnist_mlp
//! (784-100-10, batch 128) and a 20-layer MLP (784, 19 hidden Affine+bias+ReLU layers of
//! 100, 10 softmax outputs). Prints the median of `--runs` optimizations and the report of
//! the last one, then the reference interpreter's time for one mnist_mlp training step on
//! the unoptimized and the optimized graph. Timing is reported here, never asserted in
//! tests.
//!
//! ```sh
//! cargo run --release --example opt_timing [-- --runs 11]
//! ```

use clap::Parser;
use std::time::Instant;
use xenon::compiler::interp;
use xenon::compiler::ir::Graph;
use xenon::compiler::opt::{OptConfig, optimize};
use xenon::frontend::prelude::*;
use xenon::runtime::Tensor;

#[derive(Parser)]
struct Args {
    /// Optimizations per graph (the median is reported).
    #[arg(long, default_value_t = 11)]
    runs: usize,
}

fn affine(nout: usize, act: Activation, bias: bool) -> Layer {
    let init = Initializer::Gaussian {
        loc: 0.0,
        scale: 0.01,
    };
    Affine {
        bias: bias.then_some(Initializer::Constant { val: 0.0 }),
        ..Affine::new(nout, init).with_activation(act)
    }
    .into()
}

fn time(name: &str, g: &Graph, runs: usize) {
    let cfg = OptConfig::default();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let r = optimize(g, &cfg).expect("optimizes");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some(r);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (_, report) = last.unwrap();
    println!(
        "{name}: {} nodes; optimize median {:.2} ms (min {:.2}, max {:.2}, {} runs)",
        g.len(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    print!("{report}");
}

/// Median interpreter time of one step of `g` before and after optimization.
fn step_time(g: &Graph, runs: usize) {
    let (o, _) = optimize(g, &OptConfig::default()).expect("optimizes");
    let feeds: interp::Feeds = g
        .inputs()
        .into_iter()
        .chain(g.parameters())
        .map(|(name, id)| {
            let t = g.ty(id);
            let v: Vec<f64> = (0..t.numel()).map(|i| ((i % 17) as f64) * 0.01).collect();
            (
                name,
                Tensor::from_f64_as(t.dtype, t.shape.clone(), &v).unwrap(),
            )
        })
        .collect();
    for (name, graph) in [("unoptimized", g), ("optimized", &o)] {
        let mut times: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                interp::run(graph, &feeds).expect("runs");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "mnist_mlp step on the interpreter, {name}: median {:.2} ms",
            times[times.len() / 2]
        );
    }
}

fn main() {
    let args = Args::parse();
    let relu = Activation::Rectlin { slope: 0.0 };
    let gdm = Optimizer::gdm(0.1, 0.9);

    let mnist = Model::new(
        Sequential::new(vec![
            affine(100, relu.clone(), false),
            affine(10, Activation::Logistic { shortcut: true }, false),
        ]),
        &[1, 28, 28],
        0,
    )
    .unwrap();
    let g = mnist
        .train_graph(128, 10, &Cost::CrossEntropyBinary { scale: 1.0 }, &gdm)
        .unwrap();
    time("mnist_mlp training step", &g, args.runs);
    step_time(&g, args.runs);

    let mut layers: Vec<Layer> = (0..19).map(|_| affine(100, relu.clone(), true)).collect();
    layers.push(affine(
        10,
        Activation::Softmax {
            axis: 0,
            epsilon: 2f64.powi(-23),
        },
        true,
    ));
    let deep = Model::new(Sequential::new(layers), &[1, 28, 28], 0).unwrap();
    let g = deep
        .train_graph(
            128,
            10,
            &Cost::CrossEntropyMulti {
                scale: 1.0,
                usebits: false,
            },
            &gdm,
        )
        .unwrap();
    time("20-layer MLP training step", &g, args.runs);
}
