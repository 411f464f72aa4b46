//! The e-graph optimizer against the reference interpreter: random graphs (and their
//! reverse-mode gradients) compute the same values after optimization, rules are
//! type-checked, an explosive rule set stops at its limit, and results and dumps are
//! deterministic.

use std::collections::HashMap;
use std::time::Duration;
use xenon_compiler::autodiff;
use xenon_compiler::interp;
use xenon_compiler::ir::{CompareOp, DType, Graph, Literal, NodeId, Op, ReduceOp, UnaryOp};
use xenon_compiler::opt::{self, OptConfig, Phase, PhaseLimits, dump, rules};
use xenon_runtime::Tensor;

/// A small deterministic PRNG (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

const R: usize = 2;
const C: usize = 3;

/// Random f64 feeds for every input and parameter of `g`, uniform on `[lo, hi)`.
fn feeds(g: &Graph, rng: &mut Rng, lo: f64, hi: f64) -> interp::Feeds {
    g.inputs()
        .into_iter()
        .chain(g.parameters())
        .map(|(name, id)| {
            let t = g.ty(id);
            let data = (0..t.numel()).map(|_| rng.uniform(lo, hi)).collect();
            (name, Tensor::from_f64(t.shape.clone(), data).unwrap())
        })
        .collect()
}

/// Compares every output of `a` and `b` on `feeds`: where `a`'s value is finite, `b`'s is
/// within `tol · max(1, |a|, |b|)`. Returns how many values were compared.
fn compare(a: &Graph, b: &Graph, feeds: &interp::Feeds, tol: f64, what: &str) -> usize {
    let ra = interp::run(a, feeds).unwrap();
    let rb = interp::run(b, feeds).unwrap();
    let mut n = 0;
    for (name, _) in a.outputs() {
        let (x, y) = (ra[name].to_f64_vec(), rb[name].to_f64_vec());
        assert_eq!(x.len(), y.len(), "{what}: output {name}");
        for (i, (&u, &v)) in x.iter().zip(&y).enumerate() {
            if !u.is_finite() {
                continue;
            }
            let scale = 1f64.max(u.abs()).max(v.abs());
            assert!(
                (u - v).abs() <= tol * scale,
                "{what}: output {name}[{i}]: unoptimized {u}, optimized {v}\n--- before\n{a}\n--- after\n{b}"
            );
            n += 1;
        }
    }
    n
}

/// Builds a random graph of `steps` steps over `[2, 3]` f64 tensors from parameters `p0…p3`
/// (so it can be differentiated), using the ops and shapes the rules rewrite.
fn random_graph(rng: &mut Rng, steps: usize) -> Graph {
    let mut g = Graph::new();
    let mut pool: Vec<NodeId> = (0..4)
        .map(|i| g.parameter(&format!("p{i}"), DType::F64, &[R, C]).unwrap())
        .collect();
    let dt = DType::F64;
    for _ in 0..steps {
        let pick = |rng: &mut Rng, pool: &[NodeId]| pool[rng.below(pool.len())];
        let x = pick(rng, &pool);
        let y = pick(rng, &pool);
        let consts = [0.0, 1.0, -1.0, 2.0, 0.5];
        let c = consts[rng.below(consts.len())];
        let node = match rng.below(24) {
            0 => g.neg(x),
            1 => g.exp(x),
            2 => {
                // log of something positive
                let e = g.exp(x).unwrap();
                g.log(e)
            }
            3 => g.tanh(x),
            4 => g.add_(x, y),
            5 => g.sub(x, y),
            6 => g.mul(x, y),
            7 => {
                let k = g.scalar(dt, c).unwrap();
                g.mul(x, k)
            }
            8 => {
                let k = g.full(dt, &[R, C], c).unwrap();
                g.add_(k, x)
            }
            9 => g.sub(x, x),
            10 => {
                let k = g.scalar(dt, if c == 0.0 { 4.0 } else { c }).unwrap();
                g.div(x, k)
            }
            11 => {
                // logistic
                let one = g.scalar(dt, 1.0).unwrap();
                let n = g.neg(x).unwrap();
                let e = g.exp(n).unwrap();
                let d = g.add_(one, e).unwrap();
                g.recip(d)
            }
            12 => {
                let vals: Vec<f64> = (0..R * C).map(|_| rng.below(2) as f64).collect();
                let m = if rng.below(2) == 0 {
                    g.full(dt, &[R, C], rng.below(2) as f64).unwrap()
                } else {
                    g.constant(dt, &[R, C], vals).unwrap()
                };
                g.select(m, x, y)
            }
            13 => {
                let m = g.compare(CompareOp::Ge, x, y).unwrap();
                g.select(m, x, y)
            }
            14 => {
                let r = g.reshape(x, &[C, R]).unwrap();
                let r = g.reshape(r, &[R * C]).unwrap();
                g.reshape(r, &[R, C])
            }
            15 => {
                let t = g.transpose(x).unwrap();
                g.transpose(t)
            }
            16 => {
                let f = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max][rng.below(3)];
                let axis = rng.below(2);
                let keep = rng.below(2) == 0;
                let s = g.reduce(f, x, &[axis], keep).unwrap();
                let s = if keep {
                    s
                } else {
                    let mut shape = vec![R, C];
                    shape[axis] = 1;
                    g.reshape(s, &shape).unwrap()
                };
                g.broadcast_to(s, &[R, C])
            }
            17 => {
                // sum of a product with a factor that is constant along the reduced axis
                let s = g.sum(y, &[1], true).unwrap();
                let b = g.broadcast_to(s, &[R, C]).unwrap();
                let p = if rng.below(2) == 0 {
                    g.mul(x, b).unwrap()
                } else {
                    g.mul(b, x).unwrap()
                };
                let r = g.sum(p, &[1], true).unwrap();
                g.broadcast_to(r, &[R, C])
            }
            18 => {
                // matmul with explicit transposes: (x · yᵀ) · z
                let z = pick(rng, &pool);
                let yt = g.transpose(y).unwrap();
                let m = g.matmul(x, yt, false, false).unwrap();
                let mt = if rng.below(2) == 0 {
                    g.transpose(m).unwrap()
                } else {
                    m
                };
                g.matmul(mt, z, false, false)
            }
            19 => {
                let m = g.matmul(x, y, true, false).unwrap(); // [3, 3]
                let t = g.transpose(m).unwrap();
                g.matmul(x, t, false, false) // [2, 3]
            }
            20 => {
                let one = g.scalar(dt, 1.0).unwrap();
                let n = g.neg(x).unwrap();
                let e = g.exp(n).unwrap();
                let d = g.add_(one, e).unwrap();
                let s = g.recip(d).unwrap();
                let ss = g.mul(s, s).unwrap();
                let gy = g.mul(y, ss).unwrap();
                g.mul(gy, e)
            }
            21 => {
                let b = g.parameter(&format!("b{}", g.len()), dt, &[C]).unwrap();
                let m = g.matmul(x, y, false, true).unwrap(); // [2, 2]
                let m = g.matmul(m, x, false, false).unwrap(); // [2, 3]
                g.add_(m, b)
            }
            22 => {
                let r = g.recip(x).unwrap();
                g.recip(r)
            }
            _ => {
                let n = g.neg(x).unwrap();
                g.neg(n)
            }
        }
        .unwrap();
        pool.push(node);
    }
    let last = *pool.last().unwrap();
    g.set_output("out", last).unwrap();
    let second = pool[pool.len() - 1 - rng.below(pool.len().min(4))];
    g.set_output("other", second).unwrap();
    g
}

/// A fast configuration for the many small random graphs.
fn small_cfg() -> OptConfig {
    OptConfig::default().with_limits(Some(5_000), Some(12), None)
}

#[test]
fn random_graphs_compute_the_same_after_optimization() {
    let cfg = small_cfg();
    let mut compared = 0;
    let mut fired = 0;
    let cases = 1000;
    for case in 0..cases {
        let mut rng = Rng(case);
        let steps = 3 + rng.below(6);
        let g = random_graph(&mut rng, steps);
        let (o, report) = opt::optimize(&g, &cfg).unwrap();
        fired += report.rule_matches.values().sum::<usize>();
        let f = feeds(&g, &mut rng, -1.5, 1.5);
        compared += compare(&g, &o, &f, 1e-9, &format!("case {case}"));
        assert!(
            report.after.ops <= report.before.ops + 2,
            "case {case}: {report}"
        );
    }
    eprintln!("{cases} random graphs, {compared} values compared, {fired} rule applications");
    assert!(compared > cases as usize * 6);
    assert!(fired > cases as usize);
}

#[test]
fn gradients_of_random_graphs_compute_the_same_after_optimization() {
    let cfg = small_cfg();
    let cases = 300;
    for case in 0..cases {
        let mut rng = Rng(10_000 + case);
        let steps = 2 + rng.below(5);
        let g = random_graph(&mut rng, steps);
        let out = g.output("out").unwrap();
        let mut g2 = g.clone();
        let s = g2.sum(out, &[0, 1], false).unwrap();
        g2.set_output("loss", s).unwrap();
        let names: Vec<String> = g2.parameters().into_iter().map(|(n, _)| n).collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let gg = autodiff::with_gradients(&g2, "loss", &refs).unwrap();
        let (o, _) = opt::optimize(&gg, &cfg).unwrap();
        let f = feeds(&gg, &mut rng, -1.5, 1.5);
        compare(&gg, &o, &f, 1e-9, &format!("gradient case {case}"));
    }
}

/// The logistic + binary cross-entropy gradient, as the frontend lowers it.
fn logistic_ce_graph(n: usize, k: usize) -> Graph {
    let dt = DType::F64;
    let mut g = Graph::new();
    let z = g.parameter("z", dt, &[n, k]).unwrap();
    let t = g.input("t", dt, &[n, k]).unwrap();
    let one = g.scalar(dt, 1.0).unwrap();
    let e = g.neg(z).unwrap();
    let e = g.exp(e).unwrap();
    let d = g.add_(one, e).unwrap();
    let y = g.recip(d).unwrap();
    let one = g.scalar(dt, 1.0).unwrap();
    let one_y = g.sub(one, y).unwrap();
    let one_t = g.sub(one, t).unwrap();
    let ly = g.log(y).unwrap();
    let l1y = g.log(one_y).unwrap();
    let a = g.mul(t, ly).unwrap();
    let b = g.mul(one_t, l1y).unwrap();
    let s = g.add_(a, b).unwrap();
    let el = g.neg(s).unwrap();
    let per = g.sum(el, &[1], false).unwrap();
    let mean = g.mean(per, &[0], false).unwrap();
    g.set_output("loss", mean).unwrap();
    g.set_output("y", y).unwrap();
    autodiff::with_gradients(&g, "loss", &["z"]).unwrap()
}

#[test]
fn logistic_binary_cross_entropy_gradient_becomes_y_minus_t() {
    let g = logistic_ce_graph(4, 3);
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    // grad/z = c · (y − t) with c = 1/4: a mul of a constant and sub(recip…, t).
    let gz = o.output("grad/z").unwrap();
    let Op::Binary { .. } = o.node(gz).op else {
        panic!("{o}");
    };
    let ops = o.operands(gz);
    let c = &o.node(ops[0]).op;
    assert!(
        matches!(c, Op::Constant { value } if value.as_splat() == Some(0.25)),
        "{o}"
    );
    let sub = &o.node(ops[1]);
    assert_eq!(sub.op.name(), "sub", "{o}");
    let st = o.operands(ops[1]);
    assert_eq!(st[0], o.output("y").unwrap(), "{o}");
    assert_eq!(st[1], o.find_leaf("t").unwrap(), "{o}");
    // The gradient reaches no exp, log, division or reciprocal except through y.
    let y = o.output("y").unwrap();
    let mut stack = vec![gz];
    while let Some(n) = stack.pop() {
        if n == y {
            continue;
        }
        let name = o.node(n).op.name();
        assert!(
            !["exp", "log", "div", "recip"].contains(&name.as_str()),
            "{o}"
        );
        stack.extend(o.operands(n));
    }
    assert!(
        report
            .rule_matches
            .contains_key("complementary-cross-terms")
    );
    // And it is the same value.
    let mut rng = Rng(7);
    let f = feeds(&g, &mut rng, -3.0, 3.0);
    compare(&g, &o, &f, 1e-12, "logistic CE");
}

#[test]
fn right_hand_sides_that_do_not_type_check_are_rejected() {
    let mut g = Graph::new();
    let a = g.parameter("a", DType::F64, &[2, 3]).unwrap();
    let b = g.parameter("b", DType::F64, &[3, 2]).unwrap();
    let m = g.matmul(a, b, false, false).unwrap();
    let r = g.reshape(a, &[3, 2]).unwrap();
    g.set_output("m", m).unwrap();
    g.set_output("r", r).unwrap();
    let bad = rules::rw("matmul-is-mul", "(matmul ?a ?b ?f)", "(mul ?a ?b)");
    let phases = vec![Phase {
        name: "bad".into(),
        rules: vec![bad, rules::rw("reshape-id", "(reshape ?x ?s)", "?x")],
        limits: OptConfig::default().simplify,
    }];
    let (o, report) = opt::optimize_with(&g, &OptConfig::default(), &phases).unwrap();
    assert_eq!(report.rejected["matmul-is-mul"], 1);
    assert_eq!(report.rejected["reshape-id"], 1);
    assert!(report.rule_matches.is_empty());
    assert_eq!(o.node(o.output("m").unwrap()).op.name(), "matmul");
    assert_eq!(o.node(o.output("r").unwrap()).op.name(), "reshape");
}

#[test]
fn an_explosive_rule_set_stops_at_its_node_limit() {
    // A sum of 12 terms under associativity and commutativity: 2^12 subsets of terms.
    let mut g = Graph::new();
    let xs: Vec<NodeId> = (0..12)
        .map(|i| g.parameter(&format!("x{i}"), DType::F64, &[2]).unwrap())
        .collect();
    let mut s = xs[0];
    for &x in &xs[1..] {
        s = g.add_(s, x).unwrap();
    }
    g.set_output("s", s).unwrap();
    let limits = PhaseLimits {
        iter_limit: 1000,
        node_limit: 5_000,
        time_limit: Duration::from_secs(600),
    };
    let phases = vec![Phase {
        name: "explosive".into(),
        rules: rules::explosive(),
        limits,
    }];
    // Without the growth bound, the phase's node limit stops it.
    let unbounded = OptConfig {
        growth_floor: usize::MAX,
        ..OptConfig::default()
    };
    let (o, report) = opt::optimize_with(&g, &unbounded, &phases).unwrap();
    let p = &report.phases[0];
    assert!(p.stop_reason.starts_with("node limit"), "{report}");
    assert!(p.egraph_nodes > 5_000, "{report}");
    let unbounded_iterations = p.iterations.len();
    let mut rng = Rng(3);
    let f = feeds(&g, &mut rng, -1.0, 1.0);
    compare(&g, &o, &f, 1e-9, "explosive");
    // By default a phase stops once it has added 2,000 e-nodes to a small e-graph: before
    // the last iteration the e-graph was under that bound, and the run is shorter.
    let (o, report) = opt::optimize_with(&g, &OptConfig::default(), &phases).unwrap();
    let p = &report.phases[0];
    assert!(p.stop_reason.starts_with("node limit"), "{report}");
    let sizes: Vec<usize> = p.iterations.iter().map(|i| i.egraph_nodes).collect();
    assert!(sizes[0] < 100 && sizes[sizes.len() - 1] < 2_100, "{report}");
    assert!(p.egraph_nodes > 2_000, "{report}");
    assert!(p.iterations.len() < unbounded_iterations, "{report}");
    compare(&g, &o, &f, 1e-9, "explosive, bounded growth");
}

#[test]
fn optimization_and_dumps_are_deterministic() {
    let g = logistic_ce_graph(8, 5);
    let cfg = OptConfig::default();
    let (a, ra) = opt::optimize(&g, &cfg).unwrap();
    let (b, rb) = opt::optimize(&g, &cfg).unwrap();
    assert_eq!(a, b);
    let (ra, rb) = (ra.without_timings(), rb.without_timings());
    assert_eq!(ra, rb);
    assert_eq!(dump::to_text(&a, Some(&ra)), dump::to_text(&b, Some(&rb)));
    assert_eq!(dump::to_dot(&a, Some(&ra)), dump::to_dot(&b, Some(&rb)));
    let ja = serde_json::to_string(&dump::to_json(&a, "optimized", Some(&ra))).unwrap();
    let jb = serde_json::to_string(&dump::to_json(&b, "optimized", Some(&rb))).unwrap();
    assert_eq!(ja, jb);
    assert!(!ja.contains("seconds"));
    // The JSON lists every node.
    let v: serde_json::Value = serde_json::from_str(&ja).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), a.len());
    assert_eq!(v["report"]["after"]["ops"], ra.after.ops);
}

#[test]
fn constant_folding_uses_the_interpreters_arithmetic() {
    // f32: 0.1 + 0.2 folds to the f32 sum, exactly as the interpreter computes it.
    let mut g = Graph::new();
    let a = g.scalar(DType::F32, 0.1).unwrap();
    let b = g.scalar(DType::F32, 0.2).unwrap();
    let s = g.add_(a, b).unwrap();
    let e = g.unary(UnaryOp::Exp, s).unwrap();
    let x = g.input("x", DType::F32, &[3]).unwrap();
    let y = g.mul(x, e).unwrap();
    g.set_output("y", y).unwrap();
    let (o, _) = opt::optimize(&g, &OptConfig::default()).unwrap();
    assert_eq!(o.len(), 3, "{o}"); // x, the folded constant, mul
    let f: interp::Feeds = [(
        "x".to_string(),
        Tensor::from_f64_as(DType::F32, vec![3], &[1.0, -2.0, 3.5]).unwrap(),
    )]
    .into_iter()
    .collect();
    let ra = interp::run(&g, &f).unwrap();
    let rb = interp::run(&o, &f).unwrap();
    assert_eq!(ra["y"], rb["y"]);
}

#[test]
fn outputs_inputs_parameters_and_scopes_survive() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F64, &[2, 3]).unwrap();
    let unused = g.parameter("unused", DType::F64, &[1]).unwrap();
    let _ = unused;
    let y = g
        .in_scope("layer", |g| {
            let n = g.neg(x)?;
            let n = g.neg(n)?;
            g.tanh(n)
        })
        .unwrap();
    g.set_output("y", y).unwrap();
    g.set_output("x_again", x).unwrap();
    let (o, _) = opt::optimize(&g, &OptConfig::default()).unwrap();
    let names: HashMap<String, NodeId> = o.inputs().into_iter().chain(o.parameters()).collect();
    assert!(names.contains_key("x") && names.contains_key("unused"));
    let y = o.output("y").unwrap();
    assert_eq!(o.node(y).op.name(), "tanh");
    assert_eq!(o.node(y).scope, "layer");
    assert_eq!(o.output("x_again"), Some(names["x"]));
}

#[test]
fn softmax_multiclass_cross_entropy_gradient_has_no_exp_log_or_division() {
    let dt = DType::F64;
    let (n, k) = (4, 3);
    let mut g = Graph::new();
    let x = g.parameter("z", dt, &[n, k]).unwrap();
    let t = g.input("t", dt, &[n, k]).unwrap();
    let m = g.reduce_max(x, &[1], true).unwrap();
    let z = g.sub(x, m).unwrap();
    let e = g.exp(z).unwrap();
    let s = g.sum(e, &[1], true).unwrap();
    let y = g.div(e, s).unwrap();
    let ly = g.log(y).unwrap();
    let a = g.mul(t, ly).unwrap();
    let l = g.scalar(dt, -1.0).unwrap();
    let el = g.mul(a, l).unwrap();
    let per = g.sum(el, &[1], false).unwrap();
    let mean = g.mean(per, &[0], false).unwrap();
    g.set_output("loss", mean).unwrap();
    g.set_output("y", y).unwrap();
    let g = autodiff::with_gradients(&g, "loss", &["z"]).unwrap();
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    let y = o.output("y").unwrap();
    let mut stack = vec![o.output("grad/z").unwrap()];
    let mut saw_y = false;
    while let Some(node) = stack.pop() {
        if node == y {
            saw_y = true;
            continue;
        }
        let name = o.node(node).op.name();
        assert!(
            !["exp", "log", "div", "recip", "reduce_max", "eq"].contains(&name.as_str()),
            "{name} on the gradient path:\n{o}"
        );
        stack.extend(o.operands(node));
    }
    assert!(saw_y, "{o}");
    assert!(
        report.phases.iter().all(|p| p.stop_reason == "saturated"),
        "{report}"
    );
    let mut rng = Rng(11);
    let f = feeds(&g, &mut rng, -3.0, 3.0);
    compare(&g, &o, &f, 1e-12, "softmax CE");
}

#[test]
fn a_cross_entropy_of_a_softmax_takes_one_log_per_row() {
    // Σ t·log(max(softmax(z), ε)) over [4, 5] (neon's CrossEntropyMulti), and the same
    // without the floor: the logs are of the 4 row sums, not of the 20 probabilities.
    let dt = DType::F64;
    let (n, k) = (4, 5);
    for floor in [true, false] {
        let mut g = Graph::new();
        let x = g.parameter("z", dt, &[n, k]).unwrap();
        let t = g.input("t", dt, &[n, k]).unwrap();
        let m = g.reduce_max(x, &[1], true).unwrap();
        let m = g.broadcast_to(m, &[n, k]).unwrap();
        let z = g.sub(x, m).unwrap();
        let e = g.exp(z).unwrap();
        let s = g.sum(e, &[1], true).unwrap();
        let s = g.broadcast_to(s, &[n, k]).unwrap();
        let y = g.div(e, s).unwrap();
        let y = match floor {
            true => {
                let eps = g.full(dt, &[n, k], 1e-7).unwrap();
                g.max(y, eps).unwrap()
            }
            false => y,
        };
        let ly = g.log(y).unwrap();
        let a = g.mul(t, ly).unwrap();
        let loss = g.sum(a, &[0, 1], false).unwrap();
        g.set_output("loss", loss).unwrap();
        let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
        let rule = if floor {
            "log-softmax-floor"
        } else {
            "log-softmax"
        };
        assert!(report.rule_matches.contains_key(rule), "{report}");
        for id in o.ids() {
            if o.node(id).op.name() == "log" {
                assert_eq!(o.ty(id).numel(), n, "{o}");
            }
        }
        let mut rng = Rng(31);
        let f = feeds(&g, &mut rng, -20.0, 20.0);
        compare(&g, &o, &f, 1e-12, rule);
    }
}

#[test]
fn an_embedding_and_its_dense_layer_multiply_the_table_once() {
    // ids [4, 6] → gather from E [5, 3] → [24, 3] → · Wᵀ (W [7, 3]) → tanh → sum; the
    // gradients of E and W. The optimizer multiplies the 5 table rows instead of the 24
    // gathered ones, forward and backward.
    let dt = DType::F64;
    let (v, d, n) = (5, 3, 7);
    let mut g = Graph::new();
    let x = g.input("ids", dt, &[4, 6]).unwrap();
    let e = g.parameter("E", dt, &[v, d]).unwrap();
    let w = g.parameter("W", dt, &[n, d]).unwrap();
    let ids = g.cast(x, DType::I32).unwrap();
    let rows = g.gather(e, ids).unwrap();
    let flat = g.reshape(rows, &[24, d]).unwrap();
    let z = g.matmul(flat, w, false, true).unwrap();
    let y = g.tanh(z).unwrap();
    let loss = g.sum(y, &[0, 1], false).unwrap();
    g.set_output("loss", loss).unwrap();
    let g = autodiff::with_gradients(&g, "loss", &["E", "W"]).unwrap();
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    for rule in [
        "reshape-of-gather",
        "gather-then-matmul",
        "scatter-of-reshape",
        "scatter-of-matmul",
    ] {
        assert!(report.rule_matches.contains_key(rule), "{rule}: {report}");
    }
    assert!(
        report.rule_matches.contains_key("matmul-of-gather-a")
            || report.rule_matches.contains_key("matmul-of-gather-b"),
        "{report}"
    );
    // No product reads the 24 gathered rows of width d, or writes the 24 rows of width d
    // that scatter back: every product has depth or rows 5 (the table) or is Z's.
    for id in o.ids() {
        if let Op::MatMul { .. } = o.node(id).op {
            let shapes: Vec<Vec<usize>> = o
                .operands(id)
                .iter()
                .map(|&a| o.ty(a).shape.clone())
                .collect();
            assert!(!shapes.contains(&vec![24, d]), "{shapes:?}\n{o}");
            assert_ne!(o.ty(id).shape, vec![24, d], "{o}");
        }
    }
    assert!(report.after.flops < report.before.flops, "{report}");
    // The same values, with ids that repeat (so the scatter sums rows).
    let mut rng = Rng(21);
    let mut f = feeds(&g, &mut rng, -1.0, 1.0);
    let ids: Vec<f64> = (0..24).map(|i| ((i * 7 + 3) % v) as f64).collect();
    f.insert("ids".into(), Tensor::from_f64(vec![4, 6], ids).unwrap());
    assert!(compare(&g, &o, &f, 1e-12, "embedding") > v * d + n * d);
}

#[test]
fn one_hot_rows_times_a_matrix_are_its_gathered_rows() {
    // ids [4, 6] → one-hot rows (gathered from the 5×5 identity) → [24, 5] → · Wᵀ
    // (W [7, 5]) → tanh → sum, and W's gradient: the forward pass becomes a gather of Wᵀ's
    // rows and the gradient a scatter of Z's gradient rows; no product is left.
    let dt = DType::F64;
    let (v, n) = (5, 7);
    let mut g = Graph::new();
    let x = g.input("ids", dt, &[4, 6]).unwrap();
    let eye = g
        .constant(dt, &[v, v], Literal::identity(v).values)
        .unwrap();
    let w = g.parameter("W", dt, &[n, v]).unwrap();
    let ids = g.cast(x, DType::I32).unwrap();
    let onehot = g.gather(eye, ids).unwrap();
    let flat = g.reshape(onehot, &[24, v]).unwrap();
    let z = g.matmul(flat, w, false, true).unwrap();
    let y = g.tanh(z).unwrap();
    let loss = g.sum(y, &[0, 1], false).unwrap();
    g.set_output("loss", loss).unwrap();
    let g = autodiff::with_gradients(&g, "loss", &["W"]).unwrap();
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    for rule in ["matmul-identity-a", "matmul-identity-b"] {
        assert!(report.rule_matches.contains_key(rule), "{rule}: {report}");
    }
    for id in o.ids() {
        assert!(!matches!(o.node(id).op, Op::MatMul { .. }), "{o}");
    }
    let mut rng = Rng(23);
    let mut f = feeds(&g, &mut rng, -1.0, 1.0);
    let ids: Vec<f64> = (0..24).map(|i| ((i * 3 + 1) % v) as f64).collect();
    f.insert("ids".into(), Tensor::from_f64(vec![4, 6], ids).unwrap());
    assert!(compare(&g, &o, &f, 1e-12, "one-hot") > n * v);
}

#[test]
fn a_product_with_zeros_is_zeros() {
    // A recurrent step from a zero state: x + 0·Wᵀ is x, and no product is left.
    let dt = DType::F64;
    let mut g = Graph::new();
    let x = g.parameter("x", dt, &[3, 4]).unwrap();
    let w = g.parameter("W", dt, &[4, 2]).unwrap();
    let h0 = g.full(dt, &[3, 2], 0.0).unwrap();
    let hw = g.matmul(h0, w, false, true).unwrap();
    let z = g.add_(x, hw).unwrap();
    g.set_output("z", z).unwrap();
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    assert!(report.rule_matches.contains_key("matmul-0"), "{report}");
    assert_eq!(o.output("z"), o.find_leaf("x"), "{o}");
}

#[test]
fn a_product_with_a_matrix_that_is_not_the_identity_stays() {
    // A permutation matrix is no identity: the product is kept.
    let dt = DType::F64;
    let mut g = Graph::new();
    let p = g.constant(dt, &[2, 2], vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    let a = g.parameter("A", dt, &[3, 2]).unwrap();
    let z = g.matmul(a, p, false, false).unwrap();
    g.set_output("z", z).unwrap();
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    assert!(
        !report.rule_matches.contains_key("matmul-identity-b"),
        "{report}"
    );
    let z = o.output("z").unwrap();
    assert!(matches!(o.node(z).op, Op::MatMul { .. }), "{o}");
}

#[test]
fn a_table_larger_than_its_lookups_is_not_multiplied_whole() {
    // 40 rows, 6 lookups: the gathered product is the cheaper one and stays.
    let dt = DType::F64;
    let mut g = Graph::new();
    let x = g.input("ids", dt, &[6]).unwrap();
    let e = g.parameter("E", dt, &[40, 3]).unwrap();
    let w = g.parameter("W", dt, &[2, 3]).unwrap();
    let ids = g.cast(x, DType::I32).unwrap();
    let rows = g.gather(e, ids).unwrap();
    let z = g.matmul(rows, w, false, true).unwrap();
    g.set_output("z", z).unwrap();
    let (o, report) = opt::optimize(&g, &OptConfig::default()).unwrap();
    assert!(
        !report.rule_matches.contains_key("gather-then-matmul"),
        "{report}"
    );
    let z = o.output("z").unwrap();
    assert!(matches!(o.node(z).op, Op::MatMul { .. }), "{o}");
}
