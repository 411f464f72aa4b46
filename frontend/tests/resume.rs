//! Resuming from a saved model continues training exactly: shuffled batching, Adam's step
//! count, the optimizer state, batch norm's running statistics and the dropout masks all
//! come back, so the weights are bit-identical to an uninterrupted run's.

use xenon_frontend::model_file::ModelFile;
use xenon_frontend::prelude::*;

#[test]
fn three_epochs_equal_one_saved_and_two_resumed() {
    let file = ModelFile::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/models/mnist_mlp_adam.yaml"
    ))
    .unwrap();
    resume_is_exact("mlp", &file, Mnist::bundled().unwrap().train);
}

/// The same with batch norm (running statistics) and dropout (masks from the step counter).
#[test]
fn resuming_keeps_running_statistics_and_dropout_masks() {
    let text = "layers:
- {type: Conv, config: {fshape: [3, 3, 4], init: {type: Uniform, config: {low: -0.1, high: 0.1}}, batch_norm: true, activation: {type: Rectlin}}}
- {type: Pooling, config: {fshape: 2}}
- {type: Dropout, config: {keep: 0.8}}
- {type: Affine, config: {nout: 10, init: {type: Uniform, config: {low: -0.1, high: 0.1}}, activation: {type: Softmax}}}
cost: CrossEntropyMulti
optimizer: {type: GradientDescentMomentum, config: {learning_rate: 0.01, momentum_coef: 0.9}}
";
    let file = ModelFile::from_yaml_str(text).unwrap();
    resume_is_exact("convnet", &file, Mnist::bundled().unwrap().train.head(2000));
}

/// 3 epochs straight against 1 epoch, saved, loaded and resumed for 2: byte-identical
/// files.
fn resume_is_exact(name: &str, file: &ModelFile, train: Dataset) {
    let steps_per_epoch = train.len().div_ceil(100) as u64;
    let optimizer = file.optimizer.clone().unwrap();
    let opts = BatchOptions::new(100).shuffle(5);
    let dir = std::env::temp_dir().join(format!("xenon-resume-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fit = |model: &mut Model, it: &mut BatchIterator, epochs| {
        model
            .fit(it, &file.cost, &optimizer, epochs, &mut [])
            .unwrap();
    };

    let mut straight = Model::new(file.layers.clone(), &[1, 28, 28], 3).unwrap();
    let mut it = BatchIterator::new(&train, opts.clone()).unwrap();
    fit(&mut straight, &mut it, 3);
    straight.save(dir.join("straight.xw")).unwrap();

    let mut first = Model::new(file.layers.clone(), &[1, 28, 28], 3).unwrap();
    let mut it = BatchIterator::new(&train, opts.clone()).unwrap();
    fit(&mut first, &mut it, 1);
    first.save(dir.join("ckpt.xw")).unwrap();
    drop(first);

    let mut resumed = Model::load(dir.join("ckpt.xw")).unwrap();
    assert_eq!(
        (resumed.epoch_index(), resumed.step_index()),
        (1, steps_per_epoch)
    );
    let mut it = BatchIterator::new(&train, opts.clone()).unwrap();
    resumed.resume_batches(&mut it).unwrap();
    assert_eq!(it.epoch(), 1);
    fit(&mut resumed, &mut it, 2);
    resumed.save(dir.join("resumed.xw")).unwrap();
    let (a, b) = (
        std::fs::read(dir.join("straight.xw")).unwrap(),
        std::fs::read(dir.join("resumed.xw")).unwrap(),
    );
    let header = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize + 8;
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        a.len() == b.len() && first.is_none(),
        "files differ at byte {first:?} (header ends at {header}): {}",
        String::from_utf8_lossy(&a[8..header.min(a.len())])
    );

    // Another batch size cannot continue it.
    let mut ck = Model::load(dir.join("ckpt.xw")).unwrap();
    let mut other = BatchIterator::new(&train, BatchOptions::new(128)).unwrap();
    let e = ck.resume_batches(&mut other).unwrap_err().to_string();
    assert!(
        e.contains("batches of 100") && e.contains("batches of 128"),
        "{e}"
    );
    // Nor can the fixed order or another shuffle seed.
    for other_order in [BatchOptions::new(100), BatchOptions::new(100).shuffle(6)] {
        let mut other = BatchIterator::new(&train, other_order).unwrap();
        let e = ck.resume_batches(&mut other).unwrap_err().to_string();
        assert!(e.contains("reshuffled every epoch from seed 5"), "{e}");
    }
}
