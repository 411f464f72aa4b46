//! The OpenCL C sources of the runtime routines: the GEMM and the library steps.
//!
//! Each body is written once over a type macro `T` (and `SUF`, the name suffix `f32`,
//! `f64` or `i32`); [`runtime_source`] instantiates the bodies an executor needs into one
//! OpenCL program (one build per executor). Every kernel addresses its buffers as
//! `(__global T* base, ulong offset)` pairs, like the loop kernels, so arena buffers are
//! passed as the one arena `cl_mem` plus an element offset.

use crate::DType;

/// One tiling of the GEMM kernel. A work-group computes a `tm × tn` tile of C with
/// `(tm/wm) × (tn/wn)` work-items, each holding a `wm × wn` block of accumulators in
/// registers; A and B are staged through local memory `tk` steps of k at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmConfig {
    /// Name suffix of the kernel (`gemm_f32_<name>`).
    pub name: &'static str,
    pub tm: usize,
    pub tn: usize,
    pub wm: usize,
    pub wn: usize,
    pub tk: usize,
}

impl GemmConfig {
    /// Work-items per group along m (local dimension 1) and n (local dimension 0).
    pub fn threads(&self) -> (usize, usize) {
        (self.tm / self.wm, self.tn / self.wn)
    }

    /// Local memory the tile staging takes for elements of `size` bytes.
    pub fn local_bytes(&self, size: usize) -> usize {
        self.tk * (self.tm + self.tn) * size
    }
}

/// The tiled GEMM configurations, largest first.
pub const GEMM_CONFIGS: [GemmConfig; 3] = [
    GemmConfig {
        name: "t64",
        tm: 64,
        tn: 64,
        wm: 4,
        wn: 4,
        tk: 16,
    },
    GemmConfig {
        name: "t32",
        tm: 32,
        tn: 32,
        wm: 4,
        wn: 4,
        tk: 16,
    },
    GemmConfig {
        name: "t16",
        tm: 16,
        tn: 16,
        wm: 2,
        wn: 2,
        tk: 16,
    },
];

/// Products with at most this many multiply-adds run the one-work-item-per-element
/// kernel: staging tiles costs more than it saves.
pub const GEMM_SIMPLE_MAX_MACS: usize = 16 * 1024;

/// Which GEMM kernel runs an `m × n × k` product (batch `batch`) on a device with
/// `compute_units`, among the configurations in `usable` (those whose work-group size and
/// local memory fit the device): `None` for the simple kernel.
///
/// The rule: tiny products (at most [`GEMM_SIMPLE_MAX_MACS`] multiply-adds) take the
/// simple kernel; otherwise the largest tile is chosen that still gives every compute unit
/// at least one work-group (counting the batch), since a bigger tile reuses each staged
/// element more often but a device with idle compute units loses more than that; when no
/// tile gives enough work-groups the smallest usable one is chosen.
pub fn choose_gemm(
    usable: &[GemmConfig],
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    compute_units: usize,
) -> Option<GemmConfig> {
    if m * n * k <= GEMM_SIMPLE_MAX_MACS {
        return None;
    }
    let groups = |c: &GemmConfig| m.div_ceil(c.tm) * n.div_ceil(c.tn) * batch;
    usable
        .iter()
        .find(|c| groups(c) >= compute_units.max(1))
        .or(usable.last())
        .copied()
}

/// The OpenCL C type of `dtype`.
pub fn c_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::I32 => "int",
    }
}

/// The name suffix of `dtype`.
pub fn suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I32 => "i32",
    }
}

/// Definitions every runtime program starts with.
pub const PRELUDE: &str = r#"
#ifdef XENON_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
/* Sums and products round as written (the CPU routines' results, bit for bit). */
#pragma OPENCL FP_CONTRACT OFF
#define XCAT2(a, b) a##_##b
#define XCAT(a, b) XCAT2(a, b)
#define NAME(x) XCAT(x, SUF)
#define INDEX_OK 0x7fffffff
"#;

/// The GEMM kernels over `T` with the tile macros `GEMM_TM`, `GEMM_TN`, `GEMM_WM`,
/// `GEMM_WN`, `GEMM_TK` and the kernel name `GEMM_NAME`. `C[b] = A[b]·B[b]`, element
/// `(b, i, j)` of a view at `offset + b·batch_stride + i·row_stride + j·col_stride`; the
/// NDRange is `(ceil(n/TN)·TN/WN, ceil(m/TM)·TM/WM, batch)` in work-groups of
/// `(TN/WN, TM/WM, 1)`. Work-item `(tx, ty)` owns rows `ty + i·TM/WM` and columns
/// `tx + j·TN/WN` of the tile (interleaved, so neighbouring work-items read neighbouring
/// local-memory words).
pub const GEMM_TILED: &str = r#"
#define GEMM_RM (GEMM_TM / GEMM_WM)
#define GEMM_RN (GEMM_TN / GEMM_WN)
__kernel __attribute__((reqd_work_group_size(GEMM_RN, GEMM_RM, 1)))
void GEMM_NAME(__global const T* A, ulong ao, long ars, long acs, long abs_,
               __global const T* B, ulong bo, long brs, long bcs, long bbs,
               __global T* C, ulong co, long crs, long ccs, long cbs,
               ulong M, ulong N, ulong K)
{
    __local T As[GEMM_TK * GEMM_TM];
    __local T Bs[GEMM_TK * GEMM_TN];
    const int tx = get_local_id(0);
    const int ty = get_local_id(1);
    const int tid = ty * GEMM_RN + tx;
    const long m0 = (long)get_group_id(1) * GEMM_TM;
    const long n0 = (long)get_group_id(0) * GEMM_TN;
    const long bat = get_global_id(2);
    const long m = (long)M, n = (long)N, kk_all = (long)K;
    __global const T* a = A + ao + bat * abs_;
    __global const T* b = B + bo + bat * bbs;
    __global T* c = C + co + bat * cbs;
    T acc[GEMM_WM][GEMM_WN];
    for (int i = 0; i < GEMM_WM; i++)
        for (int j = 0; j < GEMM_WN; j++)
            acc[i][j] = (T)0;
    for (long k0 = 0; k0 < kk_all; k0 += GEMM_TK) {
        for (int l = tid; l < GEMM_TK * GEMM_TM; l += GEMM_RM * GEMM_RN) {
            const int kk = l / GEMM_TM, i = l % GEMM_TM;
            const long gm = m0 + i, gk = k0 + kk;
            As[l] = (gm < m && gk < kk_all) ? a[gm * ars + gk * acs] : (T)0;
        }
        for (int l = tid; l < GEMM_TK * GEMM_TN; l += GEMM_RM * GEMM_RN) {
            const int kk = l / GEMM_TN, j = l % GEMM_TN;
            const long gn = n0 + j, gk = k0 + kk;
            Bs[l] = (gn < n && gk < kk_all) ? b[gk * brs + gn * bcs] : (T)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < GEMM_TK; kk++) {
            T ra[GEMM_WM], rb[GEMM_WN];
            for (int i = 0; i < GEMM_WM; i++)
                ra[i] = As[kk * GEMM_TM + ty + i * GEMM_RM];
            for (int j = 0; j < GEMM_WN; j++)
                rb[j] = Bs[kk * GEMM_TN + tx + j * GEMM_RN];
            for (int i = 0; i < GEMM_WM; i++)
                for (int j = 0; j < GEMM_WN; j++)
                    acc[i][j] = fma(ra[i], rb[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < GEMM_WM; i++) {
        const long gm = m0 + ty + i * GEMM_RM;
        if (gm >= m) continue;
        for (int j = 0; j < GEMM_WN; j++) {
            const long gn = n0 + tx + j * GEMM_RN;
            if (gn < n)
                c[gm * crs + gn * ccs] = acc[i][j];
        }
    }
}
#undef GEMM_RM
#undef GEMM_RN
"#;

/// The simple GEMM: one work-item per element of C (NDRange `(n, m, batch)`, rounded up
/// to the work-group size; the kernel guards), a plain dot product over k.
pub const GEMM_SIMPLE: &str = r#"
__kernel void NAME(gemm_simple)(__global const T* A, ulong ao, long ars, long acs, long abs_,
                          __global const T* B, ulong bo, long brs, long bcs, long bbs,
                          __global T* C, ulong co, long crs, long ccs, long cbs,
                          ulong M, ulong N, ulong K, ulong SB)
{
    /* SB > 1: C = the sum of SB products (batch index 0 only); else one per batch index. */
    const long j = get_global_id(0), i = get_global_id(1), bat = get_global_id(2);
    if (i >= (long)M || j >= (long)N) return;
    T acc = (T)0;
    for (long s = 0; s < (long)SB; s++) {
        __global const T* a = A + ao + (bat + s) * abs_ + i * ars;
        __global const T* b = B + bo + (bat + s) * bbs + j * bcs;
        for (long k = 0; k < (long)K; k++)
            acc = fma(a[k * acs], b[k * brs], acc);
    }
    C[co + bat * cbs + i * crs + j * ccs] = acc;
}
"#;

/// The library routines over `T` (any dtype): `PLUS(a, b)` is the element sum (wrapping
/// for integers), `ISNAN(x)` false for integers. Index errors: a work-item that finds an
/// index outside `0..rows` at position `p` lowers `flags[slot]` to `p` (`atomic_min`, so the
/// first bad position is kept whatever the order); the host reads the flags after the run.
pub const LIBRARY: &str = r#"
/* dst[do + i] = src[so + i] for i < len; `serial` (overlapping ranges of one buffer):
   work-item 0 copies in the direction that reads every element before it is written. */
__kernel void NAME(copy)(__global const T* src, ulong so, __global T* dst, ulong dof,
                         ulong len, int serial)
{
    const ulong g = get_global_id(0);
    if (serial) {
        if (g != 0) return;
        if (dof <= so) { for (ulong i = 0; i < len; i++) dst[dof + i] = src[so + i]; }
        else { for (ulong i = len; i > 0; i--) dst[dof + i - 1] = src[so + i - 1]; }
        return;
    }
    if (g < len) dst[dof + g] = src[so + g];
}

/* One work-item per (o, i) of outer × inner: the first maximum along the axis; the first
   NaN wins. */
__kernel void NAME(argmax)(__global const T* x, ulong xo, __global int* out, ulong oo,
                           ulong outer, ulong axis, ulong inner)
{
    const ulong g = get_global_id(0);
    if (g >= outer * inner) return;
    const ulong o = g / inner, i = g % inner;
    __global const T* p = x + xo + o * axis * inner + i;
    ulong best = 0;
    for (ulong k = 1; k < axis; k++) {
        const T b = p[best * inner];
        if (ISNAN(b)) break;
        const T v = p[k * inner];
        if (ISNAN(v) || v > b) best = k;
    }
    out[oo + g] = (int)best;
}

/* out[j·row_len + c] = data[indices[j]·row_len + c]: one work-item per output element. */
__kernel void NAME(gather)(__global const T* data, ulong dof, __global const int* idx, ulong io,
                           __global T* out, ulong oo, ulong n, ulong row_len, ulong rows,
                           __global int* flags, ulong slot)
{
    const ulong g = get_global_id(0);
    if (g >= n * row_len) return;
    const ulong j = g / row_len, c = g % row_len;
    const int r = idx[io + j];
    if (r < 0 || (ulong)r >= rows) {
        if (c == 0) atomic_min(flags + slot, (int)j);
        return;
    }
    out[oo + g] = data[dof + (ulong)r * row_len + c];
}

/* out (total elements, rows of row_len) = 0, then update row j added at row indices[j] in
   increasing j: one work-item per output element scans the indices in order (no atomics,
   so the sums are the CPU's bit for bit). Work-items j < n also check index j. */
__kernel void NAME(scatter_add)(__global const T* upd, ulong uo, __global const int* idx,
                                ulong io, __global T* out, ulong oo, ulong n, ulong row_len,
                                ulong rows, ulong total, __global int* flags, ulong slot)
{
    const ulong g = get_global_id(0);
    if (g < n) {
        const int r = idx[io + g];
        if (r < 0 || (ulong)r >= rows) atomic_min(flags + slot, (int)g);
    }
    if (g >= total) return;
    T acc = (T)0;
    if (row_len > 0 && g < rows * row_len) {
        const ulong r = g / row_len, c = g % row_len;
        for (ulong j = 0; j < n; j++)
            if (idx[io + j] == (int)r) acc = PLUS(acc, upd[uo + j * row_len + c]);
    }
    out[oo + g] = acc;
}

/* im2col over `planes` image planes of `plane` elements: out[p·tlen + t] = tap t of plane p
   (taps[t] the offset in the plane, −1 in the padding). */
__kernel void NAME(im2col)(__global const T* x, ulong xo, __global T* out, ulong oo,
                           __global const int* taps, ulong plane, ulong tlen, ulong planes)
{
    const ulong g = get_global_id(0);
    if (g >= planes * tlen) return;
    const ulong p = g / tlen, t = g % tlen;
    const int off = taps[t];
    out[oo + g] = off >= 0 ? x[xo + p * plane + (ulong)off] : (T)0;
}

/* col2im: out element (p, e) (of `total`) = sum, from zero in increasing column order, of
   cols[p·tlen + t] over the taps t reading offset e: starts[e]..starts[e+1] of `ts`. */
__kernel void NAME(col2im)(__global const T* cols, ulong co, __global T* out, ulong oo,
                           __global const int* starts, __global const int* ts, ulong plane,
                           ulong tlen, ulong planes, ulong total)
{
    const ulong g = get_global_id(0);
    if (g >= total) return;
    T acc = (T)0;
    if (plane > 0 && g < planes * plane) {
        const ulong p = g / plane, e = g % plane;
        for (int s = starts[e]; s < starts[e + 1]; s++)
            acc = PLUS(acc, cols[co + p * tlen + (ulong)ts[s]]);
    }
    out[oo + g] = acc;
}
"#;

/// The counter-based random streams of `crate::rng`, ported: the same SplitMix64
/// finaliser over the same key, so the random bits of every element are the CPU's and the
/// uniform samples (f32 and f64) are bit-identical. Normal samples go through the device's
/// `log`, `sqrt` and `cos`, which OpenCL allows a few ulp from the correctly rounded result
/// the host's libm gives: on PoCL about 5% of f64 normal samples differ in the last bit
/// (f32 samples, rounded from f64, matched in every test). The uniform f32 stream needs no
/// f64; the others are compiled only on devices with `cl_khr_fp64`.
pub const RANDOM: &str = r#"
#define RNG_GOLDEN 0x9E3779B97F4A7C15UL
ulong xenon_mix64(ulong z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}
ulong xenon_bits(ulong seed, ulong counter, ulong index) {
    const ulong key = xenon_mix64(seed + RNG_GOLDEN)
        ^ xenon_mix64((counter * RNG_GOLDEN) ^ 0x5851F42D4C957F2DUL);
    return xenon_mix64(key + index * RNG_GOLDEN);
}
ulong xenon_counter(__global const int* cb, ulong co, int has) {
    return has ? (ulong)(long)cb[co] : 0UL;
}
float xenon_uniform_f32(ulong seed, ulong counter, ulong index) {
    return (float)(xenon_bits(seed, counter, index) >> 40) * (1.0f / 16777216.0f);
}
__kernel void random_uniform_f32(__global float* out, ulong oo, ulong len, ulong seed,
                                 __global const int* cb, ulong co, int has, float lo, float hi)
{
    const ulong g = get_global_id(0);
    if (g >= len) return;
    const ulong c = xenon_counter(cb, co, has);
    const float u = xenon_uniform_f32(seed, c, g);
    const float scaled = (hi - lo) * u;
    out[oo + g] = lo + scaled;
}
#ifdef XENON_FP64
double xenon_uniform_f64(ulong seed, ulong counter, ulong index) {
    return (double)(xenon_bits(seed, counter, index) >> 11) * (1.0 / 9007199254740992.0);
}
double xenon_normal_f64(ulong seed, ulong counter, ulong index) {
    const double u1 = xenon_uniform_f64(seed, counter, index * 2);
    const double u2 = xenon_uniform_f64(seed, counter, index * 2 + 1);
    const double r = sqrt(-2.0 * log(1.0 - u1));
    return r * cos(6.283185307179586 * u2);
}
__kernel void random_uniform_f64(__global double* out, ulong oo, ulong len, ulong seed,
                                 __global const int* cb, ulong co, int has, double lo,
                                 double hi)
{
    const ulong g = get_global_id(0);
    if (g >= len) return;
    const ulong c = xenon_counter(cb, co, has);
    const double scaled = (hi - lo) * xenon_uniform_f64(seed, c, g);
    out[oo + g] = lo + scaled;
}
__kernel void random_normal_f64(__global double* out, ulong oo, ulong len, ulong seed,
                                __global const int* cb, ulong co, int has, double mean,
                                double sd)
{
    const ulong g = get_global_id(0);
    if (g >= len) return;
    const ulong c = xenon_counter(cb, co, has);
    const double scaled = sd * xenon_normal_f64(seed, c, g);
    out[oo + g] = mean + scaled;
}
__kernel void random_normal_f32(__global float* out, ulong oo, ulong len, ulong seed,
                                __global const int* cb, ulong co, int has, double mean,
                                double sd)
{
    const ulong g = get_global_id(0);
    if (g >= len) return;
    const ulong c = xenon_counter(cb, co, has);
    const double scaled = sd * xenon_normal_f64(seed, c, g);
    out[oo + g] = (float)(mean + scaled);
}
#endif
"#;

/// The type macros for instantiating a body over `dtype`.
fn type_defs(dtype: DType) -> String {
    let (plus, isnan) = match dtype {
        DType::I32 => ("as_int(as_uint(a) + as_uint(b))", "0"),
        _ => ("((a) + (b))", "((x) != (x))"),
    };
    format!(
        "#define T {}\n#define SUF {}\n#define PLUS(a, b) {plus}\n#define ISNAN(x) {isnan}\n",
        c_type(dtype),
        suffix(dtype)
    )
}

const TYPE_UNDEFS: &str = "#undef T\n#undef SUF\n#undef PLUS\n#undef ISNAN\n";

/// What one executor's runtime program holds.
#[derive(Clone, Debug, Default)]
pub struct RuntimeNeeds {
    /// Dtypes that need the library routines.
    pub library: Vec<DType>,
    /// Whether any random step runs.
    pub random: bool,
    /// Dtypes that need the simple GEMM.
    pub gemm_simple: Vec<DType>,
    /// `(config, dtype)` pairs of tiled GEMMs.
    pub gemm_tiled: Vec<(GemmConfig, DType)>,
}

impl RuntimeNeeds {
    /// True when nothing is needed (no runtime program to build).
    pub fn is_empty(&self) -> bool {
        self.library.is_empty()
            && !self.random
            && self.gemm_simple.is_empty()
            && self.gemm_tiled.is_empty()
    }
}

/// The name of the tiled GEMM kernel for `config` over `dtype`.
pub fn gemm_kernel_name(config: &GemmConfig, dtype: DType) -> String {
    format!("gemm_{}_{}", suffix(dtype), config.name)
}

/// The source of a runtime program with everything in `needs`.
pub fn runtime_source(needs: &RuntimeNeeds) -> String {
    let mut s = String::from(PRELUDE);
    for &d in &needs.library {
        s += &type_defs(d);
        s += LIBRARY;
        s += TYPE_UNDEFS;
    }
    if needs.random {
        s += RANDOM;
    }
    for &d in &needs.gemm_simple {
        s += &type_defs(d);
        s += GEMM_SIMPLE;
        s += TYPE_UNDEFS;
    }
    for (c, d) in &needs.gemm_tiled {
        s += &type_defs(*d);
        s += &format!(
            "#define GEMM_TM {}\n#define GEMM_TN {}\n#define GEMM_WM {}\n#define GEMM_WN {}\n\
             #define GEMM_TK {}\n#define GEMM_NAME {}\n",
            c.tm,
            c.tn,
            c.wm,
            c.wn,
            c.tk,
            gemm_kernel_name(c, *d)
        );
        s += GEMM_TILED;
        s += "#undef GEMM_TM\n#undef GEMM_TN\n#undef GEMM_WM\n#undef GEMM_WN\n#undef GEMM_TK\n\
              #undef GEMM_NAME\n";
        s += TYPE_UNDEFS;
    }
    s
}
