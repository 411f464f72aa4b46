//! What a bundle declares about itself: the [`Manifest`] (JSON, also written beside the
//! object as `manifest.json`) and the [`BundleDesc`] the object exports.

use crate::DType;
use crate::cpu::KernelFn;
use serde::{Deserialize, Serialize};

/// The descriptor a bundle's object file exports as `<name>_bundle` (C layout; the C
/// header declares the same struct as `xenon_bundle`). Every pointer points into the same
/// object's read-only data or code.
#[repr(C)]
#[derive(Debug)]
pub struct BundleDesc {
    /// [`super::DESC_MAGIC`].
    pub magic: [u8; 8],
    /// [`super::FORMAT_VERSION`] of the compiler that wrote it.
    pub format_version: u32,
    /// Entries of `kernels`.
    pub num_kernels: u32,
    /// The manifest, JSON, `manifest_len` bytes (not NUL-terminated).
    pub manifest: *const u8,
    pub manifest_len: u64,
    /// The program, JSON, `program_len` bytes.
    pub program: *const u8,
    pub program_len: u64,
    /// One entry point per loop step of the program, in step order.
    pub kernels: *const KernelFn,
}

/// Whether a bundle runs inference or a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Outputs from inputs; the weights are only read.
    Inference,
    /// One training step: outputs (the cost) from inputs, and every updated weight
    /// (parameters, optimizer state) written back into the model's weights.
    Train,
}

/// A named tensor of fixed dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.len() * self.dtype.size_bytes()
    }
}

/// The code's target: the instruction-set features the machine code may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// As given to `xenon compile --target` (`native`, `x86-64-v3`, `x86-64-v4`).
    pub name: String,
    /// The architecture (`x86_64`).
    pub arch: String,
    /// Every processor feature the code may use, in the names of Rust's
    /// `is_x86_feature_detected!` (`avx2`, `fma`, `avx512f`, …).
    pub features: Vec<String>,
}

/// In a training bundle: output `output` is the new value of weight `weight`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateInfo {
    pub output: String,
    pub weight: String,
}

/// A file of the bundle directory, with its size and checksum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub bytes: u64,
    /// CRC-32 (IEEE) of the file's bytes.
    pub crc32: u32,
}

/// What a bundle is: versions, target, the model's inputs, weights and outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`super::MANIFEST_FORMAT`].
    pub format: String,
    /// [`super::FORMAT_VERSION`].
    pub format_version: u32,
    /// The Xenon version that compiled it.
    pub xenon_version: String,
    /// The bundle's name: a C identifier, the prefix of its symbols and header constants.
    pub name: String,
    pub mode: Mode,
    /// Samples per run (the leading axis of every input).
    pub batch: usize,
    pub target: TargetInfo,
    /// What the caller passes on every run, in order.
    pub inputs: Vec<TensorInfo>,
    /// What the weights file holds (parameters and, for training, optimizer state).
    pub weights: Vec<TensorInfo>,
    /// What each run returns, in order.
    pub outputs: Vec<TensorInfo>,
    /// Training bundles: which output updates which weight.
    pub updates: Vec<UpdateInfo>,
    /// The runtime's scratch memory (the arena of temporaries), bytes.
    pub scratch_bytes: usize,
    /// Loop kernels in the object.
    pub kernels: usize,
    /// CRC-32 of the program's JSON.
    pub program_crc32: u32,
    /// The bundle directory's other files (in `manifest.json` only; empty inside the
    /// object and the artifact).
    #[serde(default)]
    pub files: Vec<FileInfo>,
}
