//! The interpreter's tensor kernels against the runtime's [`Scalar`] (the reference kernel
//! evaluator's unit), value by value: every unary, binary and comparison op, every cast and
//! the sum and max reductions, on special values (±0, ±inf, NaN, subnormals, `i32::MIN`,
//! `i32::MAX`) in every dtype. Both paths build on `xenon_runtime::element::Element`; this
//! checks the dispatch around it (op → method, dtype → type, float-only errors), bit for bit.

use super::eval_op;
use crate::ir::{BinaryOp, CompareOp, DType, Op, ReduceOp, TensorType, UnaryOp};
use xenon_runtime::ops::Scalar;
use xenon_runtime::{Tensor, TensorData};

const DTYPES: [DType; 3] = [DType::F32, DType::F64, DType::I32];

/// Special values of `dtype`, as a tensor.
fn specials(dtype: DType) -> Tensor {
    let data = match dtype {
        DType::I32 => TensorData::I32(vec![0, 1, -1, 7, -7, 2, i32::MIN, i32::MAX, i32::MIN + 1]),
        DType::F32 => TensorData::F32(vec![
            0.0,
            -0.0,
            1.0,
            -1.5,
            2.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-40,
            f32::MAX,
            -7.0,
        ]),
        DType::F64 => TensorData::F64(vec![
            0.0,
            -0.0,
            1.0,
            -1.5,
            2.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            5e-324,
            f64::MAX,
            -7.0,
            3e38,
        ]),
    };
    Tensor::new(vec![data.len()], data).unwrap()
}

/// The elements of `t` as scalars.
fn scalars(t: &Tensor) -> Vec<Scalar> {
    match t.data() {
        TensorData::F32(v) => v.iter().map(|&x| Scalar::F32(x)).collect(),
        TensorData::F64(v) => v.iter().map(|&x| Scalar::F64(x)).collect(),
        TensorData::I32(v) => v.iter().map(|&x| Scalar::I32(x)).collect(),
    }
}

/// A tensor of `scalars` (all of one dtype).
fn tensor_of(scalars: &[Scalar]) -> Tensor {
    let widened: Vec<f64> = scalars.iter().map(|s| s.to_f64()).collect();
    let t = Tensor::from_f64_as(scalars[0].dtype(), vec![scalars.len()], &widened).unwrap();
    assert_eq!(
        bits(&self::scalars(&t)),
        bits(scalars),
        "special values are exact in f64"
    );
    t
}

/// Dtype and bits of each scalar, so that -0.0 ≠ +0.0 and NaN = NaN.
fn bits(v: &[Scalar]) -> Vec<(DType, u64)> {
    v.iter()
        .map(|s| (s.dtype(), s.to_f64().to_bits()))
        .collect()
}

/// `op` on `operands` through the interpreter, against `expected` computed per element
/// through `Scalar` (`None` anywhere means the op is undefined, which the interpreter
/// must reject).
fn check(op: Op, operands: &[&Tensor], expected: Vec<Option<Scalar>>, dtype: DType) {
    let ty = TensorType::new(dtype, operands[0].shape());
    let got = eval_op(&op, &ty, operands);
    match expected.into_iter().collect::<Option<Vec<_>>>() {
        Some(want) => assert_eq!(bits(&scalars(&got.unwrap())), bits(&want), "{op:?}"),
        None => assert!(got.is_err(), "{op:?} on {dtype} should be rejected"),
    }
}

#[test]
fn unary_ops_agree() {
    for dtype in DTYPES {
        let x = specials(dtype);
        for func in UnaryOp::ALL {
            let want = scalars(&x).into_iter().map(|v| v.unary(func)).collect();
            check(Op::Unary { func }, &[&x], want, dtype);
        }
    }
}

#[test]
fn binary_ops_and_comparisons_agree() {
    for dtype in DTYPES {
        let s = scalars(&specials(dtype));
        // Every ordered pair of special values.
        let pairs: Vec<(Scalar, Scalar)> = s
            .iter()
            .flat_map(|&a| s.iter().map(move |&b| (a, b)))
            .collect();
        let a = tensor_of(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
        let b = tensor_of(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
        for func in BinaryOp::ALL {
            let want = pairs.iter().map(|&(x, y)| x.binary(func, y)).collect();
            check(Op::Binary { func }, &[&a, &b], want, dtype);
        }
        for func in CompareOp::ALL {
            let want = pairs.iter().map(|&(x, y)| x.compare(func, y)).collect();
            check(Op::Compare { func }, &[&a, &b], want, dtype);
        }
    }
}

#[test]
fn casts_agree() {
    for from in DTYPES {
        let x = specials(from);
        for to in DTYPES {
            let want = scalars(&x).into_iter().map(|v| Some(v.cast(to))).collect();
            check(Op::Cast { to }, &[&x], want, to);
        }
    }
}

#[test]
fn sum_and_max_reductions_agree() {
    for dtype in DTYPES {
        let x = specials(dtype);
        // Prefixes, so that the NaN and the infinities enter at different points.
        for n in 1..=x.numel() {
            let s = &scalars(&x)[..n];
            let prefix = tensor_of(s);
            for func in [ReduceOp::Sum, ReduceOp::Max] {
                let folded = s.iter().try_fold(Scalar::identity(func, dtype), |acc, &v| {
                    acc.accumulate(func, v)
                });
                let op = Op::Reduce {
                    func,
                    axes: vec![0],
                    keepdims: false,
                };
                let ty = TensorType::new(dtype, vec![]);
                let got = eval_op(&op, &ty, &[&prefix]).unwrap();
                assert_eq!(
                    bits(&scalars(&got)),
                    bits(&[folded.unwrap()]),
                    "{func:?} {n}"
                );
            }
        }
    }
}
