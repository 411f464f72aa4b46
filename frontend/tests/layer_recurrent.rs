//! Recurrent, LSTM and GRU: gradients against central differences in f64 through several
//! time steps (with and without a carried state), forward and backward against an
//! independent plain reference (neon's `lstm_ref.py`/`gru_ref.py` tolerance, 1.5e-5, on
//! the CPU backend in f32), neon's parameter counts, the state carried from one minibatch
//! to the next, and argument errors.

mod common;

use common::gradcheck::{F, LOGISTIC, check_gradients, gru, lstm, rnn, uniform, values};
use std::collections::HashMap;
use xenon_compiler::autodiff;
use xenon_compiler::backend::{Backend, Cpu};
use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph, Op};
use xenon_frontend::activation::Activation;
use xenon_frontend::cost::Cost;
use xenon_frontend::data::text::text_dataset;
use xenon_frontend::data::{BatchIterator, BatchOptions, Dataset};
use xenon_frontend::init::Initializer;
use xenon_frontend::layer::*;
use xenon_frontend::model::Model;
use xenon_frontend::model_file::ModelFile;
use xenon_frontend::optimizer::Optimizer;
use xenon_runtime::Tensor;

#[test]
fn gradients_through_the_time_steps_match_finite_differences() {
    // 4 steps; with a carried state (random) and from zeros.
    for reset in [false, true] {
        check_gradients(
            &format!("Recurrent reset={reset}"),
            &rnn(3, reset),
            &[2, 4, 5],
            true,
        );
        check_gradients(
            &format!("LSTM reset={reset}"),
            &lstm(3, reset),
            &[2, 4, 5],
            true,
        );
        check_gradients(
            &format!("GRU reset={reset}"),
            &gru(3, reset),
            &[2, 4, 5],
            true,
        );
    }
    // neon's text_generation example swaps the activations; any pair works.
    let swapped = Lstm::new(2, uniform(), LOGISTIC, Activation::Tanh);
    check_gradients("LSTM swapped", &swapped.into(), &[2, 3, 3], false);
    let relu = Recurrent::new(3, uniform(), Activation::Rectlin { slope: 0.1 });
    check_gradients("Recurrent ReLU", &relu.into(), &[1, 3, 2], false);
}

/// Plain loops over one batch row, in f64: the reference the compiled layers are checked
/// against, written from neon's formulas without the IR.
struct Reference {
    kind: CellKind,
    n: usize,
    d: usize,
    /// `[G·n, d]`, `[G·n, n]`, `[G·n]` row-major.
    w_in: Vec<f64>,
    w_rec: Vec<f64>,
    b: Vec<f64>,
}

fn sigm(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `W[rows, cols] · v` for the rows `from..to`.
fn matvec(w: &[f64], cols: usize, from: usize, to: usize, v: &[f64]) -> Vec<f64> {
    (from..to)
        .map(|r| (0..cols).map(|c| w[r * cols + c] * v[c]).sum())
        .collect()
}

/// `acc[rows, cols] += u ⊗ v` on the rows `from..`.
fn outer_add(acc: &mut [f64], cols: usize, from: usize, u: &[f64], v: &[f64]) {
    for (i, &ui) in u.iter().enumerate() {
        for (j, &vj) in v.iter().enumerate() {
            acc[(from + i) * cols + j] += ui * vj;
        }
    }
}

/// `Wᵀ[rows from..from+u.len()] · u`.
fn matvec_t(w: &[f64], cols: usize, from: usize, u: &[f64]) -> Vec<f64> {
    (0..cols)
        .map(|c| {
            u.iter()
                .enumerate()
                .map(|(i, &ui)| w[(from + i) * cols + c] * ui)
                .sum()
        })
        .collect()
}

/// Per step: what the backward pass needs.
struct Step {
    x: Vec<f64>,
    h_prev: Vec<f64>,
    c_prev: Vec<f64>,
    gates: Vec<f64>,
    c: Vec<f64>,
    h: Vec<f64>,
}

/// Gradients of one row: `(dW_in, dW_rec, db, dx)`.
type Grads = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

impl Reference {
    /// The hidden states of one sequence `xs` (`T × d`) from `h0`, `c0`.
    fn forward(&self, xs: &[f64], h0: &[f64], c0: &[f64]) -> Vec<Step> {
        let (n, d) = (self.n, self.d);
        let g = match self.kind {
            CellKind::Rnn => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        };
        let (mut h, mut c) = (h0.to_vec(), c0.to_vec());
        let mut steps = Vec::new();
        for x in xs.chunks(d) {
            let mut z = matvec(&self.w_in, d, 0, g * n, x);
            for (k, zk) in z.iter_mut().enumerate() {
                *zk += self.b[k];
            }
            let (gates, c_new, h_new) = match self.kind {
                CellKind::Rnn => {
                    let r = matvec(&self.w_rec, n, 0, n, &h);
                    let hn: Vec<f64> = (0..n).map(|k| (z[k] + r[k]).tanh()).collect();
                    (hn.clone(), c.clone(), hn)
                }
                CellKind::Lstm => {
                    let r = matvec(&self.w_rec, n, 0, 4 * n, &h);
                    let a: Vec<f64> = (0..4 * n)
                        .map(|k| {
                            let v = z[k] + r[k];
                            if k < 3 * n { sigm(v) } else { v.tanh() }
                        })
                        .collect();
                    let cn: Vec<f64> = (0..n)
                        .map(|k| a[n + k] * c[k] + a[k] * a[3 * n + k])
                        .collect();
                    let hn: Vec<f64> = (0..n).map(|k| a[2 * n + k] * cn[k].tanh()).collect();
                    (a, cn, hn)
                }
                CellKind::Gru => {
                    let r = matvec(&self.w_rec, n, 0, 2 * n, &h);
                    let rz: Vec<f64> = (0..2 * n).map(|k| sigm(z[k] + r[k])).collect();
                    let rh: Vec<f64> = (0..n).map(|k| rz[k] * h[k]).collect();
                    let u = matvec(&self.w_rec, n, 2 * n, 3 * n, &rh);
                    let cand: Vec<f64> = (0..n).map(|k| (z[2 * n + k] + u[k]).tanh()).collect();
                    let hn: Vec<f64> = (0..n)
                        .map(|k| (1.0 - rz[n + k]) * h[k] + rz[n + k] * cand[k])
                        .collect();
                    let mut a = rz;
                    a.extend(cand);
                    (a, c.clone(), hn)
                }
            };
            steps.push(Step {
                x: x.to_vec(),
                h_prev: h.clone(),
                c_prev: c.clone(),
                gates,
                c: c_new.clone(),
                h: h_new.clone(),
            });
            h = h_new;
            c = c_new;
        }
        steps
    }

    /// Backpropagation through time of `Σ_t R_t · h_t` (`rs`: `T × n`).
    fn backward(&self, steps: &[Step], rs: &[f64]) -> Grads {
        let (n, d) = (self.n, self.d);
        let mut dw_in = vec![0.0; self.w_in.len()];
        let mut dw_rec = vec![0.0; self.w_rec.len()];
        let mut db = vec![0.0; self.b.len()];
        let mut dx = vec![0.0; steps.len() * d];
        let mut dh_next = vec![0.0; n];
        let mut dc_next = vec![0.0; n];
        for (t, s) in steps.iter().enumerate().rev() {
            let dh: Vec<f64> = (0..n).map(|k| rs[t * n + k] + dh_next[k]).collect();
            let a = &s.gates;
            let (dz, dh_prev_extra): (Vec<f64>, Vec<f64>) = match self.kind {
                CellKind::Rnn => {
                    let dz = (0..n).map(|k| dh[k] * (1.0 - s.h[k] * s.h[k])).collect();
                    (dz, vec![0.0; n])
                }
                CellKind::Lstm => {
                    let mut dz = vec![0.0; 4 * n];
                    for k in 0..n {
                        let (i, f, o, g) = (a[k], a[n + k], a[2 * n + k], a[3 * n + k]);
                        let tc = s.c[k].tanh();
                        let dc = dh[k] * o * (1.0 - tc * tc) + dc_next[k];
                        dz[k] = dc * g * i * (1.0 - i);
                        dz[n + k] = dc * s.c_prev[k] * f * (1.0 - f);
                        dz[2 * n + k] = dh[k] * tc * o * (1.0 - o);
                        dz[3 * n + k] = dc * i * (1.0 - g * g);
                        dc_next[k] = dc * f;
                    }
                    (dz, vec![0.0; n])
                }
                CellKind::Gru => {
                    let mut dz = vec![0.0; 3 * n];
                    let mut extra = vec![0.0; n];
                    for k in 0..n {
                        let (z, cand) = (a[n + k], a[2 * n + k]);
                        dz[n + k] = dh[k] * (cand - s.h_prev[k]) * z * (1.0 - z);
                        dz[2 * n + k] = dh[k] * z * (1.0 - cand * cand);
                        extra[k] = dh[k] * (1.0 - z);
                    }
                    let rh: Vec<f64> = (0..n).map(|k| a[k] * s.h_prev[k]).collect();
                    outer_add(&mut dw_rec, n, 2 * n, &dz[2 * n..], &rh);
                    let drh = matvec_t(&self.w_rec, n, 2 * n, &dz[2 * n..]);
                    for k in 0..n {
                        let r = a[k];
                        dz[k] = drh[k] * s.h_prev[k] * r * (1.0 - r);
                        extra[k] += drh[k] * r;
                    }
                    (dz, extra)
                }
            };
            outer_add(&mut dw_in, d, 0, &dz, &s.x);
            for (k, v) in dz.iter().enumerate() {
                db[k] += v;
            }
            let xs = matvec_t(&self.w_in, d, 0, &dz);
            dx[t * d..(t + 1) * d].copy_from_slice(&xs);
            // The recurrent product reads h_prev with every block but GRU's h̃ (r ⊙ h).
            let rec_rows = match self.kind {
                CellKind::Gru => 2 * n,
                _ => dz.len(),
            };
            outer_add(&mut dw_rec, n, 0, &dz[..rec_rows], &s.h_prev);
            let back = matvec_t(&self.w_rec, n, 0, &dz[..rec_rows]);
            dh_next = (0..n).map(|k| back[k] + dh_prev_extra[k]).collect();
        }
        (dw_in, dw_rec, db, dx)
    }
}

/// The layer compiled on the CPU backend in f32 and the plain reference agree within
/// 1.5e-5 on the outputs and on the gradients of every parameter and the input, from a
/// carried (random) state, through `t` steps.
fn check_against_reference(kind: CellKind, layer: Layer) {
    let (b, t, d, n) = (3, 5, 4, 6);
    let shape = [b, t, d];
    // The layer, the loss Σ y ⊙ R and its gradients, in `dtype`.
    let build = |dtype: DType| {
        let mut g = Graph::new();
        let x = g.parameter("x", dtype, &shape).unwrap();
        let mut params = Vec::new();
        let mut ctx =
            LayerCtx::new(&mut g, "L", dtype, &mut params).with_mode(Mode::Training { seed: 1 });
        let y = layer.lower(&mut ctx, &[x]).unwrap()[0];
        let r = g
            .constant(dtype, &[b, t, n], values(777, b * t * n, -1.0, 1.0))
            .unwrap();
        let w = g.mul(y, r).unwrap();
        let loss = g.sum(w, &[0, 1, 2], false).unwrap();
        g.set_output("loss", loss).unwrap();
        g.set_output("y", y).unwrap();
        let names = ["x", "L/W_input", "L/W_recur", "L/b"];
        (
            autodiff::with_gradients(&g, "loss", &names).unwrap(),
            params,
        )
    };
    let (dg, params) = build(F);
    let (dg32, _) = build(DType::F32);
    // Values: f32-exact, so that both sides start from the same numbers.
    let exact = |v: Vec<f64>| v.into_iter().map(|x| x as f32 as f64).collect::<Vec<_>>();
    let mut f64_feeds: Feeds = HashMap::new();
    let mut vals: HashMap<String, Vec<f64>> = HashMap::new();
    for (i, (name, shape)) in [("x".to_string(), shape.to_vec())]
        .into_iter()
        .chain(params.iter().map(|p| (p.name.clone(), p.shape.clone())))
        .enumerate()
    {
        let v = exact(values(40 + i as u64, shape.iter().product(), -0.8, 0.8));
        f64_feeds.insert(name.clone(), Tensor::from_f64(shape, v.clone()).unwrap());
        vals.insert(name, v);
    }
    let f32_feeds: Feeds = f64_feeds
        .iter()
        .map(|(k, v)| (k.clone(), v.cast(DType::F32)))
        .collect();
    let out = Cpu::default()
        .compile(&dg32)
        .unwrap()
        .run(&f32_feeds)
        .unwrap();
    let reference = Reference {
        kind,
        n,
        d,
        w_in: vals["L/W_input"].clone(),
        w_rec: vals["L/W_recur"].clone(),
        b: vals["L/b"].clone(),
    };
    let rs = values(777, b * t * n, -1.0, 1.0);
    let mut want_y = Vec::new();
    let mut want = (
        vec![0.0; reference.w_in.len()],
        vec![0.0; reference.w_rec.len()],
        vec![0.0; reference.b.len()],
        Vec::new(),
    );
    for row in 0..b {
        let h0 = &vals["L/h"][row * n..(row + 1) * n];
        let c0 = match kind {
            CellKind::Lstm => vals["L/c"][row * n..(row + 1) * n].to_vec(),
            _ => vec![0.0; n],
        };
        let steps = reference.forward(&vals["x"][row * t * d..(row + 1) * t * d], h0, &c0);
        want_y.extend(steps.iter().flat_map(|s| s.h.clone()));
        let (a, bb, c, dx) = reference.backward(&steps, &rs[row * t * n..(row + 1) * t * n]);
        for (acc, v) in [(&mut want.0, a), (&mut want.1, bb), (&mut want.2, c)] {
            for (x, y) in acc.iter_mut().zip(v) {
                *x += y;
            }
        }
        want.3.extend(dx);
    }
    let close = |what: &str, got: &Tensor, want: &[f64]| {
        let got = got.to_f64_vec();
        assert_eq!(got.len(), want.len(), "{kind:?} {what}");
        for (k, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1.5e-5,
                "{kind:?} {what}[{k}]: {a} vs reference {b}"
            );
        }
    };
    close("y", &out["y"], &want_y);
    close("dW_input", &out["grad/L/W_input"], &want.0);
    close("dW_recur", &out["grad/L/W_recur"], &want.1);
    close("db", &out["grad/L/b"], &want.2);
    close("dx", &out["grad/x"], &want.3);
    // The interpreter in f64 agrees with the reference far more closely.
    let exact_out = interp::run(&dg, &f64_feeds).unwrap();
    let ys = exact_out["y"].to_f64_vec();
    assert!(ys.iter().zip(&want_y).all(|(a, b)| (a - b).abs() < 1e-12));
}

#[test]
fn lstm_gru_and_recurrent_match_a_plain_reference() {
    check_against_reference(CellKind::Lstm, lstm(6, false));
    check_against_reference(CellKind::Gru, gru(6, false));
    check_against_reference(CellKind::Rnn, rnn(6, false));
}

/// neon's char_lstm (or its GRU variant) for a vocabulary of `v`.
fn char_model(v: usize, cell: &str) -> Sequential {
    let init = Initializer::Uniform {
        low: -0.08,
        high: 0.08,
    };
    let rec = |k: usize| -> Layer {
        let name = format!("rec{k}");
        match cell {
            "gru" => Gru::new(128, init.clone(), Activation::Tanh, LOGISTIC)
                .with_name(name)
                .into(),
            _ => Lstm::new(128, init.clone(), Activation::Tanh, LOGISTIC)
                .with_name(name)
                .into(),
        }
    };
    let out = Affine::new(v, init.clone())
        .with_bias(Initializer::Constant { val: 0.0 })
        .with_activation(Activation::Softmax {
            axis: 0,
            epsilon: 2f64.powi(-23),
        });
    Sequential::new(vec![rec(0), rec(1), out.into()])
}

#[test]
fn parameter_counts_are_neons() {
    let char_lstm = Model::new(char_model(50, "lstm"), &[50, 50], 0).unwrap();
    assert_eq!(char_lstm.num_params(), 229_682);
    let char_gru = Model::new(char_model(50, "gru"), &[50, 50], 0).unwrap();
    assert_eq!(char_gru.num_params(), 173_874);
    // char_rnn: Recurrent(500) → Affine(V, bias).
    let char_rnn = Sequential::new(vec![
        Recurrent::new(500, uniform(), Activation::Tanh).into(),
        Affine::new(50, uniform())
            .with_bias(Initializer::Constant { val: 0.0 })
            .into(),
    ]);
    assert_eq!(
        Model::new(char_rnn, &[20, 50], 0).unwrap().num_params(),
        300_550
    );
    // The formulas, on other sizes.
    for (d, n) in [(3, 7), (10, 1)] {
        for (layer, g) in [(rnn(n, false), 1), (lstm(n, false), 4), (gru(n, true), 3)] {
            let m = Model::new(Sequential::new(vec![layer]), &[4, d], 0).unwrap();
            assert_eq!(m.num_params(), (d + n + 1) * g * n);
        }
    }
    // The states are not parameters and are not saved.
    assert_eq!(
        char_lstm
            .states()
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["rec0/h", "rec0/c", "rec1/h", "rec1/c"]
    );
}

#[test]
fn the_state_carries_from_one_minibatch_to_the_next() {
    // Two calls on halves of a sequence give what one call on the whole gives, unless
    // reset_cells; a reset starts over.
    for layer in [lstm(4, false), gru(4, false), rnn(4, false)] {
        let whole = Model::new(Sequential::new(vec![layer.clone()]), &[6, 3], 1);
        let mut whole = whole.unwrap();
        let halves = Model::new(Sequential::new(vec![layer.clone()]), &[3, 3], 1);
        let mut halves = halves.unwrap();
        let xv: Vec<f32> = values(5, 2 * 6 * 3, -1.0, 1.0)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let x = Tensor::from_f32(vec![2, 6, 3], xv.clone()).unwrap();
        let y = whole.predict(&x).unwrap().to_f64_vec();
        let part = |from: usize| {
            let v: Vec<f32> = (0..2)
                .flat_map(|r| xv[(r * 6 + from) * 3..(r * 6 + from + 3) * 3].to_vec())
                .collect();
            Tensor::from_f32(vec![2, 3, 3], v).unwrap()
        };
        let first = halves.predict(&part(0)).unwrap().to_f64_vec();
        let second = halves.predict(&part(3)).unwrap().to_f64_vec();
        for r in 0..2 {
            for (k, want) in y[(r * 6 + 3) * 4..(r * 6 + 6) * 4].iter().enumerate() {
                let got = second[r * 12 + k];
                assert!((got - want).abs() < 1e-6, "{layer:?}: {got} vs {want}");
            }
        }
        halves.reset_states(2);
        assert_eq!(halves.predict(&part(0)).unwrap().to_f64_vec(), first);
    }
}

#[test]
fn bad_arguments_and_inputs_are_clear_errors() {
    let error = |layer: Layer, shape: &[usize]| {
        Model::new(Sequential::new(vec![layer]), shape, 0)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(
            Lstm::new(4, uniform(), Activation::Tanh, LOGISTIC)
                .with_name("enc")
                .into(),
            &[784]
        ),
        "layer 'enc': LSTM expects a sequence [batch, time steps, features], got shape [1, 784]"
    );
    let mut l = Lstm::new(4, uniform(), Activation::Tanh, LOGISTIC);
    l.gate_activation = None;
    assert_eq!(
        error(l.with_name("enc").into(), &[5, 3]),
        "layer 'enc': LSTM needs a gate_activation (neon has no default)"
    );
    let r = Recurrent::new(0, uniform(), Activation::Tanh).with_name("r");
    assert_eq!(
        error(r.into(), &[5, 3]),
        "layer 'r': output_size must be at least 1"
    );
}

/// A tiny text: ids 0..v cycling, as neon's `Text` data set.
fn cycling_text(n: usize, v: u32, steps: usize, onehot: bool) -> Dataset {
    let ids: Vec<u32> = (0..n as u32).map(|i| (i * 7 + i / 5) % v).collect();
    text_dataset(&ids, v as usize, steps, onehot).unwrap()
}

#[test]
fn text_that_does_not_fit_the_model_is_a_clear_error() {
    let rms = Optimizer::RmsProp(Default::default());
    let cost = Cost::CrossEntropyMulti {
        scale: 1.0,
        usebits: false,
    };
    let out = |v: usize| -> Layer {
        Affine::new(v, uniform())
            .with_activation(Activation::Softmax {
                axis: 0,
                epsilon: 1e-7,
            })
            .with_name("out")
            .into()
    };
    // A sequence length longer than the text.
    let ids: Vec<u32> = (0..40).map(|i| i % 6).collect();
    let e = text_dataset(&ids, 6, 50, true).unwrap_err().to_string();
    assert!(
        e.contains("sequence length 50") && e.contains("40 tokens"),
        "{e}"
    );
    // An output layer sized for another vocabulary: the targets have 6 classes.
    let data = cycling_text(400, 6, 5, true);
    let mut m = Model::new(Sequential::new(vec![lstm(4, false), out(7)]), &[5, 6], 0).unwrap();
    let mut it = BatchIterator::new(&data, BatchOptions::new(8)).unwrap();
    let e = m
        .fit(&mut it, &cost, &rms, 1, &mut [])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "layer 'out' outputs shape [5, 7] per sample but the targets have shape [5, 6]"
    );
    // Token ids beyond a LookupTable's rows.
    let ids = cycling_text(400, 6, 5, false);
    let table = LookupTable::new(4, 3, uniform()).with_name("embed");
    let layers = Sequential::new(vec![table.into(), lstm(4, false), out(6)]);
    let mut m = Model::new(layers, &[5], 0).unwrap();
    let mut it = BatchIterator::new(&ids, BatchOptions::new(8)).unwrap();
    let e = m
        .fit(&mut it, &cost, &rms, 1, &mut [])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "layer 'embed' is a lookup table of 4 rows (vocab_size), but example 0 of the data holds the token id 4"
    );
    // Recurrent layers whose shapes do not chain: an LSTM after the time axis is gone.
    let yaml = "layers:\n  - {type: LSTM, config: {output_size: 4, init: {type: GlorotUniform}, activation: {type: Tanh}, gate_activation: {type: Logistic}}}\n  - {type: RecurrentLast, config: {name: last}}\n  - {type: GRU, config: {output_size: 4, init: {type: GlorotUniform}, activation: {type: Tanh}, gate_activation: {type: Logistic}, name: gru}}\ncost: CrossEntropyMulti\n";
    let file = ModelFile::from_yaml_str(yaml).unwrap();
    let e = Model::new(file.layers, &[5, 6], 0).unwrap_err().to_string();
    assert_eq!(
        e,
        "layer 'gru': GRU expects a sequence [batch, time steps, features], got shape [1, 4]"
    );
}

#[test]
fn a_model_fed_token_ids_trains_as_one_fed_their_one_hot_rows() {
    // The same LSTM language model, one fed one-hot rows and one fed the token ids
    // (`with_token_ids`): the same training costs, validation cost and predictions, to
    // f32 rounding. The model fed ids multiplies no one-hot row: its first layer's
    // products became row gathers and scatters.
    let (v, steps, batch) = (7, 5, 8);
    let data = cycling_text(400, v as u32, steps, true);
    let rms = Optimizer::RmsProp(Default::default());
    let cost = Cost::CrossEntropyMulti {
        scale: 1.0,
        usebits: false,
    };
    let layers = || {
        Sequential::new(vec![
            lstm(6, false),
            Affine::new(v, uniform())
                .with_activation(Activation::Softmax {
                    axis: 0,
                    epsilon: 1e-7,
                })
                .into(),
        ])
    };
    let mut dense = Model::new(layers(), &[steps, v], 3).unwrap();
    let mut ids = Model::new(layers(), &[steps, v], 3)
        .unwrap()
        .with_token_ids()
        .unwrap();
    assert_eq!((ids.fed_shape(), ids.token_ids()), (vec![steps], Some(v)));
    assert_eq!(
        (dense.fed_shape(), dense.token_ids()),
        (vec![steps, v], None)
    );
    // The identity the one-hot rows come from is gone, and the first layer's weight
    // gradient is a scatter of rows.
    let g = ids.optimized_train_graph(batch, v, &cost, &rms).unwrap();
    let ops: Vec<&Op> = g.ids().map(|n| &g.node(n).op).collect();
    assert!(
        !ops.iter()
            .any(|op| matches!(op, Op::Constant { value } if value.values.len() == v * v)),
        "{g}"
    );
    assert!(
        ops.iter().any(|op| matches!(op, Op::ScatterAdd { .. })),
        "{g}"
    );
    let mut costs = Vec::new();
    for m in [&mut dense, &mut ids] {
        let mut it = BatchIterator::new(&data, BatchOptions::new(batch)).unwrap();
        let stats = m.fit(&mut it, &cost, &rms, 2, &mut []).unwrap();
        let valid = m.eval_cost(&data, batch, &cost).unwrap();
        costs.push((stats[0].train_cost, stats[1].train_cost, valid));
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * a.abs().max(1.0);
    let (a, b) = (costs[0], costs[1]);
    assert!(
        close(a.0, b.0) && close(a.1, b.1) && close(a.2, b.2),
        "{a:?} vs {b:?}"
    );
    assert!(a.1 < a.0, "the model learns: {a:?}");
    // Predictions: one-hot rows in, or their ids.
    let seq: Vec<u32> = (0..steps as u32).map(|i| (i * 3) % v as u32).collect();
    let onehot: Vec<f32> = seq
        .iter()
        .flat_map(|&id| (0..v as u32).map(move |k| (k == id) as u8 as f32))
        .collect();
    let y_dense = dense
        .predict(&Tensor::from_f32(vec![1, steps, v], onehot).unwrap())
        .unwrap()
        .to_f64_vec();
    let id_rows: Vec<f32> = seq.iter().map(|&id| id as f32).collect();
    let id_tensor = Tensor::from_f32(vec![1, steps], id_rows).unwrap();
    let y_ids = ids.predict(&id_tensor).unwrap().to_f64_vec();
    for (p, q) in y_dense.iter().zip(&y_ids) {
        assert!((p - q).abs() < 1e-5, "{p} vs {q}");
    }
    // Saved and loaded, the model still takes ids.
    let dir = std::env::temp_dir().join(format!("xenon-token-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    ids.save(&path).unwrap();
    let mut loaded = Model::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.token_ids(), Some(v));
    assert_eq!(loaded.predict(&id_tensor).unwrap().to_f64_vec(), y_ids);
    // Inputs that are no ids of its vocabulary: clear errors.
    let e = ids
        .predict(&Tensor::from_f32(vec![1, steps, v], vec![0.0; steps * v]).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "the model takes inputs of shape [{steps}] per sample ({steps} values) but the data has [{steps}, {v}] ({} values)",
            steps * v
        )
    );
    let e = ids
        .predict(&Tensor::from_f32(vec![1, steps], vec![v as f32; steps]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("{v}")), "{e}");
    for (other, width) in [
        (cycling_text(400, v as u32, steps, false), None),
        (cycling_text(400, 8, steps, true), Some(8)),
    ] {
        let mut it = BatchIterator::new(&other, BatchOptions::new(batch)).unwrap();
        let e = ids
            .fit(&mut it, &cost, &rms, 1, &mut [])
            .unwrap_err()
            .to_string();
        let tail = match width {
            Some(w) => format!("the data set's token ids are one-hot {w} wide"),
            None => "the data set's inputs are no token ids".to_string(),
        };
        assert_eq!(
            e,
            format!("the model is fed token ids whose one-hot rows are {v} wide, but {tail}")
        );
    }
}

#[test]
fn the_gate_gradients_are_stored_once() {
    // A two-layer LSTM's training step: each step's gate gradients (4n wide) are read by
    // the input-side products (as a sequence [batch, T, 4n]) and by the recurrent weight's
    // gradient (summed over the steps); both read the one sequence, so no kernel copies
    // gate gradients. Each step's output is stored into one sequence and copied into the
    // other (the recurrent weight's gradient reads it one step later). With states carried
    // from the last minibatch and with every minibatch starting from zeros.
    let (n, v, steps, batch) = (6, 5, 4, 8);
    for reset in [false, true] {
        let layers = Sequential::new(vec![
            lstm(n, reset),
            lstm(n, reset),
            Affine::new(v, uniform())
                .with_activation(Activation::Softmax {
                    axis: 0,
                    epsilon: 1e-7,
                })
                .into(),
        ]);
        gate_gradients_stored_once(layers, n, v, steps, batch);
    }
}

fn gate_gradients_stored_once(layers: Sequential, n: usize, v: usize, steps: usize, batch: usize) {
    let model = Model::new(layers, &[steps, v], 0).unwrap();
    let rms = Optimizer::RmsProp(Default::default());
    let cost = Cost::CrossEntropyMulti {
        scale: 1.0,
        usebits: false,
    };
    let g = model.optimized_train_graph(batch, v, &cost, &rms).unwrap();
    let lowered = xenon_compiler::lower::lower(&g).unwrap();
    let copies: Vec<&[usize]> = lowered
        .program
        .steps
        .iter()
        .filter_map(|s| match s {
            xenon_runtime::program::Step::Loop(k)
                if k.name.starts_with("concat") && k.body.len() == 1 =>
            {
                Some(k.shape.as_slice())
            }
            _ => None,
        })
        .collect();
    assert!(
        copies.iter().all(|s| s.last() != Some(&(4 * n))),
        "{copies:?}"
    );
    // One copy per step output (and initial state) of each layer, at most.
    assert!(copies.len() <= 2 * (steps + 1), "{copies:?}");
}
