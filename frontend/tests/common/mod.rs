//! Helpers shared by the frontend's integration tests.
// Each test file uses some of them.
#![allow(dead_code)]

pub mod gradcheck;

use std::sync::Arc;
use xenon_compiler::backend::Cpu;
use xenon_compiler::pipeline::Pipeline;
use xenon_compiler::verify::Verify;
use xenon_frontend::data::{Dataset, Mnist};
use xenon_frontend::prelude::*;

/// The first `n` training samples of the bundled MNIST subset.
pub fn mnist_head(n: usize) -> Dataset {
    Mnist::bundled().unwrap().train.head(n)
}

/// A pipeline on the CPU backend with `threads` threads, in verify mode, and its verifier.
pub fn verified_cpu(threads: usize) -> (Pipeline, Arc<Verify>) {
    let verify = Arc::new(Verify::new());
    let pipeline = Pipeline::new(Arc::new(Cpu::with_threads(threads))).with_hook(verify.clone());
    (pipeline, verify)
}

/// Every model file in `examples/models/` (YAML and JSON), sorted.
pub fn example_models() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/models");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 4, "{v:?}");
    v
}

/// neon's mnist_mlp with `hidden` units: Gaussian(0, 0.01) weights, a zero-initialized
/// bias and ReLU, then logistic outputs (10 classes).
pub fn mlp(hidden: usize) -> Sequential {
    let init = Initializer::Gaussian {
        loc: 0.0,
        scale: 0.01,
    };
    Sequential::new(vec![
        Affine::new(hidden, init.clone())
            .with_bias(Initializer::Constant { val: 0.0 })
            .with_activation(Activation::Rectlin { slope: 0.0 })
            .into(),
        Affine::new(10, init)
            .with_activation(Activation::Logistic { shortcut: true })
            .into(),
    ])
}
