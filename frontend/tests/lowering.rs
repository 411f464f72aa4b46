//! Activations, costs and metrics lowered to IR primitives, evaluated on the interpreter in
//! f64 and compared with neon's formulas computed by hand.

use xenon_compiler::interp;
use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::prelude::*;
use xenon_runtime::Tensor;

const X: [f64; 6] = [-2.0, -0.5, 0.0, 0.25, 1.0, 3.0];

fn activation(a: Activation) -> Vec<f64> {
    let mut g = Graph::new();
    let x = g.input("x", DType::F64, &[2, 3]).unwrap();
    let y = a.lower(&mut g, x).unwrap();
    g.set_output("y", y).unwrap();
    let feeds = [(
        "x".to_string(),
        Tensor::from_f64(vec![2, 3], X.to_vec()).unwrap(),
    )]
    .into_iter()
    .collect();
    interp::run(&g, &feeds).unwrap()["y"].to_f64_vec()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

#[test]
fn activations_follow_neons_formulas() {
    close(&activation(Activation::Identity), &X);
    close(
        &activation(Activation::Rectlin { slope: 0.0 }),
        &[0.0, 0.0, 0.0, 0.25, 1.0, 3.0],
    );
    close(
        &activation(Activation::Rectlin { slope: 0.1 }),
        &[-0.2, -0.05, 0.0, 0.25, 1.0, 3.0],
    );
    close(
        &activation(Activation::Logistic { shortcut: false }),
        &X.map(|x| 1.0 / (1.0 + (-x).exp())),
    );
    close(&activation(Activation::Tanh), &X.map(f64::tanh));
    close(
        &activation(Activation::Explin { alpha: 0.5 }),
        &X.map(|x| x.max(0.0) + 0.5 * (x.min(0.0).exp() - 1.0)),
    );
    close(
        &activation(Activation::Rectlinclip {
            slope: 0.1,
            xcut: 1.0,
        }),
        &[-0.2, -0.05, 0.0, 0.25, 1.0, 1.0],
    );
    close(
        &activation(Activation::Normalizer { divisor: 4.0 }),
        &X.map(|x| x / 4.0),
    );
    // Softmax over the features of each sample.
    let s = activation(Activation::Softmax {
        axis: 0,
        epsilon: 1e-7,
    });
    for row in 0..2 {
        let xs = &X[row * 3..row * 3 + 3];
        let z: f64 = xs.iter().map(|x| x.exp()).sum();
        close(
            &s[row * 3..row * 3 + 3],
            &xs.iter().map(|x| x.exp() / z).collect::<Vec<_>>(),
        );
    }
}

/// (per-sample costs, batch mean) of outputs `y` against targets `t`, both [2, 3].
fn cost(c: Cost, y: [f64; 6], t: [f64; 6]) -> (Vec<f64>, f64) {
    let mut g = Graph::new();
    let yn = g.input("y", DType::F64, &[2, 3]).unwrap();
    let tn = g.input("t", DType::F64, &[2, 3]).unwrap();
    let nodes = c.lower(&mut g, yn, tn).unwrap();
    g.set_output("per_sample", nodes.per_sample).unwrap();
    g.set_output("mean", nodes.mean).unwrap();
    let feeds = [
        (
            "y".to_string(),
            Tensor::from_f64(vec![2, 3], y.to_vec()).unwrap(),
        ),
        (
            "t".to_string(),
            Tensor::from_f64(vec![2, 3], t.to_vec()).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let out = interp::run(&g, &feeds).unwrap();
    (out["per_sample"].to_f64_vec(), out["mean"].to_f64_vec()[0])
}

#[test]
fn costs_follow_neons_formulas() {
    let y = [0.7, 0.2, 0.1, 0.3, 0.3, 0.4];
    let t = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    let l = f64::ln;
    let (per, mean) = cost(Cost::CrossEntropyBinary { scale: 1.0 }, y, t);
    let b0 = -(l(0.7) + l(0.8) + l(0.9));
    let b1 = -(l(0.7) + l(0.7) + l(0.4));
    close(&per, &[b0, b1]);
    close(&[mean], &[(b0 + b1) / 2.0]);
    let (per, _) = cost(
        Cost::CrossEntropyMulti {
            scale: 1.0,
            usebits: false,
        },
        y,
        t,
    );
    close(&per, &[-l(0.7), -l(0.4)]);
    let (per, _) = cost(
        Cost::CrossEntropyMulti {
            scale: 1.0,
            usebits: true,
        },
        y,
        t,
    );
    close(&per, &[-l(0.7) / l(2.0), -l(0.4) / l(2.0)]);
    let (per, _) = cost(Cost::SumSquared, y, t);
    close(
        &per,
        &[(0.09 + 0.04 + 0.01) / 2.0, (0.09 + 0.09 + 0.36) / 2.0],
    );
    let (per, _) = cost(Cost::MeanSquared, y, t);
    close(
        &per,
        &[(0.09 + 0.04 + 0.01) / 6.0, (0.09 + 0.09 + 0.36) / 6.0],
    );
    // SmoothL1Loss with sigma 2 (s = 4): 0.5·4·x² where |x| < 0.25, else |x| − 0.125.
    let huber = |x: f64| {
        if x.abs() < 0.25 {
            2.0 * x * x
        } else {
            x.abs() - 0.125
        }
    };
    let (per, _) = cost(Cost::SmoothL1Loss { sigma: 2.0 }, y, t);
    let want: Vec<f64> = (0..2)
        .map(|r| (0..3).map(|c| huber(y[r * 3 + c] - t[r * 3 + c])).sum())
        .collect();
    close(&per, &want);
    // safelog: log 0 is clamped at −50.
    let (per, _) = cost(
        Cost::CrossEntropyMulti {
            scale: 1.0,
            usebits: false,
        },
        [0.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        t,
    );
    close(&per, &[50.0, 50.0]);
}

#[test]
fn precision_recall() {
    // Outputs are the features (Identity); 4 samples, 2 classes.
    let x = vec![0.9, 0.1, 0.6, 0.4, 0.2, 0.8, 0.3, 0.7];
    let data = Dataset::new(x, vec![0, 1, 1, 1], 2, vec![2]).unwrap();
    let mut m = Model::new(
        Sequential::new(vec![ActivationLayer::new(Activation::Identity).into()]),
        &[2],
        0,
    )
    .unwrap();
    let v = m
        .eval(
            &data,
            4,
            &[Metric::PrecisionRecall {
                num_classes: 2,
                binarize: true,
                epsilon: 1e-6,
            }],
        )
        .unwrap();
    // Predicted classes 0, 0, 1, 1. Class 0: TP 1, predicted 2, actual 1. Class 1: TP 2,
    // predicted 2, actual 3.
    let p = (1.0 / (2.0 + 1e-6) + 2.0 / (2.0 + 1e-6)) / 2.0;
    let r = (1.0 / (1.0 + 1e-6) + 2.0 / (3.0 + 1e-6)) / 2.0;
    assert_eq!(v[0].0, "Precision");
    assert_eq!(v[1].0, "Recall");
    assert!(
        (v[0].1 - p).abs() < 1e-6 && (v[1].1 - r).abs() < 1e-6,
        "{v:?}"
    );
    let e = m.eval(
        &data,
        4,
        &[Metric::PrecisionRecall {
            num_classes: 3,
            binarize: true,
            epsilon: 1e-6,
        }],
    );
    assert!(e.unwrap_err().to_string().contains("num_classes is 3"));
}

/// Rectlinclip's derivative is neon's `[x > 0] + slope·[x < 0]` below the clip and 0 at or
/// above it (autodiff on the interpreter, in f64), and matches central differences away
/// from the kinks.
#[test]
fn rectlinclip_gradient_is_neons() {
    let (slope, xcut) = (0.1, 1.0);
    let xs = [-2.0, -0.5, 0.0, 0.25, 0.75, 1.0, 3.0];
    let a = Activation::Rectlinclip { slope, xcut };
    let mut g = Graph::new();
    let x = g.input("x", DType::F64, &[1, xs.len()]).unwrap();
    let y = a.lower(&mut g, x).unwrap();
    let loss = g.sum(y, &[0, 1], false).unwrap();
    let dx = xenon_compiler::autodiff::grad(&mut g, loss, &[x]).unwrap()[0];
    g.set_output("dx", dx).unwrap();
    let run = |g: &Graph, v: &[f64], out: &str| {
        let feeds = [(
            "x".to_string(),
            Tensor::from_f64(vec![1, v.len()], v.to_vec()).unwrap(),
        )]
        .into_iter()
        .collect();
        interp::run(g, &feeds).unwrap()[out].to_f64_vec()
    };
    let got = run(&g, &xs, "dx");
    let want: Vec<f64> = xs
        .iter()
        .map(|&x| {
            let y = (x.max(0.0) + slope * x.min(0.0)).min(xcut);
            let d = if x > 0.0 {
                1.0
            } else if x < 0.0 {
                slope
            } else {
                0.0
            };
            if y < xcut { d } else { 0.0 }
        })
        .collect();
    close(&got, &want);
    let mut fwd = Graph::new();
    let xf = fwd.input("x", DType::F64, &[1, 1]).unwrap();
    let yf = a.lower(&mut fwd, xf).unwrap();
    fwd.set_output("y", yf).unwrap();
    for (&x, &d) in xs.iter().zip(&want) {
        if x == 0.0 || x == xcut {
            continue;
        }
        let h = 1e-6;
        let fd = (run(&fwd, &[x + h], "y")[0] - run(&fwd, &[x - h], "y")[0]) / (2.0 * h);
        assert!((fd - d).abs() < 1e-8, "x = {x}: {fd} vs {d}");
    }
}

/// SmoothL1Loss's gradient is neon's `s·x` inside `|x| < 1/s` and `sign(x)` outside
/// (autodiff in f64), and matches central differences away from the switch points.
#[test]
fn smooth_l1_gradient_is_neons() {
    let sigma: f64 = 1.5;
    let s = sigma * sigma;
    let y = [0.9, 0.2, -0.4, 0.3, 0.75, 0.1];
    let t = [0.0, 0.0, 0.0, 0.3, 0.0, 0.5];
    let mut g = Graph::new();
    let yn = g.input("y", DType::F64, &[2, 3]).unwrap();
    let tn = g.input("t", DType::F64, &[2, 3]).unwrap();
    let c = Cost::SmoothL1Loss { sigma }.lower(&mut g, yn, tn).unwrap();
    let dy = xenon_compiler::autodiff::grad(&mut g, c.objective, &[yn]).unwrap()[0];
    g.set_output("dy", dy).unwrap();
    g.set_output("mean", c.mean).unwrap();
    let run = |y: &[f64]| {
        let feeds = [
            (
                "y".to_string(),
                Tensor::from_f64(vec![2, 3], y.to_vec()).unwrap(),
            ),
            (
                "t".to_string(),
                Tensor::from_f64(vec![2, 3], t.to_vec()).unwrap(),
            ),
        ]
        .into_iter()
        .collect();
        interp::run(&g, &feeds).unwrap()
    };
    let out = run(&y);
    let got = out["dy"].to_f64_vec();
    for i in 0..6 {
        let x = y[i] - t[i];
        // d(batch mean)/dy: the per-element derivative over the batch of 2.
        let d = if x.abs() < 1.0 / s { s * x } else { x.signum() } / 2.0;
        assert!((got[i] - d).abs() < 1e-12, "element {i}: {} vs {d}", got[i]);
        let h = 1e-6;
        let (mut up, mut down) = (y, y);
        up[i] += h;
        down[i] -= h;
        let fd =
            (run(&up)["mean"].to_f64_vec()[0] - run(&down)["mean"].to_f64_vec()[0]) / (2.0 * h);
        assert!((fd - d).abs() < 1e-7, "element {i}: {fd} vs {d}");
    }
}
