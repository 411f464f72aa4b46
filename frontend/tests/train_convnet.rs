//! The MNIST convnet (neon's cifar10_conv on 1×28×28: conv + batch norm + max pooling)
//! trained for 10 epochs on the bundled MNIST subset: test misclassification at most 2.0 %
//! (seed 0; `xenon train examples/models/mnist_convnet.yaml -r S` for the other seeds), and
//! the batch-norm running statistics it saves reproduce its evaluation after a reload.

use xenon_frontend::model_file::ModelFile;
use xenon_frontend::prelude::*;

#[test]
fn the_mnist_convnet_trains_below_two_percent() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/models/mnist_convnet.yaml");
    let file = ModelFile::load(&path).unwrap();
    let mnist = Mnist::bundled().unwrap();
    let mut model = Model::new(file.layers.clone(), &[1, 28, 28], 0).unwrap();
    assert_eq!(model.num_params(), 275_296);
    // The model file reshuffles the examples every epoch, from the model's seed (as
    // `xenon train` does).
    assert!(file.dataset.as_ref().unwrap().shuffle);
    let batching = BatchOptions::new(128).shuffle(model.seed());
    let mut it = BatchIterator::new(&mnist.train, batching).unwrap();
    let optimizer = file.optimizer.clone().unwrap();
    model
        .fit(&mut it, &file.cost, &optimizer, 10, &mut [])
        .unwrap();
    let metric = [Metric::Misclassification { steps: 1 }];
    let misclass = 100.0 * model.eval(&mnist.test, 128, &metric).unwrap()[0].1;
    eprintln!("mnist convnet, seed 0, 10 epochs: {misclass:.2} % test misclassification");
    assert!(misclass <= 2.0, "{misclass} %");
    // The running statistics moved away from their initial values and are saved.
    let gvar = model
        .value("Convolution_0_bnorm/gvar")
        .or(model.value("BatchNorm_0/gvar"));
    let gvar = gvar
        .expect("the first batch norm's running variance")
        .to_f64_vec();
    assert!(gvar.iter().any(|&v| (v - 1.0).abs() > 1e-3), "{gvar:?}");
    let dir = std::env::temp_dir().join(format!("xenon-convnet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("convnet.xw");
    model.save(&saved).unwrap();
    let mut back = Model::load(&saved).unwrap();
    let again = 100.0 * back.eval(&mnist.test, 128, &metric).unwrap()[0].1;
    assert_eq!(again, misclass);
}
