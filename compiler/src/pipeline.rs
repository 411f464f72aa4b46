//! The compile pipeline: one value that lists the stages a graph goes through and their
//! options, with hooks that see what each stage made.
//!
//! | stage | what it does | option |
//! |---|---|---|
//! | [`Stage::Graph`] | the graph the caller built (forward pass, cost) | — |
//! | [`Stage::Autodiff`] | adds the gradients of a scalar and what uses them (an optimizer's update), then drops dead nodes | [`Request::autodiff`] |
//! | [`Stage::Optimized`] | the e-graph optimizer ([`crate::opt`]) | [`Pipeline::optimize`] (default on) |
//! | [`Stage::Lowered`] | the backend's lowering to a runtime program ([`crate::lower`]) | [`Pipeline::backend`] |
//! | [`Stage::Compiled`] | the backend's code generation: an [`Executable`] | [`Pipeline::backend`] |
//!
//! A [`Hook`] sees each stage's result ([`Artifact`]) and may wrap the executable:
//! [`Dump`] renders a stage in the `xenon dump` formats, [`crate::verify::Verify`] checks
//! the executable's first run against the reference interpreter on the graph before
//! optimization, and the optimized graph on the interpreter too, per output.
//!
//! `Model`, the CLI's `train`, `eval`, `dump` and `bench` all compile through a `Pipeline`.
//!
//! ```
//! use std::sync::Arc;
//! use xenon_compiler::backend::Cpu;
//! use xenon_compiler::ir::{DType, Graph};
//! use xenon_compiler::pipeline::{Dump, DumpFormat, Pipeline, Request, Stage};
//!
//! let mut g = Graph::new();
//! let x = g.input("x", DType::F32, &[4]).unwrap();
//! let y = g.mul(x, x).unwrap();
//! let z = g.exp(y).unwrap();
//! g.set_output("z", z).unwrap();
//!
//! let dump = Arc::new(Dump::new(Stage::Optimized, DumpFormat::Text));
//! let pipeline = Pipeline::new(Arc::new(Cpu::with_threads(1))).with_hook(dump.clone());
//! let exe = pipeline.compile(Request::new(g)).unwrap();
//! assert!(dump.text().unwrap().contains("exp"));
//! # drop(exe);
//! ```

use crate::backend::{Backend, BackendError, Executable};
use crate::ir::{Graph, GraphError, NodeId};
use crate::lower::Lowered;
use crate::opt::{self, OptConfig, OptError, OptReport};
use std::error::Error;
use std::sync::{Arc, Mutex, PoisonError};

/// A stage of the pipeline, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The graph as the caller built it.
    Graph,
    /// After automatic differentiation and what uses the gradients.
    Autodiff,
    /// After the e-graph optimizer.
    Optimized,
    /// The backend's runtime program (fused loop kernels, GEMMs, library calls, memory plan).
    Lowered,
    /// The backend's executable.
    Compiled,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 5] = [
        Stage::Graph,
        Stage::Autodiff,
        Stage::Optimized,
        Stage::Lowered,
        Stage::Compiled,
    ];

    /// The stage's name in dumps and reports (`graph`, `autodiff`, `optimized`, `lowered`,
    /// `compiled`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Graph => "graph",
            Stage::Autodiff => "autodiff",
            Stage::Optimized => "optimized",
            Stage::Lowered => "lowered",
            Stage::Compiled => "compiled",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The error a [`Autodiff::apply`] callback returns; the caller gets it back unchanged in
/// [`PipelineError::Apply`] (downcast it to its own type).
pub type ApplyError = Box<dyn Error + Send + Sync + 'static>;

/// What to use gradients for: adds nodes and outputs to the graph given the gradients, in
/// the order of [`Autodiff::wrt`].
pub type Apply<'a> = Box<dyn FnOnce(&mut Graph, &[NodeId]) -> Result<(), ApplyError> + 'a>;

/// The autodiff stage's work: differentiate `loss` with respect to `wrt`, then `apply` the
/// gradients (an optimizer adds its update here; see [`crate::autodiff::grad`]).
pub struct Autodiff<'a> {
    /// A scalar node of the graph.
    pub loss: NodeId,
    /// The nodes to differentiate with respect to (parameters, usually).
    pub wrt: Vec<NodeId>,
    /// Adds what uses the gradients (outputs, updates).
    pub apply: Apply<'a>,
}

/// One thing to compile: a graph and, for training, the autodiff stage's work.
pub struct Request<'a> {
    /// The graph with its outputs (and, for training, the loss).
    pub graph: Graph,
    /// Differentiate and apply the gradients (`None`: the graph runs as built).
    pub autodiff: Option<Autodiff<'a>>,
}

impl<'a> Request<'a> {
    /// Compiles `graph` as it is.
    pub fn new(graph: Graph) -> Request<'a> {
        Request {
            graph,
            autodiff: None,
        }
    }

    /// Compiles `graph` with the gradients of `loss` with respect to `wrt` handed to
    /// `apply`.
    pub fn train(
        graph: Graph,
        loss: NodeId,
        wrt: Vec<NodeId>,
        apply: impl FnOnce(&mut Graph, &[NodeId]) -> Result<(), ApplyError> + 'a,
    ) -> Request<'a> {
        Request {
            graph,
            autodiff: Some(Autodiff {
                loss,
                wrt,
                apply: Box::new(apply),
            }),
        }
    }
}

/// What a stage made, as a [`Hook`] sees it.
#[derive(Clone, Copy)]
pub enum Artifact<'a> {
    /// [`Stage::Graph`], [`Stage::Autodiff`] and [`Stage::Optimized`]: the graph, with the
    /// optimizer's report after [`Stage::Optimized`].
    Graph {
        graph: &'a Graph,
        report: Option<&'a OptReport>,
    },
    /// [`Stage::Lowered`]: the optimized graph and the backend's program for it.
    Lowered {
        graph: &'a Graph,
        lowered: &'a Lowered,
    },
}

/// The graphs of the stages that ran, for [`Hook::wrap`].
#[derive(Clone, Debug)]
pub struct Trace {
    /// `(stage, graph)` for every graph stage that ran, in order.
    pub graphs: Vec<(Stage, Graph)>,
    /// The backend that compiled the executable.
    pub backend: &'static str,
}

impl Trace {
    /// The graph the stages after it must agree with: the last one before optimization
    /// (the autodiff graph when training, the caller's graph otherwise).
    pub fn reference(&self) -> &Graph {
        self.graphs
            .iter()
            .rev()
            .find(|(s, _)| *s < Stage::Optimized)
            .map(|(_, g)| g)
            .expect("the pipeline always records the caller's graph")
    }

    /// The graph a stage made, if it ran.
    pub fn graph(&self, stage: Stage) -> Option<&Graph> {
        self.graphs
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, g)| g)
    }
}

/// Something that watches the pipeline: a dump, a verifier, a profiler.
pub trait Hook: Send + Sync {
    /// Whether [`Hook::after`] wants to see `stage` (default: every stage). The pipeline
    /// asks the backend for its lowered program ([`Backend::lower`]) only when a hook
    /// wants [`Stage::Lowered`].
    fn wants(&self, _stage: Stage) -> bool {
        true
    }

    /// Sees what `stage` made; an error stops the pipeline
    /// ([`PipelineError::Hook`]).
    fn after(&self, _stage: Stage, _artifact: Artifact<'_>) -> Result<(), String> {
        Ok(())
    }

    /// Stage [`Stage::Compiled`]: may wrap the executable (default: returns it unchanged).
    fn wrap(&self, executable: Box<dyn Executable>, _trace: &Trace) -> Box<dyn Executable> {
        executable
    }
}

/// Why a pipeline stage failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Differentiation failed.
    #[error("autodiff: {0}")]
    Autodiff(GraphError),
    /// The [`Autodiff::apply`] callback failed; its error, unchanged.
    #[error(transparent)]
    Apply(ApplyError),
    /// The e-graph optimizer failed.
    #[error(transparent)]
    Optimize(#[from] OptError),
    /// Lowering or code generation failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A hook stopped the pipeline.
    #[error("{stage} stage: {message}")]
    Hook { stage: Stage, message: String },
}

/// The stages and their options; see the [module docs](self).
#[derive(Clone)]
pub struct Pipeline {
    /// The e-graph optimizer's configuration (`None`: the stage is skipped). Default:
    /// `Some(OptConfig::default())`.
    pub optimize: Option<OptConfig>,
    /// What lowers and compiles (stages [`Stage::Lowered`] and [`Stage::Compiled`]).
    pub backend: Arc<dyn Backend>,
    hooks: Vec<Arc<dyn Hook>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("optimize", &self.optimize.is_some())
            .field("backend", &self.backend.name())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl Pipeline {
    /// Every stage, the default optimizer configuration, compiling with `backend`, no hooks.
    pub fn new(backend: Arc<dyn Backend>) -> Pipeline {
        Pipeline {
            optimize: Some(OptConfig::default()),
            backend,
            hooks: Vec::new(),
        }
    }

    /// The same pipeline with the optimizer configured by `config` (`None`: off).
    pub fn with_optimize(mut self, config: Option<OptConfig>) -> Pipeline {
        self.optimize = config;
        self
    }

    /// The same pipeline compiling with `backend`.
    pub fn with_backend(mut self, backend: Arc<dyn Backend>) -> Pipeline {
        self.backend = backend;
        self
    }

    /// The same pipeline with `hook` added (hooks run in the order they were added).
    pub fn with_hook(mut self, hook: Arc<dyn Hook>) -> Pipeline {
        self.hooks.push(hook);
        self
    }

    /// The hooks, in order.
    pub fn hooks(&self) -> &[Arc<dyn Hook>] {
        &self.hooks
    }

    /// Runs the graph stages up to and including `last` (at most [`Stage::Optimized`]) and
    /// returns that graph with the optimizer's report if it ran. A stage that is off
    /// (no autodiff work, optimizer `None`) passes its input through.
    pub fn graph(
        &self,
        request: Request<'_>,
        last: Stage,
    ) -> Result<(Graph, Option<OptReport>), PipelineError> {
        let mut trace = Vec::new();
        self.graph_stages(request, last, &mut trace)
    }

    /// Runs the graph stages up to `last`, recording each graph in `trace` when a hook
    /// will want it.
    fn graph_stages(
        &self,
        request: Request<'_>,
        last: Stage,
        trace: &mut Vec<(Stage, Graph)>,
    ) -> Result<(Graph, Option<OptReport>), PipelineError> {
        let Request {
            mut graph,
            autodiff,
        } = request;
        self.show(Stage::Graph, &graph, None, trace)?;
        if last == Stage::Graph {
            return Ok((graph, None));
        }
        if let Some(Autodiff { loss, wrt, apply }) = autodiff {
            let grads =
                crate::autodiff::grad(&mut graph, loss, &wrt).map_err(PipelineError::Autodiff)?;
            apply(&mut graph, &grads).map_err(PipelineError::Apply)?;
            graph = graph.prune().0;
            self.show(Stage::Autodiff, &graph, None, trace)?;
        }
        if last == Stage::Autodiff {
            return Ok((graph, None));
        }
        let Some(config) = &self.optimize else {
            return Ok((graph, None));
        };
        let (graph, report) = opt::optimize(&graph, config)?;
        self.show(Stage::Optimized, &graph, Some(&report), trace)?;
        Ok((graph, Some(report)))
    }

    /// Shows a graph stage to the hooks and records it for [`Hook::wrap`].
    fn show(
        &self,
        stage: Stage,
        graph: &Graph,
        report: Option<&OptReport>,
        trace: &mut Vec<(Stage, Graph)>,
    ) -> Result<(), PipelineError> {
        if self.hooks.is_empty() {
            return Ok(());
        }
        trace.push((stage, graph.clone()));
        self.tell(stage, Artifact::Graph { graph, report })
    }

    fn tell(&self, stage: Stage, artifact: Artifact<'_>) -> Result<(), PipelineError> {
        for hook in self.hooks.iter().filter(|h| h.wants(stage)) {
            hook.after(stage, artifact)
                .map_err(|message| PipelineError::Hook { stage, message })?;
        }
        Ok(())
    }

    fn tell_lowered(&self, graph: &Graph, lowered: &Lowered) -> Result<(), PipelineError> {
        self.tell(Stage::Lowered, Artifact::Lowered { graph, lowered })
    }

    /// Runs every stage and returns the executable (wrapped by the hooks that wrap).
    pub fn compile(&self, request: Request<'_>) -> Result<Box<dyn Executable>, PipelineError> {
        let mut graphs = Vec::new();
        let (graph, _) = self.graph_stages(request, Stage::Optimized, &mut graphs)?;
        if self.hooks.iter().any(|h| h.wants(Stage::Lowered))
            && let Some(lowered) = self.backend.lower(&graph)?
        {
            self.tell_lowered(&graph, &lowered)?;
        }
        let exe = self.backend.compile(&graph)?;
        let trace = Trace {
            graphs,
            backend: self.backend.name(),
        };
        Ok(self.hooks.iter().fold(exe, |exe, h| h.wrap(exe, &trace)))
    }

    /// Runs the stages up to and including [`Stage::Lowered`] and returns the optimized
    /// graph and the backend's program for it, without compiling (for dumps). An error for
    /// a backend that does not lower to a runtime program (the interpreter).
    pub fn lower(&self, request: Request<'_>) -> Result<(Graph, Lowered), PipelineError> {
        let mut graphs = Vec::new();
        let (graph, _) = self.graph_stages(request, Stage::Optimized, &mut graphs)?;
        let lowered = self
            .backend
            .lower(&graph)?
            .ok_or_else(|| BackendError::Unsupported {
                backend: self.backend.name(),
                reason: "it runs graphs without lowering them to a runtime program".into(),
            })?;
        self.tell_lowered(&graph, &lowered)?;
        Ok((graph, lowered))
    }
}

/// A dump's text form: the `xenon dump --format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFormat {
    /// Human-readable text.
    Text,
    /// Graphviz DOT.
    Dot,
    /// JSON (pretty, with a final newline).
    Json,
}

/// What of a lowered program to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoweredView {
    /// The graph partitioned into the program's steps (`xenon dump --stage kernels`).
    Kernels,
    /// The steps in order with their buffers and memory plan (`--stage schedule`).
    Schedule,
}

/// A hook that renders one stage in the formats of `xenon dump` (described in
/// [`crate::opt::dump`] and [`crate::lower::dump`]) and keeps the text of each time the
/// stage ran.
pub struct Dump {
    stage: Stage,
    format: DumpFormat,
    view: LoweredView,
    timings: bool,
    texts: Mutex<Vec<String>>,
}

impl Dump {
    /// Dumps `stage` in `format` (a lowered program as its kernels; see [`Dump::view`]).
    pub fn new(stage: Stage, format: DumpFormat) -> Dump {
        Dump {
            stage,
            format,
            view: LoweredView::Kernels,
            timings: false,
            texts: Mutex::new(Vec::new()),
        }
    }

    /// Shows a lowered program as `view`.
    pub fn view(mut self, view: LoweredView) -> Dump {
        self.view = view;
        self
    }

    /// Includes the optimizer's wall-clock times (the text then differs between runs;
    /// default: left out).
    pub fn timings(mut self, on: bool) -> Dump {
        self.timings = on;
        self
    }

    /// The text of the last time the stage ran, if it did.
    pub fn text(&self) -> Option<String> {
        self.texts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
    }

    fn render(&self, artifact: Artifact<'_>) -> Result<String, String> {
        let json = |v: serde_json::Value| {
            serde_json::to_string_pretty(&v)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        };
        use crate::lower::dump as ld;
        use crate::opt::dump as od;
        Ok(match artifact {
            Artifact::Graph { graph, report } => {
                let report = report.map(|r| {
                    if self.timings {
                        r.clone()
                    } else {
                        r.clone().without_timings()
                    }
                });
                match self.format {
                    DumpFormat::Text => od::to_text(graph, report.as_ref()),
                    DumpFormat::Dot => od::to_dot(graph, report.as_ref()),
                    DumpFormat::Json => {
                        json(od::to_json(graph, self.stage.name(), report.as_ref()))?
                    }
                }
            }
            Artifact::Lowered { graph, lowered } => match (self.view, self.format) {
                (LoweredView::Kernels, DumpFormat::Text) => ld::kernels_text(graph, lowered),
                (LoweredView::Kernels, DumpFormat::Dot) => ld::kernels_dot(graph, lowered),
                (LoweredView::Kernels, DumpFormat::Json) => json(ld::kernels_json(graph, lowered))?,
                (LoweredView::Schedule, DumpFormat::Text) => ld::schedule_text(lowered),
                (LoweredView::Schedule, DumpFormat::Dot) => ld::schedule_dot(lowered),
                (LoweredView::Schedule, DumpFormat::Json) => {
                    json(ld::schedule_json(graph, lowered))?
                }
            },
        })
    }
}

impl Hook for Dump {
    fn wants(&self, stage: Stage) -> bool {
        stage == self.stage
    }

    fn after(&self, _stage: Stage, artifact: Artifact<'_>) -> Result<(), String> {
        let text = self.render(artifact)?;
        self.texts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(text);
        Ok(())
    }
}
