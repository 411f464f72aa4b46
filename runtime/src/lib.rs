//! # xenon-runtime
//!
//! The small part of Xenon that an application embeds: element types ([`DType`], and
//! [`element::Element`]: the one definition of every scalar op's meaning), host
//! tensors ([`Tensor`]), the counter-based random streams ([`rng`]) that every backend
//! reproduces bit for bit, compiled programs ([`program`], [`kernel`]), what a run of one
//! takes and reports on any backend ([`exec`]: feeds, errors, profiles), the [`library`]
//! routines for the ops that are not affine loops, and the CPU executor
//! ([`cpu`]) with Xenon's GEMM ([`cpu::gemm`]: AVX-512, AVX2 + FMA or portable code, chosen
//! at run time). Nothing here depends on the compiler.
//!
//! ```
//! use xenon_runtime::{DType, Tensor};
//! let t = Tensor::from_f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
//! assert_eq!(t.dtype(), DType::F32);
//! assert_eq!(t.shape(), &[2, 2]);
//! assert_eq!(t.to_f64_vec(), vec![1.0, 2.0, 3.0, 4.0]);
//! ```

pub mod aot;
pub mod collective;
pub mod cpu;
pub mod dtype;
pub mod element;
pub mod exec;
pub mod file;
pub mod kernel;
pub mod library;
pub mod memory;
#[cfg(feature = "opencl")]
pub mod opencl;
pub mod ops;
pub mod program;
pub mod rng;
pub mod tensor;

pub use dtype::DType;
pub use tensor::{Tensor, TensorData, TensorError};
