//! Which instruction set the GEMM kernels use, chosen at run time.
//!
//! [`Isa::detect`] picks the best path the running processor has — AVX-512 (F), then
//! AVX2 + FMA, then portable Rust — never the build machine's. The environment variable
//! `XENON_ISA` (`avx512`, `avx2` or `portable`) caps the choice, so that the lesser paths
//! can be tested and benchmarked on a machine that has the better ones; a path the processor
//! lacks is never used, whatever the variable says.

use std::fmt;
use std::str::FromStr;

/// A GEMM code path, from the least to the most capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust (compiled for the build target's baseline), on every processor.
    Portable,
    /// x86-64 AVX2 + FMA: 256-bit vectors, 16 registers.
    Avx2,
    /// x86-64 AVX-512 F: 512-bit vectors, 32 registers.
    Avx512,
}

/// The environment variable that caps [`Isa::detect`].
pub const ISA_ENV: &str = "XENON_ISA";

impl Isa {
    /// Every path, from the least capable.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The name used by `XENON_ISA`, `--isa` and reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether the running processor can execute this path.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Isa::Avx2.available() && is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best path this processor has.
    pub fn best() -> Isa {
        *Isa::ALL
            .iter()
            .rev()
            .find(|i| i.available())
            .unwrap_or(&Isa::Portable)
    }

    /// The best path this processor has, capped by `XENON_ISA` when it is set to a known
    /// name (an unknown value is ignored).
    pub fn detect() -> Isa {
        let best = Isa::best();
        match std::env::var(ISA_ENV)
            .ok()
            .and_then(|v| v.parse::<Isa>().ok())
        {
            Some(cap) => best.min(cap),
            None => best,
        }
    }

    /// This path if the processor has it, else the best lesser one.
    pub fn capped(self) -> Isa {
        Isa::best().min(self)
    }

    /// f32 lanes of one vector register.
    pub fn f32_lanes(self) -> usize {
        match self {
            Isa::Portable => 4,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An ISA name that is not one of `avx512`, `avx2`, `portable`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown instruction set {0:?}: expected one of avx512, avx2, portable")]
pub struct UnknownIsa(pub String);

impl FromStr for Isa {
    type Err = UnknownIsa;
    fn from_str(s: &str) -> Result<Isa, UnknownIsa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" | "x86-64-v4" => Ok(Isa::Avx512),
            "avx2" | "x86-64-v3" => Ok(Isa::Avx2),
            "portable" | "scalar" | "generic" => Ok(Isa::Portable),
            _ => Err(UnknownIsa(s.to_string())),
        }
    }
}

/// The processor's model name (from `/proc/cpuinfo` on Linux, else the architecture).
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
