//! Backends: what turns a graph into something that runs.
//!
//! A [`Backend`] compiles a [`Graph`] into an [`Executable`], which runs it on named input
//! tensors and returns the named outputs. The reference interpreter is a backend
//! ([`Interpreter`]); the Cranelift CPU JIT and OpenCL backends implement the same traits,
//! so models, the CLI and tests choose a backend by value.

#[cfg(feature = "opencl")]
mod opencl;
#[cfg(feature = "opencl")]
pub use opencl::OpenCl;

use crate::codegen::cpu::{CompiledKernels, CpuOptions};
use crate::interp::{self, Feeds, InterpError};
use crate::ir::Graph;
use crate::lower::Lowered;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use xenon_runtime::Tensor;
use xenon_runtime::collective::Collective;
/// The CPU GEMM instruction-set paths a [`Cpu`] backend can take (see [`BackendOptions::isa`]).
pub use xenon_runtime::cpu::gemm::Isa;
use xenon_runtime::exec::{ExecError, StepTimes, first_non_finite};
use xenon_runtime::program::Step;

/// Why compiling or running a graph failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The interpreter rejected the inputs or hit a bad index.
    #[error(transparent)]
    Interp(#[from] InterpError),
    /// A compiled program failed to run (any backend).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The backend cannot compile this graph.
    #[error("{backend} backend: {reason}")]
    Unsupported {
        backend: &'static str,
        reason: String,
    },
    /// No backend has this name.
    #[error("unknown backend {name:?}; known backends: {known}")]
    UnknownBackend { name: String, known: String },
    /// The backend exists but cannot run here.
    #[error("the {name} backend is not available: {reason}; available: {available}")]
    NotAvailable {
        name: &'static str,
        reason: String,
        available: String,
    },
}

/// A compiled graph, ready to run repeatedly.
pub trait Executable: Send {
    /// Runs the graph on `feeds` (every input and parameter, by name) and returns every
    /// named output.
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError>;

    /// The outputs that update a feed, `(output, feed)`: the graph's
    /// [`Graph::updates`](crate::ir::Graph::updates).
    fn updates(&self) -> &[(String, String)];

    /// Runs the graph and writes every update (see [`Executable::updates`]) back into its
    /// feed, returning the other outputs. With `check_finite`, an updated value holding NaN
    /// or infinity is an error naming it (and the element), and then no feed is changed.
    /// (The default runs [`Executable::run`] and moves the results; backends override it to
    /// update in place.)
    fn run_update(
        &mut self,
        feeds: &mut Feeds,
        check_finite: bool,
    ) -> Result<HashMap<String, Tensor>, BackendError> {
        let mut out = self.run(feeds)?;
        let updates = self.updates().to_vec();
        if check_finite {
            for (output, _) in &updates {
                if let Some(element) = out.get(output).and_then(first_non_finite) {
                    return Err(BackendError::Exec(ExecError::NonFinite {
                        output: output.clone(),
                        element,
                    }));
                }
            }
        }
        for (output, feed) in updates {
            let (Some(v), Some(target)) = (out.remove(&output), feeds.get_mut(&feed)) else {
                continue;
            };
            let shape = target.shape().to_vec();
            *target = v.reshaped(shape).map_err(|e| BackendError::Unsupported {
                backend: "update",
                reason: format!("{output:?} cannot update {feed:?}: {e}"),
            })?;
        }
        Ok(out)
    }

    /// Like [`Executable::run_update`], but a backend with its own memory (OpenCL) may keep
    /// the updated values there instead of writing them back: the updated feeds' host
    /// tensors are then stale until [`Executable::sync_updates`], and later runs use the
    /// device's values as long as the host tensors are not changed. This is how training
    /// keeps parameters and optimizer state on a device across steps.
    ///
    /// `next` (may be empty) lists tensors a following run will feed anew, typically the
    /// next minibatch: a device backend starts uploading them while this run computes, and
    /// the run that feeds the same tensors (same [`Tensor::stamp`]) does not wait for them.
    /// Default: `run_update`, ignoring `next`.
    fn run_update_resident(
        &mut self,
        feeds: &mut Feeds,
        check_finite: bool,
        next: &[(&str, &Tensor)],
    ) -> Result<HashMap<String, Tensor>, BackendError> {
        let _ = next;
        self.run_update(feeds, check_finite)
    }

    /// Writes the values [`Executable::run_update_resident`] kept on a device back into
    /// `feeds`. Default: nothing to do.
    fn sync_updates(&mut self, _feeds: &mut Feeds) -> Result<(), BackendError> {
        Ok(())
    }

    /// Makes this executable one rank of `comm`'s group: its `all_reduce` ops sum over the
    /// ranks, each of which must run the same graph. Without it, a run is one rank and
    /// `all_reduce` is the identity. Default: the backend cannot, an error.
    fn set_collective(&mut self, comm: Arc<dyn Collective>) -> Result<(), BackendError> {
        let _ = comm;
        Err(BackendError::Unsupported {
            backend: "this",
            reason: "no all_reduce over several ranks".into(),
        })
    }

    /// A hash of what runs (the graph as compiled), equal for equal compilations: ranks of a
    /// data-parallel run compare it before their first step. Default: none.
    fn fingerprint(&self) -> Option<u64> {
        None
    }

    /// Turns per-step timing on (from zero) or off, where the backend supports it.
    fn set_profiling(&mut self, _on: bool) {}

    /// Time per kind of step accumulated since profiling was turned on, if supported.
    fn profile(&self) -> Option<StepTimes> {
        None
    }
}

/// Something that compiles graphs.
pub trait Backend: Send + Sync {
    /// The name used on the command line (`interp`, `cpu`, `opencl`).
    fn name(&self) -> &'static str;
    /// Compiles `graph` (lowering it first, where the backend lowers).
    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError>;

    /// The runtime program this backend lowers `graph` to (the pipeline's
    /// [`Stage::Lowered`](crate::pipeline::Stage::Lowered), for dumps), or `None` for a
    /// backend that runs graphs without lowering them (default).
    fn lower(&self, _graph: &Graph) -> Result<Option<Lowered>, BackendError> {
        Ok(None)
    }
}

/// The reference interpreter as a backend: "compiling" keeps a copy of the graph.
#[derive(Clone, Copy, Debug, Default)]
pub struct Interpreter;

/// The graph, the rank's group, the graph's hash.
struct Interpreted(Graph, Option<Arc<dyn Collective>>, u64);

impl Executable for Interpreted {
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError> {
        Ok(interp::run_with(&self.0, feeds, self.1.as_deref())?)
    }

    fn updates(&self) -> &[(String, String)] {
        self.0.updates()
    }

    fn set_collective(&mut self, comm: Arc<dyn Collective>) -> Result<(), BackendError> {
        self.1 = Some(comm);
        Ok(())
    }

    fn fingerprint(&self) -> Option<u64> {
        Some(self.2)
    }
}

impl Backend for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError> {
        Ok(Box::new(Interpreted(
            graph.clone(),
            None,
            graph_hash(graph, &CpuOptions::default()),
        )))
    }
}

/// The CPU backend: lowers the graph to a [`xenon_runtime::program::Program`] (fused loop
/// kernels, GEMMs, library routines over a planned arena), compiles its loop kernels to
/// native code with Cranelift ([`crate::codegen::cpu`]) and runs it with the runtime's
/// [`CpuExecutor`](xenon_runtime::cpu::CpuExecutor) on `threads` threads.
///
/// Compiled programs are cached by graph hash within the process: compiling the same graph
/// again (another model, another batch of the same size) reuses the code and only allocates
/// a fresh arena.
#[derive(Clone, Debug)]
pub struct Cpu {
    /// Worker threads (default: the machine's available parallelism).
    pub threads: usize,
    /// Code generation options (see [`CpuOptions`]'s defaults).
    pub options: CpuOptions,
    /// The GEMM instruction-set path (default: [`Isa::detect`], the best the running
    /// processor has, capped by the `XENON_ISA` environment variable). A path the
    /// processor lacks is replaced by its best lesser one.
    pub isa: Isa,
}

impl Cpu {
    /// The CPU backend with `threads` threads, default code generation and GEMM path.
    pub fn with_threads(threads: usize) -> Cpu {
        Cpu::with_isa(threads, Isa::detect())
    }

    /// The CPU backend with `threads` threads and the GEMM path `isa` (capped to what the
    /// processor has).
    pub fn with_isa(threads: usize, isa: Isa) -> Cpu {
        Cpu {
            threads: threads.max(1),
            options: CpuOptions::default(),
            isa: isa.capped(),
        }
    }
}

impl Default for Cpu {
    fn default() -> Cpu {
        Cpu::with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// A lowered and compiled graph, shared by every executor made from it.
struct CompiledProgram {
    program: xenon_runtime::program::Program,
    table: Vec<Option<xenon_runtime::cpu::KernelFn>>,
    code: Arc<CompiledKernels>,
    output_shapes: HashMap<String, Vec<usize>>,
}

/// Compiled programs by (graph hash, options).
fn cache() -> &'static Mutex<HashMap<u64, Arc<CompiledProgram>>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Arc<CompiledProgram>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A stable hash of a graph (its JSON form) and the code generation options.
pub fn graph_hash(graph: &Graph, options: &CpuOptions) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    graph.to_json().hash(&mut h);
    options.hash(&mut h);
    h.finish()
}

struct CpuProgram {
    exec: xenon_runtime::cpu::CpuExecutor,
    output_shapes: HashMap<String, Vec<usize>>,
    /// [`graph_hash`] of the compiled graph and options.
    key: u64,
}

impl Executable for CpuProgram {
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

    fn sync_updates(&mut self, feeds: &mut Feeds) -> Result<(), BackendError> {
        Ok(self.exec.sync_updates(feeds)?)
    }

    fn set_collective(&mut self, comm: Arc<dyn Collective>) -> Result<(), BackendError> {
        self.exec.set_collective(comm);
        Ok(())
    }

    fn fingerprint(&self) -> Option<u64> {
        Some(self.key)
    }

    fn set_profiling(&mut self, on: bool) {
        self.exec.set_profiling(on);
    }

    fn profile(&self) -> Option<StepTimes> {
        self.exec.profile()
    }
}

impl Cpu {
    fn lowered(&self, graph: &Graph) -> Result<Lowered, BackendError> {
        crate::lower::lower(graph).map_err(|e| BackendError::Unsupported {
            backend: "cpu",
            reason: e.to_string(),
        })
    }

    fn build(&self, graph: &Graph) -> Result<CompiledProgram, BackendError> {
        let unsupported = |reason: String| BackendError::Unsupported {
            backend: "cpu",
            reason,
        };
        let lowered = self.lowered(graph)?;
        let loops = lowered.program.loop_kernels();
        let code = crate::codegen::cpu::compile(&loops, &self.options)
            .map_err(|e| unsupported(e.to_string()))?;
        let mut next = 0;
        let table = lowered
            .program
            .steps
            .iter()
            .map(|s| match s {
                Step::Loop(_) => {
                    next += 1;
                    Some(code.get(next - 1))
                }
                _ => None,
            })
            .collect();
        Ok(CompiledProgram {
            program: lowered.program,
            table,
            code: Arc::new(code),
            output_shapes: lowered.output_shapes,
        })
    }
}

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn lower(&self, graph: &Graph) -> Result<Option<Lowered>, BackendError> {
        self.lowered(graph).map(Some)
    }

    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError> {
        let key = graph_hash(graph, &self.options);
        let cached = cache().lock().ok().and_then(|c| c.get(&key).cloned());
        let compiled = match cached {
            Some(c) => c,
            None => {
                let c = Arc::new(self.build(graph)?);
                if let Ok(mut m) = cache().lock() {
                    m.insert(key, c.clone());
                }
                c
            }
        };
        let mut exec = xenon_runtime::cpu::CpuExecutor::new(
            compiled.program.clone(),
            compiled.table.clone(),
            compiled.code.clone(),
            self.threads,
        )?;
        exec.set_isa(self.isa);
        Ok(Box::new(CpuProgram {
            exec,
            output_shapes: compiled.output_shapes.clone(),
            key,
        }))
    }
}

/// What a backend is built with; each backend reads what concerns it.
#[derive(Clone, Copy, Debug, Default)]
pub struct BackendOptions {
    /// Worker threads (CPU; default: the machine's available parallelism).
    pub threads: Option<usize>,
    /// The CPU GEMM path (default: the best the processor has, capped by `XENON_ISA`).
    pub isa: Option<Isa>,
    /// The OpenCL device (an index into `xenon devices`; default 0).
    pub device: Option<usize>,
}

/// A backend this build knows: the one list the command line, model files and errors use.
pub struct BackendEntry {
    /// The name `--backend` takes.
    pub name: &'static str,
    /// Other names for it (neon's backend names among them).
    pub aliases: &'static [&'static str],
    /// What it is, in a few words.
    pub about: &'static str,
    /// Builds it, or says why it cannot run in this build or on this machine.
    pub build: fn(&BackendOptions) -> Result<Arc<dyn Backend>, String>,
}

/// Every backend Xenon knows, available or not.
pub const BACKENDS: &[BackendEntry] = &[
    BackendEntry {
        name: "interp",
        aliases: &[],
        about: "the reference interpreter",
        build: |_| Ok(Arc::new(Interpreter)),
    },
    BackendEntry {
        name: "cpu",
        aliases: &["mkl"],
        about: "Cranelift-compiled loop kernels and Xenon's GEMM on the host CPU",
        build: |o| {
            let mut cpu = o.threads.map_or_else(Cpu::default, Cpu::with_threads);
            if let Some(isa) = o.isa {
                cpu.isa = isa.capped();
            }
            Ok(Arc::new(cpu))
        },
    },
    BackendEntry {
        name: "opencl",
        aliases: &["gpu"],
        about: "generated OpenCL kernels on a GPU (or any OpenCL device)",
        build: opencl_backend,
    },
];

/// The OpenCL backend on `options.device`, when this build has it and the device exists.
#[cfg(feature = "opencl")]
fn opencl_backend(o: &BackendOptions) -> Result<Arc<dyn Backend>, String> {
    let device = o.device.unwrap_or(0);
    let devices = xenon_runtime::opencl::devices().map_err(|e| e.to_string())?;
    if device >= devices.len() {
        return Err(if devices.is_empty() {
            "no OpenCL device found (install an OpenCL platform, e.g. pocl-opencl-icd)".into()
        } else {
            format!(
                "there is no OpenCL device {device}; `xenon devices` lists {}",
                devices.len()
            )
        });
    }
    Ok(Arc::new(OpenCl { device }))
}

/// Without the `opencl` feature: says how to get it.
#[cfg(not(feature = "opencl"))]
fn opencl_backend(_: &BackendOptions) -> Result<Arc<dyn Backend>, String> {
    Err("this build of Xenon has no OpenCL support (build with `--features opencl`)".into())
}

/// The backend named `name` (or one of its aliases), built with `options`.
///
/// ```
/// use xenon_compiler::backend::{BackendError, BackendOptions, backend};
/// assert_eq!(backend("mkl", &BackendOptions::default()).unwrap().name(), "cpu");
/// let e = backend("tpu", &BackendOptions::default()).err().unwrap();
/// assert!(matches!(e, BackendError::UnknownBackend { .. }));
/// ```
pub fn backend(name: &str, options: &BackendOptions) -> Result<Arc<dyn Backend>, BackendError> {
    let entry = BACKENDS
        .iter()
        .find(|e| e.name == name || e.aliases.contains(&name))
        .ok_or_else(|| BackendError::UnknownBackend {
            name: name.to_string(),
            known: BACKENDS
                .iter()
                .map(|e| match e.aliases {
                    [] => e.name.to_string(),
                    a => format!("{} (or {})", e.name, a.join(", ")),
                })
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    (entry.build)(options).map_err(|reason| BackendError::NotAvailable {
        name: entry.name,
        reason,
        available: BACKENDS
            .iter()
            .filter(|e| (e.build)(options).is_ok())
            .map(|e| e.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}
