//! neon's `Sequential`: a chain of layers, lowered as a one-input, one-output
//! [`LayerGraph`].

use super::{Layer, LayerError, LayerGraph, LayerInfo, Mode, ParamSpec};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{Graph, NodeId};

/// A linear stack of layers (neon's `Sequential`; compound layers are flattened).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequential {
    pub layers: Vec<Layer>,
}

/// A built forward pass.
#[derive(Clone, Debug)]
pub struct Forward {
    /// Output node, `[batch, features…]`.
    pub output: NodeId,
    /// Parameters in declaration order (each a `parameter` node named `spec.name`).
    pub params: Vec<ParamSpec>,
    /// One entry per (expanded) layer.
    pub layers: Vec<LayerInfo>,
}

impl Sequential {
    /// A container of `layers`.
    pub fn new(layers: Vec<Layer>) -> Sequential {
        Sequential { layers }
    }

    /// The layers with compound layers expanded.
    pub fn expanded(&self) -> Result<Vec<Layer>, LayerError> {
        let mut out = Vec::new();
        for l in &self.layers {
            out.extend(l.expand()?);
        }
        Ok(out)
    }

    /// The chain as a graph: input `x`, each layer fed by the one before, output `y`.
    pub fn graph(&self) -> Result<LayerGraph, LayerError> {
        let mut net = LayerGraph::new();
        let mut h = net.input("x")?;
        for layer in &self.layers {
            h = net.add(layer.clone(), [h])?;
        }
        net.output("y", h)?;
        Ok(net)
    }

    /// Adds the forward pass on `x` (`[batch, features…]`) to `g`, declaring every parameter
    /// as a `parameter` node with `x`'s dtype.
    pub fn forward(&self, g: &mut Graph, x: NodeId) -> Result<Forward, LayerError> {
        self.forward_mode(g, x, Mode::Inference)
    }

    /// [`Sequential::forward`] for a graph of `mode` (a training step or inference); see
    /// [`LayerGraph::forward_mode`].
    pub fn forward_mode(
        &self,
        g: &mut Graph,
        x: NodeId,
        mode: Mode,
    ) -> Result<Forward, LayerError> {
        let fwd = self.graph()?.forward_mode(g, &[x], mode)?;
        Ok(Forward {
            output: fwd.outputs[0],
            params: fwd.params,
            layers: fwd.layers,
        })
    }
}
