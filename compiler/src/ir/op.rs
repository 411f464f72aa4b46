//! The primitive op set.
//!
//! Every layer, cost and optimizer lowers to these ops, and every backend implements all of
//! them. Each op belongs to one [`OpGroup`] (TVM's fusion lattice), which the kernel
//! partitioner and the rewrite rules use. The exact meaning of each op is the reference
//! interpreter's ([`crate::interp`]); the shape and dtype rules are in [`super::infer`].

use super::num_serde::{f64_value, f64_values};
use serde::{Deserialize, Serialize};
use std::fmt;
use xenon_runtime::DType;
pub use xenon_runtime::ops::{BinaryOp, CompareOp, ReduceOp, UnaryOp};

/// The sliding window of a convolution or pooling, over the trailing spatial axes of an
/// `N × C × spatial…` tensor (1, 2 or 3 spatial axes; NCHW for images).
///
/// Output size per spatial axis: `floor((x + pad_low + pad_high − dilation·(k−1) − 1) /
/// stride) + 1`, neon's formula with the padding split into its two sides.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Kernel extent per spatial axis.
    pub kernel: Vec<usize>,
    /// Step between windows per spatial axis (≥ 1).
    pub stride: Vec<usize>,
    /// Zero padding before each spatial axis.
    pub pad_low: Vec<usize>,
    /// Zero padding after each spatial axis.
    pub pad_high: Vec<usize>,
    /// Gap between kernel taps per spatial axis (1 = dense).
    pub dilation: Vec<usize>,
}

impl Window {
    /// A window with the given kernel, stride 1, no padding and dilation 1.
    pub fn new(kernel: impl Into<Vec<usize>>) -> Window {
        let kernel = kernel.into();
        let n = kernel.len();
        Window {
            kernel,
            stride: vec![1; n],
            pad_low: vec![0; n],
            pad_high: vec![0; n],
            dilation: vec![1; n],
        }
    }

    /// Sets the stride of every axis.
    pub fn with_stride(mut self, stride: impl Into<Vec<usize>>) -> Window {
        self.stride = stride.into();
        self
    }

    /// Sets symmetric padding per axis.
    pub fn with_padding(mut self, pad: impl Into<Vec<usize>>) -> Window {
        let pad = pad.into();
        self.pad_low = pad.clone();
        self.pad_high = pad;
        self
    }

    /// Sets the dilation of every axis.
    pub fn with_dilation(mut self, dilation: impl Into<Vec<usize>>) -> Window {
        self.dilation = dilation.into();
        self
    }

    /// Number of spatial axes.
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    /// The runtime's description of this window over an image of shape `image`
    /// (`N × C × spatial…`), or `None` when it does not fit.
    pub fn spec(&self, image: &[usize]) -> Option<xenon_runtime::program::WindowSpec> {
        let out = (0..self.rank())
            .map(|d| self.output_size(d, *image.get(d + 2)?))
            .collect::<Option<Vec<usize>>>()?;
        Some(xenon_runtime::program::WindowSpec {
            kernel: self.kernel.clone(),
            stride: self.stride.clone(),
            pad_low: self.pad_low.clone(),
            pad_high: self.pad_high.clone(),
            dilation: self.dilation.clone(),
            out,
        })
    }

    /// Output size along spatial axis `axis` for input size `x`, or `None` when the
    /// (padded) input is smaller than the dilated kernel, an attribute is zero, or the
    /// padded size or kernel span overflows `usize`.
    pub fn output_size(&self, axis: usize, x: usize) -> Option<usize> {
        let (k, s, d) = (self.kernel[axis], self.stride[axis], self.dilation[axis]);
        if k == 0 || s == 0 || d == 0 {
            return None;
        }
        let padded = x
            .checked_add(self.pad_low[axis])?
            .checked_add(self.pad_high[axis])?;
        let span = d.checked_mul(k - 1)?.checked_add(1)?;
        (padded >= span).then(|| (padded - span) / s + 1)
    }
}

/// A constant's elements, as f64 (exact for f32 and i32 values). One value is a splat:
/// every element of the node's shape equals it. Otherwise there is one value per element,
/// row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Literal {
    #[serde(with = "f64_values")]
    pub values: Vec<f64>,
}

impl Literal {
    /// A splat of one value.
    pub fn splat(v: f64) -> Literal {
        Literal { values: vec![v] }
    }

    /// The splat value, if this literal is one.
    pub fn as_splat(&self) -> Option<f64> {
        (self.values.len() == 1).then(|| self.values[0])
    }

    /// The `n × n` identity matrix (ones on the diagonal, zeros elsewhere).
    ///
    /// ```
    /// use xenon_compiler::ir::Literal;
    /// let i = Literal::identity(2);
    /// assert_eq!(i.values, [1.0, 0.0, 0.0, 1.0]);
    /// assert!(i.is_identity(2) && !Literal::splat(1.0).is_identity(2));
    /// ```
    pub fn identity(n: usize) -> Literal {
        Literal {
            values: (0..n * n).map(|k| Self::identity_value(n, k)).collect(),
        }
    }

    /// True when these are the values of the `n × n` identity matrix.
    pub fn is_identity(&self, n: usize) -> bool {
        self.values.len() == n * n
            && self
                .values
                .iter()
                .enumerate()
                .all(|(k, &x)| x == Self::identity_value(n, k))
    }

    /// Element `k` (row-major) of the `n × n` identity.
    fn identity_value(n: usize, k: usize) -> f64 {
        if k.is_multiple_of(n + 1) { 1.0 } else { 0.0 }
    }
}

/// TVM's fusion classes, used by the partitioner and by the rewrite rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpGroup {
    /// Output element `i` depends on input element `i` only.
    Elementwise,
    /// Each output element reads one input element at a computed index (movement ops).
    Injective,
    /// Combines many input elements into one output element.
    Reduction,
    /// A complex op that can absorb an elementwise epilogue into its output (matmul).
    OutElementwiseFusable,
    /// Never fused: graph leaves, scatter-style ops.
    Opaque,
}

impl OpGroup {
    /// The name used in dumps.
    pub fn name(self) -> &'static str {
        match self {
            OpGroup::Elementwise => "elementwise",
            OpGroup::Injective => "injective",
            OpGroup::Reduction => "reduction",
            OpGroup::OutElementwiseFusable => "out-elementwise-fusable",
            OpGroup::Opaque => "opaque",
        }
    }
}

/// A primitive op. Operands are the node's inputs, in order; the table gives them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A value fed at run time (a batch, labels). No operands.
    Input { name: String },
    /// A trainable value (weights, biases) or optimizer state. No operands.
    Parameter { name: String },
    /// A compile-time constant. No operands.
    Constant { value: Literal },
    /// Uniform samples on `[low, high)`: element `i` is `low + (high−low)·u(seed, c, i)`
    /// with [`xenon_runtime::rng`]. Operands: none (counter `c` = 0) or one i32 scalar
    /// counter, so that a training step draws fresh values each step.
    RandomUniform {
        seed: u64,
        #[serde(with = "f64_value")]
        low: f64,
        #[serde(with = "f64_value")]
        high: f64,
    },
    /// Normal samples `mean + std·z(seed, c, i)`; operands as for `RandomUniform`.
    RandomNormal {
        seed: u64,
        #[serde(with = "f64_value")]
        mean: f64,
        #[serde(with = "f64_value")]
        std: f64,
    },
    /// `f(x)`. Operand: x.
    Unary { func: UnaryOp },
    /// `f(a, b)`, equal shapes and dtypes. Operands: a, b.
    Binary { func: BinaryOp },
    /// `a ∘ b` as a 0/1 mask of the operands' dtype. Operands: a, b.
    Compare { func: CompareOp },
    /// `cond ≠ 0 ? a : b`, elementwise. Operands: cond (any dtype), a, b.
    Select,
    /// Converts the dtype (float→i32 truncates toward zero, saturating, NaN to 0).
    /// Operand: x.
    Cast { to: DType },
    /// Reduces over `axes` (distinct, any order); `keepdims` keeps them as size 1.
    /// Operand: x.
    Reduce {
        func: ReduceOp,
        axes: Vec<usize>,
        keepdims: bool,
    },
    /// Index (i32) of the first maximum along `axis`. Operand: x.
    #[serde(rename = "argmax")]
    ArgMax { axis: usize, keepdims: bool },
    /// Same elements, new shape of equal element count. Operand: x.
    Reshape { shape: Vec<usize> },
    /// Output axis `i` is input axis `perm[i]`. Operand: x.
    Permute { perm: Vec<usize> },
    /// Numpy broadcasting to `shape`: input axes align to the right; each is equal or 1.
    /// Operand: x.
    Broadcast { shape: Vec<usize> },
    /// Elements `start, start+step, …` below `end` along every axis. Operand: x.
    Slice {
        start: Vec<usize>,
        end: Vec<usize>,
        step: Vec<usize>,
    },
    /// Pads each axis with `low` elements before, `high` after and `interior` between
    /// neighbours, all equal to `value`. (Interior padding is what makes `pad` the adjoint
    /// of a strided slice.) Operand: x.
    Pad {
        low: Vec<usize>,
        high: Vec<usize>,
        interior: Vec<usize>,
        #[serde(with = "f64_value")]
        value: f64,
    },
    /// Joins operands of equal rank and dtype along `axis`. Operands: one or more.
    Concat { axis: usize },
    /// Batched matrix product `op(a) · op(b)` over the last two axes, where `op` transposes
    /// when the flag is set. Leading (batch) axes are equal, or one operand is rank 2 and
    /// is shared by every batch. Operands: a, b.
    #[serde(rename = "matmul")]
    MatMul { trans_a: bool, trans_b: bool },
    /// Unfolds sliding windows: `N×C×spatial` → `N × (C·∏kernel) × (∏out)`, row index
    /// `c·∏kernel + kernel offset` (row-major over the kernel axes), column = output
    /// position (row-major). Padding reads zeros. Operand: x.
    #[serde(rename = "im2col")]
    Im2Col { window: Window },
    /// The adjoint of `Im2Col`: sums each column entry back into the image position it was
    /// read from, `N × (C·∏kernel) × (∏out)` → `N×C×spatial`. Operand: cols.
    #[serde(rename = "col2im")]
    Col2Im { window: Window, spatial: Vec<usize> },
    /// Rows of `data` picked by `indices` (i32, any shape): output shape is
    /// `indices.shape ++ data.shape[1..]`. Operands: data, indices.
    Gather,
    /// The adjoint of `Gather`: a `rows × …` zero tensor to which each update row is added
    /// at its index. Operands: updates (`indices.shape ++ rest`), indices (i32).
    ScatterAdd { rows: usize },
    /// The identity, whose gradient is the incoming gradient times `factor` (0: a stop-
    /// gradient). Only autodiff reads the factor: the optimizer, the interpreter and the
    /// lowering treat the op as its operand. neon's `Tree` weights each branch's error
    /// into the trunk with it (`alphas`). Operand: x.
    ScaleGrad {
        #[serde(with = "f64_value")]
        factor: f64,
    },
    /// The elementwise sum of `x` over the ranks of a data-parallel run: every rank runs
    /// the same graph on its share of the batch, and the value is the same on all of them
    /// afterwards (a distributed training step sums its gradients with it). A run given no
    /// [`Collective`](xenon_runtime::collective::Collective) is one rank: the identity.
    /// Operand: x (f32 or f64).
    AllReduce,
}

impl Op {
    /// The lowercase op name used in dumps and errors (`matmul`, `reduce_sum`, `exp`, …).
    pub fn name(&self) -> String {
        match self {
            Op::Input { .. } => "input".into(),
            Op::Parameter { .. } => "parameter".into(),
            Op::Constant { .. } => "constant".into(),
            Op::RandomUniform { .. } => "random_uniform".into(),
            Op::RandomNormal { .. } => "random_normal".into(),
            Op::Unary { func } => func.name().into(),
            Op::Binary { func } => func.name().into(),
            Op::Compare { func } => func.name().into(),
            Op::Select => "select".into(),
            Op::Cast { .. } => "cast".into(),
            Op::Reduce { func, .. } => format!("reduce_{}", func.name()),
            Op::ArgMax { .. } => "argmax".into(),
            Op::Reshape { .. } => "reshape".into(),
            Op::Permute { .. } => "permute".into(),
            Op::Broadcast { .. } => "broadcast".into(),
            Op::Slice { .. } => "slice".into(),
            Op::Pad { .. } => "pad".into(),
            Op::Concat { .. } => "concat".into(),
            Op::MatMul { .. } => "matmul".into(),
            Op::Im2Col { .. } => "im2col".into(),
            Op::Col2Im { .. } => "col2im".into(),
            Op::Gather => "gather".into(),
            Op::ScatterAdd { .. } => "scatter_add".into(),
            Op::ScaleGrad { .. } => "scale_grad".into(),
            Op::AllReduce => "all_reduce".into(),
        }
    }

    /// The op's fusion class.
    pub fn group(&self) -> OpGroup {
        match self {
            Op::Unary { .. }
            | Op::Binary { .. }
            | Op::Compare { .. }
            | Op::Select
            | Op::Cast { .. }
            | Op::ScaleGrad { .. }
            | Op::RandomUniform { .. }
            | Op::RandomNormal { .. } => OpGroup::Elementwise,
            Op::Reshape { .. }
            | Op::Permute { .. }
            | Op::Broadcast { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat { .. }
            | Op::Gather
            | Op::Im2Col { .. } => OpGroup::Injective,
            Op::Reduce { .. } | Op::ArgMax { .. } => OpGroup::Reduction,
            Op::MatMul { .. } => OpGroup::OutElementwiseFusable,
            Op::Input { .. }
            | Op::Parameter { .. }
            | Op::Constant { .. }
            | Op::Col2Im { .. }
            | Op::ScatterAdd { .. }
            | Op::AllReduce => OpGroup::Opaque,
        }
    }

    /// True for ops without operands whose value is given from outside or at compile time
    /// (inputs, parameters, constants).
    pub fn is_leaf(&self) -> bool {
        matches!(
            self,
            Op::Input { .. } | Op::Parameter { .. } | Op::Constant { .. }
        )
    }

    /// A short, stable rendering of the attributes for dumps (empty when there are none).
    pub fn attrs(&self) -> String {
        fn list(v: &[usize]) -> String {
            let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            format!("[{}]", items.join(", "))
        }
        fn float(v: f64) -> String {
            format!("{v:?}")
        }
        match self {
            Op::Input { name } | Op::Parameter { name } => format!("{name:?}"),
            Op::Constant { value } => match value.as_splat() {
                Some(v) => float(v),
                None if value.values.len() <= 8 => {
                    let items: Vec<String> = value.values.iter().map(|&v| float(v)).collect();
                    format!("[{}]", items.join(", "))
                }
                None => format!("<{} values>", value.values.len()),
            },
            Op::RandomUniform { seed, low, high } => {
                format!("seed={seed}, low={}, high={}", float(*low), float(*high))
            }
            Op::RandomNormal { seed, mean, std } => {
                format!("seed={seed}, mean={}, std={}", float(*mean), float(*std))
            }
            Op::Unary { .. }
            | Op::Binary { .. }
            | Op::Compare { .. }
            | Op::Select
            | Op::Gather
            | Op::AllReduce => String::new(),
            Op::Cast { to } => format!("to={to}"),
            Op::Reduce { axes, keepdims, .. } => {
                format!("axes={}, keepdims={keepdims}", list(axes))
            }
            Op::ArgMax { axis, keepdims } => format!("axis={axis}, keepdims={keepdims}"),
            Op::Reshape { shape } | Op::Broadcast { shape } => format!("shape={}", list(shape)),
            Op::Permute { perm } => format!("perm={}", list(perm)),
            Op::Slice { start, end, step } => {
                format!(
                    "start={}, end={}, step={}",
                    list(start),
                    list(end),
                    list(step)
                )
            }
            Op::Pad {
                low,
                high,
                interior,
                value,
            } => format!(
                "low={}, high={}, interior={}, value={}",
                list(low),
                list(high),
                list(interior),
                float(*value)
            ),
            Op::Concat { axis } => format!("axis={axis}"),
            Op::MatMul { trans_a, trans_b } => format!("trans_a={trans_a}, trans_b={trans_b}"),
            Op::Im2Col { window } => window.to_string(),
            Op::Col2Im { window, spatial } => format!("{window}, spatial={}", list(spatial)),
            Op::ScatterAdd { rows } => format!("rows={rows}"),
            Op::ScaleGrad { factor } => format!("factor={}", float(*factor)),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernel={:?}, stride={:?}, pad_low={:?}, pad_high={:?}, dilation={:?}",
            self.kernel, self.stride, self.pad_low, self.pad_high, self.dilation
        )
    }
}
