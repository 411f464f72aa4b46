//! Resuming from a saved model continues training exactly: shuffled batching, Adam's step
//! count and the optimizer state all come back, so the weights are bit-identical to an
//! uninterrupted run's.

use xenon_frontend::model_file::ModelFile;
use xenon_frontend::prelude::*;

#[test]
fn three_epochs_equal_one_saved_and_two_resumed() {
    let file = ModelFile::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/models/mnist_mlp_adam.yaml"
    ))
    .unwrap();
    let optimizer = file.optimizer.clone().unwrap();
    let mnist = Mnist::bundled().unwrap();
    let opts = BatchOptions::new(100).shuffle(5);
    let dir = std::env::temp_dir().join(format!("xenon-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fit = |model: &mut Model, it: &mut BatchIterator, epochs| {
        model
            .fit(it, &file.cost, &optimizer, epochs, &mut [])
            .unwrap();
    };

    let mut straight = Model::new(file.layers.clone(), &[1, 28, 28], 3).unwrap();
    let mut it = BatchIterator::new(&mnist.train, opts.clone()).unwrap();
    fit(&mut straight, &mut it, 3);
    straight.save(dir.join("straight.xw")).unwrap();

    let mut first = Model::new(file.layers.clone(), &[1, 28, 28], 3).unwrap();
    let mut it = BatchIterator::new(&mnist.train, opts.clone()).unwrap();
    fit(&mut first, &mut it, 1);
    first.save(dir.join("ckpt.xw")).unwrap();
    drop(first);

    let mut resumed = Model::load(dir.join("ckpt.xw")).unwrap();
    assert_eq!((resumed.epoch_index(), resumed.step_index()), (1, 80));
    let mut it = BatchIterator::new(&mnist.train, opts.clone()).unwrap();
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
    let mut other = BatchIterator::new(&mnist.train, BatchOptions::new(128)).unwrap();
    let e = ck.resume_batches(&mut other).unwrap_err().to_string();
    assert!(
        e.contains("batches of 100") && e.contains("batches of 128"),
        "{e}"
    );
}
