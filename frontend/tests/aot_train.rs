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
