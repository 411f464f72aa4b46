//! Ahead-of-time compilation of a model into a bundle (`xenon compile`).

use super::{Model, ModelError};
use crate::cost::Cost;
use crate::optimizer::Optimizer;
use xenon_compiler::aot::{self, AotError, Bundle, BundleOptions};
use xenon_compiler::pipeline::{Request, Stage};
use xenon_runtime::aot::Mode;

/// What a bundle runs: inference, or one training step with a cost and an optimizer.
#[derive(Clone, Copy, Debug)]
pub enum BundleKind<'a> {
    /// `y` from `x`; the weights are the parameters.
    Inference,
    /// One training step on `x`, `t` and `lr`: returns `cost` and updates the parameters
    /// and the optimizer state (the weights).
    Train {
        nclass: usize,
        cost: &'a Cost,
        optimizer: &'a Optimizer,
    },
}

impl From<AotError> for ModelError {
    fn from(e: AotError) -> ModelError {
        ModelError::Aot(Box::new(e))
    }
}

impl Model {
    /// Compiles the model ahead of time for `batch` samples per run: the inference graph
    /// (as [`Model::predict`] compiles it, without the optimizer) or the training step (as
    /// [`Model::fit`] compiles it, optimized), lowered and compiled for `opts.target`,
    /// with the current weights. Write it with [`Bundle::write`]; load it with
    /// `xenon_runtime::aot::CompiledModel`.
    ///
    /// # Example
    ///
    /// ```
    /// use xenon_compiler::aot::BundleOptions;
    /// use xenon_frontend::model::BundleKind;
    /// use xenon_frontend::prelude::*;
    /// use xenon_runtime::aot::{CompiledModel, LoadOptions};
    ///
    /// let layers = Sequential::new(vec![
    ///     Affine::new(3, Initializer::Uniform { low: -1.0, high: 1.0 })
    ///         .with_activation(Activation::Softmax { axis: 0, epsilon: 1e-6 })
    ///         .into(),
    /// ]);
    /// let mut model = Model::new(layers, &[4], 0)?;
    /// let bundle = model.compile_bundle(1, BundleKind::Inference, &BundleOptions::default())?;
    /// // bundle.write(Path::new("out"))? writes the object, header, weights, artifact, manifest.
    /// let mut loaded = CompiledModel::from_artifact(&bundle.artifact, &LoadOptions::default())?;
    /// let y = loaded.predict(&[0.5, -1.0, 2.0, 0.0])?;
    /// assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compile_bundle(
        &mut self,
        batch: usize,
        kind: BundleKind<'_>,
        opts: &BundleOptions,
    ) -> Result<Bundle, ModelError> {
        self.require_values()?;
        let (graph, mode) = match kind {
            BundleKind::Inference => {
                let pipeline = self.pipeline.clone().with_optimize(None);
                let (g, _) =
                    pipeline.graph(Request::new(self.inference_graph(batch)?), Stage::Optimized)?;
                (g, Mode::Inference)
            }
            BundleKind::Train {
                nclass,
                cost,
                optimizer,
            } => {
                Self::check_optimizer(optimizer)?;
                self.init_state(optimizer)?;
                let request = self.train_request(batch, nclass, cost, optimizer)?;
                let (g, _) = self.pipeline.graph(request, Stage::Optimized)?;
                (g, Mode::Train)
            }
        };
        let lowered = xenon_compiler::lower::lower(&graph).map_err(|e| {
            ModelError::Backend(xenon_compiler::backend::BackendError::Unsupported {
                backend: "cpu",
                reason: e.to_string(),
            })
        })?;
        Ok(aot::build(
            &graph,
            &lowered,
            mode,
            &self.values,
            &self.weights_metadata(),
            opts,
        )?)
    }
}
