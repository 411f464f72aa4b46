//! neon's `Affine`: a compound layer, `Linear` then `Bias` then `Activation`.

use super::{ActivationLayer, Bias, Layer, LayerCtx, LayerError, LayerKind, Linear};
use crate::activation::Activation;
use crate::init::Initializer;
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// `Linear`, then `Bias` if `bias` is given (as in neon, no bias by default), then the
/// activation if given. `batch_norm` is not supported yet and is rejected.
///
/// The parts are named after the layer: `<name>`, `<name>_bias`, `<name>_act`; an unnamed
/// `Affine`'s parts are named like unnamed layers of their classes.
///
/// ```
/// use xenon_frontend::activation::Activation;
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Affine, Layer};
///
/// let fc = Affine::new(100, Initializer::Gaussian { loc: 0.0, scale: 0.01 })
///     .with_bias(Initializer::Constant { val: 0.0 })
///     .with_activation(Activation::Rectlin { slope: 0.0 })
///     .with_name("fc1");
/// let parts = Layer::from(fc).expand().unwrap();
/// let names: Vec<_> = parts.iter().map(|p| p.name().unwrap()).collect();
/// assert_eq!(names, ["fc1", "fc1_bias", "fc1_act"]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affine {
    /// Number of output features (required).
    pub nout: usize,
    /// The initializer of the weights (required).
    pub init: Initializer,
    /// Default none: no bias. The bias initializer otherwise.
    #[serde(default)]
    pub bias: Option<Initializer>,
    /// Default false; true is rejected (batch normalization is not built yet).
    #[serde(default)]
    pub batch_norm: bool,
    /// Default none: no activation.
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Default none.
    #[serde(default)]
    pub name: Option<String>,
}

impl Affine {
    /// `Affine(nout, init)` with neon's defaults: no bias, no batch norm, no activation.
    pub fn new(nout: usize, init: Initializer) -> Affine {
        Affine {
            nout,
            init,
            bias: None,
            batch_norm: false,
            activation: None,
            name: None,
        }
    }

    /// The layer with a bias initialized by `init`.
    pub fn with_bias(mut self, init: Initializer) -> Affine {
        self.bias = Some(init);
        self
    }

    /// The layer followed by `activation`.
    pub fn with_activation(mut self, activation: Activation) -> Affine {
        self.activation = Some(activation);
        self
    }
}

impl LayerKind for Affine {
    fn expand(&self) -> Result<Vec<Layer>, LayerError> {
        if self.batch_norm {
            return Err(LayerError::Argument {
                layer: self.name.clone().unwrap_or_else(|| "Affine".into()),
                reason: "batch_norm is not supported yet".into(),
            });
        }
        let part = |suffix: &str| self.name.as_ref().map(|n| format!("{n}{suffix}"));
        let mut parts = vec![Layer::from(Linear {
            name: part(""),
            ..Linear::new(self.nout, self.init.clone())
        })];
        if let Some(init) = &self.bias {
            parts.push(
                Bias {
                    init: init.clone(),
                    name: part("_bias"),
                }
                .into(),
            );
        }
        if let Some(transform) = &self.activation {
            parts.push(
                ActivationLayer {
                    transform: transform.clone(),
                    name: part("_act"),
                }
                .into(),
            );
        }
        Ok(parts)
    }

    /// Lowers the parts in order under this layer's name (a [`LayerGraph`](super::LayerGraph)
    /// lowers each part under its own name instead).
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let mut h = inputs.to_vec();
        for part in self.expand()? {
            h = part.lower(ctx, &h)?;
        }
        Ok(h)
    }
}
