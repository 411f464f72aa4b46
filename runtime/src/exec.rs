//! What running a compiled program means on every backend: the feeds a run takes, the
//! errors it reports and the time profile it keeps. Backends (the CPU executor, later the
//! OpenCL one) and everything above them use these types, never a backend's own.

use crate::program::ProgramError;
use crate::{DType, Tensor};
use std::collections::HashMap;

/// The named tensors a run reads: every graph input and parameter, by name.
pub type Feeds = HashMap<String, Tensor>;

/// An index outside `0..rows` at flat `position` of an index tensor (gather, scatter-add).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("index {index} at position {position} is outside 0..{rows}")]
pub struct IndexError {
    pub position: usize,
    pub index: i32,
    pub rows: usize,
}

/// Why a run failed, on any backend.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// The program itself is malformed.
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// The program's buffers need more memory than the machine has.
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    /// A feed the program reads was not given.
    #[error("missing input {0:?}")]
    MissingInput(String),
    /// A feed names no input of the program.
    #[error("the program has no input {name:?} (its inputs: {})", inputs.join(", "))]
    UnknownInput { name: String, inputs: Vec<String> },
    /// A feed has the wrong dtype or size.
    #[error(
        "input {name:?} is {got_dtype} with {got} elements, the program needs {dtype} with {len}"
    )]
    InputType {
        name: String,
        dtype: DType,
        len: usize,
        got_dtype: DType,
        got: usize,
    },
    /// A run was given the wrong number of inputs or outputs.
    #[error("{got} {what} given, the program has {expected}")]
    Arity {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// An output slice has the wrong dtype or size.
    #[error(
        "output {name:?} is {dtype} with {len} elements, the slice given is {got_dtype} with {got}"
    )]
    OutputType {
        name: String,
        dtype: DType,
        len: usize,
        got_dtype: DType,
        got: usize,
    },
    /// An index operand points outside its table.
    #[error("{op}: {source}")]
    Index {
        op: &'static str,
        #[source]
        source: IndexError,
    },
    /// An `all_reduce` failed: a rank was lost, or the ranks disagree.
    #[error(transparent)]
    Collective(#[from] crate::collective::CollectiveError),
    /// An updated value holds NaN or infinity (nothing was written back).
    #[error("non-finite value (NaN or infinity) in {output:?} at element {element}")]
    NonFinite { output: String, element: usize },
    /// The native code handed to an executor does not match the program's steps.
    #[error("the kernel table has {got} entries for {steps} steps, or code for a non-loop step")]
    KernelTable { got: usize, steps: usize },
    /// The device failed (lost, out of memory, a kernel that would not build).
    #[error("{backend} device: {reason}")]
    Device {
        backend: &'static str,
        reason: String,
    },
}

/// Time spent per kind of step, accumulated over runs while profiling is on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepTimes {
    /// In loop kernels.
    pub loops: std::time::Duration,
    /// In GEMMs.
    pub gemm: std::time::Duration,
    /// In library routines.
    pub library: std::time::Duration,
    /// Floating-point operations done by the GEMMs (2·m·n·k each).
    pub gemm_flops: u64,
    /// Runs accumulated.
    pub runs: usize,
    /// Per step of the program: its description and accumulated time.
    pub steps: Vec<(String, std::time::Duration)>,
}

/// The first element of `t` that is NaN or infinite, if any.
pub fn first_non_finite(t: &Tensor) -> Option<usize> {
    match t.data() {
        crate::TensorData::F32(v) => crate::tensor::first_non_finite_f32(v),
        crate::TensorData::F64(v) => crate::tensor::first_non_finite_f64(v),
        crate::TensorData::I32(_) => None,
    }
}

/// A borrowed run of elements of one dtype: an input of
/// [`crate::cpu::CpuExecutor::run_slices`].
#[derive(Clone, Copy, Debug)]
pub enum Slice<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I32(&'a [i32]),
}

/// A mutable run of elements of one dtype: an output of
/// [`crate::cpu::CpuExecutor::run_slices`].
#[derive(Debug)]
pub enum SliceMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    I32(&'a mut [i32]),
}

macro_rules! slice_common {
    ($t:ident) => {
        impl $t<'_> {
            /// The element type.
            pub fn dtype(&self) -> DType {
                match self {
                    $t::F32(_) => DType::F32,
                    $t::F64(_) => DType::F64,
                    $t::I32(_) => DType::I32,
                }
            }
            /// Number of elements.
            pub fn len(&self) -> usize {
                match self {
                    $t::F32(v) => v.len(),
                    $t::F64(v) => v.len(),
                    $t::I32(v) => v.len(),
                }
            }
            /// True when there are no elements.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
            /// Address of the first element.
            pub fn as_ptr(&self) -> *const u8 {
                match self {
                    $t::F32(v) => v.as_ptr() as *const u8,
                    $t::F64(v) => v.as_ptr() as *const u8,
                    $t::I32(v) => v.as_ptr() as *const u8,
                }
            }
        }
    };
}
slice_common!(Slice);
slice_common!(SliceMut);

impl SliceMut<'_> {
    /// Address of the first element, for writing.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            SliceMut::F32(v) => v.as_mut_ptr() as *mut u8,
            SliceMut::F64(v) => v.as_mut_ptr() as *mut u8,
            SliceMut::I32(v) => v.as_mut_ptr() as *mut u8,
        }
    }
}
