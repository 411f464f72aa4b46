//! # Xenon
//!
//! A static-graph deep-learning compiler and runtime. This facade re-exports the three
//! crates: [`runtime`] (tensors and execution), [`compiler`] (IR, interpreter, autodiff) and
//! [`frontend`] (layers, models, data).

pub mod distributed;
pub use xenon_compiler as compiler;
pub use xenon_frontend as frontend;
pub use xenon_runtime as runtime;
