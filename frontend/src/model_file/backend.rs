//! The `backend:` value: a backend name as neon spells it.

use std::fmt;

/// A backend name as neon's files and `-b` flag spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendName {
    /// `cpu`: neon's numpy backend.
    Cpu,
    /// `mkl`: neon's MKL-accelerated CPU backend.
    Mkl,
    /// `gpu`: neon's CUDA backend.
    Gpu,
}

impl BackendName {
    /// Every accepted name, in the order neon's `-b` flag lists them.
    pub const NAMES: [&'static str; 3] = ["cpu", "mkl", "gpu"];

    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Cpu => "cpu",
            BackendName::Mkl => "mkl",
            BackendName::Gpu => "gpu",
        }
    }

    /// The backend with this name (case-sensitive, as in neon).
    pub fn from_name(name: &str) -> Option<BackendName> {
        match name {
            "cpu" => Some(BackendName::Cpu),
            "mkl" => Some(BackendName::Mkl),
            "gpu" => Some(BackendName::Gpu),
            _ => None,
        }
    }

    /// The Xenon backend that serves it: `cpu` and `mkl` run on Xenon's `"cpu"` backend,
    /// `gpu` on its `"opencl"` backend.
    pub fn xenon_backend(self) -> &'static str {
        match self {
            BackendName::Cpu | BackendName::Mkl => "cpu",
            BackendName::Gpu => "opencl",
        }
    }
}

impl fmt::Display for BackendName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
