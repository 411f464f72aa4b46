//! A training-step bundle (`Model::compile_bundle` with `BundleKind::Train`, loaded back at
//! run time) takes the same steps as the JIT-compiled training step: the same cost and
//! the same new parameters and optimizer state, step after step; and an inference bundle
//! predicts what `Model::predict` does.

mod common;
use common::{mlp, mnist_head};
use std::collections::HashMap;
use xenon_compiler::aot::BundleOptions;
use xenon_frontend::model::BundleKind;
use xenon_frontend::prelude::*;
use xenon_runtime::Tensor;
use xenon_runtime::aot::{CompiledModel, LoadOptions, Mode};
use xenon_runtime::exec::{Slice, SliceMut};

#[test]
fn training_bundle_steps_like_the_jit() {
    let batch = 16;
    let data = mnist_head(batch);
    let mut model = Model::new(mlp(32), &[1, 28, 28], 5).unwrap();
    let cost = Cost::CrossEntropyBinary { scale: 1.0 };
    let opt = Optimizer::gdm(0.1, 0.9);
    let kind = BundleKind::Train {
        nclass: 10,
        cost: &cost,
        optimizer: &opt,
    };
    let bundle = model
        .compile_bundle(batch, kind, &BundleOptions::default())
        .unwrap();
    assert_eq!(bundle.manifest.mode, Mode::Train);
    let names: Vec<&str> = bundle
        .manifest
        .inputs
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["x", "t", "lr"]);
    let mut aot = CompiledModel::from_artifact(&bundle.artifact, &LoadOptions::default()).unwrap();
    let mut jit = model.compile_train_step(batch, 10, &cost, &opt).unwrap();
    let x = data.x.clone();
    let mut t = vec![0f32; batch * 10];
    for (i, &l) in data.labels.iter().enumerate() {
        t[i * 10 + l as usize] = 1.0;
    }
    let lr = [0.1f32];
    let mut feeds: HashMap<String, Tensor> = bundle
        .manifest
        .weights
        .iter()
        .map(|w| (w.name.clone(), model.value(&w.name).unwrap().clone()))
        .collect();
    feeds.insert(
        "x".into(),
        Tensor::from_f32(vec![batch, 1, 28, 28], x.clone()).unwrap(),
    );
    feeds.insert(
        "t".into(),
        Tensor::from_f32(vec![batch, 10], t.clone()).unwrap(),
    );
    feeds.insert("lr".into(), Tensor::from_f32(vec![], lr.to_vec()).unwrap());
    for step in 0..4 {
        let out = jit.run_update(&mut feeds, true).unwrap();
        let want = out["cost"].as_f32().unwrap()[0];
        let mut got = [0f32];
        aot.run(
            &[Slice::F32(&x), Slice::F32(&t), Slice::F32(&lr)],
            &mut [SliceMut::F32(&mut got)],
        )
        .unwrap();
        assert_eq!(got[0], want, "cost at step {step}");
        for (info, w) in bundle.manifest.weights.iter().zip(aot.weights()) {
            assert_eq!(
                w.as_f32(),
                feeds[&info.name].as_f32(),
                "{} at step {step}",
                info.name
            );
        }
    }
}

#[test]
fn inference_bundle_predicts_like_the_model() {
    let data = mnist_head(8);
    let mut model = Model::new(mlp(32), &[1, 28, 28], 9).unwrap();
    let bundle = model
        .compile_bundle(8, BundleKind::Inference, &BundleOptions::default())
        .unwrap();
    let mut aot = CompiledModel::from_artifact(&bundle.artifact, &LoadOptions::default()).unwrap();
    let want = model
        .predict(&Tensor::from_f32(vec![8, 784], data.x.clone()).unwrap())
        .unwrap();
    let got = aot.predict(&data.x).unwrap();
    assert_eq!(got.as_slice(), want.as_f32().unwrap());
}

#[test]
fn a_recurrent_bundle_fed_token_ids_predicts_like_the_model() {
    // An LSTM language model fed token ids, bundled for inference: the bundle takes the
    // ids and the carried states and gives what `Model::predict` does, and the new
    // states, which the next run takes: two runs in a row match two calls of `predict`.
    let (v, steps, batch) = (7, 5, 2);
    let init = Initializer::Uniform {
        low: -0.5,
        high: 0.5,
    };
    let lstm = xenon_frontend::layer::Lstm::new(
        6,
        init.clone(),
        Activation::Tanh,
        Activation::Logistic { shortcut: false },
    );
    let out = Affine::new(v, init).with_activation(Activation::Softmax {
        axis: 0,
        epsilon: 1e-7,
    });
    let layers = Sequential::new(vec![lstm.into(), out.into()]);
    let mut model = Model::new(layers, &[steps, v], 4)
        .unwrap()
        .with_token_ids()
        .unwrap();
    let bundle = model
        .compile_bundle(batch, BundleKind::Inference, &BundleOptions::default())
        .unwrap();
    let mut aot = CompiledModel::from_artifact(&bundle.artifact, &LoadOptions::default()).unwrap();
    let ids: Vec<f32> = (0..batch * steps)
        .map(|i| ((i * 3 + 1) % v) as f32)
        .collect();
    model.reset_states(batch);
    let want = model
        .predict(&Tensor::from_f32(vec![batch, steps], ids.clone()).unwrap())
        .unwrap();
    // The model carries its state into the next call; the bundle hands the new state out.
    let want2 = model
        .predict(&Tensor::from_f32(vec![batch, steps], ids.clone()).unwrap())
        .unwrap();
    let m = aot.manifest().clone();
    let names = |infos: &[xenon_runtime::aot::TensorInfo]| -> Vec<String> {
        infos.iter().map(|i| i.name.clone()).collect()
    };
    assert_eq!(names(&m.inputs), ["x", "LSTM_0/h", "LSTM_0/c"]);
    assert_eq!(names(&m.outputs), ["new/LSTM_0/h", "new/LSTM_0/c", "y"]);
    assert_eq!(m.inputs[0].shape, [batch, steps]);
    let mut state: Vec<Vec<f32>> = m.inputs[1..].iter().map(|i| vec![0.0; i.len()]).collect();
    for want in [want, want2] {
        let mut inputs = vec![Slice::F32(&ids)];
        inputs.extend(state.iter().map(|s| Slice::F32(s)));
        let mut outs: Vec<Vec<f32>> = m.outputs.iter().map(|o| vec![0.0; o.len()]).collect();
        let mut slices: Vec<SliceMut<'_>> = outs.iter_mut().map(|o| SliceMut::F32(o)).collect();
        aot.run(&inputs, &mut slices).unwrap();
        assert_eq!(outs[2].as_slice(), want.as_f32().unwrap());
        outs.truncate(2);
        state = outs;
    }
}
