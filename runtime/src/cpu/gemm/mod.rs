//! Xenon's GEMM: `C = A·B` (or `C += A·B`) over strided f32/f64 matrices, on the best
//! instruction set the running processor has.
//!
//! # How it works
//!
//! The classic blocked algorithm (Goto/BLIS): B is cut into `kc × nc` blocks, each packed
//! into panels `nr` columns wide ([`pack`]); a register-blocked micro-kernel computes an
//! `mr × nr` tile of C from `mr` rows of A (one broadcast per element; A is read in place,
//! or packed into `mr`-row micro-panels when its steps along `k` are 2 KiB or more apart or,
//! on the paths where that measured faster, it is reused across many panels) and one packed panel. Vectors run along `n`; the whole
//! problem is transposed (`Cᵀ = Bᵀ·Aᵀ`) when a simple cost model (padded vector
//! multiply-adds, strided stores, packing) says that is faster: e.g. a product with 10
//! output rows and 2048 columns packs the small operand instead of the large one. Products
//! with fewer than `mr` rows (matrix–vector shapes such as batch-1 inference) skip packing
//! and stream B once per row.
//!
//! | path ([`Isa`]) | f32 tile | f64 tile | kernels |
//! |---|---|---|---|
//! | `avx512` | 6 × 64 | 6 × 16 | f32 intrinsics; f64 generic code compiled for AVX-512 |
//! | `avx2` | 6 × 16 | 6 × 8 | f32 intrinsics; f64 generic code compiled for AVX2 + FMA |
//! | `portable` | 4 × 8 | 4 × 8 | generic code for the baseline target |
//!
//! Blocking (all paths): `k` in equal blocks of at most [`KC`], `mc` = [`MC_TILES`] tiles
//! of `mr` rows, `nc` up to [`NC`] columns. Measured here (Zen 4, one core): 88–94 % of the
//! FMA peak on 1024³ and the MLP shapes (`cargo run --release -p xenon-runtime --example
//! gemm_speed`).
//!
//! # Threads and determinism
//!
//! With a thread pool the packing of B is split among the threads by panels, and the
//! products by equal runs of row tiles (or of panels, when there are fewer row tiles than
//! threads). Each element of C is computed by the same micro-kernel calls in the same
//! order (one per `kc` block, in `k` order) whatever the split, so results are
//! bit-identical for every thread count. Different ISA paths round differently (FMA vs
//! separate multiply and add, lane order in the small-`m` sums).
//!
//! ```
//! use xenon_runtime::cpu::gemm::{gemm, Isa, MatMut, MatRef};
//! let a = [1.0f32, 2.0, 3.0, 4.0]; // 2×2, row-major
//! let b = [5.0f32, 6.0, 7.0, 8.0];
//! let mut c = [0.0f32; 4];
//! // SAFETY: the views address 2×2 matrices inside the arrays.
//! unsafe {
//!     gemm(Isa::detect(), 2, 2, 2, MatRef::new(a.as_ptr(), 2, 1), MatRef::new(b.as_ptr(), 2, 1),
//!          MatMut::new(c.as_mut_ptr(), 2, 1), false, None);
//! }
//! assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
//! ```

mod generic;
mod isa;
pub mod pack;
pub mod peak;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use isa::{ISA_ENV, Isa, UnknownIsa, cpu_name};
use pack::TransposeBlock;
use std::cell::Cell;
use std::fmt::Debug;
use std::ops::{Add, Mul, Range};

/// Most depth of one packed block of B (elements of `k`).
pub const KC: usize = 1024;
/// Rows of A in one work item, in micro-tiles of `mr` rows.
pub const MC_TILES: usize = 16;
/// Most columns of B packed at once.
pub const NC: usize = 4096;
/// Most bytes between B's rows for the blocked product to read B in place, unless a path
/// sets its own ([`Kernels::in_place_b_bytes`]).
const IN_PLACE_B_ROW_BYTES: usize = 2048;
/// Cost of storing one element of C element by element (when C's tile rows are strided
/// in that orientation), in vector multiply-add times, once per depth block ([`KC`]).
const STRIDED_STORE_COST: f64 = 1.0;
/// The factor on [`STRIDED_STORE_COST`] when C's elements along a tile row are a multiple
/// of 4 KiB apart: every store of a tile row then falls in the same L1 set (4K aliasing).
/// Measured on Zen 3: `512×2048×2048 A·Bᵀ` transposed to store C with a 8 KiB stride ran
/// at 40 % of peak instead of 84 %, about 16 multiply-add times per stored element.
const ALIASED_STORE_FACTOR: f64 = 16.0;
/// Cost of packing one element by vector copies (B's rows contiguous, or its columns with
/// the path's transposing copy; A's columns contiguous), in vector multiply-add times:
/// about 0.1 ns an element against 0.27 ns a 512-bit multiply-add, measured on Zen 4 with
/// the operands in L2.
const PACK_COPY_COST: f64 = 0.4;
/// Cost of the horizontal sum that ends one dot product of the small-m path, in vector
/// multiply-add times.
const DOT_SUM_COST: f64 = 4.0;
/// Cost of packing one element gathered element by element.
const PACK_GATHER_COST: f64 = 1.0;

/// The estimated time of one orientation of a product, in vector multiply-adds: the
/// multiply-adds (padded to whole vectors), C's element-by-element stores when its tile
/// rows are strided, and the packing of B (unless read in place) and of A (when packed).
/// The smaller of `C = A·B` and `Cᵀ = Bᵀ·Aᵀ` is run.
struct Cost {
    rows: usize,
    cols: usize,
    k: usize,
    unit: usize,
    mr: usize,
    /// [`Kernels::pack_a_cols`].
    pack_a_cols: Option<usize>,
    /// A's and B's (row, column) strides in elements, and the element size in bytes.
    a: (isize, isize),
    b: (isize, isize),
    elem_bytes: usize,
    /// Whether the path has a transposing copy for packing ([`Kernels::transpose`]).
    transpose: bool,
    /// [`Kernels::in_place_b_bytes`].
    in_place_b_bytes: usize,
    c_unit_stride: bool,
    /// Whether C's strided stores alias in L1 ([`ALIASED_STORE_FACTOR`]).
    c_aliased: bool,
    /// The share of B's packing this product pays: 1, or `1 / uses` for a packing kept
    /// and read by `uses` products ([`Reuse::uses`]).
    b_pack_share: f64,
}

impl Cost {
    /// The cost of a `rows × cols` product of depth `k` on `kern`'s path, C's elements
    /// `c_cs` apart along a row.
    fn of<T: Element>(
        kern: &Kernels<T>,
        rows: usize,
        cols: usize,
        k: usize,
        a: MatRef<T>,
        b: MatRef<T>,
        c_cs: isize,
    ) -> Cost {
        Cost {
            rows,
            cols,
            k,
            unit: kern.unit,
            mr: kern.mr,
            pack_a_cols: kern.pack_a_cols,
            a: (a.rs, a.cs),
            b: (b.rs, b.cs),
            elem_bytes: size_of::<T>(),
            transpose: kern.transpose.is_some(),
            in_place_b_bytes: kern.in_place_b_bytes,
            c_unit_stride: c_cs == 1,
            c_aliased: (c_cs.unsigned_abs() * size_of::<T>()).is_multiple_of(4096),
            b_pack_share: 1.0,
        }
    }

    /// The cost with B's packing kept and shared by `uses` products: the blocked product
    /// then always packs B (never reads it in place), paying `1 / uses` of it.
    fn kept_by(mut self, uses: usize) -> Cost {
        self.b_pack_share = 1.0 / uses.max(1) as f64;
        self.in_place_b_bytes = 0;
        self
    }

    fn estimate(&self) -> f64 {
        let per = |copied: bool| {
            if copied {
                PACK_COPY_COST
            } else {
                PACK_GATHER_COST
            }
        };
        let vectors = self.cols.div_ceil(self.unit) as f64;
        let mut cost = (self.rows * self.k) as f64 * vectors;
        if !self.c_unit_stride {
            let factor = if self.c_aliased {
                ALIASED_STORE_FACTOR
            } else {
                1.0
            };
            let passes = self.k.div_ceil(KC).max(1) as f64;
            cost += (self.rows * self.cols) as f64 * STRIDED_STORE_COST * factor * passes;
        }
        let (a_m, a_k) = self.a;
        let (b_k, b_n) = self.b;
        if self.rows < self.mr {
            // The small-m path packs nothing; with B contiguous along k it takes dot
            // products (a horizontal sum per element of C, A's rows copied contiguous when
            // they are not).
            if b_n != 1 && b_k == 1 {
                cost += (self.rows * self.cols) as f64 * DOT_SUM_COST;
                if a_k != 1 {
                    cost += (self.rows * self.k) as f64 * PACK_GATHER_COST;
                }
            }
            return cost;
        }
        // B is read in place, packed by vector copies (rows contiguous, or columns with the
        // path's transposing copy), or gathered.
        if !b_in_place(b_k, b_n, self.elem_bytes, self.in_place_b_bytes) {
            cost += (self.k * self.cols) as f64
                * per(b_n == 1 || (b_k == 1 && self.transpose))
                * self.b_pack_share;
        }
        if packs_a(self.cols, self.pack_a_cols, a_k, self.elem_bytes) {
            cost += (self.rows * self.k) as f64 * per(a_m == 1);
        }
        cost
    }
}

/// A matrix operand: element `(i, j)` at `ptr + i·rs + j·cs` (in elements).
#[derive(Clone, Copy, Debug)]
pub struct MatRef<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

impl<T> MatRef<T> {
    /// A view with row stride `rs` and column stride `cs`.
    pub fn new(ptr: *const T, rs: isize, cs: isize) -> MatRef<T> {
        MatRef { ptr, rs, cs }
    }
    fn t(self) -> MatRef<T> {
        MatRef::new(self.ptr, self.cs, self.rs)
    }
}

/// The output matrix: element `(i, j)` at `ptr + i·rs + j·cs` (in elements).
#[derive(Clone, Copy, Debug)]
pub struct MatMut<T> {
    pub ptr: *mut T,
    pub rs: isize,
    pub cs: isize,
}

impl<T> MatMut<T> {
    /// A view with row stride `rs` and column stride `cs`.
    pub fn new(ptr: *mut T, rs: isize, cs: isize) -> MatMut<T> {
        MatMut { ptr, rs, cs }
    }
    fn t(self) -> MatMut<T> {
        MatMut::new(self.ptr, self.cs, self.rs)
    }
}

/// A thread pool and the number of threads to split work into.
#[derive(Clone, Copy)]
pub struct Parallel<'a> {
    pub pool: &'a rayon::ThreadPool,
    pub threads: usize,
}

/// What a micro-kernel computes: `C[..rows, ..nr] (+)= A[..rows, ..kc] · B[..kc, ..nr]`
/// where `rows` is the kernel's row count, A's element `(i, p)` is at
/// `a + i·rs_a + p·cs_a`, B's row `p` is contiguous at `b + p·ldb` (a packed panel, zero
/// past `nr`, when `ldb` is the panel width; else B in place, of which the kernel reads
/// only the first `nr` elements of each row), and C's element `(i, j)` is at
/// `c + i·rs_c + j·cs_c`.
#[derive(Debug)]
pub struct UkrArgs<T> {
    pub kc: usize,
    pub a: *const T,
    pub rs_a: isize,
    pub cs_a: isize,
    pub b: *const T,
    /// Row stride of B (the panel width when packed).
    pub ldb: usize,
    /// Whether B is a packed panel (zero-padded to the panel width) rather than in place.
    pub packed: bool,
    pub c: *mut T,
    pub rs_c: isize,
    pub cs_c: isize,
    /// Valid columns of the tile.
    pub nr: usize,
    /// Add to C instead of overwriting it.
    pub accumulate: bool,
}

/// A micro-kernel.
pub type Ukr<T> = unsafe fn(&UkrArgs<T>);

/// What the small-`m` routine computes: the whole `C (+)= A·B`, every operand strided.
#[derive(Debug)]
pub struct SmallArgs<T> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: *const T,
    pub rs_a: isize,
    pub cs_a: isize,
    pub b: *const T,
    pub rs_b: isize,
    pub cs_b: isize,
    pub c: *mut T,
    pub rs_c: isize,
    pub cs_c: isize,
    pub accumulate: bool,
}

/// The kernels and tile sizes of one (element type, ISA) pair.
pub struct Kernels<T: 'static> {
    /// The path these kernels need.
    pub isa: Isa,
    /// Rows of a full tile.
    pub mr: usize,
    /// Columns of a full tile (the packed panel width).
    pub nr: usize,
    /// Column granularity of the narrower kernels (`ukr[rows − 1][⌈cols / unit⌉ − 1]`).
    pub unit: usize,
    /// Micro-kernels by rows and column units.
    pub ukr: &'static [&'static [Ukr<T>]],
    /// The small-`m` routine.
    pub small: unsafe fn(&SmallArgs<T>),
    /// Columns of B from which a k-contiguous A is packed too (reused across that many
    /// columns, the copy pays for itself), or `None` to read it in place. Measured here
    /// (Zen 4): packing helps the AVX2 6×16 kernel (six broadcasts per 12 multiply-adds)
    /// from 8 panels on, and costs the AVX-512 6×64 kernel 2–4 %.
    pub pack_a_cols: Option<usize>,
    /// A fast transposing copy for packing, where the path has one.
    pub transpose: Option<TransposeBlock<T>>,
    /// Most bytes between B's rows for the blocked product to read B in place rather than
    /// pack it. Rows far apart share few L1 sets, so a panel read in place falls out of
    /// L1 between row tiles: measured on AMD EPYC (AVX2), 64×256×288 and 128×512×500
    /// products with rows 1–2 KB apart run 7–28 % faster packed, so that path reads
    /// in place only up to 512 bytes. On the AVX-512 path, `(512×3200)ᵀ·(3200×128)` ran as
    /// its transpose with B's rows 2 KB apart read in place at 130–145 GFLOP/s, packed
    /// (with A, in the untransposed orientation) at 166–176, caches flushed: that path
    /// reads in place up to 1 KB. The others keep [`IN_PLACE_B_ROW_BYTES`].
    pub in_place_b_bytes: usize,
}

/// An element type GEMM supports (f32, f64).
pub trait Element:
    Copy + Send + Sync + PartialEq + Debug + Add<Output = Self> + Mul<Output = Self> + 'static
{
    /// Zero.
    const ZERO: Self;
    /// `self·b + c` with one rounding.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// The kernels for `isa` (capped to what the processor has).
    fn kernels(isa: Isa) -> &'static Kernels<Self>;
}

macro_rules! row {
    ($T:ty, $f:ident, $m:literal; $($v:literal),*) => {
        &[$(x86::$f::<$m, $v> as Ukr<$T>),*]
    };
}

/// The kernel table of the generic kernel for `$T` compiled as `$ukr` (with small-m
/// routine `$small`): `$nr` columns, one full-width kernel per row count `$m`.
macro_rules! generic_kernels {
    ($T:ty, $isa:expr, $ukr:ident, $small:ident, $nr:literal, $pack_a:expr; $($m:literal),*) => {
        Kernels {
            isa: $isa,
            mr: [$($m),*].len(),
            nr: $nr,
            unit: $nr,
            ukr: &[$(&[generic::$ukr::<$T, $m, $nr> as Ukr<$T>]),*],
            small: generic::$small::<$T>,
            pack_a_cols: $pack_a,
            transpose: None,
            in_place_b_bytes: IN_PLACE_B_ROW_BYTES,
        }
    };
}

static F32_PORTABLE: Kernels<f32> =
    generic_kernels!(f32, Isa::Portable, ukr_portable, small_portable, 8, Some(8 * 8); 1, 2, 3, 4);
static F64_PORTABLE: Kernels<f64> =
    generic_kernels!(f64, Isa::Portable, ukr_portable, small_portable, 8, Some(8 * 8); 1, 2, 3, 4);
#[cfg(target_arch = "x86_64")]
static F64_AVX2: Kernels<f64> =
    generic_kernels!(f64, Isa::Avx2, ukr_avx2, small_avx2, 8, Some(8 * 8); 1, 2, 3, 4, 5, 6);
#[cfg(target_arch = "x86_64")]
static F64_AVX512: Kernels<f64> = generic_kernels!(f64, Isa::Avx512, ukr_avx512, small_avx512, 16, Some(8 * 16); 1, 2, 3, 4, 5, 6);

#[cfg(target_arch = "x86_64")]
static F32_AVX2: Kernels<f32> = Kernels {
    isa: Isa::Avx2,
    mr: 6,
    nr: 16,
    unit: 8,
    ukr: &[
        row!(f32, ukr_avx2, 1; 1, 2),
        row!(f32, ukr_avx2, 2; 1, 2),
        row!(f32, ukr_avx2, 3; 1, 2),
        row!(f32, ukr_avx2, 4; 1, 2),
        row!(f32, ukr_avx2, 5; 1, 2),
        row!(f32, ukr_avx2, 6; 1, 2),
    ],
    small: x86::small_avx2,
    pack_a_cols: Some(8 * 16),
    transpose: Some(x86::transpose_block),
    in_place_b_bytes: 512,
};

#[cfg(target_arch = "x86_64")]
static F32_AVX512: Kernels<f32> = Kernels {
    isa: Isa::Avx512,
    mr: 6,
    nr: 64,
    unit: 16,
    ukr: &[
        row!(f32, ukr_avx512, 1; 1, 2, 3, 4),
        row!(f32, ukr_avx512, 2; 1, 2, 3, 4),
        row!(f32, ukr_avx512, 3; 1, 2, 3, 4),
        row!(f32, ukr_avx512, 4; 1, 2, 3, 4),
        row!(f32, ukr_avx512, 5; 1, 2, 3, 4),
        row!(f32, ukr_avx512, 6; 1, 2, 3, 4),
    ],
    small: x86::small_avx512,
    pack_a_cols: None,
    transpose: Some(x86::transpose_block),
    in_place_b_bytes: 1024,
};

/// `impl Element` for a float type and its kernel tables (AVX-512, AVX2, portable).
macro_rules! element {
    ($T:ident, $avx512:ident, $avx2:ident, $portable:ident) => {
        impl Element for $T {
            const ZERO: $T = 0.0;
            fn mul_add(self, b: $T, c: $T) -> $T {
                $T::mul_add(self, b, c)
            }
            fn kernels(isa: Isa) -> &'static Kernels<$T> {
                match isa.capped() {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => &$avx512,
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => &$avx2,
                    _ => &$portable,
                }
            }
        }
    };
}

element!(f32, F32_AVX512, F32_AVX2, F32_PORTABLE);
element!(f64, F64_AVX512, F64_AVX2, F64_PORTABLE);

/// `C = A·B`, or `C += A·B` with `accumulate`, for an `m × k` A and a `k × n` B, on the
/// `isa` path (capped to what the processor has), split among `par`'s threads if given.
///
/// # Safety
/// Each view must address its whole matrix with its strides; C must not overlap A or B,
/// and no two elements of C may share an address.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm<T: Element>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    accumulate: bool,
    par: Option<Parallel<'_>>,
) {
    // SAFETY: the caller's contract.
    unsafe { gemm_with(isa, m, n, k, a, b, c, accumulate, par, None) }
}

/// Where [`gemm_with`] keeps the packed copy of a B that stays the same from call to call
/// (a weight matrix during inference), to pack it once. Empty until first used; holds
/// about `k × n` elements after.
#[derive(Default)]
pub struct PackedB {
    /// The stamp of the contents packed, and the layout they were packed for.
    valid: Option<(u64, PackLayout)>,
    buf: Vec<Line>,
}

/// What a packed B depends on besides its contents.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PackLayout {
    isa: Isa,
    n: usize,
    k: usize,
    rs: isize,
    cs: isize,
    elem_bytes: usize,
}

/// B's packing kept across calls: `stamp` identifies B's contents (the same stamp means
/// the same elements, as [`crate::Tensor::stamp`]).
pub struct Reuse<'a> {
    pub stamp: u64,
    pub pack: &'a mut PackedB,
    /// How many products read this packing per stamp (at least 1): the plan charges each
    /// `1 / uses` of the packing, so a B that many products share (a recurrent weight read
    /// at every time step) is packed once in its own orientation instead of being
    /// transposed into the other operand at each.
    pub uses: usize,
}

/// [`gemm`], keeping B's packing in `reuse` (packing only when B's stamp or layout
/// changed). A reused packing holds exactly what packing anew would write. The plan counts
/// B's packing at `1 / reuse.uses` of its cost ([`Reuse::uses`]), so a B shared by many
/// products may keep an orientation that a single product would have transposed.
///
/// # Safety
/// As [`gemm`]; `reuse.stamp` must identify B's elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_with<T: Element>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    accumulate: bool,
    par: Option<Parallel<'_>>,
    reuse: Option<Reuse<'_>>,
) {
    if m == 0 || n == 0 {
        return;
    }
    unsafe {
        if k == 0 {
            if !accumulate {
                for i in 0..m {
                    for j in 0..n {
                        *c.ptr.offset(i as isize * c.rs + j as isize * c.cs) = T::ZERO;
                    }
                }
            }
            return;
        }
        let kern = T::kernels(isa);
        // Vectors run along n: prefer the orientation with fewer padded lanes, then the
        // one where n is C's unit-stride dimension.
        let cost = |rows: usize, cols: usize, a: MatRef<T>, b: MatRef<T>, c_cs: isize| {
            Cost::of(kern, rows, cols, k, a, b, c_cs).estimate()
        };
        let best = |m: usize, n: usize, a: MatRef<T>, b: MatRef<T>, c: MatMut<T>| {
            cost(m, n, a, b, c.cs).min(cost(n, m, b.t(), a.t(), c.rs))
        };
        // A ragged edge — a few columns (or rows) past whole vectors — runs as a product of
        // its own when that is cheaper: it turns into rows of the small-m path in the other
        // orientation instead of padding a vector per row of the rest.
        for transposed in [false, true] {
            let (m, n, a, b, c) = if transposed {
                (n, m, b.t(), a.t(), c.t())
            } else {
                (m, n, a, b, c)
            };
            let rest = n % kern.unit;
            if n < kern.unit || rest == 0 || rest >= kern.mr || m < kern.mr {
                continue;
            }
            let n0 = n - rest;
            // Column n0 lies inside B and C.
            let b1 = MatRef::new(b.ptr.offset(n0 as isize * b.cs), b.rs, b.cs);
            let c1 = MatMut::new(c.ptr.offset(n0 as isize * c.cs), c.rs, c.cs);
            if best(m, n0, a, b, c) + best(m, rest, a, b1, c1) < best(m, n, a, b, c) {
                // The two products cover C's columns ..n0 and n0.. with the same A.
                // Only the untransposed split keeps the original B (its leading columns).
                let keep = if transposed { None } else { reuse };
                gemm_with(isa, m, n0, k, a, b, c, accumulate, par, keep);
                gemm_with(isa, m, rest, k, a, b1, c1, accumulate, par, None);
                return;
            }
        }
        let kept = match &reuse {
            Some(r) if m >= kern.mr => Cost::of(kern, m, n, k, a, b, c.cs)
                .kept_by(r.uses)
                .estimate(),
            _ => cost(m, n, a, b, c.cs),
        };
        let swap = cost(n, m, b.t(), a.t(), c.rs) < kept;
        let (m, n, a, b, c, reuse) = if swap {
            (n, m, b.t(), a.t(), c.t(), None)
        } else {
            (m, n, a, b, c, reuse)
        };
        // A few rows against a B kept packed (a weight, at batch 1): the micro-kernels
        // stream its panels, packed once, instead of reading B in place — where a panel
        // row holds enough vectors (4) to hide the multiply-add latency with one row of A.
        if m < kern.mr && (reuse.is_none() || kern.nr / kern.unit < 4) {
            (kern.small)(&SmallArgs {
                m,
                n,
                k,
                a: a.ptr,
                rs_a: a.rs,
                cs_a: a.cs,
                b: b.ptr,
                rs_b: b.rs,
                cs_b: b.cs,
                c: c.ptr,
                rs_c: c.rs,
                cs_c: c.cs,
                accumulate,
            });
            return;
        }
        blocked(
            kern,
            m,
            n,
            Depth::single(k),
            a,
            b,
            c,
            accumulate,
            par,
            reuse,
        );
    }
}

/// `C = Σ_b A_b·B_b` (or `C += …` with `accumulate`) over `batch` products of an `m × k`
/// A and a `k × n` B, `A_b` at `a.ptr + b·a_batch` and `B_b` at `b.ptr + b·b_batch` (in
/// elements): one product of depth `batch·k` — a convolution's weight gradient summed
/// over the images of a minibatch. The blocked product packs the depth across the
/// matrices' boundaries, so each micro-kernel call runs up to [`KC`] steps whatever `k`
/// is; products with fewer than `mr` rows (in the cheaper orientation) add the batch's
/// products one after another.
///
/// ```
/// use xenon_runtime::cpu::gemm::{gemm_sum, Isa, MatMut, MatRef};
/// // Two 1×2 by 2×1 products, summed: [1 2]·[3 4]ᵀ + [5 6]·[7 8]ᵀ = 11 + 83.
/// let a = [1.0f32, 2.0, 5.0, 6.0];
/// let b = [3.0f32, 4.0, 7.0, 8.0];
/// let mut c = [0.0f32];
/// // SAFETY: the views address the matrices inside the arrays.
/// unsafe {
///     gemm_sum(Isa::detect(), 1, 1, 2, 2, MatRef::new(a.as_ptr(), 2, 1), 2,
///              MatRef::new(b.as_ptr(), 1, 1), 2, MatMut::new(c.as_mut_ptr(), 1, 1), false, None);
/// }
/// assert_eq!(c, [94.0]);
/// ```
///
/// # Safety
/// As [`gemm`], for every product of the batch.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_sum<T: Element>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    a: MatRef<T>,
    a_batch: isize,
    b: MatRef<T>,
    b_batch: isize,
    c: MatMut<T>,
    accumulate: bool,
    par: Option<Parallel<'_>>,
) {
    unsafe {
        let kern = T::kernels(isa);
        let cost = |rows: usize, cols: usize, a: MatRef<T>, b: MatRef<T>, c_cs: isize| {
            Cost::of(kern, rows, cols, k * batch, a, b, c_cs).estimate()
        };
        let swap = cost(n, m, b.t(), a.t(), c.rs) < cost(m, n, a, b, c.cs);
        let (m, n, a, a_batch, b, b_batch, c) = if swap {
            (n, m, b.t(), b_batch, a.t(), a_batch, c.t())
        } else {
            (m, n, a, a_batch, b, b_batch, c)
        };
        if batch <= 1 || k == 0 || m < kern.mr {
            for i in 0..batch.max(1) {
                let ai = MatRef::new(a.ptr.offset(i as isize * a_batch), a.rs, a.cs);
                let bi = MatRef::new(b.ptr.offset(i as isize * b_batch), b.rs, b.cs);
                gemm_with(isa, m, n, k, ai, bi, c, accumulate || i > 0, par, None);
            }
            return;
        }
        let depth = Depth {
            k,
            batch,
            a_batch,
            b_batch,
        };
        blocked(kern, m, n, depth, a, b, c, accumulate, par, None);
    }
}

/// The depth of a blocked product: `batch` products of depth `k` summed (depth index
/// `i·k + p` is step `p` of product `i`, whose A and B start `a_batch` and `b_batch`
/// elements after product 0's), or one product (`batch == 1`).
#[derive(Clone, Copy, Debug)]
struct Depth {
    k: usize,
    batch: usize,
    a_batch: isize,
    b_batch: isize,
}

impl Depth {
    fn single(k: usize) -> Depth {
        Depth {
            k,
            batch: 1,
            a_batch: 0,
            b_batch: 0,
        }
    }

    fn total(&self) -> usize {
        self.k * self.batch
    }

    /// The pieces of depth range `start..start + len` inside single products: (product,
    /// step in it, length, offset from `start`).
    fn pieces(
        &self,
        start: usize,
        len: usize,
    ) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let k = self.k;
        let mut at = start;
        let end = start + len;
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let (i, p) = (at / k, at % k);
                let l = (k - p).min(end - at);
                let piece = (i, p, l, at - start);
                at += l;
                piece
            })
        })
    }
}

/// The small-`m` product when B is contiguous along `n`: the micro-kernels, one call per
/// panel-wide column range, read B in place (no packing) for all `m < mr` rows at once.
///
/// # Safety
/// `s` must satisfy the [`SmallArgs`] contract with `0 < s.m ≤ kern.mr`, `s.cs_b == 1` and
/// `s.rs_b ≥ 0`.
pub(crate) unsafe fn small_in_place<T: Element>(kern: &Kernels<T>, s: &SmallArgs<T>) {
    for j0 in (0..s.n).step_by(kern.nr) {
        let w = kern.nr.min(s.n - j0);
        // SAFETY: the column range lies inside B and C.
        unsafe {
            (kern.ukr[s.m - 1][w.div_ceil(kern.unit) - 1])(&UkrArgs {
                kc: s.k,
                a: s.a,
                rs_a: s.rs_a,
                cs_a: s.cs_a,
                b: s.b.add(j0),
                ldb: s.rs_b as usize,
                packed: false,
                c: s.c.offset(j0 as isize * s.cs_c),
                rs_c: s.rs_c,
                cs_c: s.cs_c,
                nr: w,
                accumulate: s.accumulate,
            })
        }
    }
}

/// Whether A is packed: when its steps along `k` are 2 KiB or more apart (read in place,
/// each step of `k` would touch a new line, the lines of a micro-panel crowding into a few
/// L1 sets: a recurrent weight's gradient `Σ dGᵀ·H`, Aᵀ with 512 columns, ran 13–20 %
/// faster packed, measured on AMD EPYC with AVX-512 and AVX2, caches flushed), or when the
/// path packs A reused across `pack_a_cols` columns of B or more (its rows are then
/// contiguous micro-panels).
fn packs_a(n: usize, pack_a_cols: Option<usize>, a_k_stride: isize, elem_bytes: usize) -> bool {
    a_k_stride.unsigned_abs() * elem_bytes >= 2048 || pack_a_cols.is_some_and(|c| n >= c)
}

/// A read-only pointer shared by the work items of one block.
#[derive(Clone, Copy)]
struct SendConst<T>(*const T);
// SAFETY: only read, while the block's items run.
unsafe impl<T> Send for SendConst<T> {}
unsafe impl<T> Sync for SendConst<T> {}

impl<T> SendConst<T> {
    fn get(&self) -> *const T {
        self.0
    }
}

/// Raw pointers shared by the work items of one block (they touch disjoint parts of C and
/// of the pack buffer).
#[derive(Clone, Copy)]
struct Shared<T>(*const T, *mut T, *mut T, *const T);

impl<T> Shared<T> {
    /// B at the block's first column (row 0 of product 0).
    fn b(&self) -> *const T {
        self.0
    }
    /// The pack buffer of B.
    fn packed(&self) -> *mut T {
        self.1
    }
    /// C.
    fn c(&self) -> *mut T {
        self.2
    }
    /// A.
    fn a(&self) -> *const T {
        self.3
    }
}
// SAFETY: the items of one split write disjoint ranges and finish before the pointers'
// owners are used again.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

/// Runs `f` over `0..count`, split into contiguous ranges among `par`'s threads.
fn split(par: Option<Parallel<'_>>, count: usize, f: impl Fn(Range<usize>) + Sync) {
    match par {
        Some(p) if p.threads > 1 && count > 1 => {
            let chunks = p.threads.min(count);
            let f = &f;
            p.pool.scope(|s| {
                for t in 1..chunks {
                    s.spawn(move |_| f(count * t / chunks..count * (t + 1) / chunks));
                }
                f(0..count / chunks);
            });
        }
        _ => f(0..count),
    }
}

/// A 64-byte aligned unit of the pack buffer.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Line(#[allow(dead_code)] [u8; 64]);

thread_local! {
    /// The calling thread's pack buffer for B, kept between calls (taken while in use, so
    /// a re-entrant call allocates its own).
    static PACK_B: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
    /// Each thread's pack buffer for A.
    static PACK_A: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
}

/// A thread's pack buffer of at least `elems` elements of `T` from `slot`; give it back
/// with `slot.set`.
fn take_buffer<T>(
    slot: &'static std::thread::LocalKey<Cell<Vec<Line>>>,
    elems: usize,
) -> Vec<Line> {
    let lines = (elems * size_of::<T>()).div_ceil(64);
    let buf = slot.take();
    if buf.len() >= lines {
        buf
    } else {
        vec![Line([0; 64]); lines]
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn blocked<T: Element>(
    kern: &Kernels<T>,
    m: usize,
    n: usize,
    depth: Depth,
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    accumulate: bool,
    par: Option<Parallel<'_>>,
    mut reuse: Option<Reuse<'_>>,
) {
    let (mr, nr) = (kern.mr, kern.nr);
    let k = depth.total();
    let summed = depth.batch > 1;
    let nc_max = NC.min(n.div_ceil(nr) * nr);
    // Equal k blocks of at most KC.
    let kc_max = if summed && depth.k <= KC {
        // Whole products per block (equal counts), so that a block reads one A in place
        // when it holds one product.
        let per = KC / depth.k;
        depth.k * depth.batch.div_ceil(depth.batch.div_ceil(per))
    } else {
        k.div_ceil(k.div_ceil(KC))
    };
    let mc_max = MC_TILES * mr;
    // B is packed block by block into the thread's buffer; or, when reused, all blocks
    // into the reuse buffer (in loop order), once per stamp; or read in place.
    let layout = PackLayout {
        isa: kern.isa,
        n,
        k,
        rs: b.rs,
        cs: b.cs,
        elem_bytes: size_of::<T>(),
    };
    let in_place =
        reuse.is_none() && !summed && b_in_place(b.rs, b.cs, size_of::<T>(), kern.in_place_b_bytes);
    // Whether B must be packed now (always, unless a kept packing is still valid).
    let fresh = reuse
        .as_ref()
        .is_none_or(|r| r.pack.valid != Some((r.stamp, layout)));
    let mut buf = match reuse.as_mut() {
        Some(r) => {
            let total = n.div_ceil(nc_max) * nc_max.div_ceil(nr) * nr * k;
            let mut buf = std::mem::take(&mut r.pack.buf);
            let lines = (total * size_of::<T>()).div_ceil(64);
            if buf.len() < lines {
                buf = vec![Line([0; 64]); lines];
            }
            buf
        }
        None if in_place => Vec::new(),
        None => take_buffer::<T>(&PACK_B, nc_max * kc_max),
    };
    let base = buf.as_mut_ptr() as *mut T;
    let mut block_at = 0;
    let pack_a_always = packs_a(n, kern.pack_a_cols, a.cs, size_of::<T>());
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        let panels = nc.div_ceil(nr);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            // SAFETY (offsets below): inside the views, by the caller's contract. `bp` is
            // column jc of B's first row (of product 0).
            let bp = unsafe { b.ptr.offset(jc as isize * b.cs) };
            // SAFETY: the reuse buffer holds every block in turn.
            let packed = unsafe { base.add(block_at) };
            if reuse.is_some() {
                block_at += panels * kc * nr;
            }
            let sh = Shared(bp, packed, c.ptr, a.ptr);
            let pack_now = !in_place && fresh;
            split(par, if pack_now { panels } else { 0 }, |range| {
                for (i, p, len, at) in depth.pieces(pc, kc) {
                    // SAFETY: panels in `range` go to disjoint parts of the buffer, which
                    // holds `panels · kc · nr` elements; each piece fills rows `at..at +
                    // len` of every panel from inside product `i`'s B.
                    unsafe {
                        let src = sh
                            .b()
                            .offset(i as isize * depth.b_batch + p as isize * b.rs);
                        pack::pack_b_rows(
                            len,
                            nc,
                            src,
                            b.rs,
                            b.cs,
                            nr,
                            sh.packed().add(at * nr),
                            kc * nr,
                            range.clone(),
                            kern.transpose,
                        )
                    }
                }
            });
            let acc = accumulate || pc > 0;
            // A block of a summed depth that spans several products packs A piece by
            // piece; one inside a single product reads that product's A.
            let pieces = depth.pieces(pc, kc).count();
            let pack_a = pack_a_always || pieces > 1;
            let (first, p0, _, _) = depth.pieces(pc, kc).next().expect("a block is not empty");
            // SAFETY: product `first`'s A, shifted to its step p0 minus the block start
            // (`pc` is added back below).
            let a_block = SendConst(unsafe {
                a.ptr
                    .offset(first as isize * depth.a_batch + (p0 as isize - pc as isize) * a.cs)
            });
            // Rows `rows` × panels `panel_range`, in blocks of at most mc_max rows (A packed
            // per block when it is packed).
            let run = |rows: Range<usize>, panel_range: Range<usize>| {
                let mut abuf = if pack_a {
                    take_buffer::<T>(&PACK_A, mc_max * kc)
                } else {
                    Vec::new()
                };
                let apacked = abuf.as_mut_ptr() as *mut T;
                // Equal blocks of whole tiles: each block streams all of B's packed block,
                // so a small last block (32 of 512 rows) would pay that for a few rows.
                let blocks = rows.len().div_ceil(mc_max).max(1);
                let mc = rows.len().div_ceil(blocks).div_ceil(mr) * mr;
                for i0 in rows.clone().step_by(mc.max(mr)) {
                    let i1 = rows.end.min(i0 + mc);
                    if pack_a {
                        for (i, p, len, at) in depth.pieces(pc, kc) {
                            // SAFETY: the piece lies inside product `i`'s A; the buffer
                            // holds mc_max·kc, columns `at..at + len` of each micro-panel.
                            unsafe {
                                let src = sh.a().offset(
                                    i as isize * depth.a_batch
                                        + i0 as isize * a.rs
                                        + p as isize * a.cs,
                                );
                                pack::pack_a_cols(
                                    i1 - i0,
                                    len,
                                    src,
                                    a.rs,
                                    a.cs,
                                    mr,
                                    apacked.add(at * mr),
                                    kc * mr,
                                )
                            };
                        }
                    }
                    for q in panel_range.clone() {
                        let j0 = jc + q * nr;
                        let w = nr.min(n - j0);
                        let cols = w.div_ceil(kern.unit) - 1;
                        for ir in (i0..i1).step_by(mr) {
                            let rows = mr.min(i1 - ir);
                            // SAFETY: the tile lies inside A, the packed panel and C; tiles
                            // of different calls are disjoint.
                            unsafe {
                                let (ap, rs_a, cs_a) = if pack_a {
                                    (apacked.add((ir - i0) * kc) as *const T, 1, mr as isize)
                                } else {
                                    (
                                        a_block
                                            .get()
                                            .offset(ir as isize * a.rs + pc as isize * a.cs),
                                        a.rs,
                                        a.cs,
                                    )
                                };
                                (kern.ukr[rows - 1][cols])(&UkrArgs {
                                    kc,
                                    a: ap,
                                    rs_a,
                                    cs_a,
                                    b: if in_place {
                                        sh.b().offset(pc as isize * b.rs).add(q * nr)
                                    } else {
                                        sh.packed().add(q * kc * nr)
                                    },
                                    ldb: if in_place { b.rs as usize } else { nr },
                                    packed: !in_place,
                                    c: sh.c().offset(ir as isize * c.rs + j0 as isize * c.cs),
                                    rs_c: c.rs,
                                    cs_c: c.cs,
                                    nr: w,
                                    accumulate: acc,
                                })
                            };
                        }
                    }
                }
                if pack_a {
                    PACK_A.set(abuf);
                }
            };
            // Threads take equal runs of row tiles (all panels each), or equal runs of
            // panels when there are fewer row tiles than threads. Tiles start at multiples
            // of mr whatever the split, so every element is computed the same way.
            let tiles = m.div_ceil(mr);
            let threads = par.map_or(1, |p| p.threads);
            if threads > 1 && tiles >= threads {
                split(par, threads, |ts| {
                    for t in ts {
                        let lo = (tiles * t / threads * mr).min(m);
                        let hi = (tiles * (t + 1) / threads * mr).min(m);
                        run(lo..hi, 0..panels);
                    }
                });
            } else {
                split(par, panels, |qs| run(0..m, qs));
            }
        }
    }
    match reuse {
        Some(r) => {
            r.pack.buf = buf;
            r.pack.valid = Some((r.stamp, layout));
        }
        None if !in_place => PACK_B.set(buf),
        None => {}
    }
}

/// Whether the blocked product reads B in place instead of packing it: when its rows are
/// contiguous and close together (at most [`IN_PLACE_B_ROW_BYTES`] apart, so that a panel's
/// rows neither cross a page per step nor crowd into few cache sets).
fn b_in_place(rs: isize, cs: isize, elem_bytes: usize, most_bytes: usize) -> bool {
    cs == 1 && rs >= 0 && rs.unsigned_abs() * elem_bytes <= most_bytes
}
