//! Verify mode: a [`Backend`] wrapper whose executables run the reference interpreter
//! beside their first run and record, per output, how far the compiled result is from it.
//!
//! The error of an output is normwise: `max |compiled − reference| / max |reference|`
//! over its elements (the largest absolute error relative to the output's scale, so
//! elements near zero do not inflate it). An update written back in place (see
//! [`Graph::set_update`](crate::ir::Graph::set_update)) is compared through the feed it
//! updated.
//!
//! ```
//! use std::sync::Arc;
//! use xenon_compiler::backend::{Backend, Cpu};
//! use xenon_compiler::ir::{DType, Graph};
//! use xenon_compiler::verify::Verifying;
//! use xenon_runtime::Tensor;
//!
//! let mut g = Graph::new();
//! let x = g.input("x", DType::F32, &[4]).unwrap();
//! let y = g.exp(x).unwrap();
//! g.set_output("y", y).unwrap();
//! let checked = Arc::new(Verifying::new(Arc::new(Cpu::with_threads(1))));
//! let mut exe = checked.compile(&g).unwrap();
//! let x = Tensor::from_f32(vec![4], vec![0.0, 1.0, -2.0, 3.5]).unwrap();
//! exe.run(&[("x".to_string(), x)].into_iter().collect()).unwrap();
//! let report = &checked.reports()[0];
//! assert_eq!(report.outputs[0].name, "y");
//! assert!(report.outputs[0].relative <= 1e-5);
//! ```

use crate::backend::{Backend, BackendError, Executable};
use crate::interp::{self, Feeds};
use crate::ir::Graph;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use xenon_runtime::Tensor;
use xenon_runtime::exec::StepTimes;

/// How far one output of a compiled run is from the reference interpreter's.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputError {
    /// The output's name.
    pub name: String,
    /// `max |compiled − reference|` over the elements.
    pub max_abs: f64,
    /// `max_abs / max |reference|` (0 when both are all zero; infinite when only the
    /// reference is).
    pub relative: f64,
}

/// The comparison of one compiled program's first run with the interpreter.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyReport {
    /// The backend checked.
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

/// A backend whose executables check their first run against the reference interpreter;
/// [`Verifying::reports`] lists what they found, in the order the runs happened.
pub struct Verifying {
    inner: Arc<dyn Backend>,
    reports: Arc<Mutex<Vec<VerifyReport>>>,
}

impl Verifying {
    /// Checks the executables `inner` compiles.
    pub fn new(inner: Arc<dyn Backend>) -> Verifying {
        Verifying {
            inner,
            reports: Arc::default(),
        }
    }

    /// The reports so far, one per compiled program that has run.
    pub fn reports(&self) -> Vec<VerifyReport> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Backend for Verifying {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError> {
        Ok(Box::new(Verified {
            inner: self.inner.compile(graph)?,
            graph: graph.clone(),
            backend: self.inner.name(),
            pending: true,
            reports: self.reports.clone(),
        }))
    }
}

/// An executable that checks its first run.
struct Verified {
    inner: Box<dyn Executable>,
    graph: Graph,
    backend: &'static str,
    pending: bool,
    reports: Arc<Mutex<Vec<VerifyReport>>>,
}

impl Verified {
    /// Runs the interpreter on `before` and records the errors of `out` (and of the
    /// updates written back into `after`).
    fn check(
        &mut self,
        before: &Feeds,
        out: &HashMap<String, Tensor>,
        after: Option<&Feeds>,
    ) -> Result<(), BackendError> {
        self.pending = false;
        let reference = interp::run(&self.graph, before)?;
        let mut outputs: Vec<OutputError> = reference
            .iter()
            .filter_map(|(name, want)| {
                let got = out
                    .get(name)
                    .or_else(|| after?.get(self.graph.update_of(name)?))?;
                Some(error(name, got, want))
            })
            .collect();
        outputs.sort_by(|a, b| a.name.cmp(&b.name));
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(VerifyReport {
                backend: self.backend,
                outputs,
            });
        Ok(())
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

    fn set_profiling(&mut self, on: bool) {
        self.inner.set_profiling(on);
    }

    fn profile(&self) -> Option<StepTimes> {
        self.inner.profile()
    }
}
