//! `xenon train` and `xenon eval` on the user's own data: NumPy arrays named by a model
//! file's `dataset:` entry or by `--data`, real-valued targets, autoencoders, and a clear
//! error for each kind of data that does not fit.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use xenon::frontend::data::npy::write_npz;

/// The example model files train into their stated targets.
#[test]
fn the_regression_example_reaches_its_target() {
    // examples/models/regression_sine.yaml: the test cost ends below 1% of the cost of
    // always predicting the mean (0.0846, printed by data/sine/make_sine.py).
    let o = xenon(&["train", "examples/models/regression_sine.yaml", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&o);
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done");
    let cost = done["test_cost"].as_f64().unwrap();
    eprintln!("regression example: test cost {cost}");
    assert!(cost < 0.01 * 0.0846, "test cost {cost}");
    assert_eq!(lines.len(), 61, "60 epoch lines and the summary");
}

#[test]
fn the_autoencoder_example_reaches_its_target() {
    // examples/models/mnist_autoencoder.yaml: the test reconstruction cost (about 91 for
    // the untrained model) falls below 10 in 5 epochs.
    let dir = scratch("autoencoder");
    let w = dir.join("ae.safetensors");
    let o = xenon(&[
        "train",
        "examples/models/mnist_autoencoder.yaml",
        "--json",
        "-s",
        w.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = json_lines(&o).pop().unwrap();
    let cost = done["test_cost"].as_f64().unwrap();
    eprintln!("autoencoder example: test cost {cost}");
    assert!(cost < 10.0, "test cost {cost}");
    // `xenon eval` reports the same cost for the saved weights.
    let o = xenon(&[
        "eval",
        "examples/models/mnist_autoencoder.yaml",
        "--weights",
        w.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&o).pop().unwrap();
    assert_eq!(v["cost_name"], "SumSquared");
    assert!((v["cost"].as_f64().unwrap() - cost).abs() < 1e-9 * cost.max(1.0));
}

/// Four separable blobs in 3-d: class k around corner k of a tetrahedron.
fn blobs(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let centers = [
        [1.0, 1.0, 1.0],
        [1.0, -1.0, -1.0],
        [-1.0, 1.0, -1.0],
        [-1.0, -1.0, 1.0],
    ];
    let u = |i: u64| xenon::runtime::rng::uniform_f32(seed, 0, i) - 0.5;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let k = i % 4;
        for (d, c) in centers[k].iter().enumerate() {
            x.push(c + 0.6 * u((3 * i + d) as u64));
        }
        y.push(k as f32);
    }
    (x, y)
}

/// Writes a blobs archive in the `x_train, y_train, x_test, y_test` layout.
fn blobs_npz(dir: &Path) -> PathBuf {
    let (xt, yt) = blobs(256, 1);
    let (xv, yv) = blobs(64, 2);
    let p = dir.join("blobs.npz");
    write_npz(
        &p,
        &[
            ("x_train", &[256, 3], &xt),
            ("y_train", &[256], &yt),
            ("x_test", &[64, 3], &xv),
            ("y_test", &[64], &yv),
        ],
    )
    .unwrap();
    p
}

const CLASSIFIER: &str = "layers:\n  - type: Affine\n    config: {nout: 4, init: {type: Gaussian, config: {scale: 0.1}}, bias: {type: Constant}, activation: {type: Softmax}}\ncost: CrossEntropyMulti\noptimizer: {type: GradientDescentMomentum, config: {learning_rate: 0.5, momentum_coef: 0.9}}\nbatchsize: 32\n";

#[test]
fn an_npz_given_with_data_trains_a_classifier_with_inferred_classes() {
    let dir = scratch("blobs");
    let data = blobs_npz(&dir);
    let model = write(&dir, "blobs.yaml", CLASSIFIER.as_bytes());
    let o = xenon(&[
        "train",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "-e",
        "5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = json_lines(&o).pop().unwrap();
    assert_eq!(done["test_misclass"].as_f64(), Some(0.0), "{done}");
}

/// `shuffle: true` in the data set entry and `--shuffle` batch the same new order every
/// epoch; without either the order is neon's fixed one, and the first epoch's cost differs.
#[test]
fn shuffling_from_the_model_file_or_the_command_line_is_the_same() {
    let dir = scratch("shuffle");
    blobs_npz(&dir);
    let train = |model: &str, extra: &[&str]| {
        let model = write(&dir, model, model_text(model).as_bytes());
        let mut args = vec!["train", model.to_str().unwrap(), "-e", "2", "--json"];
        args.extend_from_slice(extra);
        let o = xenon(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        json_lines(&o)
            .iter()
            .filter(|l| l["event"] == "epoch")
            .map(|l| l["train_cost"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    fn model_text(name: &str) -> String {
        let shuffle = if name == "shuffled.yaml" {
            "  shuffle: true\n"
        } else {
            ""
        };
        format!("{CLASSIFIER}dataset:\n  name: arrays\n  file: blobs.npz\n{shuffle}")
    }
    let fixed = train("fixed.yaml", &[]);
    let from_file = train("shuffled.yaml", &[]);
    let from_flag = train("fixed.yaml", &["--shuffle"]);
    assert_eq!(from_file, from_flag);
    assert_ne!(fixed[0], from_file[0], "{fixed:?} {from_file:?}");
    // Another seed, another order.
    let other_seed = train("fixed.yaml", &["--shuffle", "--seed", "1"]);
    let fixed_other_seed = train("fixed.yaml", &["--seed", "1"]);
    assert_ne!(other_seed[0], fixed_other_seed[0]);
}

#[test]
fn a_dataset_entry_names_npy_files_relative_to_the_model_file() {
    let dir = scratch("npy-entry");
    let (xt, yt) = blobs(256, 1);
    let (xv, yv) = blobs(64, 2);
    for (name, shape, v) in [
        ("xt.npy", vec![256, 3], &xt),
        ("yt.npy", vec![256, 1], &yt),
        ("xv.npy", vec![64, 3], &xv),
        ("yv.npy", vec![64], &yv),
    ] {
        let bytes = xenon::frontend::data::npy::npy_bytes(&shape, v).unwrap();
        write(&dir, name, &bytes);
    }
    let text = format!(
        "{CLASSIFIER}dataset:\n  name: arrays\n  train: {{x: xt.npy, y: yt.npy}}\n  test: {{x: xv.npy, y: yv.npy}}\n  nclass: 4\n"
    );
    let model = write(&dir, "m.yaml", text.as_bytes());
    let o = xenon(&["train", model.to_str().unwrap(), "-e", "5", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = json_lines(&o).pop().unwrap();
    assert_eq!(done["test_misclass"].as_f64(), Some(0.0), "{done}");
    // `summary` takes the input shape from the files' headers.
    let o = xenon(&["summary", model.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&o).pop().unwrap();
    assert_eq!(v["total_params"].as_u64(), Some(3 * 4 + 4));
}

/// A list of `x` arrays gives one input stream each: a first MergeMultistream runs a
/// branch on each (the parameter count shows each branch's input width), and training
/// learns from the stream that holds the classes.
#[test]
fn a_list_of_x_arrays_feeds_the_branches_of_a_multistream() {
    let dir = scratch("multistream");
    let (xt, yt) = blobs(256, 1);
    let (xv, yv) = blobs(64, 2);
    let noise = |n: usize, seed: u64| -> Vec<f32> {
        (0..n as u64)
            .map(|i| xenon::runtime::rng::uniform_f32(seed, 0, i))
            .collect()
    };
    write_npz(
        dir.join("two.npz"),
        &[
            ("x_train", &[256, 3], &xt),
            ("n_train", &[256, 1, 2, 2], &noise(1024, 3)),
            ("y_train", &[256], &yt),
            ("x_test", &[64, 3], &xv),
            ("n_test", &[64, 1, 2, 2], &noise(256, 4)),
            ("y_test", &[64], &yv),
        ],
    )
    .unwrap();
    let model = |streams: &str, extra: &str| {
        format!(
            "layers:\n  - type: MergeMultistream\n    config:\n      merge: stack\n      layers:\n      - [{{type: Affine, config: {{nout: 8, init: {{type: Gaussian, config: {{scale: 0.3}}}}, activation: {{type: Rectlin}}}}}}]\n      - [{{type: Affine, config: {{nout: 2, init: {{type: Gaussian, config: {{scale: 0.3}}}}}}}}]\n  - type: Affine\n    config: {{nout: 4, init: {{type: Gaussian, config: {{scale: 0.3}}}}, activation: {{type: Softmax}}}}\ncost: CrossEntropyMulti\noptimizer: {{type: GradientDescentMomentum, config: {{learning_rate: 0.2, momentum_coef: 0.9}}}}\nbatchsize: 32\ndataset:\n  name: arrays\n  train: {{x: [{streams}], y: two.npz:y_train}}\n  test: {{x: [two.npz:x_test, two.npz:n_test], y: two.npz:y_test}}\n{extra}"
        )
    };
    let good = write(
        &dir,
        "ms.yaml",
        model("two.npz:x_train, two.npz:n_train", "").as_bytes(),
    );
    let o = xenon(&["summary", good.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&o).pop().unwrap();
    // 3·8 + 4·2 for the branches, 10·4 after them.
    assert_eq!(v["total_params"].as_u64(), Some(24 + 8 + 40), "{v}");
    let o = xenon(&["train", good.to_str().unwrap(), "-e", "8", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = json_lines(&o).pop().unwrap();
    assert!(done["test_misclass"].as_f64().unwrap() <= 0.05, "{done}");
    let fails = |name: &str, text: String, needles: &[&str]| {
        let m = write(&dir, name, text.as_bytes());
        assert_clear_error(&xenon(&["train", m.to_str().unwrap(), "-e", "1"]), needles);
    };
    // More streams than branches (two arrays, each given twice); arrays of different
    // lengths; unequal stream counts.
    fails(
        "four.yaml",
        model("two.npz:x_train, two.npz:n_train", "  streams: 2\n"),
        &["MergeMultistream_0", "2 branches but 4 streams"],
    );
    fails(
        "short.yaml",
        model("two.npz:x_train, two.npz:n_test", ""),
        &["n_test", "[64, 1, 2, 2]", "has 64 examples", "256"],
    );
    fails(
        "one.yaml",
        model("two.npz:x_train", ""),
        &["training split has 1 input streams", "test split 2"],
    );
    fails(
        "zero.yaml",
        model("two.npz:x_train, two.npz:n_train", "  streams: 0\n"),
        &["dataset.streams", "0 streams"],
    );
}

#[test]
fn bad_arrays_are_clear_errors() {
    let dir = scratch("bad-arrays");
    let data = blobs_npz(&dir);
    let run = |dataset: &str| {
        let text = format!("{CLASSIFIER}dataset:\n{dataset}");
        let model = write(&dir, "bad.yaml", text.as_bytes());
        xenon(&["train", model.to_str().unwrap(), "-e", "1"])
    };
    // y with fewer rows than x.
    write_npz(
        dir.join("short.npz"),
        &[
            ("x_train", &[8, 3], &[0.0; 24]),
            ("y_train", &[7], &[0.0; 7]),
            ("x_test", &[8, 3], &[0.0; 24]),
            ("y_test", &[8], &[0.0; 8]),
        ],
    )
    .unwrap();
    let o = run("  name: arrays\n  file: short.npz\n");
    assert_clear_error(
        &o,
        &[
            "short.npz",
            "y_train",
            "[7]",
            "x_train (shape [8, 3]) has 8",
        ],
    );
    // Test examples of another shape than the training examples.
    write_npz(
        dir.join("mixed.npz"),
        &[
            ("x_train", &[8, 3], &[0.0; 24]),
            ("y_train", &[8], &[0.0; 8]),
            ("x_test", &[8, 2], &[0.0; 16]),
            ("y_test", &[8], &[0.0; 8]),
        ],
    )
    .unwrap();
    let o = run("  name: arrays\n  file: mixed.npz\n");
    assert_clear_error(&o, &["mixed.npz", "x_test", "[2]", "[3]"]);
    // A missing array lists what the archive holds.
    let o = run(
        "  name: arrays\n  train: {x: blobs.npz:inputs, y: blobs.npz}\n  test: {x: blobs.npz, y: blobs.npz}\n",
    );
    assert_clear_error(
        &o,
        &["blobs.npz", "inputs", "x_test, x_train, y_test, y_train"],
    );
    // A class id that is not a whole number.
    write_npz(
        dir.join("real.npz"),
        &[
            ("x_train", &[2, 3], &[0.0; 6]),
            ("y_train", &[2], &[0.5, 1.0]),
            ("x_test", &[2, 3], &[0.0; 6]),
            ("y_test", &[2], &[0.0, 1.0]),
        ],
    )
    .unwrap();
    let o = run("  name: arrays\n  file: real.npz\n");
    assert_clear_error(&o, &["real.npz", "y_train", "0.5", "targets: real"]);
    // lshape that does not fit the examples.
    let o = run("  name: arrays\n  file: blobs.npz\n  lshape: [2, 2]\n");
    assert_clear_error(&o, &["blobs.npz", "x_train", "lshape [2, 2]"]);
    // Unknown keys list the accepted ones.
    let o = run("  name: arrays\n  file: blobs.npz\n  shufle: true\n");
    assert_clear_error(
        &o,
        &["shufle", "accepted", "file", "train", "lshape", "shuffle"],
    );
    // Neither a file nor a training split.
    let o = run("  name: arrays\n  targets: real\n");
    assert_clear_error(&o, &["dataset (arrays)", "train"]);
    // Class targets need y.
    let o = run("  name: arrays\n  file: blobs.npz\n  train: {x: blobs.npz}\n");
    assert_clear_error(&o, &["train split has no `y`"]);
    // A missing file.
    let o = run("  name: arrays\n  file: nowhere.npz\n");
    assert_clear_error(&o, &["nowhere.npz"]);
    // A file that is not an archive.
    write(&dir, "junk.npz", b"not a zip at all");
    let o = run("  name: arrays\n  file: junk.npz\n");
    assert_clear_error(&o, &["junk.npz", "not a .npz archive"]);
    // The model's outputs are not as wide as the targets (4 classes, 3 outputs).
    let text = CLASSIFIER.replace("nout: 4", "nout: 3");
    let model = write(&dir, "narrow.yaml", text.as_bytes());
    let o = xenon(&[
        "train",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_clear_error(&o, &["'Linear_0'", "[3]", "[4]"]);
    // Real targets on MNIST make no sense.
    let o = run("  name: mnist\n  targets: real\n");
    assert_clear_error(&o, &["mnist", "targets: real"]);
    // An unknown target kind lists the accepted ones.
    let o = run("  name: arrays\n  file: blobs.npz\n  targets: labels\n");
    assert_clear_error(&o, &["labels", "classes", "real", "inputs"]);
}

/// neon's image models: parameter counts from `xenon summary`; CIFAR-10 from a local copy
/// of the binary release (`--data`), with the augmentation a model file asks for; clear
/// errors when the data is missing.
#[test]
fn image_models_count_neons_parameters_and_train_on_cifar10() {
    for (file, params) in [
        ("cifar10_conv", 420_096),
        ("cifar10_allcnn", 1_369_632),
        ("alexnet", 61_100_840),
        ("mnist_convnet", 275_296),
    ] {
        let o = xenon(&["summary", &format!("examples/models/{file}.yaml"), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json_lines(&o).pop().unwrap();
        assert_eq!(v["total_params"].as_u64(), Some(params), "{file}");
    }
    // A tiny release: 2 images per training file, 2 test images (labels 0–9, random pixels).
    let dir = scratch("cifar");
    let record = |i: usize| {
        let mut r = vec![(i % 10) as u8];
        r.extend((0..3072).map(|p| ((i * 31 + p * 7) % 256) as u8));
        r
    };
    for (f, name) in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ]
    .iter()
    .enumerate()
    {
        let bytes: Vec<u8> = (2 * f..2 * f + 2).flat_map(record).collect();
        write(&dir, &format!("{name}.bin"), &bytes);
    }
    let o = xenon(&[
        "train",
        "examples/models/cifar10_conv.yaml",
        "--data",
        dir.to_str().unwrap(),
        "-e",
        "1",
        "-z",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&o).pop().unwrap()["epochs"], 1);
    // With crops and flips from the model file.
    let text = std::fs::read_to_string("examples/models/cifar10_conv.yaml")
        .unwrap()
        .replace(
            "    contrast_normalize: true",
            "    contrast_normalize: true\n    augment: {pad: 4, flip: true}",
        );
    let m = write(&dir, "augmented.yaml", text.as_bytes());
    let o = xenon(&[
        "train",
        m.to_str().unwrap(),
        "--data",
        dir.to_str().unwrap(),
        "-e",
        "1",
        "-z",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Missing data.
    let o = xenon(&["train", "examples/models/cifar10_conv.yaml"]);
    assert_clear_error(&o, &["cifar10", "not bundled", "--data"]);
    let o = xenon(&["train", "examples/models/alexnet.yaml"]);
    assert_clear_error(&o, &["imagenet", "no ImageNet reader"]);
    let o = xenon(&[
        "train",
        "examples/models/cifar10_conv.yaml",
        "--data",
        "/nonexistent",
    ]);
    assert_clear_error(&o, &["/nonexistent: no such directory or file"]);
}

/// neon's convolutional autoencoder (examples/models/mnist_conv_autoencoder.yaml: conv,
/// pooling and deconvolutions back to 1×28×28): the test reconstruction cost, 44.1 for the
/// untrained model, falls below 15 in 3 epochs.
#[test]
fn the_conv_autoencoder_reconstructs_digits() {
    let o = xenon(&[
        "train",
        "examples/models/mnist_conv_autoencoder.yaml",
        "-e",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cost = json_lines(&o).pop().unwrap()["test_cost"].as_f64().unwrap();
    eprintln!("conv autoencoder: test cost {cost} after 3 epochs");
    assert!(cost < 15.0, "{cost}");
}
