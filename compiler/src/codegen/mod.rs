//! Code generation: native CPU code from loop kernels.

pub mod cpu;
