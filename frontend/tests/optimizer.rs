//! neon's optimizer formula checks (reference/neon.md §1.6 and §6.2 items 7 and 9), run
//! through the update graph on the interpreter.

use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::optimizer::{GradientDescentMomentum, Optimizer, Schedule, StepConfig};
use xenon_runtime::Tensor;

const F: DType = DType::F64;

/// One optimizer step for a single parameter: returns (θ', state').
fn step(
    opt: &Optimizer,
    lr: f64,
    theta: &[f64],
    grad: &[f64],
    state: &[Vec<f64>],
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = theta.len();
    let mut g = Graph::new();
    let lr_node = g.input("lr", F, &[]).unwrap();
    let p = g.parameter("theta", F, &[n]).unwrap();
    let gr = g.input("grad", F, &[n]).unwrap();
    let states: Vec<_> = opt
        .state_names()
        .iter()
        .map(|s| g.parameter(s, F, &[n]).unwrap())
        .collect();
    let u = opt.update(&mut g, lr_node, &[p], &[gr], &[states]).unwrap();
    g.set_output("theta", u[0].param).unwrap();
    for (i, s) in u[0].state.iter().enumerate() {
        g.set_output(&format!("state{i}"), *s).unwrap();
    }
    let mut feeds: Feeds = [
        (
            "lr".to_string(),
            Tensor::from_f64(vec![], vec![lr]).unwrap(),
        ),
        (
            "theta".to_string(),
            Tensor::from_f64(vec![n], theta.to_vec()).unwrap(),
        ),
        (
            "grad".to_string(),
            Tensor::from_f64(vec![n], grad.to_vec()).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    for (name, v) in opt.state_names().iter().zip(state) {
        feeds.insert(
            name.to_string(),
            Tensor::from_f64(vec![n], v.clone()).unwrap(),
        );
    }
    let out = interp::run(&g, &feeds).unwrap();
    let new_state = (0..u[0].state.len())
        .map(|i| out[&format!("state{i}")].to_f64_vec())
        .collect();
    (out["theta"].to_f64_vec(), new_state)
}

fn gdm(f: impl FnOnce(&mut GradientDescentMomentum)) -> Optimizer {
    let Optimizer::GradientDescentMomentum(mut o) = Optimizer::gdm(0.1, 0.9);
    f(&mut o);
    Optimizer::GradientDescentMomentum(o)
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

/// GDM(lr 0.1, μ 0.9), batch 128, dW = 128·g so g = 1, v = 0: θ' = θ − 0.1, then with the
/// same gradient θ'' = θ' − 0.19.
#[test]
fn momentum_two_steps() {
    let opt = Optimizer::gdm(0.1, 0.9);
    let theta = vec![1.0, -2.0];
    let (t1, s1) = step(&opt, 0.1, &theta, &[1.0, 1.0], &[vec![0.0, 0.0]]);
    close(&t1, &[0.9, -2.1]);
    close(&s1[0], &[-0.1, -0.1]);
    let (t2, s2) = step(&opt, 0.1, &t1, &[1.0, 1.0], &s1);
    close(&t2, &[0.9 - 0.19, -2.1 - 0.19]);
    close(&s2[0], &[-0.19, -0.19]);
}

/// With weight decay λ the gradient becomes g + λθ.
#[test]
fn weight_decay_adds_lambda_theta() {
    let opt = gdm(|o| o.wdecay = 0.01);
    let (t, s) = step(&opt, 0.1, &[2.0], &[1.0], &[vec![0.5]]);
    let v = 0.9 * 0.5 - 0.1 * (1.0 + 0.01 * 2.0);
    close(&s[0], &[v]);
    close(&t, &[2.0 + v]);
}

/// Without momentum: θ ← (1 − lr·wd)·θ − lr·g, and no state.
#[test]
fn plain_sgd_with_weight_decay() {
    let opt = gdm(|o| {
        o.momentum_coef = 0.0;
        o.wdecay = 0.5;
    });
    assert!(opt.state_names().is_empty());
    let (t, _) = step(&opt, 0.1, &[2.0, -1.0], &[1.0, 3.0], &[]);
    close(&t, &[(1.0 - 0.05) * 2.0 - 0.1, -(1.0 - 0.05) - 0.3]);
}

/// Nesterov: θ ← θ + μ·v' − lr·g.
#[test]
fn nesterov() {
    let opt = gdm(|o| o.nesterov = true);
    let (t, s) = step(&opt, 0.1, &[1.0], &[2.0], &[vec![0.3]]);
    let v = 0.9 * 0.3 - 0.1 * 2.0;
    close(&s[0], &[v]);
    close(&t, &[1.0 + 0.9 * v - 0.1 * 2.0]);
    assert!(
        gdm(|o| {
            o.nesterov = true;
            o.momentum_coef = 0.0;
        })
        .validate()
        .is_err()
    );
}

/// Gradient clipping by value and by global norm (never scaling up), and parameter clipping.
#[test]
fn clipping() {
    let sgd = |f: &dyn Fn(&mut GradientDescentMomentum)| {
        gdm(|o| {
            o.momentum_coef = 0.0;
            f(o)
        })
    };
    let (t, _) = step(
        &sgd(&|o| o.gradient_clip_value = Some(0.5)),
        1.0,
        &[0.0, 0.0, 0.0],
        &[2.0, -3.0, 0.25],
        &[],
    );
    close(&t, &[-0.5, 0.5, -0.25]);
    // ‖g‖ = 5 > 1: scaled by 1/5.
    let (t, _) = step(
        &sgd(&|o| o.gradient_clip_norm = Some(1.0)),
        1.0,
        &[0.0, 0.0],
        &[3.0, 4.0],
        &[],
    );
    close(&t, &[-0.6, -0.8]);
    // ‖g‖ = 5 < 10: unchanged.
    let (t, _) = step(
        &sgd(&|o| o.gradient_clip_norm = Some(10.0)),
        1.0,
        &[0.0, 0.0],
        &[3.0, 4.0],
        &[],
    );
    close(&t, &[-3.0, -4.0]);
    let (t, _) = step(
        &sgd(&|o| o.param_clip_value = Some(1.0)),
        1.0,
        &[0.0, 0.0],
        &[3.0, -0.5],
        &[],
    );
    close(&t, &[-1.0, 0.5]);
}

/// neon's schedule docstring table.
#[test]
fn schedules() {
    let s = Schedule::Schedule {
        step_config: Some(StepConfig::Epochs(vec![2, 6])),
        change: 0.5,
    };
    let got: Vec<f64> = (0..10).map(|e| s.rate(1.0, e)).collect();
    assert_eq!(
        got,
        vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    );
    let p = Schedule::PowerSchedule {
        step_config: 2,
        change: 0.5,
    };
    let got: Vec<f64> = (0..5).map(|e| p.rate(0.1, e)).collect();
    close(&got, &[0.1, 0.1, 0.05, 0.05, 0.025]);
    let e = Schedule::ExpSchedule { decay: 0.5 };
    close(&[e.rate(1.0, 2)], &[0.5]);
    let o = gdm(|o| o.schedule = s.clone());
    assert_eq!(o.learning_rate(6), 0.1 * 0.25);
}
