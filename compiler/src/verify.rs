//! Verify mode: a pipeline [`Hook`] whose executables run the reference interpreter beside
//! their first run and record, per output, how far each later stage is from the graph
//! before optimization (the autodiff graph when training): the optimized graph on the
//! interpreter (what the e-graph rewrites changed) and the backend's executable (what
//! lowering and code generation changed).
//!
//! The error of an output is normwise: `max |got − reference| / max |reference|` over its
//! elements (the largest absolute error relative to the output's scale, so elements near
//! zero do not inflate it). An update written back in place (see
//! [`Graph::set_update`](crate::ir::Graph::set_update)) is compared through the feed it
//! updated.
//!
//! Sums are rounded in different orders by the interpreter (index order), the GEMM
//! (blocked) and the loop kernels (partial accumulators), so an output that cancels
//! heavily (a batch-normalized convolution's weight gradient) can differ between them by
//! far more than one rounding, each being as close to the exact value as the other. An f32
//! graph is therefore also run in f64 on the interpreter ([`Graph::with_float_dtype`]):
//! [`OutputError::exact`] is a stage's error against that, and
//! [`OutputError::reference_exact`] the f32 interpreter's own. [`OutputError::passes`]
//! accepts an output within the tolerance of the f32 interpreter, or no further from the
//! f64 result than twice the f32 interpreter is.
//!
//! ```
//! use std::sync::Arc;
//! use xenon_compiler::backend::Cpu;
//! use xenon_compiler::ir::{DType, Graph};
//! use xenon_compiler::pipeline::{Pipeline, Request, Stage};
//! use xenon_compiler::verify::Verify;
//! use xenon_runtime::Tensor;
//!
//! let mut g = Graph::new();
//! let x = g.input("x", DType::F32, &[4]).unwrap();
//! let y = g.exp(x).unwrap();
//! g.set_output("y", y).unwrap();
//! let verify = Arc::new(Verify::new());
//! let pipeline = Pipeline::new(Arc::new(Cpu::with_threads(1))).with_hook(verify.clone());
//! let mut exe = pipeline.compile(Request::new(g)).unwrap();
//! let x = Tensor::from_f32(vec![4], vec![0.0, 1.0, -2.0, 3.5]).unwrap();
//! exe.run(&[("x".to_string(), x)].into_iter().collect()).unwrap();
//! let reports = verify.reports();
//! assert_eq!(reports.len(), 2); // the optimized graph, then the compiled program
//! assert_eq!(reports[1].stage, Stage::Compiled);
//! assert_eq!(reports[1].outputs[0].name, "y");
//! assert!(reports[1].outputs[0].relative <= 1e-5);
//! ```

use crate::backend::{BackendError, Executable};
use crate::interp::{self, Feeds};
use crate::ir::Graph;
use crate::pipeline::{Hook, Stage, Trace};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use xenon_runtime::exec::StepTimes;
use xenon_runtime::{DType, Tensor};

/// How far one output of a stage is from the reference interpreter's.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputError {
    /// The output's name.
    pub name: String,
    /// `max |got − reference|` over the elements.
    pub max_abs: f64,
    /// `max_abs / max |reference|` (0 when both are all zero; infinite when only the
    /// reference is).
    pub relative: f64,
    /// The same relative error against the interpreter in f64, for a graph that computes
    /// in f32 (`None` otherwise).
    pub exact: Option<f64>,
    /// The f32 interpreter's own relative error against the f64 one: how much rounding
    /// the output's computation amplifies (`None` when [`OutputError::exact`] is).
    pub reference_exact: Option<f64>,
}

impl OutputError {
    /// Whether the output is within `tolerance` (relative) of the interpreter, or, for an
    /// f32 graph, no further from the exact (f64) result than `max(tolerance, 2 ×` the f32
    /// interpreter's own error`)`. NaN errors never pass.
    pub fn passes(&self, tolerance: f64) -> bool {
        self.relative <= tolerance
            || matches!((self.exact, self.reference_exact),
                        (Some(e), Some(r)) if e <= tolerance.max(2.0 * r))
    }
}

/// One stage of one compiled program, on its first run, against the interpreter on the
/// graph before optimization.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyReport {
    /// The program: 0 for the first one compiled with this hook, and so on.
    pub program: usize,
    /// What was checked: [`Stage::Optimized`] (the optimized graph, interpreted) or
    /// [`Stage::Compiled`] (the backend's executable).
    pub stage: Stage,
    /// What ran the checked stage (`interp` for the optimized graph, else the backend).
    pub backend: &'static str,
    /// Every output, by name.
    pub outputs: Vec<OutputError>,
}

impl VerifyReport {
    /// The largest relative error over the outputs (0 for none; NaN when one is NaN).
    pub fn worst(&self) -> f64 {
        self.outputs.iter().map(|o| o.relative).fold(0.0, nan_max)
    }
}

/// The larger of `a` and `b`, NaN counting as the largest (`f64::max` would drop it).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The verify hook; [`Verify::reports`] lists what the executables it wrapped found, in
/// the order their first runs happened.
#[derive(Default)]
pub struct Verify {
    reports: Arc<Mutex<Vec<VerifyReport>>>,
    /// Programs wrapped so far (the next one's number).
    programs: AtomicUsize,
}

impl Verify {
    /// A verifier with no reports yet.
    pub fn new() -> Verify {
        Verify::default()
    }

    /// The reports so far: per program that has run, the optimized graph (when the
    /// optimizer ran) and then the executable.
    pub fn reports(&self) -> Vec<VerifyReport> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Hook for Verify {
    fn wants(&self, _stage: Stage) -> bool {
        false
    }

    fn wrap(&self, inner: Box<dyn Executable>, trace: &Trace) -> Box<dyn Executable> {
        let reference = trace.reference();
        let f32_graph = reference
            .ids()
            .any(|id| reference.ty(id).dtype == DType::F32);
        Box::new(Verified {
            comm: None,
            exact: f32_graph.then(|| reference.with_float_dtype(DType::F64)),
            inner,
            program: self.programs.fetch_add(1, Ordering::Relaxed),
            reference: trace.reference().clone(),
            optimized: trace.graph(Stage::Optimized).cloned(),
            backend: trace.backend,
            pending: true,
            reports: self.reports.clone(),
        })
    }
}

/// An executable that checks its first run.
struct Verified {
    inner: Box<dyn Executable>,
    /// The rank's group, for the reference runs too.
    comm: Option<Arc<dyn xenon_runtime::collective::Collective>>,
    program: usize,
    reference: Graph,
    /// The reference in f64, when it computes in f32.
    exact: Option<Graph>,
    optimized: Option<Graph>,
    backend: &'static str,
    pending: bool,
    reports: Arc<Mutex<Vec<VerifyReport>>>,
}

impl Verified {
    /// Runs the interpreter on `before` and records the errors of the optimized graph and
    /// of `out` (with the updates written back into `after`).
    fn check(
        &mut self,
        before: &Feeds,
        out: &HashMap<String, Tensor>,
        after: Option<&Feeds>,
    ) -> Result<(), BackendError> {
        self.pending = false;
        let reference = interp::run_with(&self.reference, before, self.comm.as_deref())?;
        let exact = match &self.exact {
            Some(g) => {
                let feeds: Feeds = before
                    .iter()
                    .map(|(k, t)| {
                        let t = if t.dtype() == DType::F32 {
                            t.cast(DType::F64)
                        } else {
                            t.clone()
                        };
                        (k.clone(), t)
                    })
                    .collect();
                Some(interp::run_with(g, &feeds, self.comm.as_deref())?)
            }
            None => None,
        };
        let refs = (&reference, exact.as_ref());
        let mut reports = Vec::new();
        if let Some(g) = &self.optimized {
            let got = interp::run_with(g, before, self.comm.as_deref())?;
            reports.push(self.report(Stage::Optimized, "interp", refs, &got, None));
        }
        reports.push(self.report(Stage::Compiled, self.backend, refs, out, after));
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(reports);
        Ok(())
    }

    /// The errors of `out` (outputs missing there are looked up as the feeds of `after`
    /// they updated) against `reference`.
    fn report(
        &self,
        stage: Stage,
        backend: &'static str,
        (reference, exact): (&HashMap<String, Tensor>, Option<&HashMap<String, Tensor>>),
        out: &HashMap<String, Tensor>,
        after: Option<&Feeds>,
    ) -> VerifyReport {
        let mut outputs: Vec<OutputError> = reference
            .iter()
            .filter_map(|(name, want)| {
                let got = out
                    .get(name)
                    .or_else(|| after?.get(self.reference.update_of(name)?))?;
                let mut e = error(name, got, want);
                if let Some(x) = exact.and_then(|x| x.get(name)) {
                    e.exact = Some(error(name, got, x).relative);
                    e.reference_exact = Some(error(name, want, x).relative);
                }
                Some(e)
            })
            .collect();
        outputs.sort_by(|a, b| a.name.cmp(&b.name));
        VerifyReport {
            program: self.program,
            stage,
            backend,
            outputs,
        }
    }
}

/// The error of `got` against `want`.
fn error(name: &str, got: &Tensor, want: &Tensor) -> OutputError {
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let scale = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let max_abs = if g.len() == w.len() {
        g.iter()
            .zip(&w)
            .map(|(a, b)| if a == b { 0.0 } else { (a - b).abs() })
            .fold(0.0, nan_max)
    } else {
        f64::INFINITY
    };
    let relative = if max_abs == 0.0 {
        0.0
    } else if scale > 0.0 {
        max_abs / scale
    } else {
        f64::INFINITY
    };
    OutputError {
        name: name.to_string(),
        max_abs,
        relative,
        exact: None,
        reference_exact: None,
    }
}

impl Executable for Verified {
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError> {
        let out = self.inner.run(feeds)?;
        if self.pending {
            self.check(feeds, &out, None)?;
        }
        Ok(out)
    }

    fn run_update(
        &mut self,
        feeds: &mut Feeds,
        check_finite: bool,
    ) -> Result<HashMap<String, Tensor>, BackendError> {
        if !self.pending {
            return self.inner.run_update(feeds, check_finite);
        }
        let before = feeds.clone();
        let out = self.inner.run_update(feeds, check_finite)?;
        self.check(&before, &out, Some(feeds))?;
        Ok(out)
    }

    fn updates(&self) -> &[(String, String)] {
        self.inner.updates()
    }

    fn sync_updates(&mut self, feeds: &mut Feeds) -> Result<(), BackendError> {
        self.inner.sync_updates(feeds)
    }

    fn set_collective(
        &mut self,
        comm: Arc<dyn xenon_runtime::collective::Collective>,
    ) -> Result<(), BackendError> {
        self.inner.set_collective(comm.clone())?;
        self.comm = Some(comm);
        Ok(())
    }

    fn fingerprint(&self) -> Option<u64> {
        self.inner.fingerprint()
    }

    fn set_profiling(&mut self, on: bool) {
        self.inner.set_profiling(on);
    }

    fn profile(&self) -> Option<StepTimes> {
        self.inner.profile()
    }
}
