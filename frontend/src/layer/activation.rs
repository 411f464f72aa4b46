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

/// neon's `DataTransform`: a transform of the data as it enters the network (typically the
/// first layer, e.g. `Normalizer` dividing pixel bytes by 128). Lowered like an
/// activation; nothing before it has parameters, so its gradient is never needed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTransform {
    /// The transform (required).
    pub transform: Activation,
    /// Default none: the layer is named `DataTransform_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl LayerKind for DataTransform {
    fn detail(&self) -> Option<String> {
        Some(self.transform.name().to_string())
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("DataTransform", inputs)?;
        Ok(vec![self.transform.lower(ctx.g, x)?])
    }
}
