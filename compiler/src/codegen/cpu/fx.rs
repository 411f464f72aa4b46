//! Typed instruction helpers shared by the kernel emitter ([`super::emit`]) and the math
//! library ([`super::math`]).
//!
//! Every helper works on scalars (`f32`, `f64`, `i32`) and on 128-bit vectors (`f32x4`,
//! `i32x4`) alike and emits the *same* operations for both, lane by lane, so a vector
//! loop and its scalar tail compute bit-identical results. Comparisons produce a mask:
//! an `i8` 0/1 for scalars (consumed by `select`), an all-ones/all-zeros integer vector
//! for vectors (consumed by `bitselect`).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{ConstantData, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

/// The type of `v`.
pub(super) fn ty(b: &FunctionBuilder<'_>, v: Value) -> Type {
    b.func.dfg.value_type(v)
}

/// A 16-byte vector constant of type `ty` (from little-endian lane bytes).
fn vconst(b: &mut FunctionBuilder<'_>, ty: Type, bytes: Vec<u8>) -> Value {
    let c = b.func.dfg.constants.insert(ConstantData::from(bytes));
    b.ins().vconst(ty, c)
}

/// A 32-bit constant (given by its bits) in every lane of `ty` (`f32`, `i32`, `f32x4`,
/// `i32x4`).
pub(super) fn const32(b: &mut FunctionBuilder<'_>, ty: Type, bits: u32) -> Value {
    match ty {
        types::F32 => b.ins().f32const(Ieee32::with_bits(bits)),
        types::I32 => b.ins().iconst(types::I32, i64::from(bits as i32)),
        _ => {
            debug_assert!(ty.is_vector() && ty.lane_bits() == 32);
            let bytes = (0..ty.lane_count())
                .flat_map(|_| bits.to_le_bytes())
                .collect();
            vconst(b, ty, bytes)
        }
    }
}

/// A float constant in every lane of the float type `ty`.
pub(super) fn fconst(b: &mut FunctionBuilder<'_>, ty: Type, v: f64) -> Value {
    match ty.lane_type() {
        types::F64 if !ty.is_vector() => b.ins().f64const(Ieee64::with_float(v)),
        types::F64 => {
            let bytes = (0..ty.lane_count())
                .flat_map(|_| v.to_bits().to_le_bytes())
                .collect();
            vconst(b, ty, bytes)
        }
        _ => const32(b, ty, (v as f32).to_bits()),
    }
}

/// An `i32` constant in every lane of `ty` (`i32` or `i32x4`).
pub(super) fn iconst32(b: &mut FunctionBuilder<'_>, ty: Type, v: i32) -> Value {
    const32(b, ty, v as u32)
}

/// Reinterprets `v` as `to` (same size and lane layout).
pub(super) fn bitcast(b: &mut FunctionBuilder<'_>, to: Type, v: Value) -> Value {
    if ty(b, v) == to {
        v
    } else {
        b.ins().bitcast(to, MemFlagsData::new(), v)
    }
}

/// The integer type with the lane layout of the float type `t` (`f32x4` → `i32x4`).
pub(super) fn int_of(t: Type) -> Type {
    t.as_int()
}

/// Float comparison mask `x cc y`.
pub(super) fn fcmp(b: &mut FunctionBuilder<'_>, cc: FloatCC, x: Value, y: Value) -> Value {
    b.ins().fcmp(cc, x, y)
}

/// Integer comparison mask `x cc y`.
pub(super) fn icmp(b: &mut FunctionBuilder<'_>, cc: IntCC, x: Value, y: Value) -> Value {
    b.ins().icmp(cc, x, y)
}

/// `mask ? a : c`, lane by lane.
pub(super) fn sel(b: &mut FunctionBuilder<'_>, mask: Value, a: Value, c: Value) -> Value {
    let t = ty(b, a);
    if t.is_vector() {
        let m = bitcast(b, t, mask);
        b.ins().bitselect(m, a, c)
    } else {
        b.ins().select(mask, a, c)
    }
}

/// `x * y + z`: one fused multiply-add when `fma` is set, else a multiply and an add.
pub(super) fn madd(b: &mut FunctionBuilder<'_>, fma: bool, x: Value, y: Value, z: Value) -> Value {
    if fma {
        b.ins().fma(x, y, z)
    } else {
        let p = b.ins().fmul(x, y);
        b.ins().fadd(p, z)
    }
}

/// `x * c + z` for a constant `c`.
pub(super) fn madd_c(b: &mut FunctionBuilder<'_>, fma: bool, x: Value, c: f64, z: Value) -> Value {
    let t = ty(b, x);
    let c = fconst(b, t, c);
    madd(b, fma, x, c, z)
}

/// `max(a, b)` with the semantics of `xenon_runtime::ops::max_nan`: NaN if either operand
/// is NaN (the first NaN), the first operand when they compare equal (so
/// `max(-0.0, +0.0) = -0.0`). `a_num`/`b_num` say that an operand is known not to be
/// NaN (a constant), which allows the one-compare form that x86 lowers to `maxps`.
pub(super) fn fmax_nan(
    b: &mut FunctionBuilder<'_>,
    x: Value,
    y: Value,
    x_num: bool,
    y_num: bool,
) -> Value {
    pick_nan(
        b,
        x,
        y,
        x_num,
        y_num,
        FloatCC::GreaterThanOrEqual,
        FloatCC::LessThan,
    )
}

/// `min(a, b)` with the semantics of `xenon_runtime::ops::min_nan` (see [`fmax_nan`]).
pub(super) fn fmin_nan(
    b: &mut FunctionBuilder<'_>,
    x: Value,
    y: Value,
    x_num: bool,
    y_num: bool,
) -> Value {
    pick_nan(
        b,
        x,
        y,
        x_num,
        y_num,
        FloatCC::LessThanOrEqual,
        FloatCC::GreaterThan,
    )
}

/// Picks `x` when `x keeps y` holds or `x` is NaN, else `y` (`y` when it is NaN and `x` is
/// not). `loses` is the strict negation of `keeps` for non-NaN operands.
fn pick_nan(
    b: &mut FunctionBuilder<'_>,
    x: Value,
    y: Value,
    x_num: bool,
    y_num: bool,
    keeps: FloatCC,
    loses: FloatCC,
) -> Value {
    if y_num {
        // pick y iff x loses to y (a NaN x compares false and is kept).
        let m = fcmp(b, loses, x, y);
        sel(b, m, y, x)
    } else if x_num {
        let m = fcmp(b, keeps, x, y);
        sel(b, m, x, y)
    } else {
        // pick x iff x is NaN or x keeps y (false when y is NaN).
        let nx = fcmp(b, FloatCC::Unordered, x, x);
        let k = fcmp(b, keeps, x, y);
        let m = b.ins().bor(nx, k);
        sel(b, m, x, y)
    }
}

/// `sign(x)` for floats: 1 above zero, −1 below, `x` itself otherwise (±0 and NaN).
pub(super) fn fsign(b: &mut FunctionBuilder<'_>, x: Value) -> Value {
    let t = ty(b, x);
    let zero = fconst(b, t, 0.0);
    let one = fconst(b, t, 1.0);
    let mone = fconst(b, t, -1.0);
    let gt = fcmp(b, FloatCC::GreaterThan, x, zero);
    let lt = fcmp(b, FloatCC::LessThan, x, zero);
    let r = sel(b, lt, mone, x);
    sel(b, gt, one, r)
}

/// `sign(x)` for `i32`: `clamp(x, -1, 1)`.
pub(super) fn isign(b: &mut FunctionBuilder<'_>, x: Value) -> Value {
    let t = ty(b, x);
    let mone = iconst32(b, t, -1);
    let one = iconst32(b, t, 1);
    let r = b.ins().smax(x, mone);
    b.ins().smin(r, one)
}

/// `|r|` with the sign bit of `s` (bit operations; works for vectors, where x86 has no
/// `fcopysign`).
pub(super) fn copysign(b: &mut FunctionBuilder<'_>, r: Value, s: Value) -> Value {
    let t = ty(b, r);
    let it = int_of(t);
    let (abs_mask, sign_mask) = if t.lane_type() == types::F64 {
        (i64::MAX, i64::MIN)
    } else {
        (i64::from(i32::MAX), i64::from(i32::MIN))
    };
    let ri = bitcast(b, it, r);
    let si = bitcast(b, it, s);
    let (am, sm) = if t.lane_type() == types::F64 {
        (
            fconst_bits64(b, it, abs_mask as u64),
            fconst_bits64(b, it, sign_mask as u64),
        )
    } else {
        (
            const32(b, it, abs_mask as u32),
            const32(b, it, sign_mask as u32),
        )
    };
    let ra = b.ins().band(ri, am);
    let ss = b.ins().band(si, sm);
    let o = b.ins().bor(ra, ss);
    bitcast(b, t, o)
}

/// A 64-bit integer constant in every lane of `ty` (`i64` or `i64x2`).
fn fconst_bits64(b: &mut FunctionBuilder<'_>, ty: Type, bits: u64) -> Value {
    if ty.is_vector() {
        let bytes = (0..ty.lane_count())
            .flat_map(|_| bits.to_le_bytes())
            .collect();
        vconst(b, ty, bytes)
    } else {
        b.ins().iconst(ty, bits as i64)
    }
}

/// `1` where the mask holds, else `0`, in type `t` (the comparison operands' type).
pub(super) fn mask_to_01(b: &mut FunctionBuilder<'_>, mask: Value, t: Type) -> Value {
    if t.is_vector() {
        let it = int_of(t);
        let m = bitcast(b, it, mask);
        let one_bits = if t.lane_type() == types::I32 {
            1u32
        } else {
            1.0f32.to_bits()
        };
        let one = const32(b, it, one_bits);
        let r = b.ins().band(m, one);
        bitcast(b, t, r)
    } else if t == types::I32 {
        b.ins().uextend(types::I32, mask)
    } else {
        let one = fconst(b, t, 1.0);
        let zero = fconst(b, t, 0.0);
        b.ins().select(mask, one, zero)
    }
}

/// Mask of `v != 0` (NaN counts as non-zero).
pub(super) fn nonzero(b: &mut FunctionBuilder<'_>, v: Value) -> Value {
    let t = ty(b, v);
    if t.lane_type().is_float() {
        let z = fconst(b, t, 0.0);
        fcmp(b, FloatCC::NotEqual, v, z)
    } else {
        let z = iconst32(b, t, 0);
        icmp(b, IntCC::NotEqual, v, z)
    }
}
