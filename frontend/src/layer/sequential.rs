//! neon's `Sequential`: a chain of layers, lowered as a one-input, one-output
//! [`LayerGraph`].

use super::{Layer, LayerError, LayerGraph, LayerInfo, Mode, ParamSpec, Port};
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
    /// Output node, `[batch, features…]` (the first of `outputs`).
    pub output: NodeId,
    /// Every output of the last layer (several for a `Tree`), in order.
    pub outputs: Vec<NodeId>,
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

    /// The chain fed by examples holding several input streams side by side (a data set's
    /// [`Dataset::streams`](crate::data::Dataset::streams)): a first
    /// [`MergeMultistream`](super::MergeMultistream) splits them, one per branch. With fewer
    /// than two streams, or another first layer (which then sees the streams' features
    /// side by side, flat), the chain is unchanged.
    pub fn fed_streams(&self, streams: &[Vec<usize>]) -> Sequential {
        let mut out = self.clone();
        if streams.len() > 1
            && let Some(Layer::MergeMultistream(m)) = out.layers.first_mut()
            && m.streams.is_none()
        {
            m.streams = Some(streams.to_vec());
        }
        out
    }

    /// The layers with compound layers expanded.
    pub fn expanded(&self) -> Result<Vec<Layer>, LayerError> {
        let mut out = Vec::new();
        for l in &self.layers {
            out.extend(l.expand()?);
        }
        Ok(out)
    }

    /// The chain as a graph: input `x`, each layer fed by the one before, output `y` (and
    /// `y1`, `y2`, … for the further outputs of a last layer that has several, a `Tree`).
    /// A layer with several outputs anywhere but last is an error.
    pub fn graph(&self) -> Result<LayerGraph, LayerError> {
        let mut net = LayerGraph::new();
        let mut h = net.input("x")?;
        for (i, layer) in self.layers.iter().enumerate() {
            h = net.add(layer.clone(), [h]).map_err(|e| match e {
                LayerError::Arity {
                    layer, kind, arity, ..
                } => LayerError::Argument {
                    layer,
                    reason: format!(
                        "a {kind} takes {arity}, but in a chain of layers (a model file's layers) each layer gets one: the previous layer's output, or the model's one input stream{}",
                        match (i, kind) {
                            (0, "MergeMultistream") => "; a first MergeMultistream splits a data set of one stream per branch (a list of `x` arrays in an arrays data set, or `streams: K` copies of each example)",
                            _ => "",
                        }
                    ),
                },
                e => e,
            })?;
            if layer.outputs() > 1 && i + 1 < self.layers.len() {
                let Port::Layer { name, .. } = &h else {
                    unreachable!("add returns a layer's port")
                };
                return Err(LayerError::Argument {
                    layer: name.clone(),
                    reason: format!(
                        "a {} has {} outputs and must be the last layer; put the layers after it into its branches",
                        layer.type_name(),
                        layer.outputs()
                    ),
                });
            }
        }
        let last = self.layers.last().map_or(1, Layer::outputs);
        net.output("y", h.clone())?;
        if let Port::Layer { name, .. } = &h {
            for k in 1..last {
                net.output(&format!("y{k}"), Port::output(name.clone(), k))?;
            }
        }
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
            outputs: fwd.outputs.clone(),
            params: fwd.params,
            layers: fwd.layers,
        })
    }
}
