//! The sequence layers around the recurrent ones: LookupTable, RecurrentSum, RecurrentMean,
//! RecurrentLast, BiRNN, BiLSTM, BiSum, DeepBiRNN and DeepBiLSTM. Values against direct
//! computations (a bidirectional layer's halves against the unidirectional layer forward
//! and on the time-reversed input), gradients against central differences in f64 through
//! several time steps, neon's parameter counts, the frozen and padded table in training,
//! argument and input errors, and a model file.

mod common;

use common::gradcheck::{
    F, LOGISTIC, check_gradients, check_param_gradients, feeds, forward, lowered, lstm, rnn,
    uniform, values,
};
use std::collections::HashMap;
use xenon_compiler::autodiff;
use xenon_compiler::interp::{self, Feeds};
use xenon_frontend::activation::Activation;
use xenon_frontend::cost::Cost;
use xenon_frontend::data::{BatchIterator, BatchOptions, Dataset};
use xenon_frontend::init::Initializer;
use xenon_frontend::layer::*;
use xenon_frontend::model::Model;
use xenon_frontend::model_file::ModelFile;
use xenon_frontend::optimizer::Optimizer;
use xenon_runtime::Tensor;

fn softmax() -> Activation {
    Activation::Softmax {
        axis: 0,
        epsilon: 2f64.powi(-23),
    }
}

fn birnn(n: usize, reset: bool, split: bool) -> Layer {
    let mut l = BiRnn::new(n, uniform(), Activation::Tanh);
    l.reset_cells = reset;
    l.split_inputs = split;
    l.into()
}

fn bilstm(n: usize, reset: bool, split: bool) -> Layer {
    let mut l = BiLstm::new(n, uniform(), Activation::Tanh, LOGISTIC);
    l.reset_cells = reset;
    l.split_inputs = split;
    l.into()
}

fn deep_birnn(n: usize, depth: usize, bi_sum: bool) -> DeepBiRnn {
    let mut l = DeepBiRnn::new(n, uniform(), Activation::Tanh);
    l.depth = depth;
    l.bi_sum = bi_sum;
    l
}

/// The output of `layer` (an inference graph) on `x` of `shape` (values `xv`), with every
/// parameter and state taken from `params` (name, values).
fn run_with(layer: &Layer, shape: &[usize], xv: &[f64], params: &[(String, Vec<f64>)]) -> Vec<f64> {
    let (mut g, y, specs) = lowered(layer, shape, false);
    g.set_output("y", y).unwrap();
    let mut f: Feeds = HashMap::new();
    f.insert(
        "x".into(),
        Tensor::from_f64(shape.to_vec(), xv.to_vec()).unwrap(),
    );
    for p in &specs {
        let (_, v) = params
            .iter()
            .find(|(n, _)| *n == p.name)
            .unwrap_or_else(|| panic!("no value for {}", p.name));
        f.insert(
            p.name.clone(),
            Tensor::from_f64(p.shape.clone(), v.clone()).unwrap(),
        );
    }
    interp::run(&g, &f).unwrap()["y"].to_f64_vec()
}

/// The values of `feeds` whose names start with `L/<from>`, renamed `L/<rest>`.
fn renamed(feeds: &Feeds, from: &str) -> Vec<(String, Vec<f64>)> {
    let prefix = format!("L/{from}");
    feeds
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(&prefix)
                .map(|rest| (format!("L/{rest}"), v.to_f64_vec()))
        })
        .collect()
}

/// A `[b, t, f]` sequence with its time steps in reverse order.
fn reverse_time(v: &[f64], b: usize, t: usize, f: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    for r in 0..b {
        for s in (0..t).rev() {
            out.extend_from_slice(&v[(r * t + s) * f..(r * t + s + 1) * f]);
        }
    }
    out
}

/// Features `from..to` of every step of a `[b, t, f]` sequence.
fn features(v: &[f64], f: usize, from: usize, to: usize) -> Vec<f64> {
    v.chunks(f).flat_map(|c| c[from..to].to_vec()).collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() < 1e-12, "{what}[{k}]: {a} vs {b}");
    }
}

// ----- LookupTable ----------------------------------------------------------------------

#[test]
fn lookup_table_picks_rows_and_zeroes_the_padding_id() {
    let (v, e) = (6, 3);
    // Two rows of four ids; 3.9 is read as 3 (truncation).
    let ids = [0.0, 5.0, 2.0, 2.0, 1.0, 3.9, 0.0, 4.0];
    let picked = [0, 5, 2, 2, 1, 3, 0, 4];
    let lut: Layer = LookupTable::new(v, e, uniform()).into();
    let (shape, y, f) = forward(&lut, &[2, 4], &ids, false);
    assert_eq!(shape, [2, 4, e]);
    let w = f["L/W"].to_f64_vec();
    assert_eq!(f["L/W"].shape(), [v, e]);
    let want: Vec<f64> = picked
        .iter()
        .flat_map(|&i| w[i * e..(i + 1) * e].to_vec())
        .collect();
    assert_eq!(y, want);
    // pad_idx 2: those positions give zeros, the others their rows.
    let mut padded = LookupTable::new(v, e, uniform());
    padded.pad_idx = Some(2);
    let (_, y, _) = forward(&padded.into(), &[2, 4], &ids, false);
    let want: Vec<f64> = picked
        .iter()
        .flat_map(|&i| match i {
            2 => vec![0.0; e],
            _ => w[i * e..(i + 1) * e].to_vec(),
        })
        .collect();
    assert_eq!(y, want);
    // The table is one trainable parameter, or a frozen one.
    let (_, _, params) = lowered(&lut, &[2, 4], false);
    assert_eq!(params.len(), 1);
    assert_eq!(
        (params[0].name.as_str(), params[0].trainable),
        ("L/W", true)
    );
    let mut frozen = LookupTable::new(v, e, uniform());
    frozen.update = false;
    let (_, _, params) = lowered(&frozen.into(), &[2, 4], false);
    assert_eq!(
        (
            params[0].name.as_str(),
            params[0].trainable,
            params[0].carried
        ),
        ("L/W", false, false)
    );
}

#[test]
fn lookup_table_gradients_reach_the_rows_used_but_not_the_padding_row() {
    // Four steps, repeated ids (their gradients add up), and the padding id.
    let ids = [1.0, 3.0, 3.0, 0.0, 2.0, 0.0, 3.0, 4.0];
    let mut lut = LookupTable::new(5, 3, uniform());
    check_param_gradients("LookupTable", &lut.clone().into(), &[2, 4], &ids, true);
    lut.pad_idx = Some(3);
    let layer: Layer = lut.into();
    check_param_gradients("LookupTable pad_idx", &layer, &[2, 4], &ids, true);
    // The padding row's gradient is exactly zero; an unused id's too; a used one's not.
    let (mut g, y, params) = lowered(&layer, &[2, 4], true);
    let r = g
        .constant(F, &[2, 4, 3], values(777, 24, -1.0, 1.0))
        .unwrap();
    let w = g.mul(y, r).unwrap();
    let loss = g.sum(w, &[0, 1, 2], false).unwrap();
    g.set_output("loss", loss).unwrap();
    let dg = autodiff::with_gradients(&g, "loss", &["L/W"]).unwrap();
    let dw = interp::run(&dg, &feeds(&params, &[2, 4], &ids)).unwrap()["grad/L/W"].to_f64_vec();
    assert_eq!(&dw[9..12], &[0.0; 3], "padding row");
    assert!(dw[0..3].iter().all(|&d| d != 0.0), "row 0: {dw:?}");
    assert!(dw[12..15].iter().all(|&d| d != 0.0), "row 4: {dw:?}");
}

/// A tiny text classifier, `LookupTable(6, 3)` → RecurrentSum → Affine(2, Softmax), trained
/// one epoch (two minibatches of 4) with momentum: the table's values after training.
fn trained_table(update: bool, pad_idx: Option<usize>) -> (Tensor, Tensor, Model) {
    let mut lut = LookupTable::new(6, 3, uniform());
    lut.update = update;
    lut.pad_idx = pad_idx;
    let layers = Sequential::new(vec![
        lut.into(),
        RecurrentSum::default().into(),
        Affine::new(2, uniform())
            .with_bias(Initializer::Constant { val: 0.0 })
            .with_activation(softmax())
            .into(),
    ]);
    let mut model = Model::new(layers, &[4], 1).unwrap();
    // Ids 0..=4 (5 never appears); 0 is the padding.
    let x: Vec<f32> = [
        1, 2, 0, 0, 3, 4, 1, 0, 2, 2, 3, 0, 4, 1, 1, 1, 3, 0, 0, 0, 2, 4, 4, 0, 1, 3, 2, 0, 4, 4,
        2, 1,
    ]
    .iter()
    .map(|&i| i as f32)
    .collect();
    let data = Dataset::new(x, vec![0, 1, 0, 1, 1, 0, 1, 0], 2, vec![4]).unwrap();
    let before = model.value("LookupTable_0/W").unwrap().clone();
    let mut it = BatchIterator::new(&data, BatchOptions::new(4)).unwrap();
    let cost = Cost::CrossEntropyMulti {
        scale: 1.0,
        usebits: false,
    };
    model
        .fit(&mut it, &cost, &Optimizer::gdm(0.5, 0.9), 1, &mut [])
        .unwrap();
    let after = model.value("LookupTable_0/W").unwrap().clone();
    (before, after, model)
}

#[test]
fn training_updates_the_rows_used_except_the_padding_row_unless_frozen() {
    let rows =
        |t: &Tensor| -> Vec<Vec<f64>> { t.to_f64_vec().chunks(3).map(<[f64]>::to_vec).collect() };
    let (before, after, model) = trained_table(true, Some(0));
    assert_eq!(model.num_params(), 6 * 3 + 3 * 2 + 2);
    let (b, a) = (rows(&before), rows(&after));
    assert_eq!(a[0], b[0], "the padding row");
    assert_eq!(a[5], b[5], "an id never seen");
    for r in 1..5 {
        assert_ne!(a[r], b[r], "row {r}");
    }
    // Frozen: the table is saved and fed but never changes, and is no parameter.
    let (before, after, model) = trained_table(false, None);
    assert_eq!(model.num_params(), 3 * 2 + 2);
    assert_eq!(model.params().iter().filter(|p| !p.trainable).count(), 1);
    assert_eq!(after.to_f64_vec(), before.to_f64_vec());
    // …while the layers after it trained.
    let (_, after_all, _) = trained_table(true, None);
    assert_ne!(after_all.to_f64_vec(), before.to_f64_vec());
}

#[test]
fn an_id_outside_the_table_is_an_error_when_the_model_runs() {
    let layers = Sequential::new(vec![
        LookupTable::new(5, 3, uniform()).into(),
        RecurrentSum::default().into(),
    ]);
    let mut model = Model::new(layers, &[4], 0).unwrap();
    let ok = Tensor::from_f32(vec![1, 4], vec![0.0, 1.0, 4.0, 2.0]).unwrap();
    assert_eq!(model.predict(&ok).unwrap().shape(), [1, 3]);
    for bad in [5.0, 7.0, -1.0] {
        let x = Tensor::from_f32(vec![1, 4], vec![0.0, 1.0, bad, 2.0]).unwrap();
        let e = model.predict(&x).unwrap_err().to_string();
        let want = format!("index {} at position 2 is outside 0..5", bad as i32);
        assert!(e.contains(&want), "id {bad}: {e}");
    }
}

// ----- RecurrentSum / RecurrentMean / RecurrentLast -------------------------------------

#[test]
fn collapse_layers_sum_average_or_keep_the_last_step() {
    let (b, t, f) = (2, 3, 4);
    let xv = values(11, b * t * f, -1.0, 1.0);
    let at = |r: usize, s: usize, k: usize| xv[(r * t + s) * f + k];
    let mut sum = Vec::new();
    let mut last = Vec::new();
    for r in 0..b {
        for k in 0..f {
            sum.push((0..t).map(|s| at(r, s, k)).sum::<f64>());
            last.push(at(r, t - 1, k));
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / t as f64).collect();
    for (layer, want) in [
        (Layer::from(RecurrentSum::default()), sum),
        (RecurrentMean::default().into(), mean),
        (RecurrentLast::default().into(), last),
    ] {
        let (shape, y, _) = forward(&layer, &[b, t, f], &xv, false);
        assert_eq!(shape, [b, f], "{}", layer.type_name());
        for (got, want) in y.iter().zip(&want) {
            assert!(
                (got - want).abs() < 1e-12,
                "{}: {got} vs {want}",
                layer.type_name()
            );
        }
        let (_, _, params) = lowered(&layer, &[b, t, f], false);
        assert!(params.is_empty());
    }
}

#[test]
fn collapse_layer_gradients_match_finite_differences() {
    for layer in [
        Layer::from(RecurrentSum::default()),
        RecurrentMean::default().into(),
        RecurrentLast::default().into(),
    ] {
        check_gradients(layer.type_name(), &layer, &[2, 4, 3], false);
    }
    // Through a recurrent layer: RecurrentLast's gradient flows back through every step.
    let stack = Sequential::new(vec![lstm(3, true), RecurrentLast::default().into()]);
    let m = Model::new(stack, &[4, 2], 0).unwrap();
    assert_eq!(m.output_shape(), [3]);
}

// ----- BiRNN / BiLSTM / BiSum -----------------------------------------------------------

/// The bidirectional layer `bi` on `[2, 4, d]`: its forward half is the unidirectional
/// layer (`uni(reset_cells)`) with the `fwd_` weights and states, its backward half the
/// unidirectional layer from zeros, with the `bwd_` weights, on the time-reversed input
/// (of the second half of the features with `split`), reversed back.
fn check_halves(what: &str, bi: &Layer, uni: impl Fn(bool) -> Layer, split: bool) {
    let (b, t, n) = (2, 4, 3);
    let d = if split { 6 } else { 3 };
    let din = if split { d / 2 } else { d };
    let xv = values(3, b * t * d, -1.0, 1.0);
    let (shape, y, f) = forward(bi, &[b, t, d], &xv, false);
    assert_eq!(shape, [b, t, 2 * n], "{what}");
    let (xf, xb) = match split {
        true => (features(&xv, d, 0, din), features(&xv, d, din, d)),
        false => (xv.clone(), xv.clone()),
    };
    let want_f = run_with(&uni(false), &[b, t, din], &xf, &renamed(&f, "fwd_"));
    assert_close(
        &format!("{what} forward half"),
        &features(&y, 2 * n, 0, n),
        &want_f,
    );
    let reversed = run_with(
        &uni(true),
        &[b, t, din],
        &reverse_time(&xb, b, t, din),
        &renamed(&f, "bwd_"),
    );
    assert_close(
        &format!("{what} backward half"),
        &features(&y, 2 * n, n, 2 * n),
        &reverse_time(&reversed, b, t, n),
    );
    // The forward state is fed (and random here); the backward direction has none.
    let (_, _, params) = lowered(bi, &[b, t, d], false);
    assert!(
        params.iter().any(|p| p.name == "L/fwd_h" && p.carried),
        "{what}"
    );
    assert!(
        !params.iter().any(|p| p.name.starts_with("L/bwd_h")),
        "{what}"
    );
}

#[test]
fn bidirectional_halves_are_the_layer_forward_and_on_the_reversed_sequence() {
    for split in [false, true] {
        check_halves(
            &format!("BiRNN split={split}"),
            &birnn(3, false, split),
            |reset| rnn(3, reset),
            split,
        );
        check_halves(
            &format!("BiLSTM split={split}"),
            &bilstm(3, false, split),
            |reset| lstm(3, reset),
            split,
        );
    }
    // reset_cells: no state; the forward half starts from zeros.
    let (_, _, params) = lowered(&bilstm(3, true, false), &[2, 4, 3], false);
    assert!(params.iter().all(|p| !p.carried));
    let xv = values(3, 24, -1.0, 1.0);
    let (_, y, f) = forward(&birnn(3, true, false), &[2, 4, 3], &xv, false);
    let want = run_with(&rnn(3, true), &[2, 4, 3], &xv, &renamed(&f, "fwd_"));
    assert_close("BiRNN reset forward", &features(&y, 6, 0, 3), &want);
}

#[test]
fn bisum_adds_the_forward_and_backward_halves() {
    let xv = values(5, 2 * 3 * 4, -1.0, 1.0);
    let (shape, y, _) = forward(&BiSum::default().into(), &[2, 3, 4], &xv, false);
    assert_eq!(shape, [2, 3, 2]);
    let want: Vec<f64> = xv
        .chunks(4)
        .flat_map(|c| [c[0] + c[2], c[1] + c[3]])
        .collect();
    assert_close("BiSum", &y, &want);
}

#[test]
fn bidirectional_gradients_match_finite_differences() {
    // 4 steps; with a carried forward state (random) and from zeros; split inputs.
    for reset in [false, true] {
        check_gradients(
            &format!("BiRNN reset={reset}"),
            &birnn(3, reset, false),
            &[2, 4, 3],
            true,
        );
        check_gradients(
            &format!("BiLSTM reset={reset}"),
            &bilstm(2, reset, false),
            &[2, 4, 3],
            true,
        );
    }
    check_gradients("BiRNN split", &birnn(2, false, true), &[2, 3, 4], true);
    check_gradients("BiLSTM split", &bilstm(2, true, true), &[1, 3, 4], true);
    check_gradients("BiSum", &BiSum::default().into(), &[2, 3, 4], false);
}

// ----- DeepBiRNN / DeepBiLSTM -----------------------------------------------------------

#[test]
fn deep_stacks_expand_as_neon_builds_them() {
    // Without bi_sum: the later layers split their input (forward from forward).
    let parts = Layer::from(deep_birnn(4, 3, false).with_name("d"))
        .expand()
        .unwrap();
    let want: Vec<Layer> = (0..3)
        .map(|i| {
            let mut l = BiRnn::new(4, uniform(), Activation::Tanh).with_name(format!("d_{i}"));
            l.split_inputs = i > 0;
            l.into()
        })
        .collect();
    assert_eq!(parts, want);
    // With bi_sum: a BiSum after each BiRNN, and nothing split.
    let parts = Layer::from(deep_birnn(4, 2, true)).expand().unwrap();
    let kinds: Vec<&str> = parts.iter().map(Layer::type_name).collect();
    assert_eq!(kinds, ["BiRNN", "BiSum", "BiRNN", "BiSum"]);
    assert!(parts.iter().all(|p| match p {
        Layer::BiRNN(l) => !l.split_inputs && l.name.is_none(),
        _ => true,
    }));
    let named = Layer::from(deep_birnn(4, 2, true).with_name("d"))
        .expand()
        .unwrap();
    let names: Vec<_> = named.iter().map(|p| p.name().unwrap()).collect();
    assert_eq!(names, ["d_0", "d_0_sum", "d_1", "d_1_sum"]);
    // DeepBiLSTM: the arguments pass through.
    let mut deep = DeepBiLstm::new(5, uniform(), Activation::Tanh, LOGISTIC);
    deep.depth = 2;
    deep.reset_cells = true;
    deep.init_inner = Some(Initializer::Orthonormal { scale: 1.1 });
    let parts = Layer::from(deep).expand().unwrap();
    for (i, p) in parts.iter().enumerate() {
        let mut want = BiLstm::new(5, uniform(), Activation::Tanh, LOGISTIC);
        want.reset_cells = true;
        want.init_inner = Some(Initializer::Orthonormal { scale: 1.1 });
        want.split_inputs = i > 0;
        assert_eq!(p, &Layer::from(want));
    }
}

#[test]
fn a_deep_stack_lowered_as_one_layer_is_its_parts_in_turn() {
    let (b, t, d, n) = (2, 4, 3, 3);
    let xv = values(8, b * t * d, -1.0, 1.0);
    for bi_sum in [false, true] {
        let deep: Layer = deep_birnn(n, 2, bi_sum).into();
        let (shape, y, f) = forward(&deep, &[b, t, d], &xv, false);
        let width = if bi_sum { n } else { 2 * n };
        assert_eq!(shape, [b, t, width]);
        let sum = |v: Vec<f64>| run_with(&BiSum::default().into(), &[b, t, 2 * n], &v, &[]);
        let mut h = run_with(
            &birnn(n, false, false),
            &[b, t, d],
            &xv,
            &renamed(&f, "bi0_"),
        );
        if bi_sum {
            h = sum(h);
        }
        let h = run_with(
            &birnn(n, false, !bi_sum),
            &[b, t, if bi_sum { n } else { 2 * n }],
            &h,
            &renamed(&f, "bi1_"),
        );
        let h = if bi_sum { sum(h) } else { h };
        assert_close(&format!("DeepBiRNN bi_sum={bi_sum}"), &y, &h);
    }
}

#[test]
fn deep_stack_gradients_match_finite_differences() {
    check_gradients(
        "DeepBiRNN",
        &deep_birnn(2, 2, false).into(),
        &[2, 3, 3],
        true,
    );
    check_gradients(
        "DeepBiRNN bi_sum",
        &deep_birnn(2, 2, true).into(),
        &[2, 3, 3],
        true,
    );
    let mut deep = DeepBiLstm::new(2, uniform(), Activation::Tanh, LOGISTIC);
    deep.depth = 2;
    check_gradients("DeepBiLSTM", &deep.into(), &[1, 3, 2], true);
}

// ----- Parameter counts -----------------------------------------------------------------

fn params_of(layers: Vec<Layer>, shape: &[usize]) -> usize {
    Model::new(Sequential::new(layers), shape, 0)
        .unwrap()
        .num_params()
}

/// neon's imdb_lstm, with `rec` as its recurrent layer.
fn imdb(rec: Layer) -> Sequential {
    let glorot = Initializer::GlorotUniform;
    Sequential::new(vec![
        LookupTable::new(
            20000,
            128,
            Initializer::Uniform {
                low: -0.1 / 128.0,
                high: 0.1 / 128.0,
            },
        )
        .into(),
        rec,
        RecurrentSum::default().into(),
        Dropout::default().into(),
        Affine::new(2, glorot)
            .with_bias(Initializer::Constant { val: 0.0 })
            .with_activation(softmax())
            .into(),
    ])
}

#[test]
fn parameter_counts_are_neons() {
    let glorot = Initializer::GlorotUniform;
    let mut rec = Lstm::new(128, glorot.clone(), Activation::Tanh, LOGISTIC);
    rec.reset_cells = true;
    let m = Model::new(imdb(rec.into()), &[128], 0).unwrap();
    assert_eq!(m.num_params(), 2_691_842);
    let shapes: Vec<Vec<usize>> = m.layer_info().iter().map(|l| l.out_shape.clone()).collect();
    assert_eq!(shapes[..3], [vec![128, 128], vec![128, 128], vec![128]]);
    assert_eq!(m.layer_info()[0].params, 20000 * 128);
    assert_eq!(m.layer_info()[0].kind, "LookupTable(20000, 128)");
    // The BiLSTM variant: 2·(128 + 128 + 1)·4·128 recurrent parameters, 256 features.
    let mut rec = BiLstm::new(128, glorot, Activation::Tanh, LOGISTIC);
    rec.reset_cells = true;
    let m = Model::new(imdb(rec.into()), &[128], 0).unwrap();
    assert_eq!(m.num_params(), 2_560_000 + 2 * 257 * 4 * 128 + 257 * 2);
    // The formulas on other sizes: 2·(nin + nout + 1)·G·nout, with nin halved by split.
    for (d, n) in [(3, 7), (10, 1), (4, 2)] {
        assert_eq!(
            params_of(vec![birnn(n, false, false)], &[5, d]),
            2 * (d + n + 1) * n
        );
        assert_eq!(
            params_of(vec![bilstm(n, false, false)], &[5, d]),
            2 * (d + n + 1) * 4 * n
        );
    }
    assert_eq!(
        params_of(vec![birnn(3, false, true)], &[5, 8]),
        2 * (4 + 3 + 1) * 3
    );
    assert_eq!(
        params_of(vec![bilstm(2, true, true)], &[5, 6]),
        2 * (3 + 2 + 1) * 8
    );
    // whale_calls' DeepBiRNN(256, depth 3) on 64 features: the later layers read one half
    // (256) each; with bi_sum they read the summed 256 features, the same count.
    let whale = 2 * (64 + 257) * 256 + 2 * 2 * (256 + 257) * 256;
    for bi_sum in [false, true] {
        let deep = deep_birnn(256, 3, bi_sum);
        assert_eq!(params_of(vec![deep.into()], &[4, 64]), whale);
    }
    assert_eq!(params_of(vec![BiSum::default().into()], &[4, 6]), 0);
}

#[test]
fn expanded_stacks_name_their_parts_and_carry_only_forward_states() {
    let m = Model::new(
        Sequential::new(vec![deep_birnn(3, 2, false).into()]),
        &[4, 3],
        0,
    )
    .unwrap();
    let names: Vec<&str> = m.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "BiRNN_0/fwd_W_input",
            "BiRNN_0/fwd_W_recur",
            "BiRNN_0/fwd_b",
            "BiRNN_0/bwd_W_input",
            "BiRNN_0/bwd_W_recur",
            "BiRNN_0/bwd_b",
            "BiRNN_1/fwd_W_input",
            "BiRNN_1/fwd_W_recur",
            "BiRNN_1/fwd_b",
            "BiRNN_1/bwd_W_input",
            "BiRNN_1/bwd_W_recur",
            "BiRNN_1/bwd_b",
        ]
    );
    assert_eq!(
        m.params()[6].shape,
        [3, 3],
        "the split layer reads 3 features"
    );
    let states: Vec<&str> = m.states().iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(states, ["BiRNN_0/fwd_h", "BiRNN_1/fwd_h"]);
    assert_eq!(m.output_shape(), [4, 6]);
    let m = Model::new(Sequential::new(vec![bilstm(2, false, false)]), &[4, 3], 0).unwrap();
    let states: Vec<&str> = m.states().iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(states, ["BiLSTM_0/fwd_h", "BiLSTM_0/fwd_c"]);
}

#[test]
fn the_forward_state_carries_from_one_minibatch_to_the_next() {
    // The forward half of the second half of a sequence, run after the first half, is the
    // forward half of the whole sequence's last steps.
    for layer in [birnn(3, false, false), bilstm(3, false, false)] {
        let mut whole = Model::new(Sequential::new(vec![layer.clone()]), &[6, 2], 1).unwrap();
        let mut halves = Model::new(Sequential::new(vec![layer.clone()]), &[3, 2], 1).unwrap();
        let xv: Vec<f32> = values(5, 2 * 6 * 2, -1.0, 1.0)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let x = Tensor::from_f32(vec![2, 6, 2], xv.clone()).unwrap();
        let y = whole.predict(&x).unwrap().to_f64_vec();
        let part = |from: usize| {
            let v: Vec<f32> = (0..2)
                .flat_map(|r| xv[(r * 6 + from) * 2..(r * 6 + from + 3) * 2].to_vec())
                .collect();
            Tensor::from_f32(vec![2, 3, 2], v).unwrap()
        };
        halves.predict(&part(0)).unwrap();
        let second = halves.predict(&part(3)).unwrap().to_f64_vec();
        for r in 0..2 {
            for s in 0..3 {
                for k in 0..3 {
                    let want = y[(r * 6 + 3 + s) * 6 + k];
                    let got = second[(r * 3 + s) * 6 + k];
                    assert!((got - want).abs() < 1e-6, "{layer:?}: {got} vs {want}");
                }
            }
        }
    }
}

// ----- Errors ---------------------------------------------------------------------------

#[test]
fn bad_inputs_and_arguments_are_clear_errors() {
    let error = |layer: Layer, shape: &[usize]| {
        Model::new(Sequential::new(vec![layer]), shape, 0)
            .unwrap_err()
            .to_string()
    };
    let seq = "expects a sequence [batch, time steps, features], got shape";
    assert_eq!(
        error(
            LookupTable::new(10, 4, uniform()).with_name("lut").into(),
            &[3, 2]
        ),
        "layer 'lut': LookupTable expects token ids [batch, time steps], got shape [1, 3, 2]"
    );
    for (layer, class) in [
        (
            Layer::from(RecurrentSum::default().with_name("c")),
            "RecurrentSum",
        ),
        (
            RecurrentMean::default().with_name("c").into(),
            "RecurrentMean",
        ),
        (
            RecurrentLast::default().with_name("c").into(),
            "RecurrentLast",
        ),
        (BiSum::default().with_name("c").into(), "BiSum"),
        (
            BiRnn::new(3, uniform(), Activation::Tanh)
                .with_name("c")
                .into(),
            "BiRNN",
        ),
        (
            BiLstm::new(3, uniform(), Activation::Tanh, LOGISTIC)
                .with_name("c")
                .into(),
            "BiLSTM",
        ),
    ] {
        assert_eq!(
            error(layer, &[784]),
            format!("layer 'c': {class} {seq} [1, 784]")
        );
    }
    // A stack's first part names the error.
    assert_eq!(
        error(deep_birnn(3, 2, false).with_name("deep").into(), &[784]),
        format!("layer 'deep_0': BiRNN {seq} [1, 784]")
    );
    let deep = DeepBiLstm::new(3, uniform(), Activation::Tanh, LOGISTIC);
    assert_eq!(
        error(deep.into(), &[784]),
        format!("layer 'BiLSTM_0': BiLSTM {seq} [1, 784]")
    );
    // Arguments.
    let mut lut = LookupTable::new(10, 4, uniform()).with_name("lut");
    lut.pad_idx = Some(10);
    assert_eq!(
        error(lut.into(), &[3]),
        "layer 'lut': pad_idx 10 is outside the table of vocab_size 10"
    );
    assert_eq!(
        error(
            LookupTable::new(0, 4, uniform()).with_name("lut").into(),
            &[3]
        ),
        "layer 'lut': vocab_size and embedding_dim must be at least 1, got 0 and 4"
    );
    assert_eq!(
        error(birnn(3, false, true), &[4, 5]),
        "layer 'BiRNN_0': BiRNN with split_inputs needs an even number of input features \
         (a forward and a backward half), got shape [1, 4, 5]"
    );
    assert_eq!(
        error(BiSum::default().into(), &[4, 5]),
        "layer 'BiSum_0': BiSum adds two halves of the features, but shape [1, 4, 5] has an odd number"
    );
    let mut l = BiLstm::new(3, uniform(), Activation::Tanh, LOGISTIC).with_name("bi");
    l.gate_activation = None;
    assert_eq!(
        error(l.into(), &[4, 2]),
        "layer 'bi': BiLSTM needs a gate_activation (neon has no default)"
    );
    let mut l = BiRnn::new(3, uniform(), Activation::Tanh).with_name("bi");
    l.activation = None;
    assert_eq!(
        error(l.into(), &[4, 2]),
        "layer 'bi': BiRNN needs an activation (neon has no default)"
    );
    let mut deep = deep_birnn(3, 2, false).with_name("deep");
    deep.batch_norm = true;
    assert_eq!(
        error(deep.into(), &[4, 2]),
        "layer 'deep': batch_norm (neon's BiBNRNN, batch norm of the input projections) \
         is not supported"
    );
    assert_eq!(
        error(deep_birnn(3, 0, false).into(), &[4, 2]),
        "layer 'DeepBiRNN': depth must be at least 1"
    );
    let mut deep = DeepBiLstm::new(3, uniform(), Activation::Tanh, LOGISTIC).with_name("dl");
    deep.depth = 0;
    assert_eq!(
        error(deep.into(), &[4, 2]),
        "layer 'dl': depth must be at least 1"
    );
}

// ----- Model files ----------------------------------------------------------------------

#[test]
fn a_model_file_with_a_table_a_bilstm_and_the_last_step_builds_and_runs() {
    let yaml = "layers:
- type: LookupTable
  config:
    vocab_size: 12
    embedding_dim: 5
    init: {type: Uniform, config: {low: -0.1, high: 0.1}}
    pad_idx: 0
- type: BiLSTM
  config:
    output_size: 4
    init: {type: GlorotUniform}
    activation: {type: Tanh}
    gate_activation: {type: Logistic}
    reset_cells: true
- {type: RecurrentLast}
- type: Affine
  config: {nout: 3, init: {type: GlorotUniform}, bias: {type: Constant}, activation: {type: Softmax}}
cost: CrossEntropyMulti
";
    let file = ModelFile::from_yaml_str(yaml).unwrap();
    let mut lut = LookupTable::new(
        12,
        5,
        Initializer::Uniform {
            low: -0.1,
            high: 0.1,
        },
    );
    lut.pad_idx = Some(0);
    assert_eq!(file.layers.layers[0], Layer::from(lut));
    assert_eq!(file.layers.layers[2], Layer::from(RecurrentLast::default()));
    for back in [
        ModelFile::from_json_str(&file.to_json()).unwrap(),
        ModelFile::from_yaml_str(&file.to_yaml()).unwrap(),
    ] {
        assert_eq!(back, file);
    }
    let mut model = Model::new(file.layers.clone(), &[6], 0).unwrap();
    assert_eq!(
        model.num_params(),
        12 * 5 + 2 * (5 + 4 + 1) * 16 + 8 * 3 + 3
    );
    assert!(model.states().is_empty());
    // The CPU backend and the interpreter agree on the output.
    let ids: Vec<f32> = [3, 1, 0, 11, 7, 2, 5, 5, 9, 0, 0, 4]
        .iter()
        .map(|&i| i as f32)
        .collect();
    let x = Tensor::from_f32(vec![2, 6], ids.clone()).unwrap();
    let y = model.predict(&x).unwrap();
    assert_eq!(y.shape(), [2, 3]);
    let g = model.inference_graph(2).unwrap();
    let mut f: Feeds = HashMap::new();
    f.insert("x".into(), x.clone());
    for p in model.params() {
        f.insert(p.name.clone(), model.value(&p.name).unwrap().clone());
    }
    let want = interp::run(&g, &f).unwrap()["y"].to_f64_vec();
    for (a, b) in y.to_f64_vec().iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    for row in want.chunks(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }
    // A DeepBiRNN with bi_sum and the other collapses read too.
    let yaml = "layers:
- {type: DeepBiRNN, config: {nout: 3, init: {type: Uniform}, activation: {type: Rectlin}, depth: 2, bi_sum: true}}
- {type: RecurrentMean, config: {name: avg}}
cost: SumSquared
";
    let file = ModelFile::from_yaml_str(yaml).unwrap();
    let mut want = deep_birnn(3, 2, true);
    want.init = Initializer::Uniform {
        low: 0.0,
        high: 1.0,
    };
    want.activation = Some(Activation::Rectlin { slope: 0.0 });
    assert_eq!(file.layers.layers[0], Layer::from(want));
    let m = Model::new(file.layers, &[4, 2], 0).unwrap();
    assert_eq!(m.output_shape(), [3]);
    let e = ModelFile::from_yaml_str(
        "layers: [{type: BiRNN, config: {output_size: 3, init: {type: Uniform}, parallelism: Data}}]\ncost: SumSquared\n",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("unknown argument \"parallelism\""),
        "{e}"
    );
}
