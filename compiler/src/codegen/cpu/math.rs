//! Transcendental functions for the Cranelift CPU backend.
//!
//! Cranelift has no `exp`, `log` or `tanh` instruction. For **`f32`** (scalar and `f32x4`,
//! the same operation sequence for both, so a vector loop and its scalar tail agree bit
//! for bit) this module emits branch-free polynomial approximations (Cephes-style
//! argument reduction and minimax polynomials). Special inputs are handled over the
//! whole range: NaN in gives NaN out; `exp` overflows to `+inf` and underflows (through
//! the subnormals) to `+0`, `exp(-inf) = 0`, `exp(+inf) = +inf`; `log(0) = -inf`,
//! `log(x < 0) = NaN`, `log(+inf) = +inf`, subnormal inputs are exact-scaled first;
//! `tanh` saturates to ±1, keeps the sign of zero and is odd by construction.
//!
//! For **`f64`** the backend calls Rust's `f64::exp`, `f64::ln` and `f64::tanh` (registered
//! as JIT symbols, see [`F64_LIBCALLS`]): f64 kernels are exact with respect to the
//! reference evaluator, which calls the same functions.
//!
//! `sigmoid(x)` is not a kernel instruction: graph lowering composes it as
//! `1 / (1 + exp(-x))` (neg, exp, add, recip), whose error follows from [`EXP_MAX_ULP`]
//! (see [`SIGMOID_MAX_ABS_ERR`]).
//!
//! # Measured accuracy (f32)
//!
//! Measured against the f64 functions (`f64::exp/ln/tanh` of the widened input) over
//! **all 2^32 f32 bit patterns**, with the polynomials evaluated with FMA and with
//! separate multiplies and adds (both give the same maxima). "ulp" is the distance, in
//! f32 steps, between the result and the f64 value rounded to f32 (counting `±inf` as one
//! step past `±f32::MAX` and subnormals as steps of 2^-149), so 1 ulp means at most 1.5
//! ulp (relative error below 1.8e-7 for normal results) from the exact value:
//!
//! | function | max ulp | max abs. error | NaN mismatches |
//! |---|---|---|---|
//! | `exp` | 1 (at x = 5.96e-8) | (relative) | 0 |
//! | `log` | 1 (at x = 9.1e-43, a subnormal) | 3.8e-6 at x ≈ 7e36 (1 ulp) | 0 |
//! | `tanh` | 1 (at x = 3.5e-4) | 7.93e-8 (at x = 0.6283, just above the branch point) | 0 |
//! | `sigmoid` = `1/(1+exp(-x))` | 2 for x ≥ −88.7 (at x = −3.0e-7) | 8.93e-8 (at x = 7.86) | 0 |
//!
//! The constants below state these bounds; the unit tests in `tests/codegen_cpu.rs` assert
//! them on a dense sweep (every 997th bit pattern plus special values, with and without
//! FMA, scalar and vector code), and the ignored test `transcendental_error_full_sweep`
//! reproduces the full measurement.

use super::fx::{bitcast, copysign, fcmp, fconst, iconst32, int_of, madd, madd_c, sel, ty};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};
use cranelift_frontend::FunctionBuilder;

/// Largest error of the f32 `exp` over all f32 inputs, in ulp of the correctly rounded
/// result (subnormal results included).
pub const EXP_MAX_ULP: u32 = 1;
/// Largest error of the f32 `log` over all f32 inputs, in ulp.
pub const LOG_MAX_ULP: u32 = 1;
/// Largest absolute error of the f32 `tanh` over all f32 inputs (measured: 7.93e-8).
pub const TANH_MAX_ABS_ERR: f64 = 8.0e-8;
/// Largest error of the f32 `tanh` over all f32 inputs, in ulp.
pub const TANH_MAX_ULP: u32 = 1;
/// Largest absolute error of `1 / (1 + exp(-x))` composed from the f32 instructions
/// (neg, exp, add, recip) over all f32 inputs (measured: 8.93e-8).
pub const SIGMOID_MAX_ABS_ERR: f64 = 9.0e-8;
/// Largest error of the composed sigmoid, in ulp, for inputs `x ≥`
/// [`SIGMOID_ULP_DOMAIN_MIN`] (below, `exp(-x)` overflows f32 and the result, a subnormal,
/// flushes to 0: an absolute error under 1.2e-38 but unbounded in ulp).
pub const SIGMOID_MAX_ULP: u32 = 2;
/// The lower end of the input range [`SIGMOID_MAX_ULP`] applies to.
pub const SIGMOID_ULP_DOMAIN_MIN: f32 = -88.7;

/// The f64 functions called from generated code: `(symbol, address)` pairs registered
/// with the JIT (the runtime's, which also exports them for linked bundles).
pub const F64_LIBCALLS: [(&str, extern "C" fn(f64) -> f64); 3] =
    xenon_runtime::aot::host::F64_FUNCTIONS;

/// `1.5 · 2^23`: adding it rounds an f32 of magnitude below 2^22 to an integer, which
/// then sits in the low mantissa bits.
const MAGIC: f64 = 12_582_912.0;
const MAGIC_BITS: i32 = 0x4b40_0000;

/// Emits `exp(x)` for `x: f32` or `f32x4`.
///
/// `n = round(x·log2 e)` (by the `MAGIC` addition), `r = x − n·ln 2` in two parts (Cody and
/// Waite; `n·C1` is exact), `exp(r) = 1 + r + r²·P(r)` with Cephes' degree-5 minimax `P` on
/// `|r| ≤ ln2/2`, then the result is scaled by `2^n` as two factors `2^⌊n/2⌋·2^⌈n/2⌉`, so
/// that subnormal results are rounded once and overflow gives `+inf`. `x` is clamped to
/// `[-110, 89]` first (both ends are far enough out that the clamped result is 0 or inf);
/// a NaN passes through every step.
pub fn exp_f32(b: &mut FunctionBuilder<'_>, fma: bool, x: Value) -> Value {
    let t = ty(b, x);
    let it = int_of(t);
    let lo = fconst(b, t, -110.0);
    let hi = fconst(b, t, 89.0);
    // Clamp: NaN compares false and stays.
    let m = fcmp(b, FloatCC::LessThan, x, lo);
    let x = sel(b, m, lo, x);
    let m = fcmp(b, FloatCC::GreaterThan, x, hi);
    let x = sel(b, m, hi, x);
    let magic = fconst(b, t, MAGIC);
    let tt = madd_c(b, fma, x, std::f64::consts::LOG2_E, magic);
    let nf = b.ins().fsub(tt, magic);
    // r = x - n*C1 - n*C2
    let nf_neg = b.ins().fneg(nf);
    let r = madd_c(b, fma, nf_neg, 0.693_359_375, x);
    let r = madd_c(b, fma, nf_neg, -2.121_944_40e-4, r);
    let z = b.ins().fmul(r, r);
    let p = fconst(b, t, 1.987_569_150_0e-4);
    let p = horner(
        b,
        fma,
        p,
        r,
        &[
            1.398_199_950_7e-3,
            8.333_451_907_3e-3,
            4.166_579_589_4e-2,
            1.666_666_545_9e-1,
            5.000_000_120_1e-1,
        ],
    );
    let y = madd(b, fma, p, z, r);
    let one = fconst(b, t, 1.0);
    let y = b.ins().fadd(y, one);
    // n as an integer: the bits of tt minus the bits of MAGIC.
    let ti = bitcast(b, it, tt);
    let mb = iconst32(b, it, MAGIC_BITS);
    let n = b.ins().isub(ti, mb);
    let one_i = iconst32(b, types::I32, 1);
    let n1 = b.ins().sshr(n, one_i);
    let n2 = b.ins().isub(n, n1);
    let s1 = pow2(b, t, n1);
    let s2 = pow2(b, t, n2);
    let y = b.ins().fmul(y, s1);
    b.ins().fmul(y, s2)
}

/// `2^n` for an integer `n` with `-126 ≤ n ≤ 127` (lane by lane).
fn pow2(b: &mut FunctionBuilder<'_>, t: cranelift_codegen::ir::Type, n: Value) -> Value {
    let it = int_of(t);
    let bias = iconst32(b, it, 127);
    let e = b.ins().iadd(n, bias);
    let sh = iconst32(b, types::I32, 23);
    let e = b.ins().ishl(e, sh);
    bitcast(b, t, e)
}

/// `((p·x + c0)·x + c1)·x + …` (Horner's scheme, one `madd` per coefficient).
fn horner(b: &mut FunctionBuilder<'_>, fma: bool, p: Value, x: Value, cs: &[f64]) -> Value {
    let t = ty(b, x);
    let mut p = p;
    for &c in cs {
        let c = fconst(b, t, c);
        p = madd(b, fma, p, x, c);
    }
    p
}

/// Emits `ln(x)` for `x: f32` or `f32x4`.
///
/// Subnormal inputs are scaled by 2^23 (exactly). The bits are split into an exponent
/// `k` and a mantissa `m ∈ [√2/2, √2)` (musl's offset trick), `f = m − 1`, and
/// `ln(x) = k·ln2 + f − f²/2 + f³·P(f)` with Cephes' degree-8 minimax `P`, `ln 2` in two
/// parts. Zero gives `-inf`, negative inputs NaN, `+inf` stays, NaN passes through.
pub fn log_f32(b: &mut FunctionBuilder<'_>, fma: bool, x: Value) -> Value {
    let t = ty(b, x);
    let it = int_of(t);
    let min_pos = fconst(b, t, f32::MIN_POSITIVE as f64);
    let sub = fcmp(b, FloatCC::LessThan, x, min_pos);
    let scale = fconst(b, t, 8_388_608.0); // 2^23
    let xs_scaled = b.ins().fmul(x, scale);
    let xs = sel(b, sub, xs_scaled, x);
    let m23 = iconst32(b, it, -23);
    let z0 = iconst32(b, it, 0);
    let eadj = sel(b, sub, m23, z0);
    let ix = bitcast(b, it, xs);
    let off = iconst32(b, it, 0x3f80_0000 - 0x3f35_04f3);
    let ix = b.ins().iadd(ix, off);
    let sh = iconst32(b, types::I32, 23);
    let k = b.ins().sshr(ix, sh);
    let bias = iconst32(b, it, 0x7f);
    let k = b.ins().isub(k, bias);
    let k = b.ins().iadd(k, eadj);
    let mant = iconst32(b, it, 0x007f_ffff);
    let ix = b.ins().band(ix, mant);
    let base = iconst32(b, it, 0x3f35_04f3);
    let ix = b.ins().iadd(ix, base);
    let m = bitcast(b, t, ix);
    let one = fconst(b, t, 1.0);
    let f = b.ins().fsub(m, one);
    let e = b.ins().fcvt_from_sint(t, k);
    let z = b.ins().fmul(f, f);
    let p = fconst(b, t, 7.037_683_629_2e-2);
    let p = horner(
        b,
        fma,
        p,
        f,
        &[
            -1.151_461_031_0e-1,
            1.167_699_874_0e-1,
            -1.242_014_084_6e-1,
            1.424_932_278_7e-1,
            -1.666_805_766_5e-1,
            2.000_071_476_5e-1,
            -2.499_999_399_3e-1,
            3.333_333_117_4e-1,
        ],
    );
    let pf = b.ins().fmul(p, f);
    let y = b.ins().fmul(pf, z);
    let y = madd_c(b, fma, e, -2.121_944_40e-4, y);
    let y = madd_c(b, fma, z, -0.5, y);
    let r = b.ins().fadd(f, y);
    let r = madd_c(b, fma, e, 0.693_359_375, r);
    // Special inputs.
    let inf = fconst(b, t, f64::INFINITY);
    let is_inf = fcmp(b, FloatCC::Equal, x, inf);
    let r = sel(b, is_inf, inf, r);
    let zero = fconst(b, t, 0.0);
    let ninf = fconst(b, t, f64::NEG_INFINITY);
    let is_zero = fcmp(b, FloatCC::Equal, x, zero);
    let r = sel(b, is_zero, ninf, r);
    let nan = fconst(b, t, f64::NAN);
    let neg = fcmp(b, FloatCC::LessThan, x, zero);
    let r = sel(b, neg, nan, r);
    let is_nan = fcmp(b, FloatCC::Unordered, x, x);
    sel(b, is_nan, x, r)
}

/// Emits `tanh(x)` for `x: f32` or `f32x4`.
///
/// On `a = |x|`: below 0.625 Cephes' odd minimax polynomial `a + a³·P(a²)`, above
/// `1 − 2/(exp(2a) + 1)` with [`exp_f32`] (which saturates to 1 once `exp` overflows);
/// the sign of `x` is copied onto the result (so `tanh(-0) = -0`). NaN passes through.
pub fn tanh_f32(b: &mut FunctionBuilder<'_>, fma: bool, x: Value) -> Value {
    let t = ty(b, x);
    let a = b.ins().fabs(x);
    // Small branch.
    let z = b.ins().fmul(a, a);
    let p = fconst(b, t, -5.704_988_727_45e-3);
    let p = horner(
        b,
        fma,
        p,
        z,
        &[
            2.063_908_879_54e-2,
            -5.373_971_555_31e-2,
            1.333_144_220_36e-1,
            -3.333_328_194_22e-1,
        ],
    );
    let pz = b.ins().fmul(p, z);
    let small = madd(b, fma, pz, a, a);
    // Large branch.
    let a2 = b.ins().fadd(a, a);
    let e = exp_f32(b, fma, a2);
    let one = fconst(b, t, 1.0);
    let two = fconst(b, t, 2.0);
    let ep1 = b.ins().fadd(e, one);
    let q = b.ins().fdiv(two, ep1);
    let large = b.ins().fsub(one, q);
    let lim = fconst(b, t, 0.625);
    let is_small = fcmp(b, FloatCC::LessThan, a, lim);
    let r = sel(b, is_small, small, large);
    copysign(b, r, x)
}
