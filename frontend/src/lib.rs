//! # xenon-frontend
//!
//! Layers, activations, initializers, costs, optimizers, metrics, datasets and the `Model`
//! API, each lowering to the compiler's IR.

pub mod data;
