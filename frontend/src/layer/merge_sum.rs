//! neon's `MergeSum`: the elementwise sum of its inputs (a layer of a
//! [`LayerGraph`](super::LayerGraph)), or of its branches' outputs (neon's container form,
//! `layers: [[...], [SkipNode]]`).

use super::{Arity, Layer, LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// The elementwise sum of two or more inputs of one shape; with `layers` (neon's container
/// form, a residual block such as `[[Conv, Conv], [SkipNode]]`) the sum of its branches'
/// outputs on its one input, the branch layers named `<this layer>/b<i>/<name>`. Nothing is
/// broadcast: a shape mismatch is an error naming the layer and both shapes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeSum {
    /// Default none: the inputs are the summands. The branches otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Vec<Layer>>>,
    /// Default none: the layer is named `MergeSum_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl MergeSum {
    /// `MergeSum()` with no name.
    pub fn new() -> MergeSum {
        MergeSum::default()
    }
}

impl LayerKind for MergeSum {
    fn arity(&self) -> Arity {
        match self.layers {
            Some(_) => Arity::Exactly(1),
            None => Arity::AtLeast(2),
        }
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        ctx.check_arity("MergeSum", self.arity(), inputs)?;
        let summands = match &self.layers {
            Some(layers) => super::merge::branches(ctx, layers, inputs[0])?,
            None => inputs.to_vec(),
        };
        let (what, whats) = if self.layers.is_some() {
            ("branch", "branches")
        } else {
            ("input", "inputs")
        };
        let Some((&first, rest)) = summands.split_first() else {
            return Err(ctx.invalid("has nothing to sum"));
        };
        let first_shape = ctx.shape(first)?;
        let mut sum = first;
        for (i, &x) in rest.iter().enumerate() {
            let shape = ctx.shape(x)?;
            if shape != first_shape {
                return Err(ctx.invalid(format!(
                    "{what} {} has shape {shape:?}, but {what} 0 has shape {first_shape:?}; \
                     MergeSum adds {whats} of one shape",
                    i + 1
                )));
            }
            sum = ctx.g.add_(sum, x)?;
        }
        Ok(vec![sum])
    }
}
