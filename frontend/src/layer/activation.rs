//! neon's `Activation` layer: a transform from [`crate::activation`] applied to its input.

use super::{LayerCtx, LayerError, LayerKind};
use crate::activation::Activation;
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// Applies `transform` elementwise (per sample for `Softmax`). It is the `Activation`
/// variant of [`Layer`](super::Layer); the struct is named `ActivationLayer` so that it does
/// not shadow the transform type [`Activation`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationLayer {
    /// The transform (required).
    pub transform: Activation,
    /// Default none: the layer is named `Activation_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl ActivationLayer {
    /// `Activation(transform)` with no name.
    pub fn new(transform: Activation) -> ActivationLayer {
        ActivationLayer {
            transform,
            name: None,
        }
    }
}

impl LayerKind for ActivationLayer {
    fn detail(&self) -> Option<String> {
        Some(self.transform.name().to_string())
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Activation", inputs)?;
        Ok(vec![self.transform.lower(ctx.g, x)?])
    }
}
