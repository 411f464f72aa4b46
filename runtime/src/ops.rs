//! Scalar operation kinds shared by the compiler's IR and the runtime's kernels.
//!
//! The IR's primitive ops (`xenon_compiler::ir::Op`) and the loop kernels the runtime
//! executes ([`crate::kernel`]) use the same enums, so a kernel instruction means exactly
//! what the IR op means.

use crate::element::Element;
use crate::with_dtype;
use serde::{Deserialize, Serialize};

/// Elementwise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnaryOp {
    /// `-x`. All dtypes (i32 wraps).
    Neg,
    /// `|x|`. All dtypes (i32 wraps at `i32::MIN`).
    Abs,
    /// `-1`, `0` or `1` (NaN stays NaN). All dtypes.
    Sign,
    /// `e^x`. Floats only.
    Exp,
    /// Natural logarithm (`-inf` at 0, NaN below). Floats only.
    Log,
    /// Square root (NaN below 0). Floats only.
    Sqrt,
    /// `1/x`. Floats only.
    Recip,
    /// Hyperbolic tangent. Floats only.
    Tanh,
}

impl UnaryOp {
    /// Every unary op, in declaration order.
    pub const ALL: [UnaryOp; 8] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Recip,
        UnaryOp::Tanh,
    ];

    /// The lowercase name used in dumps.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Recip => "recip",
            UnaryOp::Tanh => "tanh",
        }
    }

    /// True when the op is defined for floating-point operands only.
    pub fn float_only(self) -> bool {
        !matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign)
    }
}

/// Elementwise functions of two operands of equal shape and dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryOp {
    /// `a + b` (i32 wraps).
    Add,
    /// `a - b` (i32 wraps).
    Sub,
    /// `a * b` (i32 wraps).
    Mul,
    /// `a / b`. Floats only.
    Div,
    /// The larger operand; NaN if either operand is NaN.
    Max,
    /// The smaller operand; NaN if either operand is NaN.
    Min,
}

impl BinaryOp {
    /// Every binary op, in declaration order.
    pub const ALL: [BinaryOp; 6] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ];

    /// The lowercase name used in dumps.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
        }
    }

    /// True when the op is defined for floating-point operands only.
    pub fn float_only(self) -> bool {
        matches!(self, BinaryOp::Div)
    }
}

/// Comparisons. The result has the operands' dtype and holds 1 where the comparison holds
/// and 0 elsewhere (a mask that multiplies or selects). Any comparison with NaN is false,
/// except `ne`, which is true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CompareOp {
    /// Every comparison, in declaration order.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Eq,
        CompareOp::Ne,
    ];

    /// The lowercase name used in dumps.
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
        }
    }

    /// Evaluates the comparison.
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
        }
    }
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReduceOp {
    /// Sum (all dtypes; summed in index order).
    Sum,
    /// Maximum (all dtypes; NaN if any element is NaN).
    Max,
    /// Arithmetic mean. Floats only.
    Mean,
}

impl ReduceOp {
    /// The lowercase name used in dumps.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Mean => "mean",
        }
    }
}

/// One scalar value of any dtype: the unit the reference kernel evaluator computes with.
/// Every method applies the one definition of the op in [`Element`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    F32(f32),
    F64(f64),
    I32(i32),
}

pub use crate::element::{max_nan, min_nan};

/// `$body` with `$x` bound to the value of scalar `$s`, whatever its dtype.
macro_rules! each {
    ($s:expr, |$x:ident| $body:expr) => {
        match $s {
            Scalar::F32($x) => $body,
            Scalar::F64($x) => $body,
            Scalar::I32($x) => $body,
        }
    };
}

/// `$body` (an `Option` of the operands' type) with `$x` and `$y` bound to the values of
/// two scalars, as a scalar; `None` when their dtypes differ.
macro_rules! pairwise {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Scalar::F32($x), Scalar::F32($y)) => $body.map(Scalar::F32),
            (Scalar::F64($x), Scalar::F64($y)) => $body.map(Scalar::F64),
            (Scalar::I32($x), Scalar::I32($y)) => $body.map(Scalar::I32),
            _ => None,
        }
    };
}

impl Scalar {
    /// The value's dtype.
    pub fn dtype(self) -> crate::DType {
        match self {
            Scalar::F32(_) => crate::DType::F32,
            Scalar::F64(_) => crate::DType::F64,
            Scalar::I32(_) => crate::DType::I32,
        }
    }

    /// `v` converted to `dtype` with [`Element::from_f64`] (f32 rounds to nearest; i32
    /// truncates toward zero, saturating, NaN to 0).
    pub fn from_f64(dtype: crate::DType, v: f64) -> Scalar {
        with_dtype!(dtype, T => T::from_f64(v).scalar())
    }

    /// The start value of reduction `op` in `dtype` ([`Element::identity`]).
    pub fn identity(op: ReduceOp, dtype: crate::DType) -> Scalar {
        with_dtype!(dtype, T => T::identity(op).scalar())
    }

    /// Widened to f64 (exact).
    pub fn to_f64(self) -> f64 {
        each!(self, |x| x.to_f64())
    }

    /// The value converted to `T` ([`Element::cast`]).
    pub fn get<T: Element>(self) -> T {
        each!(self, |x| x.cast::<T>())
    }

    /// True when the value is not zero (NaN counts as non-zero).
    pub fn is_nonzero(self) -> bool {
        each!(self, |x| x.is_nonzero())
    }

    /// Converts to `to` with [`Element::cast`] (f32→f64 exact, f64→f32 rounded once,
    /// float→i32 truncated toward zero, saturating, NaN to 0; i32→float rounded to
    /// nearest). A value already of dtype `to` is returned as it is.
    pub fn cast(self, to: crate::DType) -> Scalar {
        if self.dtype() == to {
            return self;
        }
        with_dtype!(to, U => self.get::<U>().scalar())
    }

    /// `func(self)` ([`Element::unary`]), or `None` for a float-only op on an i32.
    pub fn unary(self, func: UnaryOp) -> Option<Scalar> {
        each!(self, |x| x.unary(func).map(Element::scalar))
    }

    /// `func(self, b)` ([`Element::binary`]), or `None` for mismatched dtypes or a
    /// float-only op on i32.
    pub fn binary(self, func: BinaryOp, b: Scalar) -> Option<Scalar> {
        pairwise!(self, b, |x, y| x.binary(func, y))
    }

    /// 1 where `self ∘ b` holds, else 0, in the operands' dtype ([`Element::compare`];
    /// `None` if the dtypes differ).
    pub fn compare(self, func: CompareOp, b: Scalar) -> Option<Scalar> {
        pairwise!(self, b, |x, y| Some(x.compare(func, y)))
    }

    /// One step of reduction `op` ([`Element::accumulate`]), or `None` for mismatched
    /// dtypes.
    pub fn accumulate(self, op: ReduceOp, x: Scalar) -> Option<Scalar> {
        pairwise!(self, x, |a, x| Some(a.accumulate(op, x)))
    }
}
