//! Backend parity: every primitive op and every kernel family run on a backend and on the
//! reference interpreter, on random inputs, compared with stated tolerances. The cases are
//! written once and instantiated per backend (`backend_cases!`).

use std::collections::HashMap;
use xenon_compiler::backend::{Backend, Cpu};
use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{
    BinaryOp, CompareOp, DType, Graph, GraphError, NodeId, ReduceOp, UnaryOp, Window,
};
use xenon_runtime::cpu::gemm::Isa;
use xenon_runtime::{Tensor, rng};

/// Random data for an input of type `dtype[shape]`: floats in ±[0.25, 2) (away from zero),
/// positive when `positive`; i32 in `0..rows` for index inputs.
fn data(seed: u64, dtype: DType, shape: &[usize], positive: bool, rows: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n as u64)
        .map(|i| {
            if dtype == DType::I32 {
                return (rng::bits(seed, 5, i) % rows as u64) as f64;
            }
            let m = 0.25 + 1.75 * rng::uniform_f64(seed, 3, i);
            if positive || rng::bits(seed, 4, i) & 1 == 0 {
                m
            } else {
                -m
            }
        })
        .collect();
    Tensor::from_f64_as(dtype, shape.to_vec(), &v).unwrap()
}

/// Builds a case's graph from its input nodes, returning the outputs.
type Build = Box<dyn Fn(&mut Graph, &[NodeId]) -> Result<Vec<NodeId>, GraphError>>;

/// One parity case: inputs `(name, dtype, shape, positive)`, a builder, and the relative
/// tolerance (0 = bit-identical).
struct Case {
    name: &'static str,
    inputs: Vec<(&'static str, DType, Vec<usize>, bool)>,
    build: Build,
    tolerance: f64,
}

fn case(
    name: &'static str,
    inputs: Vec<(&'static str, DType, Vec<usize>, bool)>,
    tolerance: f64,
    build: impl Fn(&mut Graph, &[NodeId]) -> Result<Vec<NodeId>, GraphError> + 'static,
) -> Case {
    Case {
        name,
        inputs,
        build: Box::new(build),
        tolerance,
    }
}

/// Every case, in `dt` (f32 or f64).
fn cases(dt: DType) -> Vec<Case> {
    let f = |n: &'static str, s: &[usize]| (n, dt, s.to_vec(), false);
    let pos = |n: &'static str, s: &[usize]| (n, dt, s.to_vec(), true);
    let mut v = Vec::new();
    for func in UnaryOp::ALL {
        let positive = matches!(func, UnaryOp::Log | UnaryOp::Sqrt);
        let tol = if matches!(func, UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh) {
            1e-5
        } else {
            0.0
        };
        v.push(case(
            func.name(),
            vec![(f("x", &[3, 5]).0, dt, vec![3, 5], positive)],
            tol,
            move |g, p| Ok(vec![g.unary(func, p[0])?]),
        ));
    }
    for func in BinaryOp::ALL {
        v.push(case(
            func.name(),
            vec![f("a", &[4, 3]), f("b", &[4, 3])],
            0.0,
            move |g, p| Ok(vec![g.binary(func, p[0], p[1])?]),
        ));
        v.push(case(
            "broadcast row",
            vec![f("a", &[4, 3]), f("b", &[3])],
            0.0,
            move |g, p| Ok(vec![g.binary(func, p[0], p[1])?]),
        ));
        v.push(case(
            "broadcast column",
            vec![f("a", &[4, 3]), f("b", &[4, 1])],
            0.0,
            move |g, p| Ok(vec![g.binary(func, p[0], p[1])?]),
        ));
    }
    for func in CompareOp::ALL {
        v.push(case(
            func.name(),
            vec![f("a", &[2, 6]), f("b", &[2, 6])],
            0.0,
            move |g, p| {
                let m = g.compare(func, p[0], p[1])?;
                // Ties: compare a value with itself too.
                let t = g.compare(func, p[0], p[0])?;
                Ok(vec![m, t])
            },
        ));
    }
    v.push(case(
        "select",
        vec![f("c", &[3, 4]), f("a", &[3, 4]), f("b", &[3, 4])],
        0.0,
        |g, p| {
            let z = g.scalar(g.ty(p[0]).dtype, 0.0)?;
            let c = g.compare(CompareOp::Gt, p[0], z)?;
            Ok(vec![g.select(c, p[1], p[2])?])
        },
    ));
    v.push(case("cast", vec![f("x", &[7])], 0.0, |g, p| {
        let i = g.cast(p[0], DType::I32)?;
        let other = if g.ty(p[0]).dtype == DType::F32 {
            DType::F64
        } else {
            DType::F32
        };
        Ok(vec![i, g.cast(p[0], other)?])
    }));
    for (func, tol) in [
        (ReduceOp::Sum, 1e-6),
        (ReduceOp::Max, 0.0),
        (ReduceOp::Mean, 1e-6),
    ] {
        for axes in [vec![0], vec![1], vec![2], vec![0, 2], vec![0, 1, 2]] {
            for keep in [false, true] {
                let axes2 = axes.clone();
                v.push(case(
                    "reduce",
                    vec![f("x", &[3, 4, 5])],
                    tol,
                    move |g, p| Ok(vec![g.reduce(func, p[0], &axes2, keep)?]),
                ));
            }
        }
    }
    // Reductions whose innermost reduced points are contiguous and many (partial
    // accumulators), and a batch norm's statistics over N, H and W (reduced in two
    // stages: H and W per image and channel, then N).
    for (func, tol) in [
        (ReduceOp::Sum, 1e-6),
        (ReduceOp::Max, 0.0),
        (ReduceOp::Mean, 1e-6),
    ] {
        for (shape, axes) in [
            (vec![3, 40], vec![1]),
            (vec![3, 4, 6, 5], vec![0, 2, 3]),
            (vec![2, 3, 17], vec![0, 2]),
        ] {
            for keep in [false, true] {
                let axes2 = axes.clone();
                v.push(case(
                    "reduce (partials)",
                    vec![f("x", &shape)],
                    tol,
                    move |g, p| Ok(vec![g.reduce(func, p[0], &axes2, keep)?]),
                ));
            }
        }
    }
    v.push(case(
        "reduce with elementwise prologue",
        vec![f("x", &[6, 7])],
        1e-5,
        |g, p| {
            let e = g.mul(p[0], p[0])?;
            let e = g.exp(e)?;
            Ok(vec![g.sum(e, &[1], true)?])
        },
    ));
    v.push(case("scale_grad", vec![f("x", &[3, 4])], 0.0, |g, p| {
        // The identity in value: as an output, and inside a fused kernel.
        let s = g.scale_grad(p[0], 0.25)?;
        let e = g.mul(s, p[0])?;
        Ok(vec![g.scale_grad(p[0], 0.0)?, e])
    }));
    v.push(case("argmax", vec![f("x", &[3, 4, 5])], 0.0, |g, p| {
        Ok(vec![g.argmax(p[0], 1, false)?, g.argmax(p[0], 2, true)?])
    }));
    v.push(case("movement", vec![f("x", &[2, 3, 4])], 0.0, |g, p| {
        let r = g.reshape(p[0], &[6, 4])?;
        let t = g.permute(p[0], &[2, 0, 1])?;
        let b = g.broadcast_to(p[0], &[5, 2, 3, 4])?;
        let s = g.slice(p[0], &[1, 0, 1], &[2, 3, 4], &[1, 2, 2])?;
        let pd = g.pad(p[0], &[1, 0, 2], &[0, 2, 1], &[0, 1, 2], -1.5)?;
        let c = g.concat(&[p[0], p[0]], 1)?;
        // A reshape of a non-contiguous view, and movement feeding arithmetic.
        let rt = g.reshape(t, &[4, 6])?;
        Ok(vec![r, t, b, s, pd, c, rt])
    }));
    v.push(case(
        "arithmetic through movement",
        vec![f("x", &[2, 3, 4])],
        1e-5,
        |g, p| {
            let s = g.slice(p[0], &[1, 0, 1], &[2, 3, 4], &[1, 2, 2])?;
            let t = g.permute(s, &[2, 1, 0])?;
            let e = g.exp(t)?;
            let b = g.broadcast_to(e, &[3, 2, 2, 1])?;
            Ok(vec![g.mul(b, b)?])
        },
    ));
    for ta in [false, true] {
        for tb in [false, true] {
            let a = if ta { vec![5, 3] } else { vec![3, 5] };
            let b = if tb { vec![4, 5] } else { vec![5, 4] };
            v.push(case(
                "matmul",
                vec![f("a", &a), f("b", &b)],
                1e-5,
                move |g, p| Ok(vec![g.matmul(p[0], p[1], ta, tb)?]),
            ));
            let (a3, b3) = ([&[2][..], &a].concat(), [&[2][..], &b].concat());
            v.push(case(
                "batched matmul",
                vec![f("a", &a3), f("b", &b3)],
                1e-5,
                move |g, p| Ok(vec![g.matmul(p[0], p[1], ta, tb)?]),
            ));
            v.push(case(
                "shared operand matmul",
                vec![f("a", &a3), f("b", &b)],
                1e-5,
                move |g, p| Ok(vec![g.matmul(p[0], p[1], ta, tb)?]),
            ));
        }
    }
    v.push(case(
        "matmul epilogue (bias + relu)",
        vec![f("x", &[8, 6]), f("w", &[5, 6]), f("b", &[5])],
        1e-5,
        |g, p| {
            let y = g.matmul(p[0], p[1], false, true)?;
            let y = g.add_(y, p[2])?;
            let z = g.scalar(g.ty(y).dtype, 0.0)?;
            Ok(vec![g.max(z, y)?])
        },
    ));
    v.push(case(
        "a value read twice by one consumer, over a dying product",
        vec![f("x", &[8, 6]), f("w", &[6, 5])],
        1e-5,
        |g, p| {
            let t = g.matmul(p[0], p[1], false, false)?;
            let half = g.scalar(g.ty(t).dtype, 0.5)?;
            let y = g.mul(t, half)?;
            Ok(vec![g.add_(y, y)?])
        },
    ));
    v.push(case(
        "matmul of a transposed view",
        vec![f("x", &[4, 6]), f("w", &[6, 3])],
        1e-5,
        |g, p| {
            let xt = g.transpose(p[0])?;
            let xtt = g.transpose(xt)?;
            Ok(vec![g.matmul(xtt, p[1], false, false)?])
        },
    ));
    let w = Window::new([2, 3])
        .with_stride([2, 1])
        .with_padding([1, 1])
        .with_dilation([1, 2]);
    v.push(case(
        "im2col and col2im",
        vec![f("x", &[2, 2, 4, 5])],
        0.0,
        move |g, p| {
            let c = g.im2col(p[0], &w)?;
            let back = g.col2im(c, &w, &[4, 5])?;
            Ok(vec![c, back])
        },
    ));
    v.push(case(
        "gather and scatter_add",
        vec![f("d", &[5, 3]), ("i", DType::I32, vec![7], false)],
        0.0,
        |g, p| {
            let r = g.gather(p[0], p[1])?;
            Ok(vec![r, g.scatter_add(r, p[1], 5)?])
        },
    ));
    v.push(case(
        "gather and scatter_add of single elements",
        vec![f("d", &[5]), ("i", DType::I32, vec![3, 4], false)],
        0.0,
        |g, p| {
            let r = g.gather(p[0], p[1])?;
            Ok(vec![r, g.scatter_add(r, p[1], 5)?])
        },
    ));
    v.push(case("random", vec![], 0.0, move |g, _| {
        let c = g.scalar(DType::I32, 3.0)?;
        Ok(vec![
            g.random_uniform(dt, &[4, 5], 9, -1.0, 2.0, Some(c))?,
            g.random_normal(dt, &[7], 9, 0.5, 2.0, None)?,
        ])
    }));
    v.push(case("constants", vec![f("x", &[2, 3])], 0.0, |g, p| {
        let dt = g.ty(p[0]).dtype;
        let c = g.constant(dt, &[2, 3], vec![1.0, -2.0, 3.5, 0.0, 4.0, -0.5])?;
        let y = g.mul(p[0], c)?;
        Ok(vec![y, c])
    }));
    v.push(case(
        "step outputs stored in place in a sequence and a stack",
        vec![f("x", &[4, 3, 5]), f("w", &[5, 5])],
        1e-5,
        |g, p| {
            // h_t = tanh(x_t + h_{t-1}·w) over three steps; the steps concatenated as a
            // sequence and stacked for a product over all of them (each step is stored
            // in one of the two and copied into the other), and read again on its own.
            let mut hs: Vec<NodeId> = Vec::new();
            for t in 0..3 {
                let xt = g.slice(p[0], &[0, t, 0], &[4, t + 1, 5], &[1, 1, 1])?;
                let xt = g.reshape(xt, &[4, 5])?;
                let z = match hs.last() {
                    Some(&h) => {
                        let r = g.matmul(h, p[1], false, false)?;
                        g.add_(xt, r)?
                    }
                    None => xt,
                };
                hs.push(g.tanh(z)?);
            }
            let steps = hs
                .iter()
                .map(|&h| g.reshape(h, &[4, 1, 5]))
                .collect::<Result<Vec<_>, _>>()?;
            let seq = g.concat(&steps, 1)?;
            let stacked = g.concat(&hs, 0)?;
            let gram = g.matmul(stacked, stacked, true, false)?;
            let two = g.scalar(g.ty(hs[1]).dtype, 2.0)?;
            let twice = g.mul(hs[1], two)?;
            Ok(vec![seq, gram, twice])
        },
    ));
    v.push(case(
        "outputs that are inputs or views",
        vec![f("x", &[2, 3])],
        0.0,
        |g, p| {
            let t = g.transpose(p[0])?;
            Ok(vec![p[0], t])
        },
    ));
    v.push(case(
        "softmax cross-entropy",
        vec![f("z", &[4, 6]), pos("t", &[4, 6])],
        1e-5,
        |g, p| {
            let m = g.reduce_max(p[0], &[1], true)?;
            let z = g.sub(p[0], m)?;
            let e = g.exp(z)?;
            let s = g.sum(e, &[1], true)?;
            let y = g.div(e, s)?;
            let l = g.log(y)?;
            let tl = g.mul(p[1], l)?;
            let c = g.sum(tl, &[1], false)?;
            let c = g.neg(c)?;
            Ok(vec![y, g.mean(c, &[0], false)?])
        },
    ));
    // Multi-output fusion: a value with several consumers computed inside its first
    // consumer's kernel (bit-identical).
    v.push(case(
        "hosted pre-activation",
        vec![f("x", &[8, 40]), f("b", &[40])],
        0.0,
        |g, p| {
            let z = g.add_(p[0], p[1])?;
            let zero = g.scalar(g.ty(z).dtype, 0.0)?;
            let h = g.max(z, zero)?;
            let c = g.compare(CompareOp::Gt, z, zero)?;
            let three = g.scalar(g.ty(z).dtype, 3.0)?;
            let h3 = g.mul(h, three)?;
            let d = g.select(c, h3, zero)?;
            Ok(vec![h, d])
        },
    ));
    v.push(case(
        "momentum update",
        vec![f("v", &[12, 33]), f("grad", &[12, 33]), f("w", &[12, 33])],
        0.0,
        |g, p| {
            let dt = g.ty(p[0]).dtype;
            let mu = g.scalar(dt, 0.9)?;
            let lr = g.scalar(dt, 0.1)?;
            let mv = g.mul(mu, p[0])?;
            let lg = g.mul(lr, p[1])?;
            let v2 = g.sub(mv, lg)?;
            let w2 = g.add_(p[2], v2)?;
            Ok(vec![w2, v2])
        },
    ));
    v.push(case(
        "hosted chain",
        vec![f("a", &[6, 20]), f("b", &[6, 20])],
        1e-5,
        |g, p| {
            let z = g.add_(p[0], p[1])?;
            let h = g.exp(z)?;
            let two = g.scalar(g.ty(z).dtype, 2.0)?;
            let a2 = g.mul(h, two)?;
            let r = g.add_(h, z)?;
            let q = g.mul(z, z)?;
            Ok(vec![a2, r, q])
        },
    ));
    // Sums over leading axes lowered to 1ᵀ·X: bit-identical to the interpreter's order.
    v.push(case(
        "column sums",
        vec![f("x", &[37, 23]), f("y", &[5, 6, 7])],
        0.0,
        |g, p| {
            let s0 = g.sum(p[0], &[0], false)?;
            let s1 = g.sum(p[1], &[0, 1], true)?;
            let s2 = g.sum(p[1], &[0], false)?;
            // A computed operand in memory (two consumers).
            let sq = g.mul(p[0], p[0])?;
            let s3 = g.sum(sq, &[0], false)?;
            Ok(vec![s0, s1, s2, s3, sq])
        },
    ));
    v
}

fn close(a: &Tensor, b: &Tensor, tol: f64) -> Result<(), String> {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        return Err(format!(
            "type {:?} {} vs {:?} {}",
            a.shape(),
            a.dtype(),
            b.shape(),
            b.dtype()
        ));
    }
    for (i, (x, y)) in a.to_f64_vec().iter().zip(b.to_f64_vec()).enumerate() {
        let ok = if tol == 0.0 {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        } else {
            (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs()))
        };
        if !ok {
            return Err(format!("element {i}: {x} vs {y}"));
        }
    }
    Ok(())
}

/// Runs every case on `backend` and on the interpreter.
fn check_backend(backend: &dyn Backend) {
    for dt in [DType::F32, DType::F64] {
        for (k, c) in cases(dt).into_iter().enumerate() {
            let mut g = Graph::new();
            let ids: Vec<NodeId> = c
                .inputs
                .iter()
                .map(|(n, t, s, _)| g.input(n, *t, s).unwrap())
                .collect();
            let outs = (c.build)(&mut g, &ids).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            for (i, o) in outs.iter().enumerate() {
                g.set_output(&format!("out{i}"), *o).unwrap();
            }
            let feeds: Feeds = c
                .inputs
                .iter()
                .enumerate()
                .map(|(i, (n, t, s, positive))| {
                    let rows = c.inputs.first().map_or(1, |x| x.2[0]);
                    (
                        n.to_string(),
                        data(k as u64 * 31 + i as u64, *t, s, *positive, rows),
                    )
                })
                .collect();
            let want = interp::run(&g, &feeds).unwrap();
            let mut exe = backend
                .compile(&g)
                .unwrap_or_else(|e| panic!("{} ({dt}): compile: {e}", c.name));
            let got: HashMap<String, Tensor> = exe
                .run(&feeds)
                .unwrap_or_else(|e| panic!("{} ({dt}): run: {e}", c.name));
            for (name, w) in &want {
                if let Err(e) = close(w, &got[name], c.tolerance) {
                    panic!("{} ({dt}), {name}: {e}", c.name);
                }
            }
        }
    }
}

macro_rules! backend_cases {
    ($($name:ident => $backend:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_backend(&$backend);
            }
        )*
    };
}

// Each GEMM path (a path the processor lacks runs its best lesser one).
backend_cases! {
    cpu_one_thread => Cpu::with_threads(1),
    cpu_two_threads => Cpu::with_threads(2),
    cpu_avx512 => Cpu::with_isa(1, Isa::Avx512),
    cpu_avx2 => Cpu::with_isa(1, Isa::Avx2),
    cpu_portable => Cpu::with_isa(1, Isa::Portable),
    cpu_avx2_two_threads => Cpu::with_isa(2, Isa::Avx2),
}

/// `run_update` writes the declared updates into their feeds (an output's name means
/// nothing by itself), returns the rest, and with `check_finite` leaves every feed
/// unchanged when an update is not finite, naming the output and element.
fn check_run_update(backend: &dyn Backend) {
    use xenon_compiler::interp::Feeds;
    let mut g = Graph::new();
    let w = g.parameter("w", DType::F32, &[3]).unwrap();
    let x = g.input("x", DType::F32, &[3]).unwrap();
    let d = g.div(w, x).unwrap(); // w / x: infinite where x = 0
    let s = g.sum(d, &[0], false).unwrap();
    g.set_output("new/w", d).unwrap();
    g.set_update("new/w", "w").unwrap();
    g.set_output("sum", s).unwrap();
    // Named like an update but not declared one: returned, never written back.
    let x2 = g.add_(x, x).unwrap();
    g.set_output("new/x", x2).unwrap();
    let mut exe = backend.compile(&g).unwrap();
    let mut feeds: Feeds = [
        (
            "w".to_string(),
            Tensor::from_f32(vec![3], vec![2.0, 4.0, 8.0]).unwrap(),
        ),
        (
            "x".to_string(),
            Tensor::from_f32(vec![3], vec![2.0, 2.0, 2.0]).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let out = exe.run_update(&mut feeds, true).unwrap();
    assert_eq!(feeds["w"].as_f32().unwrap(), &[1.0, 2.0, 4.0]);
    assert_eq!(out["sum"].as_f32().unwrap(), &[7.0]);
    assert!(!out.contains_key("new/w"));
    assert_eq!(out["new/x"].as_f32().unwrap(), &[4.0, 4.0, 4.0]);
    assert_eq!(feeds["x"].as_f32().unwrap(), &[2.0, 2.0, 2.0]);
    feeds.insert(
        "x".into(),
        Tensor::from_f32(vec![3], vec![1.0, 0.0, 1.0]).unwrap(),
    );
    let e = exe.run_update(&mut feeds, true).unwrap_err();
    assert!(e.to_string().contains("\"new/w\" at element 1"), "{e}");
    assert_eq!(
        feeds["w"].as_f32().unwrap(),
        &[1.0, 2.0, 4.0],
        "unchanged after a non-finite update"
    );
}

#[test]
fn run_update_interpreter() {
    check_run_update(&xenon_compiler::backend::Interpreter);
}

#[test]
fn run_update_cpu() {
    check_run_update(&Cpu::with_threads(1));
}

/// The OpenCL device 0 (PoCL in CI), or `None` with a note when this machine has none.
#[cfg(feature = "opencl")]
fn opencl() -> Option<xenon_compiler::backend::OpenCl> {
    match xenon_runtime::opencl::devices() {
        Ok(d) if !d.is_empty() => Some(xenon_compiler::backend::OpenCl { device: 0 }),
        other => {
            eprintln!("SKIPPED: no OpenCL device ({other:?})");
            None
        }
    }
}

#[cfg(feature = "opencl")]
#[test]
fn opencl_device_0() {
    if let Some(b) = opencl() {
        check_backend(&b);
    }
}

#[cfg(feature = "opencl")]
#[test]
fn run_update_opencl() {
    if let Some(b) = opencl() {
        check_run_update(&b);
    }
}
