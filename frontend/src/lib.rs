//! # xenon-frontend
//!
//! Layers, activations, initializers, costs, optimizers, metrics, datasets and the `Model`
//! API, each lowering to the compiler's IR. Names, arguments and defaults are neon's.

pub mod activation;
pub mod cost;
pub mod init;
pub mod layer;
pub mod model_file;
pub mod optimizer;
