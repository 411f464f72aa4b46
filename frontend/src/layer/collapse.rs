//! neon's `RecurrentSum`, `RecurrentMean` and `RecurrentLast` (its `RecurrentOutput`
//! layers): a sequence `[batch, T, features]` collapsed over time to `[batch, features]`.

use super::{LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// neon's `RecurrentSum`: the sum over the time steps, `y = Σ_t x_t` (`[batch, T, F]` →
/// `[batch, F]`); each step's gradient is the output's.
///
/// ```
/// use xenon_frontend::layer::{Layer, RecurrentSum};
/// let sum = RecurrentSum::default();
/// assert_eq!(Layer::from(sum).type_name(), "RecurrentSum");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentSum {
    /// Default none: the layer is named `RecurrentSum_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

/// neon's `RecurrentMean`: the mean over the time steps, `y = (1/T)·Σ_t x_t`
/// (`[batch, T, F]` → `[batch, F]`).
///
/// ```
/// use xenon_frontend::layer::{Layer, RecurrentMean};
/// let mean = RecurrentMean::default().with_name("avg");
/// assert_eq!(Layer::from(mean).name(), Some("avg"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentMean {
    /// Default none: the layer is named `RecurrentMean_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

/// neon's `RecurrentLast`: the last time step, `y = x_{T−1}` (`[batch, T, F]` →
/// `[batch, F]`); the other steps get no gradient.
///
/// ```
/// use xenon_frontend::layer::{Layer, RecurrentLast};
/// let last = RecurrentLast::default();
/// assert_eq!(Layer::from(last).type_name(), "RecurrentLast");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentLast {
    /// Default none: the layer is named `RecurrentLast_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

/// How the time axis is collapsed.
#[derive(Clone, Copy)]
enum Collapse {
    Sum,
    Mean,
    Last,
}

/// Collapses the time axis of the one input of the `class` layer.
fn collapse(
    ctx: &mut LayerCtx<'_>,
    class: &'static str,
    how: Collapse,
    inputs: &[NodeId],
) -> Result<Vec<NodeId>, LayerError> {
    let x = ctx.single(class, inputs)?;
    let xs = ctx.shape(x)?;
    let Some((t, f)) = super::sequence(&xs).filter(|&(t, _)| t > 0) else {
        return Err(ctx.invalid(format!(
            "{class} expects a sequence [batch, time steps, features], got shape {xs:?}"
        )));
    };
    let b = xs[0];
    let g = &mut *ctx.g;
    let y = match how {
        Collapse::Sum => g.sum(x, &[1], false)?,
        Collapse::Mean => g.mean(x, &[1], false)?,
        Collapse::Last => {
            let last = g.slice(x, &[0, t - 1, 0], &[b, t, f], &[1, 1, 1])?;
            g.reshape(last, &[b, f])?
        }
    };
    Ok(vec![y])
}

impl LayerKind for RecurrentSum {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        collapse(ctx, "RecurrentSum", Collapse::Sum, inputs)
    }
}

impl LayerKind for RecurrentMean {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        collapse(ctx, "RecurrentMean", Collapse::Mean, inputs)
    }
}

impl LayerKind for RecurrentLast {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        collapse(ctx, "RecurrentLast", Collapse::Last, inputs)
    }
}
