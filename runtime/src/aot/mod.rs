//! Ahead-of-time bundles: loading and running models that `xenon compile` compiled
//! before the process started, with no compiler in the process.
//!
//! A bundle is a [`Program`](crate::program::Program) (the schedule: buffers, loop kernels,
//! GEMMs, library routines, the memory plan), the machine code of its loop kernels in a
//! relocatable object file, and the weights. The object exports one symbol,
//! `<name>_bundle`, a [`BundleDesc`]: the manifest and the program (JSON) and the table of
//! kernel entry points. The schedule runs on the same [`CpuExecutor`](crate::cpu::CpuExecutor)
//! as JIT-compiled programs, so GEMMs, library routines, threads and updates behave the
//! same whichever way the code arrived.
//!
//! Two ways in, one checked path ([`CompiledModel`]):
//!
//! * **Linked at build time**: the application links `<name>.o` (through a build script, or
//!   `cc` for C) and hands `&<name>_bundle` to [`CompiledModel::from_linked`] with the
//!   weights file's bytes.
//! * **Loaded at run time**: [`CompiledModel::open`] reads a self-contained artifact
//!   (`<name>.xnb`: the manifest, the object and the weights, see [`artifact`]), checks it,
//!   and maps the object into executable memory with [`loader`] (no system linker).
//!
//! Before any generated code runs, loading checks the format version, the Xenon version,
//! the checksums (artifact), that the processor has every instruction-set feature the code
//! was compiled for ([`isa`]), that the program is valid (every kernel access inside its
//! buffers), and that the weights have the names, dtypes and shapes the program needs;
//! every run checks the inputs' and outputs' dtypes and sizes. An artifact is machine code:
//! load only artifacts you would trust as a shared library.

pub mod artifact;
pub mod host;
pub mod isa;
pub mod loader;
mod manifest;
mod model;
pub mod weights;

pub use manifest::{BundleDesc, FileInfo, Manifest, Mode, TargetInfo, TensorInfo, UpdateInfo};
pub use model::{BundleError, CompiledModel, LoadOptions};

/// The bundle format this runtime reads and the compiler writes.
pub const FORMAT_VERSION: u32 = 1;

/// The Xenon version of this runtime; a bundle must have been compiled by the same one.
pub const XENON_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The first bytes of a [`BundleDesc`].
pub const DESC_MAGIC: [u8; 8] = *b"XENONBDL";

/// The `format` value of a manifest.
pub const MANIFEST_FORMAT: &str = "xenon-bundle";
