//! The OpenCL backend: the CPU backend's lowered program, its loop kernels generated as
//! OpenCL C ([`crate::codegen::opencl`]), run by the runtime's
//! [`OclExecutor`](xenon_runtime::opencl::OclExecutor) on one device (GEMM and the library
//! routines are the runtime's OpenCL kernels).

use super::{Backend, BackendError, Executable};
use crate::codegen::opencl;
use crate::interp::Feeds;
use crate::ir::Graph;
use crate::lower::Lowered;
use std::collections::HashMap;
use xenon_runtime::Tensor;
use xenon_runtime::opencl::OclExecutor;
use xenon_runtime::program::Step;

/// Runs graphs on OpenCL device `device` (the index in
/// [`xenon_runtime::opencl::devices`]; default 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenCl {
    pub device: usize,
}

struct OclProgram {
    exec: OclExecutor,
    output_shapes: HashMap<String, Vec<usize>>,
    /// The compiled graph's hash.
    key: u64,
}

impl Executable for OclProgram {
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError> {
        Ok(self.exec.run(feeds, &self.output_shapes)?)
    }

    fn updates(&self) -> &[(String, String)] {
        &self.exec.program().updates
    }

    fn run_update(
        &mut self,
        feeds: &mut Feeds,
        check_finite: bool,
    ) -> Result<HashMap<String, Tensor>, BackendError> {
        Ok(self
            .exec
            .run_update(feeds, &self.output_shapes, check_finite)?)
    }

    fn run_update_resident(
        &mut self,
        feeds: &mut Feeds,
        check_finite: bool,
        next: &[(&str, &Tensor)],
    ) -> Result<HashMap<String, Tensor>, BackendError> {
        Ok(self
            .exec
            .run_update_resident(feeds, &self.output_shapes, check_finite, next)?)
    }

    fn sync_updates(&mut self, feeds: &mut Feeds) -> Result<(), BackendError> {
        Ok(self.exec.sync_updates(feeds)?)
    }

    fn set_collective(
        &mut self,
        comm: std::sync::Arc<dyn xenon_runtime::collective::Collective>,
    ) -> Result<(), BackendError> {
        self.exec.set_collective(comm);
        Ok(())
    }

    fn fingerprint(&self) -> Option<u64> {
        Some(self.key)
    }
}

impl OpenCl {
    fn lowered(&self, graph: &Graph) -> Result<Lowered, BackendError> {
        crate::lower::lower(graph).map_err(|e| BackendError::Unsupported {
            backend: "opencl",
            reason: e.to_string(),
        })
    }
}

impl Backend for OpenCl {
    fn name(&self) -> &'static str {
        "opencl"
    }

    fn lower(&self, graph: &Graph) -> Result<Option<Lowered>, BackendError> {
        self.lowered(graph).map(Some)
    }

    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError> {
        let lowered = self.lowered(graph)?;
        let sources = lowered
            .program
            .steps
            .iter()
            .map(|s| match s {
                Step::Loop(k) => opencl::loop_kernel_source(k).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::Unsupported {
                backend: "opencl",
                reason: e.to_string(),
            })?;
        let exec = OclExecutor::new(lowered.program, sources, self.device, opencl::BUILD_OPTIONS)?;
        Ok(Box::new(OclProgram {
            exec,
            output_shapes: lowered.output_shapes,
            key: super::graph_hash(graph, &Default::default()),
        }))
    }
}
