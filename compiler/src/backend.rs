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
