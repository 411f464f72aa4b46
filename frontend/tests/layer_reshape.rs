//! neon's `Reshape` layer: shape inference (0 keeps an axis, -1 infers one), its errors, and
//! a model file that uses it, run on the reference interpreter.

use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::layer::{LayerError, Reshape};
use xenon_frontend::model_file::ModelFile;
use xenon_frontend::prelude::*;
use xenon_runtime::Tensor;

/// The output shape of `Reshape(spec)` on a batch of 4 samples of `input`, or the error.
fn reshaped(spec: &[i64], input: &[usize]) -> Result<Vec<usize>, LayerError> {
    let mut g = Graph::new();
    let mut shape = vec![4];
    shape.extend_from_slice(input);
    let x = g.input("x", DType::F32, &shape).unwrap();
    let layer = Reshape::new(spec).with_name("r");
    let fwd = Sequential::new(vec![layer.into()]).forward(&mut g, x)?;
    Ok(g.ty(fwd.output).shape.clone())
}

#[test]
fn sizes_zeros_and_one_minus_one_give_the_shape() {
    assert_eq!(reshaped(&[3, 4], &[12]).unwrap(), [4, 3, 4]);
    assert_eq!(reshaped(&[-1], &[2, 3, 4]).unwrap(), [4, 24]);
    assert_eq!(reshaped(&[0, -1], &[2, 3, 4]).unwrap(), [4, 2, 12]);
    assert_eq!(
        reshaped(&[0, 0, 2, 2], &[2, 3, 4]).unwrap(),
        [4, 2, 3, 2, 2]
    );
    assert_eq!(reshaped(&[-1, 0], &[6, 5]).unwrap(), [4, 6, 5]);
    assert_eq!(reshaped(&[2, -1, 3], &[12]).unwrap(), [4, 2, 2, 3]);
}

#[test]
fn bad_specs_are_errors_naming_the_layer_and_both_shapes() {
    let err = |spec: &[i64], input: &[usize]| reshaped(spec, input).unwrap_err().to_string();
    assert_eq!(
        err(&[-1, -1], &[12]),
        "layer 'r': reshape [-1, -1] has more than one -1 (the input is [12])"
    );
    assert_eq!(
        err(&[5, -1], &[12]),
        "layer 'r': reshape [5, -1] does not fit the input [12]: \
         12 elements per sample are not a multiple of 5"
    );
    assert_eq!(
        err(&[3, 5], &[2, 6]),
        "layer 'r': reshape [3, 5] does not fit the input [2, 6]: \
         15 elements per sample, the input has 12"
    );
    assert_eq!(
        err(&[0, 0], &[12]),
        "layer 'r': reshape [0, 0] does not fit the input [12]: \
         0 at axis 1 keeps no axis of the input"
    );
    assert_eq!(
        err(&[-2, 6], &[12]),
        "layer 'r': reshape [-2, 6] has size -2; sizes are positive, 0 or -1"
    );
}

#[test]
fn a_model_file_with_a_reshape_runs() {
    let m = ModelFile::from_yaml_str(
        "layers:
  - {type: Reshape, config: {reshape: [3, -1], name: split}}
  - {type: Activation, config: {transform: Tanh}}
cost: SumSquared
",
    )
    .unwrap();
    assert_eq!(
        m.layers.layers[0],
        Layer::Reshape(Reshape::new(&[3, -1]).with_name("split"))
    );
    // It writes back what it read.
    assert_eq!(ModelFile::from_json_str(&m.to_json()).unwrap(), m);

    let mut g = Graph::new();
    let x = g.input("x", DType::F64, &[2, 6]).unwrap();
    let fwd = m.layers.forward(&mut g, x).unwrap();
    assert_eq!(fwd.layers[0].name, "split");
    assert_eq!(fwd.layers[0].kind, "Reshape");
    assert_eq!(fwd.layers[0].out_shape, [3, 2]);
    g.set_output("y", fwd.output).unwrap();
    let xv: Vec<f64> = (0..12).map(|i| f64::from(i) * 0.25 - 1.5).collect();
    let mut feeds = Feeds::new();
    feeds.insert(
        "x".into(),
        Tensor::from_f64(vec![2, 6], xv.clone()).unwrap(),
    );
    let y = &interp::run(&g, &feeds).unwrap()["y"];
    assert_eq!(y.shape(), [2, 3, 2]);
    let want: Vec<f64> = xv.iter().map(|v| v.tanh()).collect();
    assert_eq!(y.to_f64_vec(), want);

    // The model compiles it too, and an argument error keeps its place in the file.
    let model = Model::new(m.layers, &[6], 0).unwrap();
    assert_eq!(model.layer_info()[0].out_shape, [3, 2]);
    let e =
        ModelFile::from_yaml_str("layers: [{type: Reshape, config: {shape: [3]}}]\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("layers[0] (Reshape): unknown argument \"shape\""),
        "{e}"
    );
}
