//! The `Model`: a layer stack with its parameter values, trained and evaluated by running
//! compiled graphs.
//!
//! One training step is one graph — forward pass, cost, gradients, optimizer update — built
//! once per batch size and compiled by the model's [`Backend`]; the model feeds it batches
//! and keeps the parameter and optimizer-state values between steps. Inference and metric
//! graphs are built and cached the same way.
//!
//! ```no_run
//! use xenon_frontend::prelude::*;
//!
//! let mnist = Mnist::bundled().unwrap();
//! let init = Initializer::Gaussian { loc: 0.0, scale: 0.01 };
//! let layers = Sequential::new(vec![
//!     Affine::new(100, init.clone()).with_activation(Activation::Rectlin { slope: 0.0 }).into(),
//!     Affine::new(10, init).with_activation(Activation::Logistic { shortcut: true }).into(),
//! ]);
//! let mut model = Model::new(layers, &[784], 0).unwrap();
//! let mut train = BatchIterator::new(&mnist.train, BatchOptions::new(128)).unwrap();
//! model
//!     .fit(&mut train, &Cost::CrossEntropyBinary { scale: 1.0 }, &Optimizer::gdm(0.1, 0.9), 10, &mut [])
//!     .unwrap();
//! let m = model.eval(&mnist.test, 128, &[Metric::Misclassification { steps: 1 }]).unwrap();
//! println!("test misclassification {:.1}%", 100.0 * m[0].1);
//! ```

mod bundle;
mod distributed;
mod fit;
mod persist;
mod sample;

pub use bundle::BundleKind;

pub use fit::{EpochStats, state_name, step_counter};
pub use persist::{WEIGHTS_FORMAT, WeightsOptions, write_atomic};
pub use sample::SampleOptions;

use crate::cost::Cost;
use crate::data::{Batch, BatchIterator, BatchOptions, DataError, Dataset};
use crate::layer::{Layer, LayerError, LayerInfo, Mode, ParamSpec, Sequential};
use crate::metric::Metric;
use crate::optimizer::{Optimizer, OptimizerError};
use std::collections::HashMap;
use std::sync::Arc;
use xenon_compiler::backend::{Backend, BackendError, Cpu, Executable};
use xenon_compiler::interp::Feeds;
use xenon_compiler::ir::{DType, Graph, GraphError, Literal, NodeId};
use xenon_compiler::opt::OptConfig;
use xenon_compiler::pipeline::{Pipeline, PipelineError, Request, Stage};
use xenon_runtime::Tensor;

/// Why a model operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Optimizer(#[from] OptimizerError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Opt(#[from] xenon_compiler::opt::OptError),
    /// A collective call of distributed training failed (a lost rank, ranks that
    /// disagree).
    #[error(transparent)]
    Collective(#[from] xenon_runtime::collective::CollectiveError),
    /// Distributed training cannot run as asked (a batch the ranks do not divide).
    #[error("distributed training: {0}")]
    Distributed(String),
    /// The last layer's output does not fit the targets.
    #[error(
        "layer '{layer}' outputs shape {output:?} per sample but the targets have shape {targets:?}"
    )]
    TargetMismatch {
        layer: String,
        output: Vec<usize>,
        targets: Vec<usize>,
    },
    /// The data hold a token id that is no row of the first layer's lookup table.
    #[error(
        "layer '{layer}' is a lookup table of {rows} rows (vocab_size), but example {example} of the data holds the token id {id}"
    )]
    TokenId {
        layer: String,
        rows: usize,
        id: f64,
        example: usize,
    },
    /// Sampling text could not start (see [`Model::sample`]).
    #[error("sampling: {0}")]
    Sample(String),
    /// The data's samples do not have the model's input shape.
    #[error(
        "the model takes inputs of shape {expected:?} per sample ({expected_n} values) but the data has {got:?} ({got_n} values)"
    )]
    InputMismatch {
        expected: Vec<usize>,
        expected_n: usize,
        got: Vec<usize>,
        got_n: usize,
    },
    /// A model fed token ids ([`Model::with_token_ids`]) was given data that are not token
    /// ids of its vocabulary.
    #[error(
        "the model is fed token ids whose one-hot rows are {width} wide, but {}",
        match data_width {
            Some(w) => format!("the data set's token ids are one-hot {w} wide"),
            None => "the data set's inputs are no token ids".to_string(),
        }
    )]
    NotTokenIds {
        width: usize,
        data_width: Option<usize>,
    },
    /// Training produced NaN or infinity.
    #[error("non-finite value (NaN or infinity) in {what} at epoch {epoch}, batch {batch}")]
    NonFinite {
        what: String,
        epoch: usize,
        batch: usize,
    },
    /// A weights file could not be read or does not fit the model.
    #[error("weights file {path}: {reason}")]
    Weights { path: String, reason: String },
    /// A training-history file could not be read or written.
    #[error("history file {path}: {reason}")]
    History { path: String, reason: String },
    /// Training stopped at a minibatch boundary because [`crate::interrupt::request_stop`]
    /// was called; the model holds the values and position to save and resume.
    #[error("interrupted in epoch {epoch} after minibatch {batch}")]
    Interrupted { epoch: usize, batch: usize },
    /// The cost does not fit the model (a `Multicost` of the wrong size, or for a model
    /// with one output), or its arguments are invalid.
    #[error("cost: {0}")]
    Cost(String),
    /// Models compute in f32 or f64.
    #[error("a model computes in f32 or f64, not {0}")]
    Dtype(DType),
    /// A checkpoint cannot continue this training run.
    #[error("cannot resume: {0}")]
    Resume(String),
    /// The parameters have no values yet (see [`Model::uninitialized`]).
    #[error(
        "the model's parameters have no values: initialize them (Model::initialize) or load a weights file"
    )]
    Uninitialized,
    /// The model needs more memory than the machine has.
    #[error(transparent)]
    Memory(#[from] xenon_runtime::memory::MemoryError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A callback asked to stop with an error.
    #[error("{0}")]
    Callback(String),
    /// A pipeline hook stopped compilation.
    #[error(transparent)]
    Pipeline(PipelineError),
    /// An ahead-of-time bundle could not be built.
    #[error(transparent)]
    Aot(Box<xenon_compiler::aot::AotError>),
}

/// Each pipeline failure as the model error it is (an error of the model's own update
/// callback comes back as itself).
impl From<PipelineError> for ModelError {
    fn from(e: PipelineError) -> ModelError {
        match e {
            PipelineError::Autodiff(e) => ModelError::Graph(e),
            PipelineError::Optimize(e) => ModelError::Opt(e),
            PipelineError::Backend(e) => ModelError::Backend(e),
            PipelineError::Apply(e) => match e.downcast::<ModelError>() {
                Ok(e) => *e,
                Err(e) => ModelError::Pipeline(PipelineError::Apply(e)),
            },
            e @ PipelineError::Hook { .. } => ModelError::Pipeline(e),
        }
    }
}

/// A trainable model: a [`Sequential`] layer stack, its input shape, and the values of its
/// parameters and optimizer state.
pub struct Model {
    layers: Sequential,
    input_shape: Vec<usize>,
    /// `Some(V)`: the model is fed token ids and takes their one-hot rows (see
    /// [`Model::with_token_ids`]).
    token_ids: Option<usize>,
    dtype: DType,
    seed: u64,
    params: Vec<ParamSpec>,
    /// The recurrent states (name, shape per batch row; see
    /// [`LayerCtx::state`](crate::layer::LayerCtx::state)), whose values are sized to the
    /// batch of the program that runs.
    states: Vec<(String, Vec<usize>)>,
    info: Vec<LayerInfo>,
    output_shape: Vec<usize>,
    /// Parameter and optimizer-state values by name.
    values: HashMap<String, Tensor>,
    epoch_index: usize,
    /// Minibatch updates so far (the next update is `step_index + 1`).
    step_index: u64,
    /// Where the training data's batching stands after the last epoch trained, and the
    /// optimizer it used (what a checkpoint needs to resume).
    resume: Option<ResumeState>,
    /// Minibatches the next `fit` skips at the start of its first epoch (set by
    /// `resume_batches` from an interrupted checkpoint).
    skip_batches: usize,
    /// How graphs are compiled: the optimizer's configuration (training steps only), the
    /// backend and the hooks.
    pipeline: Pipeline,
    programs: HashMap<String, Box<dyn Executable>>,
    /// The group this model trains in ([`Model::set_collective`]); none: alone.
    comm: Option<Arc<dyn xenon_runtime::collective::Collective>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("layers", &self.info)
            .field("input_shape", &self.input_shape)
            .field("token_ids", &self.token_ids)
            .field("pipeline", &self.pipeline)
            .field("epoch_index", &self.epoch_index)
            .field("step_index", &self.step_index)
            .finish()
    }
}

/// Graph input names.
const X: &str = "x";
const T: &str = "t";

impl Model {
    /// Builds the model for samples of shape `input_shape` (e.g. `[784]` or `[1, 28, 28]`)
    /// and initializes every parameter from `seed` (f32, on the CPU backend with all cores;
    /// see [`Model::with_backend`]): [`Model::uninitialized`], then [`Model::initialize`].
    /// Parameters that would take more than the machine's memory are an error naming the
    /// largest, and nothing is allocated.
    pub fn new(layers: Sequential, input_shape: &[usize], seed: u64) -> Result<Model, ModelError> {
        let mut m = Model::uninitialized(layers, input_shape, seed)?;
        m.initialize()?;
        Ok(m)
    }

    /// The model's structure (layers, shapes, parameter specs, graphs) without parameter
    /// values: what a summary, a graph dump or a compiler needs, allocating nothing of the
    /// parameters' size. [`Model::initialize`] gives them their initial values from
    /// `seed`, [`Model::load_weights`] a file's; training, prediction, evaluation and
    /// saving before either are a [`ModelError::Uninitialized`] error.
    ///
    /// ```
    /// use xenon_frontend::prelude::*;
    /// let init = Initializer::Gaussian { loc: 0.0, scale: 0.01 };
    /// let layers = Sequential::new(vec![Affine::new(300_000_000, init).into()]);
    /// // 784 · 3·10^8 weights (876 GiB of f32): described, not allocated.
    /// let m = Model::uninitialized(layers.clone(), &[784], 0).unwrap();
    /// assert_eq!(m.num_params(), 235_200_000_000);
    /// let e = Model::new(layers, &[784], 0).unwrap_err();
    /// assert!(e.to_string().contains("more than this machine's"), "{e}");
    /// ```
    pub fn uninitialized(
        layers: Sequential,
        input_shape: &[usize],
        seed: u64,
    ) -> Result<Model, ModelError> {
        let mut g = Graph::new();
        let mut shape = vec![1];
        shape.extend_from_slice(input_shape);
        let x = g.input(X, DType::F32, &shape)?;
        let fwd = layers.forward(&mut g, x)?;
        let output_shape = g.ty(fwd.output).shape[1..].to_vec();
        let (carried, params): (Vec<ParamSpec>, Vec<ParamSpec>) =
            fwd.params.into_iter().partition(|p| p.carried);
        let states = carried
            .into_iter()
            .map(|p| (p.name, p.shape[1..].to_vec()))
            .collect();
        Ok(Model {
            layers,
            input_shape: input_shape.to_vec(),
            token_ids: None,
            dtype: DType::F32,
            seed,
            params,
            states,
            info: fwd.layers,
            output_shape,
            values: HashMap::new(),
            epoch_index: 0,
            step_index: 0,
            resume: None,
            skip_batches: 0,
            pipeline: Pipeline::new(Arc::new(Cpu::default())),
            programs: HashMap::new(),
            comm: None,
        })
    }

    /// Gives every parameter its initial value from the model's seed (replacing any it
    /// had; optimizer state and recurrent states are cleared). An error, before anything
    /// is allocated, when the parameters would take more than the machine's memory.
    pub fn initialize(&mut self) -> Result<(), ModelError> {
        self.check_memory("the parameters", 1)?;
        let mut values = HashMap::new();
        for (i, p) in self.params.iter().enumerate() {
            // Each block from a stream of its own (block 0 from the parameter's stream).
            let v: Vec<f64> = (0..p.blocks.max(1) as u64)
                .flat_map(|b| p.init.fill(p.fans, self.seed, i as u64 + (b << 32)))
                .collect();
            let t = Tensor::from_f64_as(DType::F32, p.shape.clone(), &v)
                .expect("initializers fill blocks·rows·cols values");
            values.insert(p.name.clone(), in_dtype(t, self.dtype));
        }
        self.values = values;
        self.programs.clear();
        Ok(())
    }

    /// Whether the parameters have values ([`Model::initialize`] or a weights file).
    pub fn is_initialized(&self) -> bool {
        self.params
            .iter()
            .all(|p| self.values.contains_key(&p.name))
    }

    /// `Ok` when the parameters have values; otherwise the error saying how to give them.
    fn require_values(&self) -> Result<(), ModelError> {
        match self.is_initialized() {
            true => Ok(()),
            false => Err(ModelError::Uninitialized),
        }
    }

    /// `Ok` when `copies` values of every parameter's size (the parameters and their
    /// optimizer state) fit in the machine's memory, else the error naming `what` and the
    /// largest parameter.
    pub(crate) fn check_memory(&self, what: &str, copies: usize) -> Result<(), ModelError> {
        let elem = self.dtype.size_bytes() as u128;
        let bytes = |p: &ParamSpec| {
            p.shape
                .iter()
                .fold(elem, |n, &d| n.saturating_mul(d as u128))
        };
        let total = self
            .params
            .iter()
            .fold(0u128, |n, p| n.saturating_add(bytes(p)))
            .saturating_mul(copies as u128);
        let largest = self.params.iter().max_by_key(|p| bytes(p));
        let what = match largest {
            Some(p) => format!(
                "{what} (largest: '{}' of layer '{}', {} {:?}, {})",
                p.name,
                p.layer,
                self.dtype,
                p.shape,
                xenon_runtime::memory::human(bytes(p))
            ),
            None => what.to_string(),
        };
        Ok(xenon_runtime::memory::check(what, total)?)
    }

    /// The same model, compiling its graphs with `backend` from now on.
    pub fn with_backend(mut self, backend: Arc<dyn Backend>) -> Model {
        self.pipeline = self.pipeline.with_backend(backend);
        self.programs.clear();
        self
    }

    /// The same model, compiling its graphs with `pipeline` from now on (its backend, its
    /// optimizer configuration for training steps, its hooks such as
    /// [`Verify`](xenon_compiler::verify::Verify) or [`Dump`](xenon_compiler::pipeline::Dump)).
    /// Default: [`Pipeline::new`] on the CPU backend with every core.
    pub fn with_pipeline(mut self, pipeline: Pipeline) -> Model {
        self.pipeline = pipeline;
        self.programs.clear();
        self
    }

    /// The pipeline the model compiles with.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The same model, optimizing its training-step graphs with `config` from now on, or
    /// not at all with `None`. Default: `Some(OptConfig::default())`.
    ///
    /// The optimizer derives the shortcut gradients (Logistic + CrossEntropyBinary →
    /// `y − t`); without it the gradient of `CrossEntropyBinary` divides by `y` and `1 − y`
    /// and becomes NaN where an output rounds to exactly 0 or 1 (see
    /// [`CostNodes::objective`](crate::cost::CostNodes::objective)).
    pub fn with_optimization(mut self, config: Option<OptConfig>) -> Model {
        self.pipeline = self.pipeline.with_optimize(config);
        self.programs.clear();
        self
    }

    /// The optimized training-step graph (see [`Model::train_graph`] and
    /// [`Model::with_optimization`]); the graph itself when optimization is off.
    pub fn optimized_train_graph(
        &self,
        batch: usize,
        nclass: usize,
        cost: &Cost,
        optimizer: &Optimizer,
    ) -> Result<Graph, ModelError> {
        let request = self.train_request(batch, nclass, cost, optimizer)?;
        Ok(self.pipeline.graph(request, Stage::Optimized)?.0)
    }

    /// The layer stack.
    pub fn layers(&self) -> &Sequential {
        &self.layers
    }

    /// Per-layer names, kinds, output shapes and parameter counts.
    pub fn layer_info(&self) -> &[LayerInfo] {
        &self.info
    }

    /// The trainable parameters, in declaration order.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// Total number of trainable values.
    /// The parameters the optimizer trains (not batch norm's running statistics).
    pub fn trainable(&self) -> impl Iterator<Item = &ParamSpec> {
        self.params.iter().filter(|p| p.trainable)
    }

    pub fn num_params(&self) -> usize {
        self.info.iter().map(|l| l.params).sum()
    }

    /// The same layers and parameter values for samples of another shape: a recurrent
    /// model trained on sequences of `T` steps, for one step at a time (what
    /// [`Model::sample`] takes), or for longer sequences. Optimizer state and training
    /// progress are not carried over. A parameter whose shape depends on the input shape
    /// (a `Linear` after a flattened image) is an error naming it.
    pub fn for_input(&self, input_shape: &[usize]) -> Result<Model, ModelError> {
        self.require_values()?;
        let mut m = Model::uninitialized(self.layers.clone(), input_shape, self.seed)?
            .with_pipeline(self.pipeline.clone())
            .with_dtype(self.dtype)?;
        if self.token_ids.is_some() {
            m = m.with_token_ids()?;
        }
        for p in &m.params {
            let v = self
                .values
                .get(&p.name)
                .filter(|v| v.shape() == p.shape.as_slice());
            let Some(v) = v else {
                return Err(ModelError::Sample(format!(
                    "parameter '{}' has shape {:?} for inputs of shape {input_shape:?}, not {:?}",
                    p.name,
                    p.shape,
                    self.values
                        .get(&p.name)
                        .map(|v| v.shape().to_vec())
                        .unwrap_or_default()
                )));
            };
            m.values.insert(p.name.clone(), v.clone());
        }
        Ok(m)
    }

    /// The recurrent states the layers carry from one minibatch to the next: name and
    /// shape per batch row (see [`LayerCtx::state`](crate::layer::LayerCtx::state)).
    pub fn states(&self) -> &[(String, Vec<usize>)] {
        &self.states
    }

    /// Sets every recurrent state to zeros for batches of `batch` rows: what training does
    /// at the start of each epoch and evaluation at its start, and what a caller does
    /// before [`Model::predict`] starts a new sequence.
    pub fn reset_states(&mut self, batch: usize) {
        for (name, shape) in &self.states {
            let shape = [&[batch][..], shape].concat();
            self.values
                .insert(name.clone(), Tensor::zeros(self.dtype, shape));
        }
    }

    /// Keeps the recurrent states where they fit batches of `batch` rows and zeroes the
    /// others.
    fn size_states(&mut self, batch: usize) {
        let stale = self.states.iter().any(|(name, _)| {
            self.values
                .get(name)
                .is_none_or(|v| v.shape().first() != Some(&batch) || v.dtype() != self.dtype)
        });
        if stale {
            self.reset_states(batch);
        }
    }

    /// The value of a parameter or optimizer state.
    pub fn value(&self, name: &str) -> Option<&Tensor> {
        self.values.get(name)
    }

    /// The per-sample input shape the layers take (for a model fed token ids, the ids'
    /// one-hot rows: see [`Model::fed_shape`]).
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The same model fed token ids: its input `x` holds, per sample, whole numbers in
    /// `0..V` of shape `input_shape[..−1]` (f32, as a data set holds them; each is cast to
    /// an integer by truncation), and its layers read their one-hot rows of width
    /// `V = input_shape.last()` — neon's `Text` with `onehot_input=True`. The results are
    /// the same as feeding the one-hot rows; the difference is speed: the one-hot rows are
    /// gathered from an identity matrix inside the graph, so the optimizer turns the first
    /// layer's products with them into row gathers (forward) and row scatters (the weight
    /// gradient) instead of multiplying `V` mostly-zero columns. An id outside `0..V` is an
    /// error when the model runs. An input shape without axes is an error.
    ///
    /// ```
    /// use xenon_frontend::layer::Recurrent;
    /// use xenon_frontend::prelude::*;
    /// use xenon_runtime::Tensor;
    ///
    /// let layers = Sequential::new(vec![
    ///     Recurrent::new(8, Initializer::Uniform { low: -0.1, high: 0.1 }, Activation::Tanh).into(),
    /// ]);
    /// // Sequences of 5 characters out of 30.
    /// let mut model = Model::new(layers, &[5, 30], 0).unwrap().with_token_ids().unwrap();
    /// assert_eq!((model.fed_shape(), model.token_ids()), (vec![5], Some(30)));
    /// let ids = Tensor::from_f32(vec![1, 5], vec![3.0, 1.0, 4.0, 1.0, 5.0]).unwrap();
    /// assert_eq!(model.predict(&ids).unwrap().shape(), [1, 5, 8]);
    /// ```
    pub fn with_token_ids(mut self) -> Result<Model, ModelError> {
        let Some(&v) = self.input_shape.last().filter(|&&v| v > 0) else {
            return Err(ModelError::InputMismatch {
                expected: self.input_shape.clone(),
                expected_n: self.input_shape.iter().product(),
                got: Vec::new(),
                got_n: 0,
            });
        };
        if self.token_ids != Some(v) {
            self.token_ids = Some(v);
            self.programs.clear();
        }
        Ok(self)
    }

    /// `Some(V)` for a model fed token ids whose one-hot rows are `V` wide
    /// ([`Model::with_token_ids`]), else `None`.
    pub fn token_ids(&self) -> Option<usize> {
        self.token_ids
    }

    /// The per-sample shape of the input `x` as it is fed: [`Model::input_shape`], without
    /// its last axis for a model fed token ids.
    pub fn fed_shape(&self) -> Vec<usize> {
        match self.token_ids {
            Some(_) => self.input_shape[..self.input_shape.len() - 1].to_vec(),
            None => self.input_shape.clone(),
        }
    }

    /// The per-sample output shape.
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    /// The per-sample shape of the targets the training and evaluation graphs take for
    /// targets `nclass` wide: `[T, nclass]` — a target per time step — when the output is
    /// a sequence of `T > 1` steps of `nclass` values, else `[nclass]`.
    pub fn target_shape(&self, nclass: usize) -> Vec<usize> {
        match *self.output_shape {
            [steps, f] if steps > 1 && f == nclass => vec![steps, nclass],
            _ => vec![nclass],
        }
    }

    /// The number of epochs trained so far (the next epoch's index).
    pub fn epoch_index(&self) -> usize {
        self.epoch_index
    }

    /// The same model computing in `dtype` (f32, the default, or f64: parameters, optimizer
    /// state and every graph; the f32 data are converted per minibatch). Other dtypes are
    /// an error.
    pub fn with_dtype(mut self, dtype: DType) -> Result<Model, ModelError> {
        if !dtype.is_float() {
            return Err(ModelError::Dtype(dtype));
        }
        if dtype != self.dtype {
            for v in self.values.values_mut() {
                *v = v.cast(dtype);
            }
            self.dtype = dtype;
            self.programs.clear();
        }
        Ok(self)
    }

    /// The dtype the model computes in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The number of minibatch updates so far (Adam counts its steps with it).
    pub fn step_index(&self) -> u64 {
        self.step_index
    }

    /// Where training stands after the last epoch [`Model::fit`] ran (saved with the
    /// weights, so a saved model is a checkpoint): the batching position and the
    /// optimizer. `None` before any training.
    pub fn resume_state(&self) -> Option<&ResumeState> {
        self.resume.as_ref()
    }

    /// The seed the parameters were initialized from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.pipeline.backend.name()
    }

    /// The layer that gave the output its shape: the first of the last layers that share
    /// it (activations keep shapes), for errors about the output.
    fn shaping_layer(&self) -> String {
        let last = self.info.last().map(|l| l.out_shape.clone());
        self.info
            .iter()
            .rev()
            .take_while(|l| Some(&l.out_shape) == last.as_ref())
            .last()
            .map(|l| l.name.clone())
            .unwrap_or_default()
    }

    /// Checks that a data set's samples have the model's input size, and that its targets
    /// are per time step exactly when the model's output is a sequence of steps as wide as
    /// the targets.
    fn check_input(&self, data: &Dataset) -> Result<(), ModelError> {
        if let Some(width) = self.token_ids
            && data.onehot_input != Some(width)
        {
            return Err(ModelError::NotTokenIds {
                width,
                data_width: data.onehot_input,
            });
        }
        // A first LookupTable reads the inputs as row numbers of its table.
        if let (Some(Layer::LookupTable(t)), Some(info)) =
            (self.layers.layers.first(), self.info.first())
        {
            let f = data.n_features().max(1);
            let bad = data
                .x
                .iter()
                .position(|&id| !(id >= 0.0 && id.fract() == 0.0 && (id as usize) < t.vocab_size));
            if let Some(i) = bad {
                return Err(ModelError::TokenId {
                    layer: info.name.clone(),
                    rows: t.vocab_size,
                    id: data.x[i] as f64,
                    example: i / f,
                });
            }
        }
        if self.target_shape(data.nclass).len() != data.target_shape().len() {
            return Err(ModelError::TargetMismatch {
                layer: self.shaping_layer(),
                output: self.output_shape.clone(),
                targets: data.target_shape(),
            });
        }
        let expected_n: usize = self.input_shape.iter().product();
        let got = data.input_shape();
        let got_n: usize = got.iter().product();
        if got_n != expected_n {
            return Err(ModelError::InputMismatch {
                expected: self.input_shape.clone(),
                expected_n,
                got,
                got_n,
            });
        }
        Ok(())
    }

    /// A graph with input `x` of `batch` samples and the forward pass (of a training step
    /// when `training`; see [`Sequential::forward_mode`]); returns the outputs (one, or
    /// one per branch of a last `Tree`).
    fn forward_graph(
        &self,
        batch: usize,
        training: bool,
    ) -> Result<(Graph, Vec<NodeId>), ModelError> {
        let mut g = Graph::new();
        let mut shape = vec![batch];
        shape.extend(self.fed_shape());
        let mut x = g.input(X, self.dtype, &shape)?;
        if let Some(v) = self.token_ids {
            // The one-hot rows, gathered from the identity.
            let eye = g.constant(self.dtype, &[v, v], Literal::identity(v).values)?;
            let ids = g.cast(x, DType::I32)?;
            x = g.gather(eye, ids)?;
        }
        let mode = if training {
            Mode::Training { seed: self.seed }
        } else {
            Mode::Inference
        };
        let fwd = self.layers.forward_mode(&mut g, x, mode)?;
        Ok((g, fwd.outputs))
    }

    /// The inference graph for `batch` samples: input `x`, every parameter, output `y`
    /// (what [`Model::predict`] runs); for a model ending in a `Tree`, also `y1`, `y2`, …
    /// (the other branches' outputs; a `SingleOutputTree` gives `y` alone).
    pub fn inference_graph(&self, batch: usize) -> Result<Graph, ModelError> {
        let (mut g, ys) = self.forward_graph(batch, false)?;
        g.set_output("y", ys[0])?;
        if !matches!(self.layers.layers.last(), Some(Layer::SingleOutputTree(_))) {
            for (k, &y) in ys.iter().enumerate().skip(1) {
                g.set_output(&format!("y{k}"), y)?;
            }
        }
        Ok(g)
    }

    /// The inference graph for `batch` samples compiled by the model's pipeline, as
    /// [`Model::predict`] compiles it (without the optimizer). Run it on feeds holding `x`
    /// and every parameter; it returns `y`.
    pub fn compile_inference(&self, batch: usize) -> Result<Box<dyn Executable>, ModelError> {
        self.compile_as_built(self.inference_graph(batch)?)
    }

    /// `graph` compiled by the model's pipeline without the optimizer (inference and
    /// evaluation graphs).
    fn compile_as_built(&self, graph: Graph) -> Result<Box<dyn Executable>, ModelError> {
        let pipeline = self.pipeline.clone().with_optimize(None);
        Ok(pipeline.compile(Request::new(graph))?)
    }

    /// Adds the targets input `[batch, nclass]` and checks that it fits the output `y`;
    /// returns `y` as `[batch, nclass]` (an output of several axes, such as a convnet's
    /// `[batch, K, 1, 1]` or a conv autoencoder's `[batch, 1, 28, 28]`, is flattened) and
    /// the targets.
    fn targets(
        &self,
        g: &mut Graph,
        y: xenon_compiler::ir::NodeId,
        nclass: usize,
    ) -> Result<(xenon_compiler::ir::NodeId, xenon_compiler::ir::NodeId), ModelError> {
        let (ys, t) = self.targets_all(g, &[y], nclass)?;
        Ok((ys[0], t))
    }

    /// [`Model::targets`] for several outputs (a `Tree`'s), each checked and flattened
    /// against the one targets input.
    fn targets_all(
        &self,
        g: &mut Graph,
        outputs: &[NodeId],
        nclass: usize,
    ) -> Result<(Vec<NodeId>, NodeId), ModelError> {
        let mut flat = Vec::with_capacity(outputs.len());
        for (k, &y) in outputs.iter().enumerate() {
            flat.push(self.flat_output(g, y, k, nclass)?);
        }
        let shape = g.ty(flat[0]).shape.clone();
        let t = g.input(T, self.dtype, &shape)?;
        Ok((flat, t))
    }

    /// Output `k` as `[batch, nclass]` — or as it is for a sequence of `nclass`-wide steps
    /// (`[batch, T, nclass]`, `T > 1`, with targets per step) — or the error naming the layer that
    /// gave it its shape.
    fn flat_output(
        &self,
        g: &mut Graph,
        y: NodeId,
        k: usize,
        nclass: usize,
    ) -> Result<NodeId, ModelError> {
        let ys = g.ty(y).shape.clone();
        if crate::layer::sequence(&ys).is_some_and(|(steps, f)| steps > 1 && f == nclass) {
            return Ok(y);
        }
        if ys[1..].iter().product::<usize>() != nclass {
            let layer = self.shaping_layer();
            let layer = if k == 0 {
                layer
            } else {
                let last = self
                    .info
                    .last()
                    .map(|l| l.name.as_str())
                    .unwrap_or_default();
                format!("{last} (output {k})")
            };
            return Err(ModelError::TargetMismatch {
                layer,
                output: ys[1..].to_vec(),
                targets: vec![nclass],
            });
        }
        Ok(if ys.len() == 2 {
            y
        } else {
            g.reshape(y, &[ys[0], nclass])?
        })
    }

    /// Runs the cached program `key`, building and compiling it with `build` on first use
    /// (an inference or evaluation graph: compiled as built, without the optimizer).
    /// The recurrent states' new values (the graph's updates) are written into `feeds`.
    fn run_program(
        &mut self,
        key: String,
        build: impl FnOnce(&Model) -> Result<Graph, ModelError>,
        feeds: &mut Feeds,
    ) -> Result<HashMap<String, Tensor>, ModelError> {
        let exe = self.program(key, |m| m.compile_as_built(build(m)?))?;
        Ok(exe.run_update(feeds, false)?)
    }

    /// The cached program `key`, compiled with `compile` on first use.
    fn program(
        &mut self,
        key: String,
        compile: impl FnOnce(&Model) -> Result<Box<dyn Executable>, ModelError>,
    ) -> Result<&mut Box<dyn Executable>, ModelError> {
        if !self.programs.contains_key(&key) {
            let exe = compile(self)?;
            self.programs.insert(key.clone(), exe);
        }
        Ok(self.programs.get_mut(&key).expect("inserted above"))
    }

    /// A minibatch's input as the model is fed: its `x` (or, for a model fed token ids,
    /// its `ids`) reshaped to `[batch, fed_shape…]`.
    fn shape_batch(&self, x: Tensor, ids: Option<Tensor>) -> Result<Tensor, ModelError> {
        shape_batch(&self.fed_shape(), self.token_ids, x, ids, self.dtype)
    }

    /// The outputs for inputs `x` (`[n, input_shape…]` or `[n, features]`, f32): shape
    /// `[n, output…]`.
    pub fn predict(&mut self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mut outs = self.predict_all(x)?;
        Ok(outs.swap_remove(0))
    }

    /// Every output of the inference graph for inputs `x` (as [`Model::predict`] takes
    /// them), in order: `y`, then for a model ending in a `Tree` the other branches'
    /// outputs `y1`, `y2`, … (a `SingleOutputTree` gives `y` alone).
    pub fn predict_all(&mut self, x: &Tensor) -> Result<Vec<Tensor>, ModelError> {
        self.require_values()?;
        let n = x.shape().first().copied().unwrap_or(0);
        let features: usize = x.shape().iter().skip(1).product();
        let fed = self.fed_shape();
        let expected_n: usize = fed.iter().product();
        if n == 0 || features != expected_n || !x.dtype().is_float() {
            return Err(ModelError::InputMismatch {
                expected: fed.clone(),
                expected_n,
                got: x.shape().get(1..).unwrap_or(&[]).to_vec(),
                got_n: features,
            });
        }
        let mut shape = vec![n];
        shape.extend(fed);
        self.size_states(n);
        let mut feeds = std::mem::take(&mut self.values);
        let x = in_dtype(x.clone(), self.dtype)
            .reshaped(shape)
            .expect("element count checked");
        feeds.insert(X.into(), x);
        let out = self.run_program(format!("predict/{n}"), |m| m.inference_graph(n), &mut feeds);
        feeds.remove(X);
        self.values = feeds;
        let mut out = out?;
        let mut all = vec![out.remove("y").expect("the inference graph outputs y")];
        for k in 1.. {
            match out.remove(&format!("y{k}")) {
                Some(t) => all.push(t),
                None => break,
            }
        }
        Ok(all)
    }

    /// Runs an evaluation graph (the forward pass, the targets, and what `add_outputs`
    /// adds) over every batch of `data`, passing each batch's outputs and its number of
    /// valid (non-filler) rows to `visit`. The parameter values move into the feeds and
    /// back, so nothing is copied per batch.
    fn eval_batches(
        &mut self,
        data: &Dataset,
        batch_size: usize,
        what: &str,
        add_outputs: impl Fn(&mut Graph, NodeId, NodeId) -> Result<(), ModelError>,
        mut visit: impl FnMut(&HashMap<String, Tensor>, usize),
    ) -> Result<(), ModelError> {
        self.require_values()?;
        self.check_input(data)?;
        let nclass = data.nclass;
        let mut it = BatchIterator::new(data, BatchOptions::new(batch_size.min(data.len())))?;
        let b = it.batch_size();
        let key = format!("{what}/{b}/{nclass}");
        self.reset_states(b);
        let mut feeds = std::mem::take(&mut self.values);
        let mut result = Ok(());
        for batch in it.next_epoch() {
            let Batch {
                x, ids, t, n_valid, ..
            } = batch;
            feeds.insert(T.into(), in_dtype(t, self.dtype));
            match self.shape_batch(x, ids) {
                Ok(x) => feeds.insert(X.into(), x),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let out = self.run_program(
                key.clone(),
                |m| {
                    let (mut g, ys) = m.forward_graph(b, false)?;
                    let (y, t) = m.targets(&mut g, ys[0], nclass)?;
                    add_outputs(&mut g, y, t)?;
                    Ok(g)
                },
                &mut feeds,
            );
            match out {
                Ok(out) => visit(&out, n_valid),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        feeds.remove(X);
        feeds.remove(T);
        self.values = feeds;
        result
    }

    /// Evaluates `metrics` on every sample of `data` (batches of `batch_size`; the last
    /// batch's wrap-around filler is not counted). Returns `(name, value)` pairs in the
    /// metrics' order.
    pub fn eval(
        &mut self,
        data: &Dataset,
        batch_size: usize,
        metrics: &[Metric],
    ) -> Result<Vec<(String, f64)>, ModelError> {
        let mut sums: Vec<Vec<f64>> = Vec::new();
        let mut count = 0;
        self.eval_batches(
            data,
            batch_size,
            &format!("eval/{metrics:?}"),
            |g, y, t| {
                for (i, metric) in metrics.iter().enumerate() {
                    let s = metric.lower(g, y, t)?;
                    g.set_output(&format!("metric/{i}"), s)?;
                }
                Ok(())
            },
            |out, n_valid| {
                for i in 0..metrics.len() {
                    let stats = &out[&format!("metric/{i}")];
                    let width = stats.shape()[1];
                    if sums.len() <= i {
                        sums.push(vec![0.0; width]);
                    }
                    for row in stats.to_f64_vec().chunks(width).take(n_valid) {
                        for (s, x) in sums[i].iter_mut().zip(row) {
                            *s += x;
                        }
                    }
                }
                count += n_valid;
            },
        )?;
        let mut out = Vec::new();
        for (metric, s) in metrics.iter().zip(&sums) {
            out.extend(metric.names().into_iter().zip(metric.finish(s, count)));
        }
        Ok(out)
    }

    /// The cost on every sample of `data` (the mean over all samples; the metric
    /// [`Metric::Cost`]).
    pub fn eval_cost(
        &mut self,
        data: &Dataset,
        batch_size: usize,
        cost: &Cost,
    ) -> Result<f64, ModelError> {
        let values = self.eval(data, batch_size, &[Metric::Cost(cost.clone())])?;
        Ok(values[0].1)
    }

    /// Checks an optimizer before training with it.
    fn check_optimizer(optimizer: &Optimizer) -> Result<(), ModelError> {
        Ok(optimizer.validate()?)
    }
}

/// A minibatch's input `x` (`[n, features]`), or its token `ids` when `token_ids`, in
/// the shape the model is fed (`[n, fed_shape…]`).
pub(crate) fn shape_batch(
    fed_shape: &[usize],
    token_ids: Option<usize>,
    x: Tensor,
    ids: Option<Tensor>,
    dtype: DType,
) -> Result<Tensor, ModelError> {
    let x = match (token_ids, ids) {
        (None, _) => x,
        (Some(_), Some(ids)) => ids,
        (Some(width), None) => {
            return Err(ModelError::NotTokenIds {
                width,
                data_width: None,
            });
        }
    };
    let mut shape = vec![x.shape()[0]];
    shape.extend_from_slice(fed_shape);
    let x = x
        .reshaped(shape)
        .expect("check_input compared the element counts");
    Ok(in_dtype(x, dtype))
}

/// `t` in `dtype` (the data sets hold f32; an f64 model computes in f64).
pub(crate) fn in_dtype(t: Tensor, dtype: DType) -> Tensor {
    if t.dtype() == dtype { t } else { t.cast(dtype) }
}

/// What resuming training needs besides the values: the training data's batching position
/// after the last epoch trained, and the optimizer (whose state the file holds).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResumeState {
    /// [`BatchIterator::epoch`](crate::data::BatchIterator::epoch) of the next epoch.
    pub data_epoch: u64,
    /// [`BatchIterator::start_offset`](crate::data::BatchIterator::start_offset) of the
    /// next epoch (of the interrupted one, with `batches_done`).
    pub data_start: usize,
    /// The number of training examples batched.
    pub ndata: usize,
    /// The batch size.
    pub batch_size: usize,
    /// Minibatches of the epoch `data_epoch` already trained (an interrupted epoch; 0 at
    /// an epoch boundary).
    #[serde(default)]
    pub batches_done: usize,
    /// The seed the training examples were reshuffled from every epoch
    /// ([`BatchOptions::shuffle`](crate::data::BatchOptions::shuffle)); `None`: the fixed
    /// order. A resumed run must batch the same way.
    #[serde(default)]
    pub shuffle: Option<u64>,
    /// The optimizer the states belong to.
    pub optimizer: crate::optimizer::Optimizer,
}
