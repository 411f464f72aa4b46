//! Layers (neon's `neon/layers/layer.py`) and the `Sequential` container.
//!
//! A layer lowers itself into the graph: it declares its parameters (name, shape,
//! initializer) and adds the primitive ops of its forward pass. Compound layers (`Affine`)
//! expand into their parts first, as neon's compound layers are lists. Data is batch-major:
//! a layer sees `[batch, features…]`; Linear weights are `(nout, nin)` as in neon and
//! PyTorch, so `Linear` computes `x · Wᵀ`.

use crate::activation::Activation;
use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{DType, Graph, GraphError, NodeId};

/// A layer with neon's class name, arguments and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Layer {
    /// Fully connected, no bias: `y = x·Wᵀ` with `W` of shape `(nout, nin)`; the input's
    /// non-batch axes are flattened. `bsum` is accepted for compatibility.
    Linear {
        nout: usize,
        init: Initializer,
        #[serde(default)]
        bsum: bool,
        #[serde(default)]
        name: Option<String>,
    },
    /// Adds a learned bias per feature (per channel for images); parameter `b` of shape
    /// `(features,)`.
    Bias {
        init: Initializer,
        #[serde(default)]
        name: Option<String>,
    },
    /// `Linear`, then `Bias` if `bias` is given (as in neon, no bias by default), then the
    /// activation if given. `batch_norm` is not supported yet and is rejected.
    Affine {
        nout: usize,
        init: Initializer,
        #[serde(default)]
        bias: Option<Initializer>,
        #[serde(default)]
        batch_norm: bool,
        #[serde(default)]
        activation: Option<Activation>,
        #[serde(default)]
        name: Option<String>,
    },
    /// Applies `transform` elementwise (per sample for `Softmax`).
    Activation {
        transform: Activation,
        #[serde(default)]
        name: Option<String>,
    },
}

/// Every layer type name, for error messages.
pub const LAYER_TYPES: [&str; 4] = ["Linear", "Bias", "Affine", "Activation"];

/// A trainable parameter a layer declared.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Unique name, `<layer>/<W|b>`.
    pub name: String,
    /// The layer that owns it.
    pub layer: String,
    /// Shape in Xenon's layout.
    pub shape: Vec<usize>,
    /// How it is initialized.
    pub init: Initializer,
    /// neon's 2-D view and the fan-in, for the initializer.
    pub fans: Fans,
}

/// What a layer did, for summaries.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Unique layer name.
    pub name: String,
    /// neon class name (with the activation for `Activation` layers).
    pub kind: String,
    /// Output shape per sample (without the batch axis).
    pub out_shape: Vec<usize>,
    /// Number of trainable values.
    pub params: usize,
}

/// Why a model could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerError {
    /// An op inside a layer did not fit (names the layer and the shapes).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A layer argument is invalid.
    #[error("layer '{layer}': {reason}")]
    Argument { layer: String, reason: String },
}

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

impl Layer {
    /// The neon class name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Layer::Linear { .. } => "Linear",
            Layer::Bias { .. } => "Bias",
            Layer::Affine { .. } => "Affine",
            Layer::Activation { .. } => "Activation",
        }
    }

    /// Compound layers as their parts; simple layers as themselves.
    fn expand(&self) -> Result<Vec<Layer>, LayerError> {
        match self {
            Layer::Affine {
                nout,
                init,
                bias,
                batch_norm,
                activation,
                name,
            } => {
                if *batch_norm {
                    return Err(LayerError::Argument {
                        layer: name.clone().unwrap_or_else(|| "Affine".into()),
                        reason: "batch_norm is not supported yet".into(),
                    });
                }
                let mut v = vec![Layer::Linear {
                    nout: *nout,
                    init: init.clone(),
                    bsum: false,
                    name: name.clone(),
                }];
                if let Some(b) = bias {
                    v.push(Layer::Bias {
                        init: b.clone(),
                        name: name.as_ref().map(|n| format!("{n}_bias")),
                    });
                }
                if let Some(a) = activation {
                    v.push(Layer::Activation {
                        transform: a.clone(),
                        name: name.as_ref().map(|n| format!("{n}_act")),
                    });
                }
                Ok(v)
            }
            other => Ok(vec![other.clone()]),
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            Layer::Linear { name, .. }
            | Layer::Bias { name, .. }
            | Layer::Affine { name, .. }
            | Layer::Activation { name, .. } => name.as_deref(),
        }
    }
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

    /// Adds the forward pass on `x` (`[batch, features…]`) to `g`, declaring every parameter
    /// as a `parameter` node with the layer's dtype.
    pub fn forward(&self, g: &mut Graph, x: NodeId) -> Result<Forward, LayerError> {
        let dt = g.ty(x).dtype;
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut params = Vec::new();
        let mut layers = Vec::new();
        let mut h = x;
        for layer in self.expanded()? {
            let kind = layer.type_name();
            let k = counts.entry(kind).or_insert(0);
            let name = layer
                .name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{kind}_{k}"));
            *k += 1;
            let before = params.len();
            h = g.in_scope(&name, |g| lower(&layer, &name, g, h, dt, &mut params))?;
            let shape = g.ty(h).shape[1..].to_vec();
            let count = params[before..]
                .iter()
                .map(|p: &ParamSpec| p.shape.iter().product::<usize>())
                .sum();
            let kind = match &layer {
                Layer::Activation { transform, .. } => format!("Activation({})", transform.name()),
                _ => kind.to_string(),
            };
            layers.push(LayerInfo {
                name,
                kind,
                out_shape: shape,
                params: count,
            });
        }
        Ok(Forward {
            output: h,
            params,
            layers,
        })
    }
}

fn lower(
    layer: &Layer,
    name: &str,
    g: &mut Graph,
    x: NodeId,
    dt: DType,
    params: &mut Vec<ParamSpec>,
) -> Result<NodeId, LayerError> {
    let xs = g.ty(x).shape.clone();
    match layer {
        Layer::Linear { nout, init, .. } => {
            if *nout == 0 {
                return Err(LayerError::Argument {
                    layer: name.into(),
                    reason: "nout must be at least 1".into(),
                });
            }
            let nin: usize = xs[1..].iter().product();
            let flat = g.reshape(x, &[xs[0], nin])?;
            let pname = format!("{name}/W");
            let w = g.parameter(&pname, dt, &[*nout, nin])?;
            params.push(ParamSpec {
                name: pname,
                layer: name.into(),
                shape: vec![*nout, nin],
                init: init.clone(),
                fans: Fans {
                    rows: *nout,
                    cols: nin,
                    fan_in: nin,
                },
            });
            Ok(g.matmul(flat, w, false, true)?)
        }
        Layer::Bias { init, .. } => {
            // One bias per feature map: axis 1 of [batch, C, …].
            let c = xs[1];
            let pname = format!("{name}/b");
            let b = g.parameter(&pname, dt, &[c])?;
            params.push(ParamSpec {
                name: pname,
                layer: name.into(),
                shape: vec![c],
                init: init.clone(),
                fans: Fans {
                    rows: c,
                    cols: 1,
                    fan_in: 1,
                },
            });
            let mut bshape = vec![1; xs.len() - 1];
            bshape[0] = c;
            let b = g.reshape(b, &bshape)?;
            Ok(g.add_(x, b)?)
        }
        Layer::Activation { transform, .. } => Ok(transform.lower(g, x)?),
        // `Sequential::forward` expands compound layers first; lowering one directly
        // lowers its parts in order under the same name.
        Layer::Affine { .. } => {
            let mut h = x;
            for part in layer.expand()? {
                h = lower(&part, name, g, h, dt, params)?;
            }
            Ok(h)
        }
    }
}
