//! neon's `Tree` and `SingleOutputTree` (a trunk with side branches, one output each) and
//! the `BranchNode` that marks where a branch leaves.
//!
//! Branch 0 is the trunk and runs on the layer's input. Every other branch starts with a
//! `BranchNode` of the same `name` as one placed in an earlier branch, and runs from the
//! value there. The layer's outputs are the branches' outputs, the trunk's first; a model
//! whose last layer is a tree is trained with a `Multicost` of one cost per output.
//!
//! **`alphas`** (one per branch, default all 1) weight the error that flows back out of a
//! branch, as neon's `Tree.bprop` passes `alpha` to the layer after each `BranchNode`:
//! branch `i`'s gradient enters the branch it leaves multiplied by `alphas[i]`, and the
//! trunk's own gradient is multiplied by `alphas[0]` at each of its `BranchNode`s. The
//! branch's own parameters get its unweighted gradient. (Built with the IR's `scale_grad`:
//! the values are untouched.)

use super::{Layer, LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use xenon_compiler::ir::NodeId;

/// The identity (neon's `BranchNode`): in a `Tree`'s branch, the point where another
/// branch starts; at the start of a branch, the point it starts from (by `name`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchNode {
    /// The branch point's name (required inside a `Tree`: branches find their start by
    /// it). Default none: the layer is named `BranchNode_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl LayerKind for BranchNode {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        Ok(vec![ctx.single("BranchNode", inputs)?])
    }
}

/// A trunk and side branches (neon's `Tree`), each a list of layers; one output per
/// branch, the trunk's first, in inference too. Branch layers are named
/// `<this layer>/b<i>/<name>`.
///
/// ```
/// use xenon_frontend::layer::{Affine, BranchNode, Layer, Tree};
/// use xenon_frontend::init::Initializer;
///
/// let init = Initializer::Constant { val: 0.1 };
/// let b1 = || Layer::from(BranchNode::default().with_name("b1"));
/// let tree = Tree::new(vec![
///     vec![Affine::new(8, init.clone()).into(), b1(), Affine::new(4, init.clone()).into()],
///     vec![b1(), Affine::new(2, init).into()],
/// ]);
/// assert_eq!(Layer::from(tree).outputs(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// The branches, each a list of layers; branch 0 is the trunk (required).
    pub layers: Vec<Vec<Layer>>,
    /// One weight per branch for the error it sends back (see the module docs). Default
    /// none: all 1.
    #[serde(default)]
    pub alphas: Option<Vec<f64>>,
    /// Default none: the layer is named `Tree_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Tree {
    /// A tree of `layers` (the trunk first), alphas all 1.
    pub fn new(layers: Vec<Vec<Layer>>) -> Tree {
        Tree {
            layers,
            alphas: None,
            name: None,
        }
    }

    /// The same tree with `alphas`.
    pub fn with_alphas(mut self, alphas: Vec<f64>) -> Tree {
        self.alphas = Some(alphas);
        self
    }
}

/// A `Tree` whose inference (prediction, evaluation, bundles) gives the trunk's output
/// alone (neon's `SingleOutputTree`): a model's inference graphs keep its first output;
/// training steps use every branch. The same arguments as [`Tree`] (and its fields,
/// through `Deref`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SingleOutputTree(pub Tree);

impl std::ops::Deref for SingleOutputTree {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.0
    }
}

impl std::ops::DerefMut for SingleOutputTree {
    fn deref_mut(&mut self) -> &mut Tree {
        &mut self.0
    }
}

impl LayerKind for Tree {
    fn outputs(&self) -> usize {
        self.layers.len()
    }

    fn detail(&self) -> Option<String> {
        Some(format!("{} branches", self.layers.len()))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Tree", inputs)?;
        lower_tree(ctx, &self.layers, self.alphas.as_deref(), x)
    }
}

impl LayerKind for SingleOutputTree {
    fn outputs(&self) -> usize {
        self.0.outputs()
    }

    fn detail(&self) -> Option<String> {
        self.0.detail()
    }

    // Every output in every mode (so that every mode declares the same parameters); the
    // model's inference graphs keep the trunk's alone, and the branches' nodes are pruned
    // unused.
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        self.0.lower(ctx, inputs)
    }
}

/// The name of a `BranchNode` layer, if `layer` is one.
fn branch_point(layer: &Layer) -> Option<Option<&str>> {
    match layer {
        Layer::BranchNode(b) => Some(b.name.as_deref()),
        _ => None,
    }
}

/// Lowers a tree's branches on `x`; returns each branch's output.
fn lower_tree(
    ctx: &mut LayerCtx<'_>,
    layers: &[Vec<Layer>],
    alphas: Option<&[f64]>,
    x: NodeId,
) -> Result<Vec<NodeId>, LayerError> {
    if layers.is_empty() {
        return Err(ctx.invalid("has no branches (layers is empty)"));
    }
    let ones = vec![1.0; layers.len()];
    let alphas = alphas.unwrap_or(&ones);
    if alphas.len() != layers.len() {
        return Err(ctx.invalid(format!(
            "alphas has {} weights for {} branches",
            alphas.len(),
            layers.len()
        )));
    }
    if let Some(a) = alphas.iter().find(|a| !a.is_finite()) {
        return Err(ctx.invalid(format!("alphas has a non-finite weight {a}")));
    }
    let tree = ctx.name().to_string();
    // Branch points by name: the value there.
    let mut points: HashMap<String, NodeId> = HashMap::new();
    let mut outs = Vec::with_capacity(layers.len());
    for (i, branch) in layers.iter().enumerate() {
        let alpha = alphas[i];
        let start = if i == 0 {
            x
        } else {
            let Some(Some(from)) = branch.first().and_then(branch_point) else {
                return Err(ctx.invalid(format!(
                    "branch {i} must start with a BranchNode named after a branch point of an earlier branch"
                )));
            };
            let Some(&h) = points.get(from) else {
                let mut known: Vec<&str> = points.keys().map(String::as_str).collect();
                known.sort();
                return Err(ctx.invalid(format!(
                    "branch {i} starts at BranchNode '{from}', which no earlier branch has (branch points: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            };
            ctx.g.scale_grad(h, alpha)?
        };
        let out = ctx.lower_branch_with(
            &format!("b{i}"),
            branch,
            &[start],
            |g, position, part, h| {
                let Some(name) = branch_point(part) else {
                    return Ok(h);
                };
                if i > 0 && position == 0 {
                    // The branch's own start: already weighted above.
                    return Ok(h);
                }
                let name = name.ok_or_else(|| LayerError::Argument {
                    layer: format!("branch {i}"),
                    reason: format!("branch {i}: a BranchNode inside a Tree needs a name"),
                })?;
                if points.contains_key(name) {
                    return Err(LayerError::Argument {
                        layer: tree.clone(),
                        reason: format!("branch {i}: a second BranchNode is named '{name}'"),
                    });
                }
                // Other branches start from the value here and weight their own error; this
                // branch goes on with its error weighted at the branch point.
                points.insert(name.to_string(), h[0]);
                Ok(vec![g.scale_grad(h[0], alpha)?])
            },
        )?;
        outs.push(out[0]);
    }
    Ok(outs)
}
