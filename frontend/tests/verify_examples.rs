//! Verify mode on every example model in `examples/models/`: one training step and one
//! evaluation, compiled on the CPU backend, each output of the optimized graph and of the
//! compiled program within 1e-5 (relative, normwise) of the reference interpreter on the
//! graph before optimization.

mod common;
use common::{example_models, verified_cpu};
use xenon_compiler::pipeline::Stage;
use xenon_frontend::data::DataSource;
use xenon_frontend::model_file::ModelFile;
use xenon_frontend::prelude::*;

#[test]
fn every_example_model_matches_the_interpreter() {
    // 16 training examples: one step of every model, even the 784-2048-2048-10 one, in
    // the interpreter too.
    let n = 16;
    for path in example_models() {
        let file = ModelFile::load(&path).unwrap();
        let source = DataSource::new(file.dataset.as_ref(), None, path.parent().unwrap()).unwrap();
        let small = source.load().unwrap().0.head(n);
        let (pipeline, verifier) = verified_cpu(2);
        let mut model = Model::new(file.layers.clone(), &small.feature_shape, 0)
            .unwrap()
            .with_pipeline(pipeline);
        let optimizer = file
            .optimizer
            .clone()
            .expect("example models have an optimizer");
        let mut it = BatchIterator::new(&small, BatchOptions::new(n)).unwrap();
        model
            .fit(&mut it, &file.cost, &optimizer, 1, &mut [])
            .unwrap();
        model
            .eval(&small, n, &[Metric::Misclassification { steps: 1 }])
            .unwrap();
        let reports = verifier.reports();
        // The training step: its optimized graph and its program; the evaluation (compiled
        // without the optimizer): its program.
        let stages: Vec<_> = reports.iter().map(|r| (r.program, r.stage)).collect();
        assert_eq!(
            stages,
            [
                (0, Stage::Optimized),
                (0, Stage::Compiled),
                (1, Stage::Compiled)
            ],
            "{}",
            path.display()
        );
        // Adam's update lr·m/(√v + ε) turns an absolute gradient error δ of a gradient
        // near ε (1e-8) into lr·δ/ε in the weight: f32 rounding differences of ~1e-12 in
        // such gradients (sums with cancellation) move a weight by ~5e-7, about 1e-5 of
        // the largest weight. Every other example meets 1e-5.
        let adam = matches!(optimizer, Optimizer::Adam(_));
        let tol = if adam { 1e-4 } else { 1e-5 };
        for r in &reports {
            assert!(!r.outputs.is_empty(), "{}", path.display());
            for o in &r.outputs {
                assert!(
                    o.relative <= tol,
                    "{}: output {} is {:e} from the interpreter",
                    path.display(),
                    o.name,
                    o.relative
                );
            }
        }
    }
}
