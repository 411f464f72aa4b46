//! Backends: what turns a graph into something that runs.
//!
//! A [`Backend`] compiles a [`Graph`] into an [`Executable`], which runs it on named input
//! tensors and returns the named outputs. The reference interpreter is a backend
//! ([`Interpreter`]); the Cranelift CPU JIT and OpenCL backends implement the same traits,
//! so models, the CLI and tests choose a backend by value.

use crate::interp::{self, Feeds, InterpError};
use crate::ir::Graph;
use std::collections::HashMap;
use xenon_runtime::Tensor;

/// Why compiling or running a graph failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The interpreter rejected the inputs or hit a bad index.
    #[error(transparent)]
    Interp(#[from] InterpError),
    /// The CPU executor rejected the inputs or hit a bad index.
    #[error(transparent)]
    Exec(#[from] xenon_runtime::cpu::ExecError),
    /// The backend cannot compile this graph.
    #[error("{backend} backend: {reason}")]
    Unsupported {
        backend: &'static str,
        reason: String,
    },
}

/// A compiled graph, ready to run repeatedly.
pub trait Executable: Send {
    /// Runs the graph on `feeds` (every input and parameter, by name) and returns every
    /// named output.
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError>;

    /// Turns per-step timing on (from zero) or off, where the backend supports it.
    fn set_profiling(&mut self, _on: bool) {}

    /// Time per kind of step accumulated since profiling was turned on, if supported.
    fn profile(&self) -> Option<xenon_runtime::cpu::StepTimes> {
        None
    }
}

/// Something that compiles graphs.
pub trait Backend: Send + Sync {
    /// The name used on the command line (`interp`, `cpu`, `opencl`).
    fn name(&self) -> &'static str;
    /// Compiles `graph`.
    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError>;
}

/// The reference interpreter as a backend: "compiling" keeps a copy of the graph.
#[derive(Clone, Copy, Debug, Default)]
pub struct Interpreter;

struct Interpreted(Graph);

impl Executable for Interpreted {
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError> {
        Ok(interp::run(&self.0, feeds)?)
    }
}

impl Backend for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError> {
        Ok(Box::new(Interpreted(graph.clone())))
    }
}

/// The CPU backend: lowers the graph to a [`xenon_runtime::program::Program`] (fused loop
/// kernels, GEMMs, library routines over a planned arena) and runs it with the runtime's
/// [`CpuExecutor`](xenon_runtime::cpu::CpuExecutor) on `threads` threads.
///
/// Loop kernels run on the runtime's reference evaluator until native code generation is
/// available for them.
#[derive(Clone, Debug)]
pub struct Cpu {
    /// Worker threads (default: the machine's available parallelism).
    pub threads: usize,
}

impl Default for Cpu {
    fn default() -> Cpu {
        Cpu {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

struct CpuProgram {
    exec: xenon_runtime::cpu::CpuExecutor,
    output_shapes: HashMap<String, Vec<usize>>,
}

impl Executable for CpuProgram {
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError> {
        Ok(self.exec.run(feeds, &self.output_shapes)?)
    }

    fn set_profiling(&mut self, on: bool) {
        self.exec.set_profiling(on);
    }

    fn profile(&self) -> Option<xenon_runtime::cpu::StepTimes> {
        self.exec.profile()
    }
}

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError> {
        let unsupported = |reason: String| BackendError::Unsupported {
            backend: "cpu",
            reason,
        };
        let lowered = crate::lower::lower(graph).map_err(|e| unsupported(e.to_string()))?;
        let kernels = vec![None; lowered.program.steps.len()];
        let exec = xenon_runtime::cpu::CpuExecutor::new(
            lowered.program,
            kernels,
            std::sync::Arc::new(()),
            self.threads,
        )
        .map_err(|e| unsupported(e.to_string()))?;
        Ok(Box::new(CpuProgram {
            exec,
            output_shapes: lowered.output_shapes,
        }))
    }
}
