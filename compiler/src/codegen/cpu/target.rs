//! Code-generation targets for ahead-of-time compilation.
//!
//! A [`Target`] names the processor features the machine code may use. Cranelift 0.135
//! has no 256-bit or 512-bit vectors, so the targets differ in scalar and 128-bit
//! instructions (FMA in the transcendental polynomials, SSE4.1 rounding, BMI, AVX
//! encodings); the GEMM is runtime code and picks its own path on the running processor.

use super::{CodegenError, CpuOptions, Host, cranelift_err, shared_flags};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::Configurable;

/// What the generated code may assume about the processor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Target {
    /// Everything the compiling machine has (`cranelift-native`'s detection).
    #[default]
    Native,
    /// x86-64-v3: AVX2, FMA, BMI1/2, LZCNT (Haswell, Zen 1 and later).
    X86_64V3,
    /// x86-64-v4: v3 plus AVX-512 F/BW/CD/DQ/VL (Skylake-SP, Zen 4 and later).
    X86_64V4,
}

/// The names `--target` accepts.
pub const TARGET_NAMES: [&str; 3] = ["native", "x86-64-v3", "x86-64-v4"];

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "native" => Ok(Target::Native),
            "x86-64-v3" => Ok(Target::X86_64V3),
            "x86-64-v4" => Ok(Target::X86_64V4),
            _ => Err(format!(
                "unknown target {s:?}; known targets: {}",
                TARGET_NAMES.join(", ")
            )),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Native => "native",
            Target::X86_64V3 => "x86-64-v3",
            Target::X86_64V4 => "x86-64-v4",
        })
    }
}

/// The psABI feature lists of the x86-64 levels (names of `is_x86_feature_detected!`).
const V2: [&str; 6] = ["cmpxchg16b", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"];
const V3: [&str; 8] = [
    "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe",
];
const V4: [&str; 5] = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];

/// Cranelift's x86 ISA flags and the processor feature each stands for.
const CRANELIFT_FLAGS: [(&str, &str); 19] = [
    ("has_sse3", "sse3"),
    ("has_ssse3", "ssse3"),
    ("has_cmpxchg16b", "cmpxchg16b"),
    ("has_sse41", "sse4.1"),
    ("has_sse42", "sse4.2"),
    ("has_avx", "avx"),
    ("has_avx2", "avx2"),
    ("has_fma", "fma"),
    ("has_avx_vnni", "avxvnni"),
    ("has_avx512bitalg", "avx512bitalg"),
    ("has_avx512dq", "avx512dq"),
    ("has_avx512vl", "avx512vl"),
    ("has_avx512vbmi", "avx512vbmi"),
    ("has_avx512f", "avx512f"),
    ("has_avx512vnni", "avx512vnni"),
    ("has_popcnt", "popcnt"),
    ("has_bmi1", "bmi1"),
    ("has_bmi2", "bmi2"),
    ("has_lzcnt", "lzcnt"),
];

/// A target ISA built for ahead-of-time code: position-independent, for an ELF object.
pub(crate) struct TargetIsa {
    pub isa: OwnedTargetIsa,
    pub host: Host,
    /// Every processor feature the code may use (sorted).
    pub features: Vec<String>,
    /// The architecture's name (`x86_64`).
    pub arch: String,
}

impl Target {
    /// The ISA for this target, with the features the generated code may use.
    pub(crate) fn isa(self, opts: &CpuOptions) -> Result<TargetIsa, CodegenError> {
        let builder = match self {
            Target::Native => cranelift_native::builder()
                .map_err(|m| CodegenError::UnsupportedHost(m.to_string()))?,
            Target::X86_64V3 | Target::X86_64V4 => {
                let mut b = cranelift_codegen::isa::lookup_by_name("x86_64-unknown-linux-gnu")
                    .map_err(|e| cranelift_err(None, e))?;
                b.enable("x86-64-v3").map_err(|e| cranelift_err(None, e))?;
                if self == Target::X86_64V4 {
                    b.enable("x86-64-v4").map_err(|e| cranelift_err(None, e))?;
                    b.enable("has_avx512f")
                        .map_err(|e| cranelift_err(None, e))?;
                }
                b
            }
        };
        let isa = builder
            .finish(shared_flags(opts, true)?)
            .map_err(|e| cranelift_err(None, e))?;
        let arch = isa.triple().architecture.to_string();
        let mut features: Vec<String> = isa
            .isa_flags()
            .iter()
            .filter(|v| v.as_bool() == Some(true))
            .filter_map(|v| CRANELIFT_FLAGS.iter().find(|(f, _)| *f == v.name))
            .map(|(_, name)| name.to_string())
            .collect();
        let levels: &[&[&str]] = match self {
            Target::Native => &[],
            Target::X86_64V3 => &[&V2, &V3],
            Target::X86_64V4 => &[&V2, &V3, &V4],
        };
        for f in levels.iter().flat_map(|l| l.iter()) {
            features.push(f.to_string());
        }
        features.sort();
        features.dedup();
        let has = |f: &str| features.iter().any(|x| x == f);
        let host = Host {
            fma: has("fma") || arch == "aarch64",
            vector: has("sse4.1") || arch == "aarch64",
        };
        Ok(TargetIsa {
            isa,
            host,
            features,
            arch,
        })
    }

    /// The processor features code for this target may use (`is_x86_feature_detected!`
    /// names), as a bundle's manifest records them.
    pub fn features(self) -> Result<Vec<String>, CodegenError> {
        Ok(self.isa(&CpuOptions::default())?.features)
    }
}
