//! neon's optimizer formula checks (reference/neon.md §1.6 and §6.2 items 7 and 9), run
//! through the update graph on the interpreter.

use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph};
use xenon_frontend::optimizer::{
    Adadelta, Adagrad, Adam, Change, GradientDescentMomentum, MultiOptimizer, Optimizer,
    OptimizerError, RmsProp, Schedule, StepConfig,
};
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
    let Optimizer::GradientDescentMomentum(mut o) = Optimizer::gdm(0.1, 0.9) else {
        unreachable!("gdm() is GradientDescentMomentum")
    };
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

/// neon's schedule docstring table, and the other schedules.
#[test]
fn schedules() {
    let s = Schedule::Schedule {
        step_config: Some(StepConfig::Epochs(vec![2, 6])),
        change: Change::Factor(0.5),
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
    // StepSchedule (and Schedule with two lists): absolute, sticky rates.
    let st = Schedule::StepSchedule {
        step_config: vec![1, 3],
        change: vec![0.5, 0.01],
    };
    let both = Schedule::Schedule {
        step_config: Some(StepConfig::Epochs(vec![1, 3])),
        change: Change::Rates(vec![0.5, 0.01]),
    };
    for sch in [&st, &both] {
        let got: Vec<f64> = (0..5).map(|e| sch.rate(1.0, e)).collect();
        assert_eq!(got, vec![1.0, 0.5, 0.5, 0.01, 0.01]);
    }
    // PolySchedule: lr0·(1 − epoch/T)^power, 0 from T on.
    let poly = Schedule::PolySchedule {
        total_epochs: 4,
        power: 2.0,
    };
    let got: Vec<f64> = (0..6).map(|e| poly.rate(1.0, e)).collect();
    close(&got, &[1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]);
    // ShiftSchedule: halved shift_size times every interval epochs.
    let shift = Schedule::ShiftSchedule {
        interval: 2,
        shift_size: 1,
    };
    let got: Vec<f64> = (0..6).map(|e| shift.rate(0.5, e)).collect();
    assert_eq!(got, vec![0.5, 0.5, 0.25, 0.25, 0.125, 0.125]);
    // Bad configurations are errors naming the schedule.
    let bad = Schedule::StepSchedule {
        step_config: vec![1, 3],
        change: vec![0.5],
    };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("StepSchedule") && e.contains("2 epochs"), "{e}");
    let bad = Schedule::Schedule {
        step_config: Some(StepConfig::Epochs(vec![3, 1])),
        change: Change::Factor(0.5),
    };
    assert!(bad.validate().is_err());
    let o = gdm(|o| o.schedule = bad.clone());
    assert!(matches!(o.validate(), Err(OptimizerError::Schedule(_))));
}

const THETA: [f64; 3] = [1.0, -2.0, 0.5];
const GRAD: [f64; 3] = [0.5, -1.0, 2.0];

/// RMSProp (defaults ρ 0.95, lr 0.002, ε 1e-6): r ← ρr + (1 − ρ)g²,
/// θ ← θ − lr·g/(√(r + ε) + ε); two steps with the same gradient.
#[test]
fn rmsprop_two_steps() {
    let o = RmsProp::default();
    let (rho, lr, eps) = (o.decay_rate, o.learning_rate, o.epsilon);
    assert_eq!((rho, lr, eps), (0.95, 2e-3, 1e-6));
    let opt = Optimizer::RmsProp(o);
    let (t1, s1) = step(&opt, lr, &THETA, &GRAD, &[vec![0.0; 3]]);
    let (t2, s2) = step(&opt, lr, &t1, &GRAD, &s1);
    for i in 0..3 {
        let g = GRAD[i];
        let r1 = (1.0 - rho) * g * g;
        let w1 = THETA[i] - lr * g / ((r1 + eps).sqrt() + eps);
        let r2 = rho * r1 + (1.0 - rho) * g * g;
        let w2 = w1 - lr * g / ((r2 + eps).sqrt() + eps);
        close(&[t1[i], s1[0][i], t2[i], s2[0][i]], &[w1, r1, w2, r2]);
        // The first step is lr·sign(g)/√(1 − ρ) (up to ε).
        let approx = THETA[i] - lr * g.signum() / (1.0f64 - rho).sqrt();
        assert!((t1[i] - approx).abs() < 1e-6, "{} vs {approx}", t1[i]);
    }
}

/// Adagrad (lr 0.01, ε 1e-6): r ← r + g², θ ← θ − lr·g/√(r + ε): about lr·sign(g), then
/// lr·sign(g)/√2.
#[test]
fn adagrad_two_steps() {
    let o = Adagrad::default();
    let (lr, eps) = (o.learning_rate, o.epsilon);
    assert_eq!((lr, eps), (0.01, 1e-6));
    let opt = Optimizer::Adagrad(o);
    let (t1, s1) = step(&opt, lr, &THETA, &GRAD, &[vec![0.0; 3]]);
    let (t2, s2) = step(&opt, lr, &t1, &GRAD, &s1);
    for i in 0..3 {
        let g = GRAD[i];
        let w1 = THETA[i] - lr * g / (g * g + eps).sqrt();
        let w2 = w1 - lr * g / (2.0 * g * g + eps).sqrt();
        close(
            &[t1[i], s1[0][i], t2[i], s2[0][i]],
            &[w1, g * g, w2, 2.0 * g * g],
        );
        assert!((w1 - (THETA[i] - lr * g.signum())).abs() < 1e-7);
    }
}

/// Adadelta (ρ 0.95, ε 1e-6, no learning rate): E_g ← ρE_g + (1 − ρ)g²,
/// Δ = √((E_x + ε)/(E_g + ε))·g, E_x ← ρE_x + (1 − ρ)Δ², θ ← θ − Δ.
#[test]
fn adadelta_two_steps() {
    let o = Adadelta::default();
    let (rho, eps) = (o.decay, o.epsilon);
    let opt = Optimizer::Adadelta(o);
    assert_eq!(opt.state_names(), &["grad_avg", "step_avg"]);
    let (mut theta, mut st) = (THETA.to_vec(), vec![vec![0.0; 3], vec![0.0; 3]]);
    let (mut eg, mut ex, mut want) = (vec![0.0; 3], vec![0.0; 3], THETA.to_vec());
    for _ in 0..2 {
        // The learning-rate input is ignored.
        (theta, st) = step(&opt, 123.0, &theta, &GRAD, &st);
        for i in 0..3 {
            eg[i] = rho * eg[i] + (1.0 - rho) * GRAD[i] * GRAD[i];
            let d = ((ex[i] + eps) / (eg[i] + eps)).sqrt() * GRAD[i];
            ex[i] = rho * ex[i] + (1.0 - rho) * d * d;
            want[i] -= d;
        }
        close(&theta, &want);
        close(&st[0], &eg);
        close(&st[1], &ex);
    }
}

/// Adam (lr 0.001, β₁ 0.9, β₂ 0.999, ε 1e-8): the host feeds l_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ);
/// the first step is about lr·sign(g) (neon.md §6.2 item 7).
#[test]
fn adam_two_steps() {
    let o = Adam::default();
    let (lr, b1, b2, eps) = (o.learning_rate, o.beta_1, o.beta_2, o.epsilon);
    assert_eq!((lr, b1, b2, eps), (1e-3, 0.9, 0.999, 1e-8));
    let opt = Optimizer::Adam(o.clone());
    let l1 = o.step_rate(1);
    close(&[l1], &[lr * (1.0f64 - b2).sqrt() / (1.0 - b1)]);
    assert_eq!(opt.learning_rates(0, 1), vec![("lr".to_string(), l1)]);
    let (t1, s1) = step(&opt, l1, &THETA, &GRAD, &[vec![0.0; 3], vec![0.0; 3]]);
    for i in 0..3 {
        assert!(
            (t1[i] - (THETA[i] - lr * GRAD[i].signum())).abs() < 1e-9,
            "{} vs θ − lr·sign(g)",
            t1[i]
        );
    }
    let l2 = o.step_rate(2);
    let (t2, s2) = step(&opt, l2, &t1, &GRAD, &s1);
    for i in 0..3 {
        let g = GRAD[i];
        let (m1, v1) = ((1.0 - b1) * g, (1.0 - b2) * g * g);
        let (m2, v2) = (b1 * m1 + (1.0 - b1) * g, b2 * v1 + (1.0 - b2) * g * g);
        let w1 = THETA[i] - l1 * m1 / (v1.sqrt() + eps);
        let w2 = w1 - l2 * m2 / (v2.sqrt() + eps);
        close(&[t1[i], s1[0][i], s1[1][i]], &[w1, m1, v1]);
        close(&[t2[i], s2[0][i], s2[1][i]], &[w2, m2, v2]);
    }
}

/// neon's defaults apply to omitted arguments; unknown ones and stochastic rounding are
/// errors.
#[test]
fn model_file_forms_and_bad_arguments() {
    let parse = |yaml: &str| serde_saphyr::from_str::<Optimizer>(yaml);
    let o = parse("type: RMSProp\nconfig: {learning_rate: 0.01}").unwrap();
    let Optimizer::RmsProp(r) = &o else {
        panic!("{o:?}")
    };
    assert_eq!((r.learning_rate, r.decay_rate), (0.01, 0.95));
    assert_eq!(
        parse("type: Adam\nconfig: {}").unwrap(),
        Optimizer::Adam(Adam::default())
    );
    let e = parse("type: Adam\nconfig: {beta1: 0.5}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("beta1") && e.contains("beta_1"), "{e}");
    let e = parse("type: Adamax\nconfig: {}").unwrap_err().to_string();
    assert!(e.contains("Adamax"), "{e}");
    let rounding = Optimizer::Adagrad(Adagrad {
        stochastic_round: true,
        ..Adagrad::default()
    });
    assert_eq!(
        rounding.validate(),
        Err(OptimizerError::StochasticRound("Adagrad"))
    );
    let bad = Optimizer::Adam(Adam {
        beta_2: 1.0,
        ..Adam::default()
    });
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("Adam") && e.contains("beta_2"), "{e}");
}

/// MultiOptimizer: the layer's name, else its class, else `default`; each entry has its own
/// learning-rate input.
#[test]
fn multi_optimizer_resolution() {
    let rms = Optimizer::RmsProp(RmsProp::default());
    let fast = Optimizer::RmsProp(RmsProp {
        learning_rate: 0.5,
        ..RmsProp::default()
    });
    let multi = Optimizer::MultiOptimizer(MultiOptimizer {
        optimizer_mapping: [
            ("default".to_string(), Optimizer::gdm(0.1, 0.9)),
            ("special_linear".to_string(), rms.clone()),
            ("Bias".to_string(), fast.clone()),
            ("Linear".to_string(), Optimizer::Adam(Adam::default())),
        ]
        .into(),
        name: None,
    });
    multi.validate().unwrap();
    let assign = |layer, class| multi.assign(layer, class).map(|(k, o)| (k, o.clone()));
    assert_eq!(
        assign("special_linear", "Linear"),
        Some(("lr/special_linear".into(), rms.clone()))
    );
    assert_eq!(assign("Bias_3", "Bias"), Some(("lr/Bias".into(), fast)));
    assert_eq!(
        assign("Linear_0", "Linear"),
        Some(("lr/Linear".into(), Optimizer::Adam(Adam::default())))
    );
    assert_eq!(
        assign("Activation_1", "Activation"),
        Some(("lr".into(), Optimizer::gdm(0.1, 0.9)))
    );
    let lrs = multi.learning_rates(0, 1);
    let names: Vec<&str> = lrs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["lr/Bias", "lr/Linear", "lr", "lr/special_linear"]);
    assert_eq!(lrs[0].1, 0.5);
    // `default` is required, and entries are not MultiOptimizers themselves.
    let Optimizer::MultiOptimizer(m) = &multi else {
        unreachable!()
    };
    let mut no_default = m.clone();
    no_default.optimizer_mapping.remove("default");
    let e = Optimizer::MultiOptimizer(no_default)
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("no 'default'"), "{e}");
    let mut nested = m.clone();
    nested
        .optimizer_mapping
        .insert("Bias".into(), multi.clone());
    assert_eq!(
        Optimizer::MultiOptimizer(nested).validate(),
        Err(OptimizerError::Nested("Bias".into()))
    );
}
