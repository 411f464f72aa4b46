//! Code generation: native CPU code (Cranelift) and OpenCL C source from loop kernels.

pub mod cpu;
pub mod opencl;
