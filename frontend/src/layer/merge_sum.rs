//! neon's `MergeSum` as a plain layer: the elementwise sum of its inputs.

use super::{Arity, LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// The elementwise sum of two or more inputs of one shape (neon's `MergeSum` container sums
/// its branches' outputs this way; with a [`LayerGraph`](super::LayerGraph) the branches
/// are ordinary layers feeding this one). Inputs are not broadcast: a shape mismatch is an
/// error naming the layer and both shapes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeSum {
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
        Arity::AtLeast(2)
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        ctx.check_arity("MergeSum", self.arity(), inputs)?;
        let (&first, rest) = inputs.split_first().expect("arity checked: at least 2");
        let first_shape = ctx.shape(first)?;
        let mut sum = first;
        for (i, &x) in rest.iter().enumerate() {
            let shape = ctx.shape(x)?;
            if shape != first_shape {
                return Err(ctx.invalid(format!(
                    "input {} has shape {shape:?}, but input 0 has shape {first_shape:?}; \
                     MergeSum adds inputs of one shape",
                    i + 1
                )));
            }
            sum = ctx.g.add_(sum, x)?;
        }
        Ok(vec![sum])
    }
}
