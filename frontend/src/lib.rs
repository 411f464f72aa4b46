//! # xenon-frontend
//!
//! Layers, activations, initializers, costs, optimizers, metrics, datasets and the `Model`
//! API, each lowering to the compiler's IR. Names, arguments and defaults are neon's.

pub mod activation;
pub mod callback;
pub mod cost;
pub mod data;
pub mod history;
pub mod init;
pub mod interrupt;
pub mod layer;
pub mod metric;
pub mod model;
pub mod model_file;
pub mod optimizer;

/// The types most programs need.
pub mod prelude {
    pub use crate::activation::Activation;
    pub use crate::callback::{Callback, CheckpointCallback, EvalCallback, ProgressBarCallback};
    pub use crate::cost::Cost;
    pub use crate::data::{BatchIterator, BatchOptions, Dataset, LastBatch, Mnist};
    pub use crate::init::Initializer;
    pub use crate::layer::{
        ActivationLayer, Affine, Bias, Layer, LayerGraph, Linear, MergeSum, Sequential,
    };
    pub use crate::metric::Metric;
    pub use crate::model::{EpochStats, Model, ModelError};
    pub use crate::optimizer::{GradientDescentMomentum, Optimizer, Schedule};
}
