//! Scalar operation kinds shared by the compiler's IR and the runtime's kernels.
//!
//! The IR's primitive ops (`xenon_compiler::ir::Op`) and the loop kernels the runtime
//! executes ([`crate::kernel`]) use the same enums, so a kernel instruction means exactly
//! what the IR op means.

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
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    F32(f32),
    F64(f64),
    I32(i32),
}

/// The larger operand; NaN if either is NaN; the first when they compare equal (so
/// `max(-0.0, 0.0)` is `-0.0`). The meaning of `BinaryOp::Max` in every backend.
pub fn max_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    let nan = |x: T| x != x;
    if nan(a) || (!nan(b) && a >= b) { a } else { b }
}

/// The smaller operand; NaN if either is NaN; the first when they compare equal.
pub fn min_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    let nan = |x: T| x != x;
    if nan(a) || (!nan(b) && a <= b) { a } else { b }
}

macro_rules! float_sign {
    ($x:expr) => {{
        let x = $x;
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            x
        }
    }};
}

/// A float unary op on an f32 or f64 value.
macro_rules! float_unary {
    ($func:expr, $x:expr) => {{
        let x = $x;
        match $func {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sign => float_sign!(x),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Recip => 1.0 / x,
            UnaryOp::Tanh => x.tanh(),
        }
    }};
}

/// A float binary op on two f32 or two f64 values.
macro_rules! float_binary {
    ($func:expr, $x:expr, $y:expr) => {{
        let (x, y) = ($x, $y);
        match $func {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Max => max_nan(x, y),
            BinaryOp::Min => min_nan(x, y),
        }
    }};
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

    /// `v` converted to `dtype` (f32 rounds to nearest; i32 truncates toward zero,
    /// saturating, NaN to 0).
    pub fn from_f64(dtype: crate::DType, v: f64) -> Scalar {
        match dtype {
            crate::DType::F32 => Scalar::F32(v as f32),
            crate::DType::F64 => Scalar::F64(v),
            crate::DType::I32 => Scalar::I32(v as i32),
        }
    }

    /// Widened to f64 (exact).
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::F32(v) => v as f64,
            Scalar::F64(v) => v,
            Scalar::I32(v) => v as f64,
        }
    }

    /// True when the value is not zero (NaN counts as non-zero).
    pub fn is_nonzero(self) -> bool {
        match self {
            Scalar::F32(v) => v != 0.0,
            Scalar::F64(v) => v != 0.0,
            Scalar::I32(v) => v != 0,
        }
    }

    /// Converts to `to` (from f32 directly, so f32→f64 is exact and f64→f32 rounds once).
    pub fn cast(self, to: crate::DType) -> Scalar {
        match (self, to) {
            (Scalar::F32(v), crate::DType::F64) => Scalar::F64(v as f64),
            (Scalar::F32(v), crate::DType::I32) => Scalar::I32(v as i32),
            (Scalar::I32(v), crate::DType::F32) => Scalar::F32(v as f32),
            (s, t) if s.dtype() == t => s,
            (s, t) => Scalar::from_f64(t, s.to_f64()),
        }
    }

    /// `func(self)`, or `None` for a float-only op on an i32.
    pub fn unary(self, func: UnaryOp) -> Option<Scalar> {
        Some(match self {
            Scalar::F32(x) => Scalar::F32(float_unary!(func, x)),
            Scalar::F64(x) => Scalar::F64(float_unary!(func, x)),
            Scalar::I32(x) => Scalar::I32(match func {
                UnaryOp::Neg => x.wrapping_neg(),
                UnaryOp::Abs => x.wrapping_abs(),
                UnaryOp::Sign => x.signum(),
                _ => return None,
            }),
        })
    }

    /// `func(self, b)`, or `None` for mismatched dtypes or a float-only op on i32.
    pub fn binary(self, func: BinaryOp, b: Scalar) -> Option<Scalar> {
        Some(match (self, b) {
            (Scalar::F32(x), Scalar::F32(y)) => Scalar::F32(float_binary!(func, x, y)),
            (Scalar::F64(x), Scalar::F64(y)) => Scalar::F64(float_binary!(func, x, y)),
            (Scalar::I32(x), Scalar::I32(y)) => Scalar::I32(match func {
                BinaryOp::Add => x.wrapping_add(y),
                BinaryOp::Sub => x.wrapping_sub(y),
                BinaryOp::Mul => x.wrapping_mul(y),
                BinaryOp::Div => return None,
                BinaryOp::Max => x.max(y),
                BinaryOp::Min => x.min(y),
            }),
            _ => return None,
        })
    }

    /// 1 where `self ∘ b` holds, else 0, in the operands' dtype (`None` if they differ).
    pub fn compare(self, func: CompareOp, b: Scalar) -> Option<Scalar> {
        let holds = match (self, b) {
            (Scalar::F32(x), Scalar::F32(y)) => func.holds(x, y),
            (Scalar::F64(x), Scalar::F64(y)) => func.holds(x, y),
            (Scalar::I32(x), Scalar::I32(y)) => func.holds(x, y),
            _ => return None,
        };
        Some(Scalar::from_f64(
            self.dtype(),
            if holds { 1.0 } else { 0.0 },
        ))
    }
}
