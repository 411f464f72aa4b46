//! neon's `Bias`: a learned bias per feature.

use super::{LayerCtx, LayerError, LayerKind};
use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// Adds a learned bias per feature (per channel for images: axis 1 of `[batch, C, …]`;
/// the last axis of a sequence `[batch, T, C]`); parameter `b` of shape `(C,)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bias {
    /// The initializer of `b` (required).
    pub init: Initializer,
    /// Default none: the layer is named `Bias_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Bias {
    /// `Bias(init)` with no name.
    pub fn new(init: Initializer) -> Bias {
        Bias { init, name: None }
    }
}

impl LayerKind for Bias {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Bias", inputs)?;
        let xs = ctx.shape(x)?;
        // The features are a sequence's last axis, any other input's first.
        let axis = if super::sequence(&xs).is_some() { 2 } else { 1 };
        let Some(&c) = xs.get(axis) else {
            return Err(ctx.invalid("expects a [batch, features…] input, got one axis"));
        };
        let fans = Fans {
            rows: c,
            cols: 1,
            fan_in: 1,
        };
        let b = ctx.param("b", &[c], &self.init, fans)?;
        let mut bshape = vec![1; xs.len() - 1];
        bshape[axis - 1] = c;
        let b = ctx.g.reshape(b, &bshape)?;
        Ok(vec![ctx.g.add_(x, b)?])
    }
}
