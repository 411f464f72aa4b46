//! The reference interpreter, op by op, against hand-computed values.
//!
//! Every expected value below is written out by hand (or, for random ops, is the formula
//! the op is specified by), never computed by a second implementation. Float ops run in
//! both f32 and f64 through `float_tests!`.

use std::collections::HashMap;
use std::f64::consts::{E, LN_2, SQRT_2};
use xenon_compiler::interp::{self, Feeds, InterpError};
use xenon_compiler::ir::{
    BinaryOp, CompareOp, DType, Graph, NodeId, Op, ReduceOp, TensorType, UnaryOp, Window,
};
use xenon_runtime::{Tensor, rng};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

// ----- helpers -----------------------------------------------------------------------------

/// A tensor of `dtype` from f64 values (converted like a constant).
fn t(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
    Tensor::from_f64_as(dtype, shape.to_vec(), values).unwrap()
}

/// An i32 tensor.
fn ti(shape: &[usize], values: &[i32]) -> Tensor {
    Tensor::from_i32(shape.to_vec(), values.to_vec()).unwrap()
}

fn feeds(items: &[(&str, Tensor)]) -> Feeds {
    items
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

/// Builds a graph with one input per `(name, value)`, adds the output node with `build`,
/// runs the interpreter and returns the output.
fn run_with(
    inputs: &[(&str, Tensor)],
    build: impl FnOnce(&mut Graph, &[NodeId]) -> NodeId,
) -> Tensor {
    let mut g = Graph::new();
    let ids: Vec<NodeId> = inputs
        .iter()
        .map(|(n, v)| g.input(n, v.dtype(), v.shape()).unwrap())
        .collect();
    let y = build(&mut g, &ids);
    g.set_output("y", y).unwrap();
    let mut out = interp::run(&g, &feeds(inputs)).unwrap();
    out.remove("y").unwrap()
}

/// `build` applied to one input `x`.
fn run1(x: Tensor, build: impl FnOnce(&mut Graph, NodeId) -> NodeId) -> Tensor {
    run_with(&[("x", x)], |g, ids| build(g, ids[0]))
}

/// `build` applied to inputs `a` and `b`.
fn run2(a: Tensor, b: Tensor, build: impl FnOnce(&mut Graph, NodeId, NodeId) -> NodeId) -> Tensor {
    run_with(&[("a", a), ("b", b)], |g, ids| build(g, ids[0], ids[1]))
}

/// Exact comparison (NaN matches NaN; `-0` matches `0`).
#[track_caller]
fn assert_exact(got: &Tensor, dtype: DType, shape: &[usize], expected: &[f64]) {
    assert_eq!(got.dtype(), dtype, "dtype");
    assert_eq!(got.shape(), shape, "shape");
    let v = got.to_f64_vec();
    let same = v.len() == expected.len()
        && v.iter()
            .zip(expected)
            .all(|(&a, &b)| a == b || (a.is_nan() && b.is_nan()));
    assert!(same, "got {v:?}, expected {expected:?}");
}

/// Comparison within a relative tolerance fitting the dtype (NaN and infinities exact).
#[track_caller]
fn assert_close(got: &Tensor, dtype: DType, shape: &[usize], expected: &[f64]) {
    assert_eq!(got.dtype(), dtype, "dtype");
    assert_eq!(got.shape(), shape, "shape");
    let tol = if dtype == DType::F32 { 1e-6 } else { 1e-14 };
    let v = got.to_f64_vec();
    let close = v.len() == expected.len()
        && v.iter().zip(expected).all(|(&a, &b)| {
            if b.is_finite() {
                (a - b).abs() <= tol * b.abs().max(1e-30)
            } else {
                a == b || (a.is_nan() && b.is_nan())
            }
        });
    assert!(close, "got {v:?}, expected {expected:?} (rel. tol {tol})");
}

/// Instantiates each test body for `DType::F32` and `DType::F64`, as `name::f32` and
/// `name::f64`.
macro_rules! float_tests {
    ($(fn $name:ident($dt:ident) $body:block)*) => {$(
        mod $name {
            use super::*;
            fn body($dt: DType) $body
            #[test]
            fn f32() {
                body(DType::F32)
            }
            #[test]
            fn f64() {
                body(DType::F64)
            }
        }
    )*};
}

fn unary(dt: DType, func: UnaryOp, xs: &[f64]) -> Tensor {
    run1(t(dt, &[xs.len()], xs), |g, x| g.unary(func, x).unwrap())
}

fn binary(dt: DType, func: BinaryOp, a: &[f64], b: &[f64]) -> Tensor {
    let n = a.len();
    run2(t(dt, &[n], a), t(dt, &[n], b), |g, a, b| {
        g.binary(func, a, b).unwrap()
    })
}

fn compare(dt: DType, func: CompareOp, a: &[f64], b: &[f64]) -> Tensor {
    let n = a.len();
    run2(t(dt, &[n], a), t(dt, &[n], b), |g, a, b| {
        g.compare(func, a, b).unwrap()
    })
}

// ----- constants ---------------------------------------------------------------------------

float_tests! {
    fn constant_splat_and_values(dt) {
        let mut g = Graph::new();
        let s = g.full(dt, &[2, 2], 0.5).unwrap();
        let v = g.constant(dt, &[2, 3], vec![1.0, -2.0, 3.5, 0.0, 5.0, -0.25]).unwrap();
        let tenth = g.scalar(dt, 0.1).unwrap();
        g.set_output("s", s).unwrap();
        g.set_output("v", v).unwrap();
        g.set_output("tenth", tenth).unwrap();
        let out = interp::run(&g, &Feeds::new()).unwrap();
        assert_exact(&out["s"], dt, &[2, 2], &[0.5, 0.5, 0.5, 0.5]);
        assert_exact(&out["v"], dt, &[2, 3], &[1.0, -2.0, 3.5, 0.0, 5.0, -0.25]);
        // 0.1 rounds to the nearest value of the dtype.
        let tenth = if dt == DType::F32 { 0.10000000149011612 } else { 0.1 };
        assert_exact(&out["tenth"], dt, &[], &[tenth]);
    }
}

#[test]
fn i32_constants_truncate_toward_zero_and_saturate() {
    let mut g = Graph::new();
    let c = g
        .constant(DType::I32, &[5], vec![2.7, -2.7, 1e10, -1e10, NAN])
        .unwrap();
    g.set_output("c", c).unwrap();
    let out = interp::run(&g, &Feeds::new()).unwrap();
    assert_eq!(out["c"].as_i32().unwrap(), &[2, -2, i32::MAX, i32::MIN, 0]);
}

// ----- unary -------------------------------------------------------------------------------

float_tests! {
    fn unary_neg(dt) {
        let y = unary(dt, UnaryOp::Neg, &[-2.0, -0.5, 0.0, 1.5, INF]);
        assert_exact(&y, dt, &[5], &[2.0, 0.5, 0.0, -1.5, -INF]);
        assert!(y.to_f64_vec()[2].is_sign_negative(), "-(+0) is -0");
    }

    fn unary_abs(dt) {
        let y = unary(dt, UnaryOp::Abs, &[-2.0, -0.5, -0.0, 1.5, -INF, NAN]);
        assert_exact(&y, dt, &[6], &[2.0, 0.5, 0.0, 1.5, INF, NAN]);
        assert!(y.to_f64_vec()[2].is_sign_positive(), "|-0| is +0");
    }

    fn unary_sign(dt) {
        let y = unary(dt, UnaryOp::Sign, &[-3.0, -0.25, 0.0, -0.0, 7.0, NAN, -INF, INF]);
        assert_exact(&y, dt, &[8], &[-1.0, -1.0, 0.0, 0.0, 1.0, NAN, -1.0, 1.0]);
        let v = y.to_f64_vec();
        assert!(v[2].is_sign_positive(), "sign(+0) = +0");
        assert!(v[3].is_sign_negative(), "sign(-0) = -0");
    }

    fn unary_exp(dt) {
        let y = unary(dt, UnaryOp::Exp, &[0.0, 1.0, -1.0, 2.0, -INF]);
        assert_close(&y, dt, &[5], &[1.0, E, 0.36787944117144233, 7.38905609893065, 0.0]);
    }

    fn unary_log(dt) {
        let y = unary(dt, UnaryOp::Log, &[1.0, 2.0, 0.5, 0.0, -1.0, INF]);
        assert_close(&y, dt, &[6], &[0.0, LN_2, -LN_2, -INF, NAN, INF]);
    }

    fn unary_sqrt(dt) {
        let y = unary(dt, UnaryOp::Sqrt, &[4.0, 2.0, 0.0, 0.25, -1.0]);
        assert_close(&y, dt, &[5], &[2.0, SQRT_2, 0.0, 0.5, NAN]);
    }

    fn unary_recip(dt) {
        let y = unary(dt, UnaryOp::Recip, &[2.0, -0.25, 0.0, 4.0, -0.0, INF]);
        assert_exact(&y, dt, &[6], &[0.5, -4.0, INF, 0.25, -INF, 0.0]);
    }

    fn unary_tanh(dt) {
        let y = unary(dt, UnaryOp::Tanh, &[0.0, 1.0, -2.0, 20.0, -INF]);
        assert_close(
            &y,
            dt,
            &[5],
            &[0.0, 0.7615941559557649, -0.9640275800758169, 1.0, -1.0],
        );
    }
}

#[test]
fn i32_unary_ops_wrap() {
    let x = ti(&[5], &[3, -7, 0, i32::MIN, i32::MAX]);
    let neg = run1(x.clone(), |g, x| g.neg(x).unwrap());
    assert_eq!(neg.as_i32().unwrap(), &[-3, 7, 0, i32::MIN, -i32::MAX]);
    let abs = run1(x.clone(), |g, x| g.abs(x).unwrap());
    assert_eq!(abs.as_i32().unwrap(), &[3, 7, 0, i32::MIN, i32::MAX]);
    let sign = run1(x, |g, x| g.sign(x).unwrap());
    assert_eq!(sign.as_i32().unwrap(), &[1, -1, 0, -1, 1]);
}

// ----- binary ------------------------------------------------------------------------------

const A: [f64; 4] = [1.5, -2.0, 3.0, 0.5];
const B: [f64; 4] = [0.5, 4.0, -1.0, 2.0];

float_tests! {
    fn binary_add(dt) {
        assert_exact(&binary(dt, BinaryOp::Add, &A, &B), dt, &[4], &[2.0, 2.0, 2.0, 2.5]);
    }

    fn binary_sub(dt) {
        assert_exact(&binary(dt, BinaryOp::Sub, &A, &B), dt, &[4], &[1.0, -6.0, 4.0, -1.5]);
    }

    fn binary_mul(dt) {
        assert_exact(&binary(dt, BinaryOp::Mul, &A, &B), dt, &[4], &[0.75, -8.0, -3.0, 1.0]);
    }

    fn binary_div(dt) {
        assert_exact(&binary(dt, BinaryOp::Div, &A, &B), dt, &[4], &[3.0, -0.5, -3.0, 0.25]);
        let y = binary(dt, BinaryOp::Div, &[1.0, -1.0, 0.0], &[0.0, 0.0, 0.0]);
        assert_exact(&y, dt, &[3], &[INF, -INF, NAN]);
    }

    fn binary_max(dt) {
        assert_exact(&binary(dt, BinaryOp::Max, &A, &B), dt, &[4], &[1.5, 4.0, 3.0, 2.0]);
        let y = binary(dt, BinaryOp::Max, &[NAN, 1.0, -INF], &[1.0, NAN, -5.0]);
        assert_exact(&y, dt, &[3], &[NAN, NAN, -5.0]);
    }

    fn binary_min(dt) {
        assert_exact(&binary(dt, BinaryOp::Min, &A, &B), dt, &[4], &[0.5, -2.0, -1.0, 0.5]);
        let y = binary(dt, BinaryOp::Min, &[NAN, 1.0, INF], &[1.0, NAN, 5.0]);
        assert_exact(&y, dt, &[3], &[NAN, NAN, 5.0]);
    }

    fn binary_broadcasts_through_the_builder(dt) {
        // The builder inserts a broadcast node for the [3] operand.
        let y = run2(
            t(dt, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            t(dt, &[3], &[10.0, 20.0, 30.0]),
            |g, a, b| g.add_(a, b).unwrap(),
        );
        assert_exact(&y, dt, &[2, 3], &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    }
}

#[test]
fn i32_binary_ops_wrap() {
    let bin = |func, a: &[i32], b: &[i32]| {
        run2(ti(&[a.len()], a), ti(&[b.len()], b), |g, a, b| {
            g.binary(func, a, b).unwrap()
        })
    };
    let add = bin(BinaryOp::Add, &[i32::MAX, 3], &[1, -5]);
    assert_eq!(add.as_i32().unwrap(), &[i32::MIN, -2]);
    let sub = bin(BinaryOp::Sub, &[i32::MIN, 3], &[1, 5]);
    assert_eq!(sub.as_i32().unwrap(), &[i32::MAX, -2]);
    let mul = bin(BinaryOp::Mul, &[65536, -3], &[65536, 4]);
    assert_eq!(mul.as_i32().unwrap(), &[0, -12]);
    let max = bin(BinaryOp::Max, &[3, -5], &[-1, 2]);
    assert_eq!(max.as_i32().unwrap(), &[3, 2]);
    let min = bin(BinaryOp::Min, &[3, -5], &[-1, 2]);
    assert_eq!(min.as_i32().unwrap(), &[-1, -5]);
}

// ----- comparisons, select, cast -----------------------------------------------------------

const CA: [f64; 4] = [1.0, 2.0, 3.0, NAN];
const CB: [f64; 4] = [2.0, 2.0, 1.0, 1.0];

float_tests! {
    fn compare_lt(dt) {
        assert_exact(&compare(dt, CompareOp::Lt, &CA, &CB), dt, &[4], &[1.0, 0.0, 0.0, 0.0]);
    }
    fn compare_le(dt) {
        assert_exact(&compare(dt, CompareOp::Le, &CA, &CB), dt, &[4], &[1.0, 1.0, 0.0, 0.0]);
    }
    fn compare_gt(dt) {
        assert_exact(&compare(dt, CompareOp::Gt, &CA, &CB), dt, &[4], &[0.0, 0.0, 1.0, 0.0]);
    }
    fn compare_ge(dt) {
        assert_exact(&compare(dt, CompareOp::Ge, &CA, &CB), dt, &[4], &[0.0, 1.0, 1.0, 0.0]);
    }
    fn compare_eq(dt) {
        assert_exact(&compare(dt, CompareOp::Eq, &CA, &CB), dt, &[4], &[0.0, 1.0, 0.0, 0.0]);
    }
    fn compare_ne(dt) {
        assert_exact(&compare(dt, CompareOp::Ne, &CA, &CB), dt, &[4], &[1.0, 0.0, 1.0, 1.0]);
    }

    fn select_with_a_float_condition(dt) {
        let y = run_with(
            &[
                ("c", t(dt, &[4], &[1.0, 0.0, -2.0, NAN])),
                ("a", t(dt, &[4], &[10.0, 20.0, 30.0, 40.0])),
                ("b", t(dt, &[4], &[-1.0, -2.0, -3.0, -4.0])),
            ],
            |g, ids| g.select(ids[0], ids[1], ids[2]).unwrap(),
        );
        // A NaN condition is not zero, so it picks a.
        assert_exact(&y, dt, &[4], &[10.0, -2.0, 30.0, 40.0]);
    }

    fn select_with_an_i32_condition(dt) {
        let y = run_with(
            &[
                ("c", ti(&[4], &[0, 5, 0, -1])),
                ("a", t(dt, &[4], &[10.0, 20.0, 30.0, 40.0])),
                ("b", t(dt, &[4], &[-1.0, -2.0, -3.0, -4.0])),
            ],
            |g, ids| g.select(ids[0], ids[1], ids[2]).unwrap(),
        );
        assert_exact(&y, dt, &[4], &[-1.0, 20.0, -3.0, 40.0]);
    }

    fn cast_float_to_i32_truncates_and_saturates(dt) {
        let y = run1(t(dt, &[6], &[1.5, -1.5, NAN, 1e12, -1e12, 2.999]), |g, x| {
            g.cast(x, DType::I32).unwrap()
        });
        assert_eq!(y.as_i32().unwrap(), &[1, -1, 0, i32::MAX, i32::MIN, 2]);
    }

    fn cast_i32_to_float(dt) {
        let y = run1(ti(&[3], &[3, -7, 16_777_217]), |g, x| g.cast(x, dt).unwrap());
        // 2^24 + 1 is not an f32.
        let big = if dt == DType::F32 { 16_777_216.0 } else { 16_777_217.0 };
        assert_exact(&y, dt, &[3], &[3.0, -7.0, big]);
    }
}

#[test]
fn i32_compare_and_select() {
    let y = run2(ti(&[3], &[1, 5, -2]), ti(&[3], &[1, 2, 3]), |g, a, b| {
        g.compare(CompareOp::Ge, a, b).unwrap()
    });
    assert_eq!(y.as_i32().unwrap(), &[1, 1, 0]);
    let s = run_with(
        &[
            ("c", t(DType::F64, &[3], &[0.0, 0.5, -0.0])),
            ("a", ti(&[3], &[1, 2, 3])),
            ("b", ti(&[3], &[7, 8, 9])),
        ],
        |g, ids| g.select(ids[0], ids[1], ids[2]).unwrap(),
    );
    assert_eq!(s.as_i32().unwrap(), &[7, 2, 9]);
}

#[test]
fn cast_between_floats() {
    let y = run1(t(DType::F64, &[3], &[0.1, 1e40, -2.5]), |g, x| {
        g.cast(x, DType::F32).unwrap()
    });
    assert_exact(&y, DType::F32, &[3], &[0.10000000149011612, INF, -2.5]);
    let z = run1(t(DType::F32, &[1], &[0.1]), |g, x| {
        g.cast(x, DType::F64).unwrap()
    });
    assert_exact(&z, DType::F64, &[1], &[0.10000000149011612]);
}

// ----- reductions and argmax ---------------------------------------------------------------

const M23: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];

fn reduce(
    dt: DType,
    func: ReduceOp,
    shape: &[usize],
    xs: &[f64],
    axes: &[usize],
    keep: bool,
) -> Tensor {
    run1(t(dt, shape, xs), |g, x| {
        g.reduce(func, x, axes, keep).unwrap()
    })
}

float_tests! {
    fn reduce_sum(dt) {
        let s = |axes: &[usize], keep| reduce(dt, ReduceOp::Sum, &[2, 3], &M23, axes, keep);
        assert_exact(&s(&[0], false), dt, &[3], &[5.0, 7.0, 9.0]);
        assert_exact(&s(&[1], false), dt, &[2], &[6.0, 15.0]);
        assert_exact(&s(&[1], true), dt, &[2, 1], &[6.0, 15.0]);
        assert_exact(&s(&[1, 0], false), dt, &[], &[21.0]);
        assert_exact(&s(&[0, 1], true), dt, &[1, 1], &[21.0]);
        assert_exact(&s(&[], false), dt, &[2, 3], &M23);
        // Non-adjacent axes of a 2×2×2 tensor holding 0..8.
        let x: Vec<f64> = (0..8).map(f64::from).collect();
        let y = reduce(dt, ReduceOp::Sum, &[2, 2, 2], &x, &[0, 2], true);
        assert_exact(&y, dt, &[1, 2, 1], &[10.0, 18.0]);
    }

    fn reduce_sum_adds_in_index_order(dt) {
        // ((big + 1) − big) + 1 = 1 in index order, because big + 1 rounds back to big;
        // a pairwise or reversed order gives 0.
        let big = if dt == DType::F32 { 1e8 } else { 1e17 };
        let y = reduce(dt, ReduceOp::Sum, &[4], &[big, 1.0, -big, 1.0], &[0], false);
        assert_exact(&y, dt, &[], &[1.0]);
    }

    fn reduce_max(dt) {
        let x = [1.0, 5.0, 3.0, 4.0, 2.0, 6.0];
        let m = |axes: &[usize], keep| reduce(dt, ReduceOp::Max, &[2, 3], &x, axes, keep);
        assert_exact(&m(&[1], false), dt, &[2], &[5.0, 6.0]);
        assert_exact(&m(&[0], true), dt, &[1, 3], &[4.0, 5.0, 6.0]);
        let y = reduce(dt, ReduceOp::Max, &[2, 3], &[1.0, NAN, 3.0, -INF, -INF, -INF], &[1], false);
        assert_exact(&y, dt, &[2], &[NAN, -INF]);
    }

    fn reduce_mean(dt) {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0];
        let m = |axes: &[usize], keep| reduce(dt, ReduceOp::Mean, &[2, 3], &x, axes, keep);
        assert_exact(&m(&[1], false), dt, &[2], &[2.0, 6.0]);
        assert_exact(&m(&[0], false), dt, &[3], &[2.5, 3.5, 6.0]);
        assert_exact(&m(&[0, 1], true), dt, &[1, 1], &[4.0]);
    }

    fn argmax(dt) {
        let x = t(dt, &[2, 3], &[1.0, 3.0, 3.0, 5.0, 0.0, 5.0]);
        let rows = run1(x.clone(), |g, x| g.argmax(x, 1, false).unwrap());
        assert_eq!(rows.shape(), &[2]);
        assert_eq!(rows.as_i32().unwrap(), &[1, 0], "first maximum wins");
        let cols = run1(x.clone(), |g, x| g.argmax(x, 0, false).unwrap());
        assert_eq!(cols.as_i32().unwrap(), &[1, 0, 1]);
        let kept = run1(x, |g, x| g.argmax(x, 1, true).unwrap());
        assert_eq!(kept.shape(), &[2, 1]);
        assert_eq!(kept.as_i32().unwrap(), &[1, 0]);
        // Middle axis of a 2×2×2 tensor.
        let x3 = t(dt, &[2, 2, 2], &[0.0, 9.0, 1.0, 2.0, 5.0, 3.0, 8.0, 3.0]);
        let mid = run1(x3, |g, x| g.argmax(x, 1, false).unwrap());
        assert_eq!(mid.shape(), &[2, 2]);
        assert_eq!(mid.as_i32().unwrap(), &[1, 0, 1, 0]);
    }

    fn argmax_nan_is_the_maximum(dt) {
        let x = t(dt, &[3, 4], &[
            1.0, NAN, 5.0, NAN,
            NAN, 2.0, 3.0, 4.0,
            -INF, -INF, -INF, -INF,
        ]);
        let y = run1(x, |g, x| g.argmax(x, 1, false).unwrap());
        assert_eq!(y.as_i32().unwrap(), &[1, 0, 0]);
    }
}

#[test]
fn i32_reductions() {
    let s = run1(ti(&[2, 2], &[i32::MAX, 1, 3, -5]), |g, x| {
        g.sum(x, &[1], false).unwrap()
    });
    assert_eq!(s.as_i32().unwrap(), &[i32::MIN, -2]);
    let m = run1(ti(&[2, 2], &[3, -5, 7, 7]), |g, x| {
        g.reduce_max(x, &[1], false).unwrap()
    });
    assert_eq!(m.as_i32().unwrap(), &[3, 7]);
    let a = run1(ti(&[4], &[-3, 8, 2, 8]), |g, x| {
        g.argmax(x, 0, false).unwrap()
    });
    assert_eq!(a.as_i32().unwrap(), &[1]);
}

// ----- movement ----------------------------------------------------------------------------

float_tests! {
    fn reshape(dt) {
        let y = run1(t(dt, &[2, 3], &M23), |g, x| g.reshape(x, &[3, 2]).unwrap());
        assert_exact(&y, dt, &[3, 2], &M23);
        let z = run1(t(dt, &[2, 3], &M23), |g, x| g.reshape(x, &[1, 6, 1]).unwrap());
        assert_exact(&z, dt, &[1, 6, 1], &M23);
    }

    fn permute(dt) {
        let y = run1(t(dt, &[2, 3], &M23), |g, x| g.permute(x, &[1, 0]).unwrap());
        assert_exact(&y, dt, &[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        // out[i][j][k] = x[k][i][j] = 12k + 4i + j.
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        let z = run1(t(dt, &[2, 3, 4], &x), |g, x| g.permute(x, &[1, 2, 0]).unwrap());
        assert_exact(&z, dt, &[3, 4, 2], &[
            0.0, 12.0, 1.0, 13.0, 2.0, 14.0, 3.0, 15.0,
            4.0, 16.0, 5.0, 17.0, 6.0, 18.0, 7.0, 19.0,
            8.0, 20.0, 9.0, 21.0, 10.0, 22.0, 11.0, 23.0,
        ]);
    }

    fn broadcast(dt) {
        let y = run1(t(dt, &[3], &[1.0, 2.0, 3.0]), |g, x| g.broadcast_to(x, &[2, 3]).unwrap());
        assert_exact(&y, dt, &[2, 3], &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        let z = run1(t(dt, &[2, 1], &[7.0, 8.0]), |g, x| g.broadcast_to(x, &[3, 2, 2]).unwrap());
        assert_exact(&z, dt, &[3, 2, 2], &[
            7.0, 7.0, 8.0, 8.0, 7.0, 7.0, 8.0, 8.0, 7.0, 7.0, 8.0, 8.0,
        ]);
        let s = run1(t(dt, &[], &[5.0]), |g, x| g.broadcast_to(x, &[2, 2]).unwrap());
        assert_exact(&s, dt, &[2, 2], &[5.0; 4]);
        let c = run1(t(dt, &[1, 2], &[1.0, 2.0]), |g, x| g.broadcast_to(x, &[2, 3, 2]).unwrap());
        assert_exact(&c, dt, &[2, 3, 2], &[
            1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0,
        ]);
    }

    fn slice_with_steps(dt) {
        let x: Vec<f64> = (0..15).map(f64::from).collect();
        let y = run1(t(dt, &[3, 5], &x), |g, x| g.slice(x, &[0, 1], &[3, 5], &[2, 2]).unwrap());
        assert_exact(&y, dt, &[2, 2], &[1.0, 3.0, 11.0, 13.0]);
        let row = run1(t(dt, &[3, 5], &x), |g, x| g.slice(x, &[1, 0], &[2, 5], &[1, 1]).unwrap());
        assert_exact(&row, dt, &[1, 5], &[5.0, 6.0, 7.0, 8.0, 9.0]);
        // The end need not be reached by a whole step.
        let v: Vec<f64> = (0..7).map(f64::from).collect();
        let z = run1(t(dt, &[7], &v), |g, x| g.slice(x, &[1], &[7], &[3]).unwrap());
        assert_exact(&z, dt, &[2], &[1.0, 4.0]);
    }

    fn pad_with_interior_and_value(dt) {
        let y = run1(t(dt, &[2], &[1.0, 2.0]), |g, x| g.pad(x, &[1], &[2], &[2], 9.0).unwrap());
        assert_exact(&y, dt, &[7], &[9.0, 1.0, 9.0, 9.0, 2.0, 9.0, 9.0]);
        let z = run1(t(dt, &[2, 2], &[1.0, 2.0, 3.0, 4.0]), |g, x| {
            g.pad(x, &[0, 1], &[1, 0], &[1, 0], -1.0).unwrap()
        });
        assert_exact(&z, dt, &[4, 3], &[
            -1.0, 1.0, 2.0,
            -1.0, -1.0, -1.0,
            -1.0, 3.0, 4.0,
            -1.0, -1.0, -1.0,
        ]);
    }

    fn concat(dt) {
        let y = run2(t(dt, &[2, 2], &[1.0, 2.0, 3.0, 4.0]), t(dt, &[2, 1], &[5.0, 6.0]), |g, a, b| {
            g.concat(&[a, b], 1).unwrap()
        });
        assert_exact(&y, dt, &[2, 3], &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
        let z = run_with(
            &[
                ("a", t(dt, &[1, 2], &[1.0, 2.0])),
                ("b", t(dt, &[2, 2], &[3.0, 4.0, 5.0, 6.0])),
                ("c", t(dt, &[1, 2], &[7.0, 8.0])),
            ],
            |g, ids| g.concat(ids, 0).unwrap(),
        );
        assert_exact(&z, dt, &[4, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let b: Vec<f64> = (5..13).map(f64::from).collect();
        let w = run2(t(dt, &[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]), t(dt, &[2, 2, 2], &b), |g, a, b| {
            g.concat(&[a, b], 1).unwrap()
        });
        assert_exact(&w, dt, &[2, 3, 2], &[
            1.0, 2.0, 5.0, 6.0, 7.0, 8.0,
            3.0, 4.0, 9.0, 10.0, 11.0, 12.0,
        ]);
    }
}

#[test]
fn i32_movement() {
    let x = ti(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let p = run1(x.clone(), |g, x| g.permute(x, &[1, 0]).unwrap());
    assert_eq!(p.as_i32().unwrap(), &[1, 4, 2, 5, 3, 6]);
    let s = run1(x.clone(), |g, x| {
        g.slice(x, &[0, 0], &[2, 3], &[1, 2]).unwrap()
    });
    assert_eq!(s.as_i32().unwrap(), &[1, 3, 4, 6]);
    // The pad value truncates toward zero, like an i32 constant.
    let d = run1(ti(&[2], &[1, 5]), |g, x| {
        g.pad(x, &[1], &[0], &[1], 2.7).unwrap()
    });
    assert_eq!(d.as_i32().unwrap(), &[2, 1, 2, 5]);
    let c = run2(x, ti(&[2, 1], &[7, 8]), |g, a, b| {
        g.concat(&[a, b], 1).unwrap()
    });
    assert_eq!(c.as_i32().unwrap(), &[1, 2, 3, 7, 4, 5, 6, 8]);
}

// ----- matmul ------------------------------------------------------------------------------

fn matmul(dt: DType, a: (&[usize], &[f64]), b: (&[usize], &[f64]), ta: bool, tb: bool) -> Tensor {
    run2(t(dt, a.0, a.1), t(dt, b.0, b.1), |g, a, b| {
        g.matmul(a, b, ta, tb).unwrap()
    })
}

// A = [[1, 2, 3], [4, 5, 6]], B = [[7, 8], [9, 10], [11, 12]], A·B = [[58, 64], [139, 154]].
const MA: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
const MA_T: [f64; 6] = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
const MB: [f64; 6] = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
const MB_T: [f64; 6] = [7.0, 9.0, 11.0, 8.0, 10.0, 12.0];
const AB: [f64; 4] = [58.0, 64.0, 139.0, 154.0];

float_tests! {
    fn matmul_nn(dt) {
        let y = matmul(dt, (&[2, 3], &MA), (&[3, 2], &MB), false, false);
        assert_exact(&y, dt, &[2, 2], &AB);
    }

    fn matmul_tn(dt) {
        let y = matmul(dt, (&[3, 2], &MA_T), (&[3, 2], &MB), true, false);
        assert_exact(&y, dt, &[2, 2], &AB);
    }

    fn matmul_nt(dt) {
        let y = matmul(dt, (&[2, 3], &MA), (&[2, 3], &MB_T), false, true);
        assert_exact(&y, dt, &[2, 2], &AB);
    }

    fn matmul_tt(dt) {
        let y = matmul(dt, (&[3, 2], &MA_T), (&[2, 3], &MB_T), true, true);
        assert_exact(&y, dt, &[2, 2], &AB);
    }

    fn matmul_non_square_result(dt) {
        // B·A: (3×2)·(2×3) = 3×3.
        let y = matmul(dt, (&[3, 2], &MB), (&[2, 3], &MA), false, false);
        assert_exact(&y, dt, &[3, 3], &[
            39.0, 54.0, 69.0,
            49.0, 68.0, 87.0,
            59.0, 82.0, 105.0,
        ]);
    }

    fn matmul_batched(dt) {
        // [[1,2],[3,4]]·[[5,6],[7,8]] and [[0,1],[1,0]]·[[1,2],[3,4]].
        let a = [1.0, 2.0, 3.0, 4.0, 0.0, 1.0, 1.0, 0.0];
        let b = [5.0, 6.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0];
        let y = matmul(dt, (&[2, 2, 2], &a), (&[2, 2, 2], &b), false, false);
        assert_exact(&y, dt, &[2, 2, 2], &[19.0, 22.0, 43.0, 50.0, 3.0, 4.0, 1.0, 2.0]);
        // Two batch axes: the same four products in a 1×2 batch grid.
        let z = matmul(dt, (&[1, 2, 2, 2], &a), (&[1, 2, 2, 2], &b), false, false);
        assert_exact(&z, dt, &[1, 2, 2, 2], &[19.0, 22.0, 43.0, 50.0, 3.0, 4.0, 1.0, 2.0]);
    }

    fn matmul_shared_rank2_operand(dt) {
        // b = [[5,6],[7,8]] is shared by both batches of a.
        let a = [1.0, 2.0, 3.0, 4.0, 0.0, 1.0, 1.0, 0.0];
        let y = matmul(dt, (&[2, 2, 2], &a), (&[2, 2], &[5.0, 6.0, 7.0, 8.0]), false, false);
        assert_exact(&y, dt, &[2, 2, 2], &[19.0, 22.0, 43.0, 50.0, 7.0, 8.0, 5.0, 6.0]);
        // a = [[1,2],[3,4]] is shared by b's batches [[5,6],[7,8]] and [[1,0],[0,2]].
        let b = [5.0, 6.0, 7.0, 8.0, 1.0, 0.0, 0.0, 2.0];
        let z = matmul(dt, (&[2, 2], &[1.0, 2.0, 3.0, 4.0]), (&[2, 2, 2], &b), false, false);
        assert_exact(&z, dt, &[2, 2, 2], &[19.0, 22.0, 43.0, 50.0, 1.0, 4.0, 3.0, 8.0]);
    }

    fn matmul_batched_transposed(dt) {
        // As in matmul_shared_rank2_operand, with every operand stored transposed.
        let a_t = [1.0, 3.0, 2.0, 4.0, 0.0, 1.0, 1.0, 0.0];
        let y = matmul(dt, (&[2, 2, 2], &a_t), (&[2, 2], &[5.0, 7.0, 6.0, 8.0]), true, true);
        assert_exact(&y, dt, &[2, 2, 2], &[19.0, 22.0, 43.0, 50.0, 7.0, 8.0, 5.0, 6.0]);
    }
}

#[test]
fn matmul_of_mlp_size_runs() {
    // x[i][p] = i mod 4 and w[p][j] = j, so (x·w)[i][j] = 784·j·(i mod 4), exact in f32.
    let x: Vec<f32> = (0..128 * 784).map(|e| ((e / 784) % 4) as f32).collect();
    let w: Vec<f32> = (0..784 * 100).map(|e| (e % 100) as f32).collect();
    let y = run2(
        Tensor::from_f32(vec![128, 784], x).unwrap(),
        Tensor::from_f32(vec![784, 100], w).unwrap(),
        |g, a, b| g.matmul(a, b, false, false).unwrap(),
    );
    assert_eq!(y.shape(), &[128, 100]);
    let v = y.as_f32().unwrap();
    for (i, j) in [(0, 0), (1, 1), (2, 50), (3, 99), (127, 99), (126, 7)] {
        assert_eq!(
            v[i * 100 + j],
            (784 * j * (i % 4)) as f32,
            "element ({i}, {j})"
        );
    }
}

// ----- im2col / col2im ---------------------------------------------------------------------

fn window(kernel: &[usize], stride: &[usize], pad: &[usize], dilation: &[usize]) -> Window {
    Window::new(kernel)
        .with_stride(stride)
        .with_padding(pad)
        .with_dilation(dilation)
}

fn im2col(dt: DType, shape: &[usize], xs: &[f64], w: &Window) -> Tensor {
    run1(t(dt, shape, xs), |g, x| g.im2col(x, w).unwrap())
}

fn col2im(dt: DType, shape: &[usize], cols: &[f64], w: &Window, spatial: &[usize]) -> Tensor {
    run1(t(dt, shape, cols), |g, x| g.col2im(x, w, spatial).unwrap())
}

/// 1..=9 as a 1×1×3×3 image.
const IMG3: [f64; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];

float_tests! {
    fn im2col_2d_dense(dt) {
        let y = im2col(dt, &[1, 1, 3, 3], &IMG3, &Window::new([2, 2]));
        assert_exact(&y, dt, &[1, 4, 4], &[
            1.0, 2.0, 4.0, 5.0, // kernel offset (0, 0) at the four positions
            2.0, 3.0, 5.0, 6.0, // (0, 1)
            4.0, 5.0, 7.0, 8.0, // (1, 0)
            5.0, 6.0, 8.0, 9.0, // (1, 1)
        ]);
    }

    fn im2col_2d_stride_and_padding(dt) {
        let w = window(&[2, 2], &[2, 2], &[1, 1], &[1, 1]);
        let y = im2col(dt, &[1, 1, 3, 3], &IMG3, &w);
        assert_exact(&y, dt, &[1, 4, 4], &[
            0.0, 0.0, 0.0, 5.0,
            0.0, 0.0, 4.0, 6.0,
            0.0, 2.0, 0.0, 8.0,
            1.0, 3.0, 7.0, 9.0,
        ]);
    }

    fn im2col_2d_dilation(dt) {
        let w = window(&[2, 2], &[1, 1], &[0, 0], &[2, 2]);
        let y = im2col(dt, &[1, 1, 3, 3], &IMG3, &w);
        assert_exact(&y, dt, &[1, 4, 1], &[1.0, 3.0, 7.0, 9.0]);
    }

    fn im2col_2d_stride_padding_and_dilation(dt) {
        let x: Vec<f64> = (1..=16).map(f64::from).collect();
        let w = window(&[2, 2], &[2, 2], &[1, 1], &[2, 2]);
        let y = im2col(dt, &[1, 1, 4, 4], &x, &w);
        assert_exact(&y, dt, &[1, 4, 4], &[
            0.0, 0.0, 0.0, 6.0,
            0.0, 0.0, 6.0, 8.0,
            0.0, 6.0, 0.0, 14.0,
            6.0, 8.0, 14.0, 16.0,
        ]);
    }

    fn im2col_2d_channels_and_batch(dt) {
        // Rows are c·K + kernel offset; a 1×2 kernel over 2×2 planes.
        let x: Vec<f64> = (1..=16).map(f64::from).collect();
        let y = im2col(dt, &[2, 2, 2, 2], &x, &Window::new([1, 2]));
        assert_exact(&y, dt, &[2, 4, 2], &[
            1.0, 3.0, 2.0, 4.0, 5.0, 7.0, 6.0, 8.0,
            9.0, 11.0, 10.0, 12.0, 13.0, 15.0, 14.0, 16.0,
        ]);
    }

    fn im2col_2d_asymmetric_padding(dt) {
        let mut w = Window::new([1, 2]);
        w.pad_low = vec![0, 1];
        let y = im2col(dt, &[1, 1, 1, 3], &[1.0, 2.0, 3.0], &w);
        assert_exact(&y, dt, &[1, 2, 3], &[0.0, 1.0, 2.0, 1.0, 2.0, 3.0]);
        let mut w = Window::new([1, 2]);
        w.pad_high = vec![0, 1];
        let z = im2col(dt, &[1, 1, 1, 3], &[1.0, 2.0, 3.0], &w);
        assert_exact(&z, dt, &[1, 2, 3], &[1.0, 2.0, 3.0, 2.0, 3.0, 0.0]);
    }

    fn im2col_1d(dt) {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let w = window(&[3], &[2], &[1], &[1]);
        let y = im2col(dt, &[1, 1, 5], &x, &w);
        assert_exact(&y, dt, &[1, 3, 3], &[0.0, 2.0, 4.0, 1.0, 3.0, 5.0, 2.0, 4.0, 0.0]);
        let d = im2col(dt, &[1, 1, 5], &x, &window(&[2], &[1], &[0], &[2]));
        assert_exact(&d, dt, &[1, 2, 3], &[1.0, 2.0, 3.0, 3.0, 4.0, 5.0]);
    }

    fn im2col_3d(dt) {
        let x: Vec<f64> = (0..8).map(f64::from).collect();
        let whole = im2col(dt, &[1, 1, 2, 2, 2], &x, &Window::new([2, 2, 2]));
        assert_exact(&whole, dt, &[1, 8, 1], &x);
        let y = im2col(dt, &[1, 1, 2, 2, 2], &x, &Window::new([1, 1, 2]));
        assert_exact(&y, dt, &[1, 2, 4], &[0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]);
    }

    fn col2im_2d_sums_overlaps(dt) {
        let y = col2im(dt, &[1, 4, 4], &[1.0; 16], &Window::new([2, 2]), &[3, 3]);
        assert_exact(&y, dt, &[1, 1, 3, 3], &[1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    }

    fn col2im_2d_stride_and_padding(dt) {
        let cols: Vec<f64> = (1..=16).map(f64::from).collect();
        let w = window(&[2, 2], &[2, 2], &[1, 1], &[1, 1]);
        let y = col2im(dt, &[1, 4, 4], &cols, &w, &[3, 3]);
        assert_exact(&y, dt, &[1, 1, 3, 3], &[13.0, 10.0, 14.0, 7.0, 4.0, 8.0, 15.0, 12.0, 16.0]);
    }

    fn col2im_2d_stride_padding_and_dilation(dt) {
        let w = window(&[2, 2], &[2, 2], &[1, 1], &[2, 2]);
        let y = col2im(dt, &[1, 4, 4], &[1.0; 16], &w, &[4, 4]);
        assert_exact(&y, dt, &[1, 1, 4, 4], &[
            0.0, 0.0, 0.0, 0.0,
            0.0, 4.0, 0.0, 2.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 2.0, 0.0, 1.0,
        ]);
    }

    fn col2im_2d_channels(dt) {
        let cols = [1.0, 3.0, 2.0, 4.0, 5.0, 7.0, 6.0, 8.0];
        let y = col2im(dt, &[1, 4, 2], &cols, &Window::new([1, 2]), &[2, 2]);
        assert_exact(&y, dt, &[1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    }

    fn col2im_1d(dt) {
        let cols = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = col2im(dt, &[1, 2, 3], &cols, &window(&[2], &[1], &[0], &[2]), &[5]);
        assert_exact(&y, dt, &[1, 1, 5], &[1.0, 2.0, 7.0, 5.0, 6.0]);
    }
}

/// `<im2col(x), y> == <x, col2im(y)>` on random data.
#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let mut asym = window(&[3, 2], &[2, 1], &[0, 0], &[2, 1]);
    asym.pad_low = vec![1, 0];
    asym.pad_high = vec![0, 2];
    let cases = [
        (vec![2, 3, 7, 6], asym),
        (
            vec![1, 2, 5, 4, 6],
            window(&[2, 3, 2], &[1, 2, 2], &[1, 1, 0], &[2, 1, 1]),
        ),
        (vec![3, 1, 9], window(&[3], &[2], &[2], &[1])),
    ];
    for (case, (shape, w)) in cases.into_iter().enumerate() {
        let seed = case as u64;
        let n: usize = shape.iter().product();
        let x: Vec<f64> = (0..n as u64)
            .map(|i| rng::uniform_f64(seed, 0, i) - 0.5)
            .collect();
        let cols = im2col(DType::F64, &shape, &x, &w);
        let y: Vec<f64> = (0..cols.numel() as u64)
            .map(|i| rng::uniform_f64(seed, 1, i) - 0.5)
            .collect();
        let back = col2im(DType::F64, cols.shape(), &y, &w, &shape[2..]);
        assert_eq!(back.shape(), &shape[..]);
        let lhs: f64 = cols.to_f64_vec().iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(back.to_f64_vec()).map(|(a, b)| a * b).sum();
        assert!(
            lhs.abs() > 1e-3,
            "case {case}: degenerate inner product {lhs}"
        );
        assert!((lhs - rhs).abs() < 1e-12, "case {case}: {lhs} vs {rhs}");
    }
}

// ----- gather / scatter_add ----------------------------------------------------------------

float_tests! {
    fn gather(dt) {
        let data = t(dt, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let y = run2(data.clone(), ti(&[2, 2], &[2, 0, 0, 1]), |g, d, i| g.gather(d, i).unwrap());
        assert_exact(&y, dt, &[2, 2, 2], &[5.0, 6.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0]);
        let s = run2(data, ti(&[], &[1]), |g, d, i| g.gather(d, i).unwrap());
        assert_exact(&s, dt, &[2], &[3.0, 4.0]);
        // Rank-1 data gathers scalars.
        let v = run2(t(dt, &[4], &[10.0, 20.0, 30.0, 40.0]), ti(&[3], &[3, 3, 0]), |g, d, i| {
            g.gather(d, i).unwrap()
        });
        assert_exact(&v, dt, &[3], &[40.0, 40.0, 10.0]);
    }

    fn scatter_add(dt) {
        let upd = t(dt, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let y = run2(upd, ti(&[3], &[2, 0, 2]), |g, u, i| g.scatter_add(u, i, 4).unwrap());
        assert_exact(&y, dt, &[4, 2], &[3.0, 4.0, 0.0, 0.0, 6.0, 8.0, 0.0, 0.0]);
        // Indices of rank 2 with scalar rows.
        let z = run2(t(dt, &[2, 2], &[1.0, 2.0, 4.0, 8.0]), ti(&[2, 2], &[1, 1, 0, 1]), |g, u, i| {
            g.scatter_add(u, i, 3).unwrap()
        });
        assert_exact(&z, dt, &[3], &[4.0, 11.0, 0.0]);
    }
}

#[test]
fn i32_gather_and_scatter_add() {
    let y = run2(ti(&[3], &[7, 8, 9]), ti(&[2], &[2, 0]), |g, d, i| {
        g.gather(d, i).unwrap()
    });
    assert_eq!(y.as_i32().unwrap(), &[9, 7]);
    let s = run2(ti(&[2], &[i32::MAX, 1]), ti(&[2], &[0, 0]), |g, u, i| {
        g.scatter_add(u, i, 2).unwrap()
    });
    assert_eq!(s.as_i32().unwrap(), &[i32::MIN, 0]);
}

// ----- random ------------------------------------------------------------------------------

/// Runs a random node built by `build` with an optional i32 counter input `step`.
fn random(
    counter: Option<i32>,
    build: impl FnOnce(&mut Graph, Option<NodeId>) -> NodeId,
) -> Tensor {
    let mut g = Graph::new();
    let c = counter.map(|_| g.input("step", DType::I32, &[]).unwrap());
    let y = build(&mut g, c);
    g.set_output("y", y).unwrap();
    let f: Feeds = counter
        .map(|v| ("step".to_string(), ti(&[], &[v])))
        .into_iter()
        .collect();
    interp::run(&g, &f).unwrap().remove("y").unwrap()
}

float_tests! {
    fn random_uniform(dt) {
        let draw = |counter| {
            random(counter, |g, c| g.random_uniform(dt, &[2, 500], 7, -2.0, 3.0, c).unwrap())
        };
        let y = draw(None);
        assert_eq!((y.dtype(), y.shape()), (dt, &[2usize, 500][..]));
        let v = y.to_f64_vec();
        // Element i is low + (high − low)·u(seed, 0, i), u drawn at the dtype's precision.
        for i in 0..4 {
            let expected = if dt == DType::F32 {
                (-2.0f32 + 5.0f32 * rng::uniform_f32(7, 0, i)) as f64
            } else {
                -2.0 + 5.0 * rng::uniform_f64(7, 0, i)
            };
            assert_eq!(v[i as usize], expected, "element {i}");
        }
        assert!(v.iter().all(|x| (-2.0..3.0).contains(x)), "range");
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.2, "mean {mean}");
        assert_eq!(draw(None), y, "deterministic");
        assert_eq!(draw(Some(0)), y, "no counter means counter 0");
        let next = draw(Some(1));
        assert_ne!(next, y, "the counter changes the values");
        assert!(next.to_f64_vec().iter().all(|x| (-2.0..3.0).contains(x)));
        // Negative counters are sign-extended: -1 is u64::MAX.
        let neg = draw(Some(-1)).to_f64_vec();
        let expected = if dt == DType::F32 {
            (-2.0f32 + 5.0f32 * rng::uniform_f32(7, u64::MAX, 0)) as f64
        } else {
            -2.0 + 5.0 * rng::uniform_f64(7, u64::MAX, 0)
        };
        assert_eq!(neg[0], expected);
    }

    fn random_normal(dt) {
        let draw = |counter| {
            random(counter, |g, c| g.random_normal(dt, &[4000], 3, 1.0, 2.0, c).unwrap())
        };
        let y = draw(None);
        assert_eq!((y.dtype(), y.shape()), (dt, &[4000usize][..]));
        let v = y.to_f64_vec();
        // Element i is mean + std·z(seed, 0, i), computed in f64 and rounded to the dtype.
        for i in 0..4 {
            let z = 1.0 + 2.0 * rng::normal_f64(3, 0, i);
            let expected = if dt == DType::F32 { z as f32 as f64 } else { z };
            assert_eq!(v[i as usize], expected, "element {i}");
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!((mean - 1.0).abs() < 0.15, "mean {mean}");
        assert!((std - 2.0).abs() < 0.15, "std {std}");
        assert_eq!(draw(None), y, "deterministic");
        assert_eq!(draw(Some(0)), y, "no counter means counter 0");
        assert_ne!(draw(Some(5)), y, "the counter changes the values");
    }
}

// ----- graph evaluation --------------------------------------------------------------------

#[test]
fn run_returns_every_output_and_ignores_unneeded_inputs() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F64, &[2]).unwrap();
    let _unused = g.input("unused", DType::F64, &[2]).unwrap();
    let two = g.scalar(DType::F64, 2.0).unwrap();
    let y = g.mul(x, two).unwrap();
    let z = g.add_(y, x).unwrap();
    g.set_output("y", y).unwrap();
    g.set_output("z", z).unwrap();
    let mut f = feeds(&[("x", t(DType::F64, &[2], &[1.0, -3.0]))]);
    f.insert("not_in_graph".into(), t(DType::F64, &[1], &[0.0]));
    let out = interp::run(&g, &f).unwrap();
    assert_eq!(out.len(), 2);
    assert_exact(&out["y"], DType::F64, &[2], &[2.0, -6.0]);
    assert_exact(&out["z"], DType::F64, &[2], &[3.0, -9.0]);
}

#[test]
fn eval_returns_requested_nodes_in_order_with_repeats() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[3]).unwrap();
    let y = g.exp(x).unwrap();
    let n = g.neg(y).unwrap();
    let s = g.sum(n, &[0], false).unwrap();
    let f = feeds(&[("x", t(DType::F32, &[3], &[0.0, 0.0, 0.0]))]);
    let vals = interp::eval(&g, &f, &[s, n, x, n]).unwrap();
    assert_eq!(vals.len(), 4);
    assert_exact(&vals[0], DType::F32, &[], &[-3.0]);
    assert_exact(&vals[1], DType::F32, &[3], &[-1.0, -1.0, -1.0]);
    assert_exact(&vals[2], DType::F32, &[3], &[0.0, 0.0, 0.0]);
    assert_exact(&vals[3], DType::F32, &[3], &[-1.0, -1.0, -1.0]);
    // Only what the request needs is evaluated: `exp(a)` needs no feed for `b`.
    let mut h = Graph::new();
    let a = h.input("a", DType::F32, &[1]).unwrap();
    let b = h.input("b", DType::F32, &[1]).unwrap();
    let ea = h.exp(a).unwrap();
    let _eb = h.exp(b).unwrap();
    let only_a = interp::eval(&h, &feeds(&[("a", t(DType::F32, &[1], &[0.0]))]), &[ea]).unwrap();
    assert_exact(&only_a[0], DType::F32, &[1], &[1.0]);
}

#[test]
fn eval_op_evaluates_one_op() {
    let x = t(DType::F64, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let op = Op::Reduce {
        func: ReduceOp::Sum,
        axes: vec![0],
        keepdims: false,
    };
    let y = interp::eval_op(&op, &TensorType::new(DType::F64, [2]), &[&x]).unwrap();
    assert_exact(&y, DType::F64, &[2], &[4.0, 6.0]);
}

// ----- errors ------------------------------------------------------------------------------

fn neg_graph() -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2]).unwrap();
    let y = g.neg(x).unwrap();
    g.set_output("y", y).unwrap();
    g
}

#[test]
fn missing_feed_is_an_error() {
    let err = interp::run(&neg_graph(), &Feeds::new()).unwrap_err();
    assert_eq!(err, InterpError::MissingFeed { name: "x".into() });
    assert_eq!(err.to_string(), "missing feed for \"x\"");
}

#[test]
fn feed_of_wrong_shape_or_dtype_is_an_error() {
    let err = interp::run(
        &neg_graph(),
        &feeds(&[("x", t(DType::F32, &[3], &[1.0; 3]))]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        InterpError::FeedType {
            name: "x".into(),
            expected: TensorType::new(DType::F32, [2]),
            got: TensorType::new(DType::F32, [3]),
        }
    );
    assert_eq!(
        err.to_string(),
        "feed \"x\" has type f32[3], but the graph expects f32[2]"
    );
    let err = interp::run(
        &neg_graph(),
        &feeds(&[("x", t(DType::F64, &[2], &[1.0; 2]))]),
    )
    .unwrap_err();
    assert!(
        matches!(&err, InterpError::FeedType { name, got, .. } if name == "x" && got.dtype == DType::F64),
        "{err:?}"
    );
}

#[test]
fn gather_index_out_of_range_is_an_error() {
    let mut g = Graph::new();
    let d = g.input("d", DType::F32, &[3, 2]).unwrap();
    let i = g.input("i", DType::I32, &[2]).unwrap();
    let y = g.gather(d, i).unwrap();
    g.set_output("y", y).unwrap();
    let data = t(DType::F32, &[3, 2], &[0.0; 6]);
    for (bad, position) in [([0, 3], 1), ([-1, 0], 0)] {
        let f = feeds(&[("d", data.clone()), ("i", ti(&[2], &bad))]);
        let err = interp::run(&g, &f).unwrap_err();
        assert_eq!(
            err,
            InterpError::IndexOutOfRange {
                op: "gather".into(),
                position,
                index: bad[position],
                rows: 3,
            }
        );
    }
    let f = feeds(&[("d", data), ("i", ti(&[2], &[0, 3]))]);
    assert_eq!(
        interp::run(&g, &f).unwrap_err().to_string(),
        "gather: index 3 (at position 1 of the indices) is out of range for 3 rows"
    );
}

#[test]
fn scatter_index_out_of_range_is_an_error() {
    let mut g = Graph::new();
    let u = g.input("u", DType::F64, &[2]).unwrap();
    let i = g.input("i", DType::I32, &[2]).unwrap();
    let y = g.scatter_add(u, i, 2).unwrap();
    g.set_output("y", y).unwrap();
    let f = feeds(&[
        ("u", t(DType::F64, &[2], &[1.0, 2.0])),
        ("i", ti(&[2], &[1, 2])),
    ]);
    assert_eq!(
        interp::run(&g, &f).unwrap_err(),
        InterpError::IndexOutOfRange {
            op: "scatter_add".into(),
            position: 1,
            index: 2,
            rows: 2,
        }
    );
}

#[test]
fn unknown_node_is_an_error() {
    let g = neg_graph();
    let err = interp::eval(&g, &Feeds::new(), &[NodeId(99)]).unwrap_err();
    assert_eq!(err, InterpError::UnknownNode { id: NodeId(99) });
}

#[test]
fn eval_op_rejects_operands_that_do_not_fit() {
    let f32x2 = t(DType::F32, &[2], &[1.0, 2.0]);
    let f32x3 = t(DType::F32, &[3], &[1.0, 2.0, 3.0]);
    let f64x2 = t(DType::F64, &[2], &[1.0, 2.0]);
    let ty = TensorType::new(DType::F32, [2]);
    let add = Op::Binary {
        func: BinaryOp::Add,
    };
    let mismatch = |r: Result<Tensor, InterpError>| match r {
        Err(InterpError::OperandMismatch { op, reason }) => (op, reason),
        other => panic!("expected an operand mismatch, got {other:?}"),
    };
    // Operand shapes that the op does not accept.
    let (op, reason) = mismatch(interp::eval_op(&add, &ty, &[&f32x2, &f32x3]));
    assert_eq!(op, "add");
    assert!(reason.contains("f32[2], f32[3]"), "{reason}");
    // Too few operands.
    mismatch(interp::eval_op(&add, &ty, &[&f32x2]));
    // Operands that are fine but give another type than the node's.
    let neg = Op::Unary { func: UnaryOp::Neg };
    let (_, reason) = mismatch(interp::eval_op(&neg, &ty, &[&f64x2]));
    assert!(reason.contains("f64[2]"), "{reason}");
    // An i32 operand to a float-only op.
    let exp = Op::Unary { func: UnaryOp::Exp };
    let i = ti(&[2], &[1, 2]);
    mismatch(interp::eval_op(
        &exp,
        &TensorType::new(DType::I32, [2]),
        &[&i],
    ));
    // A zero-sized operand (the IR has none) is rejected rather than padded.
    let empty = Tensor::from_f32(vec![0], vec![]).unwrap();
    let pad = Op::Pad {
        low: vec![1],
        high: vec![1],
        interior: vec![1],
        value: 0.0,
    };
    mismatch(interp::eval_op(
        &pad,
        &TensorType::new(DType::F32, [2]),
        &[&empty],
    ));
    // Inputs have no kernel.
    let input = Op::Input { name: "x".into() };
    assert_eq!(
        interp::eval_op(&input, &ty, &[]).unwrap_err(),
        InterpError::MissingFeed { name: "x".into() }
    );
}

#[test]
fn outputs_are_keyed_by_name() {
    // A smoke test of the map type `run` returns.
    let out: HashMap<String, Tensor> = interp::run(
        &neg_graph(),
        &feeds(&[("x", t(DType::F32, &[2], &[1.0, -2.0]))]),
    )
    .unwrap();
    assert_exact(&out["y"], DType::F32, &[2], &[-1.0, 2.0]);
}
