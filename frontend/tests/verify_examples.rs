//! Verify mode on every example model in `examples/models/`: one training step and one
//! evaluation, compiled on the CPU backend, each output of the optimized graph and of the
//! compiled program within 1e-5 (relative, normwise) of the reference interpreter on the
//! graph before optimization, or no further from the f64 interpreter than twice the f32
//! interpreter is (`OutputError::passes`).

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
        // Data sets that are not bundled (CIFAR-10, ImageNet, IMDB): two random examples of
        // their shape, whole numbers in 0..4 (pixel values, or word ids).
        let bundled = source.load();
        let synthetic = bundled.is_err();
        let small = match bundled {
            Ok((train, _)) => train.head(n),
            Err(_) => {
                let (shape, width) = source.shapes().unwrap();
                let f: usize = shape.iter().product();
                let x = (0..2 * f as u64)
                    .map(|i| (4.0 * xenon_runtime::rng::uniform_f32(5, 0, i)).floor())
                    .collect();
                Dataset::new(x, vec![0, 1], width, shape).unwrap()
            }
        };
        let n = small.len();
        // The random-data models in f64: their convolution and batch-norm gradients are
        // sums over thousands of window positions with heavy cancellation (random images,
        // two examples), which the blocked GEMM and the interpreter round differently in
        // f32 (AlexNet's first layer about 4e-3 apart, normwise); in f64 they agree to
        // ~1e-14.
        let dtype = if synthetic {
            xenon_runtime::DType::F64
        } else {
            xenon_runtime::DType::F32
        };
        let (pipeline, verifier) = verified_cpu(2);
        let mut model = Model::new(source.feed(&file.layers).unwrap(), &small.input_shape(), 0)
            .unwrap()
            .with_dtype(dtype)
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
        let tol = if synthetic {
            1e-12
        } else if adam {
            1e-4
        } else {
            1e-5
        };
        for r in &reports {
            assert!(!r.outputs.is_empty(), "{}", path.display());
            for o in &r.outputs {
                assert!(
                    o.passes(tol),
                    "{}: output {} is {:e} from the interpreter ({:?} from f64, the f32 interpreter {:?})",
                    path.display(),
                    o.name,
                    o.relative,
                    o.exact,
                    o.reference_exact
                );
            }
        }
    }
}
