//! neon's `Affine`: a compound layer, `Linear` then `Bias` then `Activation`.

use super::{ActivationLayer, BatchNorm, Bias, Layer, LayerCtx, LayerError, LayerKind, Linear};
use crate::activation::Activation;
use crate::init::Initializer;
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// `Linear`, then `Bias` if `bias` is given (as in neon, no bias by default) or
/// `BatchNorm` if `batch_norm`, then the activation if given.
///
/// The parts are named after the layer: `<name>`, `<name>_bias` or `<name>_bnorm`,
/// `<name>_act`; an unnamed
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
    /// Default false: no batch norm. True adds a [`BatchNorm`] with neon's defaults after
    /// the Linear (no bias may be given then).
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
        let head = Linear {
            name: self.name.clone(),
            ..Linear::new(self.nout, self.init.clone())
        };
        compound(
            "Affine",
            head.into(),
            &self.name,
            &self.bias,
            self.batch_norm,
            &self.activation,
        )
    }

    /// Lowers the parts in order under this layer's name (a [`LayerGraph`](super::LayerGraph)
    /// lowers each part under its own name instead).
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        lower_parts(self.expand()?, ctx, inputs)
    }
}

/// A compound layer's parts (neon's lists): `head` (a Linear or Convolution, named
/// `<name>`), then `Bias` (`<name>_bias`) if `bias` is given or `BatchNorm`
/// (`<name>_bnorm`) if `batch_norm`, then the activation (`<name>_act`). Unnamed parts are
/// named like unnamed layers of their classes. Bias and batch norm together are an error,
/// as in neon.
pub(super) fn compound(
    class: &str,
    head: Layer,
    name: &Option<String>,
    bias: &Option<Initializer>,
    batch_norm: bool,
    activation: &Option<Activation>,
) -> Result<Vec<Layer>, LayerError> {
    if batch_norm && bias.is_some() {
        return Err(LayerError::Argument {
            layer: name.clone().unwrap_or_else(|| class.into()),
            reason: "bias and batch_norm cannot both be given (as in neon)".into(),
        });
    }
    let part = |suffix: &str| name.as_ref().map(|n| format!("{n}{suffix}"));
    let mut parts = vec![head];
    if let Some(init) = bias {
        parts.push(
            Bias {
                init: init.clone(),
                name: part("_bias"),
            }
            .into(),
        );
    }
    if batch_norm {
        parts.push(
            BatchNorm {
                name: part("_bnorm"),
                ..BatchNorm::default()
            }
            .into(),
        );
    }
    if let Some(transform) = activation {
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

/// Lowers a compound layer's `parts` in order, each fed the previous part's outputs.
pub(super) fn lower_parts(
    parts: Vec<Layer>,
    ctx: &mut LayerCtx<'_>,
    inputs: &[NodeId],
) -> Result<Vec<NodeId>, LayerError> {
    let mut h = inputs.to_vec();
    for part in parts {
        h = part.lower(ctx, &h)?;
    }
    Ok(h)
}
