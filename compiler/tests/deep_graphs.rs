//! A graph 100,000 elementwise nodes deep, followed by 20,000 movement ops, through every
//! stage: autodiff, the e-graph optimizer, lowering (partition, fused kernels, copies of
//! reshapes nested 5,000 deep, memory plan), Cranelift code generation and the text, DOT
//! and JSON dumps, its results checked against the reference interpreter. No stage may
//! recurse on the graph's depth: the test harness runs each test on a thread with a 2 MiB
//! stack, which a recursion 100,000 deep overflows.

use std::time::Instant;
use xenon_compiler::autodiff;
use xenon_compiler::backend::{Backend, Cpu};
use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph};
use xenon_compiler::lower::{self, dump};
use xenon_compiler::opt::{self, OptConfig};
use xenon_runtime::Tensor;
use xenon_runtime::program::Step;

/// Elementwise nodes chained one after the other.
const DEPTH: usize = 100_000;
/// Pairs of reshapes (`[4, 8] → [32] → [4, 8]`) and pairs of transposes after them.
const VIEW_PAIRS: usize = 5_000;

/// `y = views(chain(x))`, `loss = Σ y²`: the chain cycles through `·0.5`, `+ x` and `−`,
/// with a `tanh` every 50 nodes (so every node depends on the one before, values stay
/// bounded, the gradient of `x` collects a term from every third node, and the backward
/// pass reads 2,000 stored `tanh` values); the views end on an inline expression, so
/// lowering copies the reshapes (nested: each copy computes the one below).
fn deep_graph() -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", DType::F64, &[4, 8]).unwrap();
    let half = g.scalar(DType::F64, 0.5).unwrap();
    let mut h = x;
    for i in 0..DEPTH {
        h = match i % 3 {
            _ if i % 50 == 49 => g.tanh(h),
            0 => g.mul(h, half),
            1 => g.add_(h, x),
            _ => g.neg(h),
        }
        .unwrap();
    }
    for _ in 0..VIEW_PAIRS {
        let flat = g.reshape(h, &[32]).unwrap();
        h = g.reshape(flat, &[4, 8]).unwrap();
    }
    for _ in 0..VIEW_PAIRS {
        let t = g.transpose(h).unwrap();
        h = g.transpose(t).unwrap();
    }
    let y = g.mul(h, half).unwrap();
    let sq = g.mul(y, y).unwrap();
    let loss = g.sum(sq, &[0, 1], false).unwrap();
    g.set_output("y", y).unwrap();
    g.set_output("loss", loss).unwrap();
    g
}

fn feeds() -> Feeds {
    let x: Vec<f64> = (0..32)
        .map(|i| ((i * 7) % 11) as f64 / 11.0 - 0.4)
        .collect();
    [("x".to_string(), Tensor::from_f64(vec![4, 8], x).unwrap())]
        .into_iter()
        .collect()
}

fn close(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{name}");
    for (i, (a, b)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{name}[{i}]: {a} against the interpreter's {b}"
        );
    }
}

#[test]
fn a_graph_100000_nodes_deep_goes_through_every_stage() {
    let t = Instant::now();
    let g = deep_graph();
    let g = autodiff::with_gradients(&g, "loss", &["x"]).unwrap();
    assert!(g.len() > 2 * DEPTH, "{} nodes", g.len());
    let feeds = feeds();
    let want = interp::run(&g, &feeds).unwrap();
    eprintln!("graph, autodiff, interpreter: {:.2?}", t.elapsed());

    // The optimizer: this graph is past its default node limit, so it is mostly rebuilt
    // (converted to an e-graph, extracted, converted back).
    let t = Instant::now();
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    let got = interp::run(&o, &feeds).unwrap();
    for name in ["y", "loss", "grad/x"] {
        close(name, &got[name], &want[name]);
    }
    eprintln!("optimizer: {:.2?}", t.elapsed());

    // Lowering: the chains are cut into kernels of bounded size, and the reshapes the
    // kernels cannot index through are copied, each copy computing the one below it.
    let t = Instant::now();
    let l = lower::lower(&o).unwrap();
    let loops: Vec<_> = l
        .program
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Loop(k) => Some(k),
            _ => None,
        })
        .collect();
    let largest = loops.iter().map(|k| k.body.len()).max().unwrap();
    assert!(
        largest <= 3 * lower::MAX_FUSED,
        "a kernel of {largest} instructions"
    );
    let copies = loops.iter().filter(|k| k.name.starts_with("copy_")).count();
    assert!(copies >= VIEW_PAIRS, "{copies} copies");
    eprintln!(
        "lowering: {:.2?} ({} steps, {copies} copies, largest kernel {largest} instructions)",
        t.elapsed(),
        l.program.steps.len()
    );

    // Compiled for the CPU, it computes what the interpreter computes.
    let t = Instant::now();
    let mut exe = Cpu::with_threads(2).compile(&o).unwrap();
    let got = exe.run(&feeds).unwrap();
    for name in ["y", "loss", "grad/x"] {
        close(name, &got[name], &want[name]);
    }
    eprintln!("cpu backend: {:.2?}", t.elapsed());

    // Every dump (the JSON ones share `to_json_with`; `Cpu::compile` wrote the graph's
    // JSON form for its hash).
    let t = Instant::now();
    let lines = |s: &str| s.lines().count();
    assert!(lines(&g.to_text()) >= g.len());
    assert!(lines(&opt::dump::to_text(&o, Some(&report))) >= o.len());
    assert!(lines(&opt::dump::to_dot(&o, Some(&report))) >= o.len());
    assert!(lines(&dump::kernels_text(&o, &l)) >= o.len());
    assert!(lines(&dump::kernels_dot(&o, &l)) >= o.len());
    assert!(lines(&dump::schedule_text(&l)) >= l.program.steps.len());
    assert!(lines(&dump::schedule_dot(&l)) >= l.program.steps.len());
    let json = dump::schedule_json(&o, &l);
    assert_eq!(json["nodes"].as_array().map(Vec::len), Some(o.len()));
    eprintln!("dumps: {:.2?}", t.elapsed());
}
