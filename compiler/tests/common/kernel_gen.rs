//! The random loop-kernel generator shared by the code generators' tests
//! (`codegen_cpu.rs`, `codegen_opencl.rs`): a seeded SplitMix64, and `KernelGen`, which
//! grows a kernel's arguments, loads and instructions within a target iteration space.
#![allow(dead_code)]

use xenon_runtime::kernel::{Access, Instr, KernelArg};
use xenon_runtime::ops::{BinaryOp, CompareOp, UnaryOp};
use xenon_runtime::{DType, TensorData};

/// SplitMix64: a small deterministic generator for the random kernels.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GenMode {
    /// No f32 transcendentals: every result must be bit-identical to the reference.
    Exact,
    /// f32 `exp`/`log`/`tanh` whose results go straight to stores or reductions.
    Transcendental,
}

/// Builds one random kernel (see each test file's `random_kernel`).
pub struct KernelGen<'r> {
    /// Whether f64 `exp`/`log`/`tanh` may appear anywhere (exact on the CPU, which calls
    /// Rust's functions; not on OpenCL devices).
    pub f64_transcendentals: bool,
    pub rng: &'r mut Rng,
    pub shape: Vec<usize>,
    pub reduced: Vec<usize>,
    pub args: Vec<KernelArg>,
    /// Largest element index reached per argument.
    pub reach: Vec<usize>,
    pub body: Vec<Instr>,
    /// dtype and "varies along a reduced axis" per value.
    pub vals: Vec<(DType, bool)>,
}

pub const SPECIAL_CONSTS: [f64; 16] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    3.75,
    -2.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e30,
    -1e-30,
    123_456.7,
    7.0,
    -3.0,
];

impl KernelGen<'_> {
    /// A random access of argument `arg`: permuted row-major layout over padded extents,
    /// broadcast axes, reversed axes, slice offsets; zero strides along `zero_axes`.
    pub fn access(&mut self, arg: usize, zero_axes: &[usize], allow_broadcast: bool) -> Access {
        let rank = self.shape.len();
        let mut perm: Vec<usize> = (0..rank).collect();
        if self.rng.chance(0.3) {
            for i in (1..rank).rev() {
                let j = self.rng.below(i + 1);
                perm.swap(i, j);
            }
        }
        let mut strides = vec![0isize; rank];
        let mut step = if self.rng.chance(0.05) { 2 } else { 1 };
        for &d in perm.iter().rev() {
            let bcast = zero_axes.contains(&d) || (allow_broadcast && self.rng.chance(0.15));
            if !bcast {
                strides[d] = step as isize;
                let pad = if self.rng.chance(0.25) {
                    self.rng.below(3)
                } else {
                    0
                };
                step *= self.shape[d] + pad;
            }
        }
        let mut offset = if self.rng.chance(0.3) {
            self.rng.below(4)
        } else {
            0
        };
        for (s, &n) in strides.iter_mut().zip(&self.shape) {
            if *s != 0 && self.rng.chance(0.15) {
                offset += (n - 1) * *s as usize;
                *s = -*s;
            }
        }
        let hi = offset as isize
            + strides
                .iter()
                .zip(&self.shape)
                .filter(|(s, _)| **s > 0)
                .map(|(s, &n)| s * (n as isize - 1))
                .sum::<isize>();
        self.reach[arg] = self.reach[arg].max(hi as usize);
        Access {
            arg,
            offset,
            strides,
        }
    }

    pub fn varies(&self, a: &Access) -> bool {
        self.reduced.iter().any(|&ax| a.strides[ax] != 0)
    }

    pub fn push(&mut self, ins: Instr, t: DType, varies: bool) -> u32 {
        self.body.push(ins);
        self.vals.push((t, varies));
        self.vals.len() as u32 - 1
    }

    /// A random value (biased towards recent ones) matching `filter`.
    pub fn pick_val(&mut self, filter: impl Fn(usize, DType, bool) -> bool) -> Option<u32> {
        let cands: Vec<usize> = (0..self.vals.len())
            .filter(|&v| filter(v, self.vals[v].0, self.vals[v].1))
            .collect();
        if cands.is_empty() {
            return None;
        }
        let i = if self.rng.chance(0.5) {
            cands.len() - 1 - self.rng.below(cands.len().min(3))
        } else {
            self.rng.below(cands.len())
        };
        Some(cands[i] as u32)
    }

    pub fn const_instr(&mut self, t: DType) -> Instr {
        let value = if self.rng.chance(0.6) {
            self.rng.pick(&SPECIAL_CONSTS)
        } else {
            (self.rng.unit() * 8.0 - 4.0) * if self.rng.chance(0.5) { 1.0 } else { 1000.0 }
        };
        Instr::Const { dtype: t, value }
    }

    /// One random instruction over the values whose index satisfies `usable`; f64
    /// `exp`/`log`/`tanh` only with `f64_transcendentals`.
    pub fn random_instr(
        &mut self,
        dtypes: &[DType],
        usable: &dyn Fn(usize, bool) -> bool,
    ) -> Option<(Instr, DType, bool)> {
        let roll = self.rng.below(100);
        let vals = self.vals.clone();
        let var = |v: u32| vals[v as usize].1;
        let ty = |v: u32| vals[v as usize].0;
        if roll < 25 {
            let a = self.pick_val(|v, _, r| usable(v, r))?;
            let t = ty(a);
            let func = if t.is_float() {
                let mut ops = vec![
                    UnaryOp::Neg,
                    UnaryOp::Abs,
                    UnaryOp::Sign,
                    UnaryOp::Sqrt,
                    UnaryOp::Recip,
                ];
                if t == DType::F64 && self.f64_transcendentals {
                    ops.extend([UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh]);
                }
                self.rng.pick(&ops)
            } else {
                self.rng.pick(&[UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign])
            };
            Some((Instr::Unary { func, a }, t, var(a)))
        } else if roll < 60 {
            let a = self.pick_val(|v, _, r| usable(v, r))?;
            let t = ty(a);
            let b = self.pick_val(|v, tt, r| usable(v, r) && tt == t)?;
            let func = if t.is_float() {
                self.rng.pick(&BinaryOp::ALL)
            } else {
                self.rng.pick(&[
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Max,
                    BinaryOp::Min,
                ])
            };
            Some((Instr::Binary { func, a, b }, t, var(a) || var(b)))
        } else if roll < 72 {
            let a = self.pick_val(|v, _, r| usable(v, r))?;
            let t = ty(a);
            let b = self.pick_val(|v, tt, r| usable(v, r) && tt == t)?;
            let func = self.rng.pick(&CompareOp::ALL);
            Some((Instr::Compare { func, a, b }, t, var(a) || var(b)))
        } else if roll < 82 {
            let cond = self.pick_val(|v, _, r| usable(v, r))?;
            let a = self.pick_val(|v, _, r| usable(v, r))?;
            let t = ty(a);
            let b = self.pick_val(|v, tt, r| usable(v, r) && tt == t)?;
            Some((
                Instr::Select { cond, a, b },
                t,
                var(cond) || var(a) || var(b),
            ))
        } else if roll < 94 {
            let a = self.pick_val(|v, _, r| usable(v, r))?;
            let to = self.rng.pick(dtypes);
            Some((Instr::Cast { to, a }, to, var(a)))
        } else {
            let t = self.rng.pick(dtypes);
            Some((self.const_instr(t), t, false))
        }
    }
}

pub fn random_data(rng: &mut Rng, t: DType, len: usize) -> TensorData {
    let f = |rng: &mut Rng| -> f64 {
        let r = rng.below(100);
        if r < 12 {
            rng.pick(&[
                0.0,
                -0.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                1e-40,
                -1e-45,
                3e38,
                -1e300,
                1.0,
                -1.0,
            ])
        } else if r < 40 {
            (rng.below(9) as f64 - 4.0) * 0.5
        } else {
            rng.unit() * 8.0 - 4.0
        }
    };
    match t {
        DType::F32 => TensorData::F32((0..len).map(|_| f(rng) as f32).collect()),
        DType::F64 => TensorData::F64((0..len).map(|_| f(rng)).collect()),
        DType::I32 => TensorData::I32(
            (0..len)
                .map(|_| match rng.below(10) {
                    0 => rng.pick(&[i32::MIN, i32::MAX, i32::MIN + 1, -1, 0]),
                    1..=3 => rng.next() as i32,
                    _ => rng.below(11) as i32 - 5,
                })
                .collect(),
        ),
    }
}
