//! The compile pipeline: stage order, options, hooks (dump, verify), and its errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use xenon_compiler::backend::{Backend, BackendError, Cpu, Executable, Interpreter};
use xenon_compiler::interp::Feeds;
use xenon_compiler::ir::{DType, Graph, NodeId};
use xenon_compiler::pipeline::{
    ApplyError, Artifact, Dump, DumpFormat, Hook, LoweredView, Pipeline, PipelineError, Request,
    Stage,
};
use xenon_compiler::verify::Verify;
use xenon_runtime::Tensor;

/// `loss = sum((x·w)²)` with parameter `w` (4×3) and input `x` (2×4).
fn model() -> (Graph, NodeId, NodeId) {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 4]).unwrap();
    let w = g.parameter("w", DType::F32, &[4, 3]).unwrap();
    let y = g.matmul(x, w, false, false).unwrap();
    let y2 = g.mul(y, y).unwrap();
    let loss = g.sum(y2, &[0, 1], false).unwrap();
    g.set_output("loss", loss).unwrap();
    (g, loss, w)
}

/// A training request: the gradient of `loss` updates `w` by plain SGD with rate 0.1.
fn train_request<'a>() -> Request<'a> {
    let (g, loss, w) = model();
    Request::train(g, loss, vec![w], move |g: &mut Graph, grads: &[NodeId]| {
        let lr = g.scalar(DType::F32, 0.1)?;
        let step = g.mul(grads[0], lr)?;
        let nw = g.sub(w, step)?;
        g.set_output("new/w", nw)?;
        g.set_update("new/w", "w")?;
        Ok(())
    })
}

fn feeds() -> Feeds {
    let x: Vec<f32> = (0..8).map(|i| (i as f32 - 3.5) / 4.0).collect();
    let w: Vec<f32> = (0..12).map(|i| ((i * 7) % 5) as f32 / 5.0 - 0.4).collect();
    [
        ("x".to_string(), Tensor::from_f32(vec![2, 4], x).unwrap()),
        ("w".to_string(), Tensor::from_f32(vec![4, 3], w).unwrap()),
    ]
    .into_iter()
    .collect()
}

/// Records every stage it sees and the outputs of each graph.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Stage, Vec<String>)>>);

impl Hook for Recorder {
    fn after(&self, stage: Stage, artifact: Artifact<'_>) -> Result<(), String> {
        let graph = match artifact {
            Artifact::Graph { graph, .. } | Artifact::Lowered { graph, .. } => graph,
        };
        let outputs = graph.outputs().iter().map(|(n, _)| n.clone()).collect();
        self.0.lock().unwrap().push((stage, outputs));
        Ok(())
    }
}

#[test]
fn a_training_request_goes_through_every_stage_in_order() {
    let rec = Arc::new(Recorder::default());
    let pipeline = Pipeline::new(Arc::new(Cpu::with_threads(1))).with_hook(rec.clone());
    let mut exe = pipeline.compile(train_request()).unwrap();
    let seen = rec.0.lock().unwrap().clone();
    let stages: Vec<_> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        stages,
        [
            Stage::Graph,
            Stage::Autodiff,
            Stage::Optimized,
            Stage::Lowered
        ]
    );
    assert_eq!(seen[0].1, ["loss"]);
    assert_eq!(seen[1].1, ["loss", "new/w"]);
    // The update is declared, so run_update writes it back into `w`.
    assert_eq!(exe.updates(), [("new/w".to_string(), "w".to_string())]);
    let mut f = feeds();
    let before = f["w"].to_f64_vec();
    exe.run_update(&mut f, true).unwrap();
    assert_ne!(f["w"].to_f64_vec(), before);
}

#[test]
fn stages_that_are_off_pass_their_input_through() {
    let rec = Arc::new(Recorder::default());
    let (g, _, _) = model();
    let pipeline = Pipeline::new(Arc::new(Interpreter))
        .with_optimize(None)
        .with_hook(rec.clone());
    let (out, report) = pipeline
        .graph(Request::new(g.clone()), Stage::Optimized)
        .unwrap();
    assert!(report.is_none());
    assert_eq!(out.to_json(), g.to_json());
    // The interpreter does not lower: compiling shows no Lowered stage, and asking for the
    // lowered program is a clear error.
    pipeline.compile(Request::new(g.clone())).unwrap();
    let stages: Vec<_> = rec.0.lock().unwrap().iter().map(|(s, _)| *s).collect();
    assert_eq!(stages, [Stage::Graph, Stage::Graph]);
    let err = pipeline.lower(Request::new(g)).err().unwrap();
    assert!(err.to_string().contains("interp backend"), "{err}");
}

#[test]
fn the_graph_stage_stops_where_asked() {
    let (g, _, _) = model();
    let pipeline = Pipeline::new(Arc::new(Interpreter));
    let (autodiff, _) = pipeline.graph(train_request(), Stage::Autodiff).unwrap();
    assert!(autodiff.output("new/w").is_some());
    let (graph, _) = pipeline.graph(train_request(), Stage::Graph).unwrap();
    assert_eq!(graph.to_json(), g.to_json());
    let (optimized, report) = pipeline.graph(train_request(), Stage::Optimized).unwrap();
    assert!(report.is_some());
    assert!(optimized.output("new/w").is_some());
}

#[test]
fn dumps_render_the_stage_they_watch() {
    for (stage, view, needle) in [
        (Stage::Autodiff, LoweredView::Kernels, "new/w"),
        (Stage::Optimized, LoweredView::Kernels, "new/w"),
        (Stage::Lowered, LoweredView::Kernels, "gemm"),
        (Stage::Lowered, LoweredView::Schedule, "arena"),
    ] {
        let dump = Arc::new(Dump::new(stage, DumpFormat::Text).view(view));
        let pipeline = Pipeline::new(Arc::new(Cpu::with_threads(1))).with_hook(dump.clone());
        pipeline.compile(train_request()).unwrap();
        let text = dump.text().expect("the stage ran");
        assert!(text.contains(needle), "{stage} {view:?}: {text}");
        // JSON is valid and names the stage for graph stages.
        let dump = Arc::new(Dump::new(stage, DumpFormat::Json).view(view));
        let pipeline = Pipeline::new(Arc::new(Cpu::with_threads(1))).with_hook(dump.clone());
        pipeline.compile(train_request()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&dump.text().unwrap()).unwrap();
        if stage != Stage::Lowered {
            assert_eq!(v["stage"], stage.name());
        }
    }
}

struct Refuse(Stage);

impl Hook for Refuse {
    fn after(&self, stage: Stage, _: Artifact<'_>) -> Result<(), String> {
        if stage == self.0 {
            Err("refused".into())
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_hook_error_names_the_stage_and_an_apply_error_comes_back_unchanged() {
    let pipeline =
        Pipeline::new(Arc::new(Cpu::with_threads(1))).with_hook(Arc::new(Refuse(Stage::Optimized)));
    let err = pipeline.compile(train_request()).err().unwrap();
    assert!(matches!(
        err,
        PipelineError::Hook {
            stage: Stage::Optimized,
            ..
        }
    ));
    assert_eq!(err.to_string(), "optimized stage: refused");

    #[derive(Debug, thiserror::Error)]
    #[error("no update for you")]
    struct Mine;
    let (g, loss, w) = model();
    let request = Request::train(g, loss, vec![w], |_: &mut Graph, _: &[NodeId]| {
        Err(Box::new(Mine) as ApplyError)
    });
    let err = Pipeline::new(Arc::new(Interpreter))
        .compile(request)
        .err()
        .unwrap();
    let PipelineError::Apply(e) = err else {
        panic!("{err:?}")
    };
    assert!(e.downcast::<Mine>().is_ok());
}

/// A backend that compiles correctly and then adds `bias` to every float output.
struct Off {
    bias: f64,
}

struct OffExe {
    inner: Box<dyn Executable>,
    bias: f64,
}

impl Executable for OffExe {
    fn run(&mut self, feeds: &Feeds) -> Result<HashMap<String, Tensor>, BackendError> {
        let mut out = self.inner.run(feeds)?;
        for t in out.values_mut() {
            let v: Vec<f64> = t.to_f64_vec().iter().map(|x| x + self.bias).collect();
            *t = Tensor::from_f64_as(t.dtype(), t.shape().to_vec(), &v).unwrap();
        }
        Ok(out)
    }

    fn updates(&self) -> &[(String, String)] {
        self.inner.updates()
    }
}

impl Backend for Off {
    fn name(&self) -> &'static str {
        "off"
    }

    fn compile(&self, graph: &Graph) -> Result<Box<dyn Executable>, BackendError> {
        Ok(Box::new(OffExe {
            inner: Interpreter.compile(graph)?,
            bias: self.bias,
        }))
    }
}

#[test]
fn verify_reports_each_stage_and_catches_a_wrong_backend() {
    for bias in [0.0, 0.5] {
        let verify = Arc::new(Verify::new());
        let pipeline = Pipeline::new(Arc::new(Off { bias })).with_hook(verify.clone());
        let mut exe = pipeline.compile(train_request()).unwrap();
        let mut f = feeds();
        exe.run_update(&mut f, false).unwrap();
        // Only the first run is checked.
        exe.run_update(&mut f, false).unwrap();
        let reports = verify.reports();
        let stages: Vec<_> = reports.iter().map(|r| (r.stage, r.backend)).collect();
        assert_eq!(
            stages,
            [(Stage::Optimized, "interp"), (Stage::Compiled, "off")]
        );
        let names: Vec<_> = reports[1].outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["loss", "new/w"]);
        assert!(reports[0].worst() <= 1e-5, "{reports:?}");
        if bias == 0.0 {
            assert!(reports[1].worst() <= 1e-6, "{reports:?}");
        } else {
            assert!(reports[1].worst() > 1e-2, "{reports:?}");
        }
        // The f32 graph also ran in f64: the f32 interpreter is within rounding of it, a
        // wrong backend is not, and no rounding argument lets it pass.
        for o in &reports[1].outputs {
            let (exact, own) = (o.exact.unwrap(), o.reference_exact.unwrap());
            assert!(own <= 1e-6, "{o:?}");
            assert_eq!(o.passes(1e-5), bias == 0.0, "{o:?}");
            if bias != 0.0 {
                assert!(exact > 1e-2, "{o:?}");
            }
        }
    }
}

/// `passes`: within the tolerance of the f32 interpreter, or no further from the f64
/// result than twice the f32 interpreter's own error; NaN never passes.
#[test]
fn verify_accepts_rounding_as_large_as_the_interpreters_own() {
    let e =
        |relative: f64, exact: Option<f64>, own: Option<f64>| xenon_compiler::verify::OutputError {
            name: "y".into(),
            max_abs: relative,
            relative,
            exact,
            reference_exact: own,
        };
    assert!(e(1e-6, None, None).passes(1e-5));
    assert!(!e(1e-3, None, None).passes(1e-5));
    // 1e-3 from the f32 interpreter, which is itself 1e-3 from f64: this run is closer.
    assert!(e(1e-3, Some(1e-4), Some(1e-3)).passes(1e-5));
    assert!(e(1e-3, Some(2e-3), Some(1e-3)).passes(1e-5));
    assert!(!e(1e-3, Some(3e-3), Some(1e-3)).passes(1e-5));
    assert!(!e(f64::NAN, Some(f64::NAN), Some(1e-3)).passes(1e-5));
}
