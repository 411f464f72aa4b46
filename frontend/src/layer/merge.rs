//! neon's branching containers written as one layer of a model file: `MergeBroadcast`
//! (every branch sees the input; outputs concatenated) and `SkipNode` (the identity, the
//! shortcut of a residual `MergeSum`).

use super::{Arity, Layer, LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// How `MergeBroadcast` joins its branches' outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Merge {
    /// Concatenate feature maps (axis 1; the other axes must agree), as in inception
    /// modules.
    Depth,
    /// Flatten each output per sample and concatenate the features.
    Stack,
}

impl Merge {
    /// `depth, 3 branches`: a merging container's summary detail.
    fn detail(self, branches: usize) -> String {
        let how = match self {
            Merge::Depth => "depth",
            Merge::Stack => "stack",
        };
        format!("{how}, {branches} branches")
    }
}

/// Feeds its input to every branch (each a list of layers) and concatenates the branches'
/// outputs (neon's `MergeBroadcast`). Branch layers are named
/// `<this layer>/b<i>/<name>`. neon's `alphas` (per-branch error weights) are accepted only
/// as all ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeBroadcast {
    /// The branches, each a list of layers (required; at least one).
    pub layers: Vec<Vec<Layer>>,
    /// `depth` or `stack` (required).
    pub merge: Merge,
    /// Default none (all 1).
    #[serde(default)]
    pub alphas: Option<Vec<f64>>,
    /// Default none: the layer is named `MergeBroadcast_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

/// Lowers each branch of a container on `x`; returns the branch outputs.
pub(super) fn branches(
    ctx: &mut LayerCtx<'_>,
    layers: &[Vec<Layer>],
    x: NodeId,
) -> Result<Vec<NodeId>, LayerError> {
    if layers.is_empty() {
        return Err(ctx.invalid("has no branches (layers is empty)"));
    }
    let mut outs = Vec::new();
    for (i, branch) in layers.iter().enumerate() {
        let h = ctx.lower_branch(&format!("b{i}"), branch, &[x])?;
        outs.push(h[0]);
    }
    Ok(outs)
}

impl LayerKind for MergeBroadcast {
    fn detail(&self) -> Option<String> {
        Some(self.merge.detail(self.layers.len()))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("MergeBroadcast", inputs)?;
        if let Some(a) = &self.alphas
            && a.iter().any(|&v| v != 1.0)
        {
            return Err(ctx.invalid(format!(
                "alphas {a:?}: per-branch error weights other than 1 are not supported"
            )));
        }
        let outs = branches(ctx, &self.layers, x)?;
        merge_outputs(ctx, self.merge, outs)
    }
}

/// Joins branch outputs by `merge`: feature maps concatenated (`depth`; the other axes must
/// agree) or each flattened per sample and concatenated (`stack`).
fn merge_outputs(
    ctx: &mut LayerCtx<'_>,
    merge: Merge,
    outs: Vec<NodeId>,
) -> Result<Vec<NodeId>, LayerError> {
    let shapes: Vec<Vec<usize>> = outs.iter().map(|&o| ctx.g.ty(o).shape.clone()).collect();
    if let Some((i, s)) = shapes
        .iter()
        .enumerate()
        .find(|(_, s)| s[0] != shapes[0][0])
    {
        return Err(ctx.invalid(format!(
            "branch {i} has a batch of {}, branch 0 of {}",
            s[0], shapes[0][0]
        )));
    }
    let parts = match merge {
        Merge::Depth => {
            for (i, s) in shapes.iter().enumerate().skip(1) {
                if s.len() != shapes[0].len() || s[2..] != shapes[0][2..] {
                    return Err(ctx.invalid(format!(
                            "branch {i} outputs shape {:?}, branch 0 {:?}; merge: depth needs equal shapes but for the feature maps (axis 1)",
                            &s[1..],
                            &shapes[0][1..]
                        )));
                }
            }
            outs
        }
        Merge::Stack => outs
            .iter()
            .zip(&shapes)
            .map(|(&o, s)| ctx.g.reshape(o, &[s[0], s[1..].iter().product()]))
            .collect::<Result<_, _>>()?,
    };
    Ok(vec![ctx.g.concat(&parts, 1)?])
}

/// Each branch on its own input, outputs joined as in [`MergeBroadcast`] (neon's
/// `MergeMultistream`, whose data set gives one stream per branch). In a
/// [`LayerGraph`](super::LayerGraph) the layer takes as many inputs as it has branches, fed
/// by several graph inputs or layers. A model (one input) feeds it one input holding the
/// streams side by side, `[batch, Σ features]`, and [`MergeMultistream::streams`] gives
/// each stream's example shape: model files set it from a multistream data set (an `arrays`
/// set with a list of `x` arrays, or `streams: K` copies of a named set's examples).
/// Branch layers are named `<this layer>/b<i>/<name>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeMultistream {
    /// The branches, each a list of layers, branch `i` on input `i` (required; at least
    /// one).
    pub layers: Vec<Vec<Layer>>,
    /// `depth` or `stack` (required).
    pub merge: Merge,
    /// Default none: the layer is named `MergeMultistream_<k>`.
    #[serde(default)]
    pub name: Option<String>,
    /// The example shape of each stream when the layer takes one input holding them side
    /// by side (`[batch, Σ features]`, stream `i`'s features after stream `i − 1`'s);
    /// one per branch. Default none: one input per branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<Vec<usize>>>,
}

impl MergeMultistream {
    /// A multistream of `layers` (branch `i` on stream `i`), joined by `merge`.
    pub fn new(layers: Vec<Vec<Layer>>, merge: Merge) -> MergeMultistream {
        MergeMultistream {
            layers,
            merge,
            name: None,
            streams: None,
        }
    }

    /// Splits one input `[batch, Σ features]` into the streams, each `[batch, shape…]`.
    fn split(
        &self,
        ctx: &mut LayerCtx<'_>,
        x: NodeId,
        streams: &[Vec<usize>],
    ) -> Result<Vec<NodeId>, LayerError> {
        if streams.len() != self.layers.len() {
            return Err(ctx.invalid(format!(
                "has {} branches but {} streams ({streams:?}); each branch takes one stream",
                self.layers.len(),
                streams.len()
            )));
        }
        let shape = ctx.g.ty(x).shape.clone();
        let sizes: Vec<usize> = streams.iter().map(|s| s.iter().product()).collect();
        let total: usize = sizes.iter().sum();
        let features: usize = shape.iter().skip(1).product();
        if shape.is_empty() || features != total || sizes.contains(&0) {
            return Err(ctx.invalid(format!(
                "input of shape {:?} does not hold the streams {streams:?} side by side ({total} features an example)",
                shape.get(1..).unwrap_or(&[])
            )));
        }
        let batch = shape[0];
        let flat = ctx.g.reshape(x, &[batch, total])?;
        let mut at = 0;
        let mut out = Vec::with_capacity(streams.len());
        for (stream, size) in streams.iter().zip(sizes) {
            let part = ctx.g.slice(flat, &[0, at], &[batch, at + size], &[1, 1])?;
            let mut to = vec![batch];
            to.extend_from_slice(stream);
            out.push(ctx.g.reshape(part, &to)?);
            at += size;
        }
        Ok(out)
    }
}

impl LayerKind for MergeMultistream {
    fn arity(&self) -> Arity {
        match self.streams {
            Some(_) => Arity::Exactly(1),
            None => Arity::Exactly(self.layers.len().max(1)),
        }
    }

    fn detail(&self) -> Option<String> {
        Some(self.merge.detail(self.layers.len()))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        if self.layers.is_empty() {
            return Err(ctx.invalid("has no branches (layers is empty)"));
        }
        let split;
        let inputs = match &self.streams {
            Some(streams) => {
                split = self.split(ctx, ctx.single("MergeMultistream", inputs)?, streams)?;
                &split[..]
            }
            None => inputs,
        };
        let mut outs = Vec::with_capacity(inputs.len());
        for (i, (branch, &x)) in self.layers.iter().zip(inputs).enumerate() {
            outs.push(ctx.lower_branch(&format!("b{i}"), branch, &[x])?[0]);
        }
        merge_outputs(ctx, self.merge, outs)
    }
}

/// The identity (neon's `SkipNode`): the shortcut branch of a residual `MergeSum`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipNode {
    /// Default none: the layer is named `SkipNode_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl LayerKind for SkipNode {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        Ok(vec![ctx.single("SkipNode", inputs)?])
    }
}
