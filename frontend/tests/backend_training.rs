//! Training on the CPU backend against the reference interpreter: ten mnist_mlp steps match
//! within 1e-5 relative, and the CPU backend gives bit-identical results on 1 and 2 threads.

mod common;
use common::{mlp, mnist_head, verified_cpu};
use std::sync::Arc;
use xenon_compiler::backend::Isa;
use xenon_compiler::backend::{Backend, Cpu, Interpreter};
use xenon_frontend::prelude::*;
use xenon_runtime::Tensor;

/// The first `steps` training steps (batch 128) on `backend`: the costs and final weights.
fn train(backend: Arc<dyn Backend>, steps: usize) -> (Vec<f64>, Vec<Tensor>) {
    let mnist = Mnist::bundled().unwrap();
    // A training set of exactly `steps` batches, so that one epoch is `steps` steps.
    let n = 128 * steps;
    let part = Dataset::new(
        mnist.train.x[..n * 784].to_vec(),
        mnist.train.labels[..n].to_vec(),
        10,
        vec![1, 28, 28],
    )
    .unwrap();
    let mut model = Model::new(mlp(100), &[1, 28, 28], 1)
        .unwrap()
        .with_backend(backend);
    let mut it = BatchIterator::new(&part, BatchOptions::new(128)).unwrap();
    struct Costs(Vec<f64>);
    impl Callback for Costs {
        fn on_minibatch_end(&mut self, _: usize, _: usize, cost: f64) {
            self.0.push(cost);
        }
    }
    let mut costs = Costs(Vec::new());
    model
        .fit(
            &mut it,
            &Cost::CrossEntropyBinary { scale: 1.0 },
            &Optimizer::gdm(0.1, 0.9),
            1,
            &mut [&mut costs],
        )
        .unwrap();
    let weights = model
        .params()
        .iter()
        .map(|p| model.value(&p.name).unwrap().clone())
        .collect();
    (costs.0, weights)
}

/// Ten steps on `backend` match the interpreter's costs and weights within 1e-5.
fn check_ten_steps(backend: Cpu) {
    let (ci, wi) = train(Arc::new(Interpreter), 10);
    let isa = backend.isa;
    let (cc, wc) = train(Arc::new(backend), 10);
    assert_eq!(ci.len(), 10);
    for (a, b) in ci.iter().zip(&cc) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "{isa}: cost {a} vs {b}");
    }
    for (a, b) in wi.iter().zip(&wc) {
        let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
        let scale = a.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-5 * scale,
                "{isa}: weight {x} vs {y} (scale {scale})"
            );
        }
    }
}

#[test]
fn ten_steps_match_the_interpreter() {
    check_ten_steps(Cpu::with_threads(1));
}

/// Every GEMM path (a path the processor lacks runs its best lesser one).
#[test]
fn ten_steps_match_the_interpreter_on_every_gemm_path() {
    for isa in Isa::ALL {
        check_ten_steps(Cpu::with_isa(1, isa));
    }
}

#[test]
fn one_and_two_threads_are_bit_identical() {
    let (c1, w1) = train(Arc::new(Cpu::with_threads(1)), 4);
    let (c2, w2) = train(Arc::new(Cpu::with_threads(2)), 4);
    assert_eq!(
        c1.iter().map(|c| c.to_bits()).collect::<Vec<_>>(),
        c2.iter().map(|c| c.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(w1, w2);
}

/// One training step of every cost, under a logistic, softmax and identity output layer,
/// compiled on the CPU backend and checked against the interpreter by verify mode (this
/// caught SumSquared's gradient coming out halved when a value read twice by one node was
/// stored over the live result).
#[test]
fn every_cost_matches_the_interpreter() {
    use xenon_compiler::pipeline::Stage;
    let n = 32;
    let part = mnist_head(n);
    let costs = [
        Cost::CrossEntropyBinary { scale: 1.0 },
        Cost::CrossEntropyMulti {
            scale: 1.0,
            usebits: false,
        },
        Cost::SumSquared,
        Cost::MeanSquared,
    ];
    let init = Initializer::Gaussian {
        loc: 0.0,
        scale: 0.1,
    };
    let outputs = [
        Activation::Logistic { shortcut: false },
        Activation::Softmax {
            axis: 0,
            epsilon: 0.0,
        },
        Activation::Identity,
    ];
    for cost in &costs {
        for last in &outputs {
            let layers = Sequential::new(vec![
                Affine::new(20, init.clone())
                    .with_bias(Initializer::Constant { val: 0.1 })
                    .with_activation(Activation::Tanh)
                    .into(),
                Affine::new(10, init.clone())
                    .with_activation(last.clone())
                    .into(),
            ]);
            let (pipeline, verifier) = verified_cpu(1);
            let mut m = Model::new(layers, &[1, 28, 28], 3)
                .unwrap()
                .with_pipeline(pipeline);
            let mut it = BatchIterator::new(&part, BatchOptions::new(n)).unwrap();
            m.fit(&mut it, cost, &Optimizer::gdm(0.1, 0.9), 1, &mut [])
                .unwrap();
            let reports = verifier.reports();
            let stages: Vec<_> = reports.iter().map(|r| r.stage).collect();
            assert_eq!(stages, [Stage::Optimized, Stage::Compiled]);
            for r in &reports {
                for o in &r.outputs {
                    assert!(
                        o.passes(1e-5),
                        "{cost:?} after {last:?}: {} ({}) is {:e} from the interpreter",
                        o.name,
                        r.stage,
                        o.relative
                    );
                }
            }
        }
    }
}
