//! neon's `Convolution` and the compound `Conv` (convolution, then bias or batch norm, then
//! an activation).

use super::affine::{compound, lower_parts};
use super::spatial::{SpatialArg, window};
use super::{Layer, LayerCtx, LayerError, LayerKind};
use crate::activation::Activation;
use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// A convolution without bias over `[batch, C, H, W]` (or `[batch, C, D, H, W]`) inputs:
/// `K` filters of `C × R × S` (`C × T × R × S`), weight `W` of shape `(K, C, R, S)`
/// (neon's 2-D view for initializers: `(C·R·S, K)`, fan-in `C·R·S`). Output
/// `[batch, K, P, Q]` with neon's size rule `floor((X − S_eff + 2·pad)/stride) + 1`,
/// `S_eff = dil·(S − 1) + 1`.
///
/// Lowered as a GEMM over im2col patches: `W(K, C·R·S) · cols(C·R·S, P·Q)` per sample; the
/// gradients are the transposed products and col2im.
///
/// ```
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Convolution, Layer};
///
/// let c: Layer = Convolution::new(vec![5, 5, 16], Initializer::Constant { val: 0.0 }).into();
/// assert_eq!(c.type_name(), "Convolution");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Convolution {
    /// `[R, S, K]` (2-d) or `[T, R, S, K]` (3-d): the filter extents and the number of
    /// filters (required).
    pub fshape: Vec<usize>,
    /// Default 1 on every axis; an integer sets height and width, a mapping
    /// `{str_d, str_h, str_w}` each axis.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub strides: SpatialArg,
    /// Zero padding on both sides; default 0; an integer or `{pad_d, pad_h, pad_w}`.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub padding: SpatialArg,
    /// Gap between filter taps; default 1; an integer or `{dil_d, dil_h, dil_w}`.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub dilation: SpatialArg,
    /// The initializer of `W` (neon's default none is an error there too; required).
    pub init: Initializer,
    /// Default false; accepted for compatibility (neon's batch-sum bookkeeping).
    #[serde(default)]
    pub bsum: bool,
    /// Default none: the layer is named `Convolution_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Convolution {
    /// `Convolution(fshape, init)` with stride 1, no padding, no dilation.
    pub fn new(fshape: Vec<usize>, init: Initializer) -> Convolution {
        Convolution {
            fshape,
            strides: SpatialArg::Default,
            padding: SpatialArg::Default,
            dilation: SpatialArg::Default,
            init,
            bsum: false,
            name: None,
        }
    }

    /// The layer with `strides`, `padding` and `dilation` (integers for height and width).
    pub fn with_geometry(mut self, strides: usize, padding: usize, dilation: usize) -> Self {
        self.strides = SpatialArg::Int(strides);
        self.padding = SpatialArg::Int(padding);
        self.dilation = SpatialArg::Int(dilation);
        self
    }
}

impl LayerKind for Convolution {
    fn detail(&self) -> Option<String> {
        Some(format!("{:?}", self.fshape))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Convolution", inputs)?;
        let xs = ctx.shape(x)?;
        let Geometry {
            k,
            kernel,
            stride,
            pad,
            dil,
        } = geometry(
            ctx,
            "convolution",
            &self.fshape,
            [&self.strides, &self.padding, &self.dilation],
            &xs,
        )?;
        let kernel = &kernel[..];
        let (n, c, spatial) = (xs[0], xs[1], &xs[2..]);
        let (win, out) = window(kernel, &stride, &pad, &dil, spatial).map_err(|e| {
            ctx.invalid(format!(
                "{e} (input shape {:?}, fshape {:?})",
                &xs[1..],
                self.fshape
            ))
        })?;
        let taps: usize = kernel.iter().product();
        let fans = Fans {
            rows: c * taps,
            cols: k,
            fan_in: c * taps,
        };
        let mut wshape = vec![k, c];
        wshape.extend_from_slice(kernel);
        let w = ctx.param("W", &wshape, &self.init, fans)?;
        let w2 = ctx.g.reshape(w, &[k, c * taps])?;
        let cols = ctx.g.im2col(x, &win)?;
        let y = ctx.g.matmul(w2, cols, false, false)?;
        let mut yshape = vec![n, k];
        yshape.extend_from_slice(&out);
        Ok(vec![ctx.g.reshape(y, &yshape)?])
    }
}

/// `Convolution`, then `Bias` if `bias` is given (no bias by default, as in neon) or
/// `BatchNorm` if `batch_norm`, then the activation if given. The parts are named
/// `<name>`, `<name>_bias` or `<name>_bnorm`, `<name>_act`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv {
    /// `[R, S, K]` or `[T, R, S, K]` (required).
    pub fshape: Vec<usize>,
    /// The initializer of the filters (required).
    pub init: Initializer,
    /// As for [`Convolution`]: default 1.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub strides: SpatialArg,
    /// As for [`Convolution`]: default 0.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub padding: SpatialArg,
    /// As for [`Convolution`]: default 1.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub dilation: SpatialArg,
    /// Default none: no bias. The bias initializer otherwise (one bias per filter).
    #[serde(default)]
    pub bias: Option<Initializer>,
    /// Default false: no batch norm; true adds a [`BatchNorm`](super::BatchNorm) with
    /// neon's defaults (no bias may be given then).
    #[serde(default)]
    pub batch_norm: bool,
    /// Default none: no activation.
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Default none.
    #[serde(default)]
    pub name: Option<String>,
}

impl LayerKind for Conv {
    fn expand(&self) -> Result<Vec<Layer>, LayerError> {
        let head = Convolution {
            fshape: self.fshape.clone(),
            strides: self.strides.clone(),
            padding: self.padding.clone(),
            dilation: self.dilation.clone(),
            init: self.init.clone(),
            bsum: false,
            name: self.name.clone(),
        };
        compound(
            "Conv",
            head.into(),
            &self.name,
            &self.bias,
            self.batch_norm,
            &self.activation,
        )
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        lower_parts(self.expand()?, ctx, inputs)
    }
}

/// A transposed convolution (neon's `Deconvolution`) without bias over `[batch, C, H, W]`
/// inputs: each input pixel scatters a `K × R × S` filter into the output. Weight `W` of
/// shape `(C, K, R, S)`; output `[batch, K, P, Q]` with neon's size rule
/// `P = (H − 1)·stride − 2·pad + S_eff`, `S_eff = dil·(R − 1) + 1`. It is the adjoint of
/// the [`Convolution`] with the same geometry: a GEMM `Wᵀ(K·R·S, C) · x(C, H·W)` per
/// sample, then col2im.
///
/// ```
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Deconvolution, Layer};
///
/// let d: Layer = Deconvolution::new(vec![2, 2, 8], Initializer::Constant { val: 0.0 }).into();
/// assert_eq!(d.type_name(), "Deconvolution");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deconvolution {
    /// `[R, S, K]`: the filter extents and the number of output feature maps (required).
    pub fshape: Vec<usize>,
    /// Default 1; an integer or `{str_h, str_w}`.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub strides: SpatialArg,
    /// Default 0; an integer or `{pad_h, pad_w}` (removed from the output's borders).
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub padding: SpatialArg,
    /// Default 1; an integer or `{dil_h, dil_w}`.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub dilation: SpatialArg,
    /// The initializer of `W` (required).
    pub init: Initializer,
    /// Default false; accepted for compatibility.
    #[serde(default)]
    pub bsum: bool,
    /// Default none: the layer is named `Deconvolution_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Deconvolution {
    /// `Deconvolution(fshape, init)` with stride 1, no padding, no dilation.
    pub fn new(fshape: Vec<usize>, init: Initializer) -> Deconvolution {
        Deconvolution {
            fshape,
            strides: SpatialArg::Default,
            padding: SpatialArg::Default,
            dilation: SpatialArg::Default,
            init,
            bsum: false,
            name: None,
        }
    }

    /// The layer with `strides`, `padding` and `dilation` (integers for height and width).
    pub fn with_geometry(mut self, strides: usize, padding: usize, dilation: usize) -> Self {
        self.strides = SpatialArg::Int(strides);
        self.padding = SpatialArg::Int(padding);
        self.dilation = SpatialArg::Int(dilation);
        self
    }
}

impl LayerKind for Deconvolution {
    fn detail(&self) -> Option<String> {
        Some(format!("{:?}", self.fshape))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Deconvolution", inputs)?;
        let xs = ctx.shape(x)?;
        let Geometry {
            k,
            kernel,
            stride,
            pad,
            dil,
        } = geometry(
            ctx,
            "deconvolution",
            &self.fshape,
            [&self.strides, &self.padding, &self.dilation],
            &xs,
        )?;
        let kernel = &kernel[..];
        let r = kernel.len();
        if stride.contains(&0) || dil.contains(&0) {
            return Err(ctx.invalid(format!(
                "stride {stride:?} and dilation {dil:?} must be at least 1"
            )));
        }
        let (n, c, spatial) = (xs[0], xs[1], &xs[2..]);
        // The output extent per axis: (X − 1)·stride − 2·pad + S_eff.
        let mut out = Vec::with_capacity(r);
        for i in 0..r {
            let full = (spatial[i] - 1) * stride[i] + dil[i] * (kernel[i] - 1) + 1;
            if full <= 2 * pad[i] {
                return Err(ctx.invalid(format!(
                    "padding {pad:?} removes the whole output {full} of the input {:?} (fshape {:?})",
                    &xs[1..],
                    self.fshape
                )));
            }
            out.push(full - 2 * pad[i]);
        }
        let (win, back) = window(kernel, &stride, &pad, &dil, &out)
            .map_err(|e| ctx.invalid(format!("{e} (input shape {:?})", &xs[1..])))?;
        debug_assert_eq!(back, spatial, "the output's windows are the input's pixels");
        let taps: usize = kernel.iter().product();
        let fans = Fans {
            rows: c,
            cols: k * taps,
            fan_in: c,
        };
        let mut wshape = vec![c, k];
        wshape.extend_from_slice(kernel);
        let w = ctx.param("W", &wshape, &self.init, fans)?;
        let w2 = ctx.g.reshape(w, &[c, k * taps])?;
        let pixels: usize = spatial.iter().product();
        let flat = ctx.g.reshape(x, &[n, c, pixels])?;
        let cols = ctx.g.matmul(w2, flat, true, false)?;
        Ok(vec![ctx.g.col2im(cols, &win, &out)?])
    }
}

/// `Deconvolution`, then `Bias` if `bias` is given or `BatchNorm` if `batch_norm`, then the
/// activation if given (neon's `Deconv`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deconv {
    /// `[R, S, K]` (required).
    pub fshape: Vec<usize>,
    /// The initializer of the filters (required).
    pub init: Initializer,
    /// As for [`Deconvolution`]: default 1.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub strides: SpatialArg,
    /// As for [`Deconvolution`]: default 0.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub padding: SpatialArg,
    /// As for [`Deconvolution`]: default 1.
    #[serde(default, skip_serializing_if = "SpatialArg::is_default")]
    pub dilation: SpatialArg,
    /// Default none: no bias.
    #[serde(default)]
    pub bias: Option<Initializer>,
    /// Default false.
    #[serde(default)]
    pub batch_norm: bool,
    /// Default none: no activation.
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Default none.
    #[serde(default)]
    pub name: Option<String>,
}

impl LayerKind for Deconv {
    fn expand(&self) -> Result<Vec<Layer>, LayerError> {
        let head = Deconvolution {
            fshape: self.fshape.clone(),
            strides: self.strides.clone(),
            padding: self.padding.clone(),
            dilation: self.dilation.clone(),
            init: self.init.clone(),
            bsum: false,
            name: self.name.clone(),
        };
        compound(
            "Deconv",
            head.into(),
            &self.name,
            &self.bias,
            self.batch_norm,
            &self.activation,
        )
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        lower_parts(self.expand()?, ctx, inputs)
    }
}

/// A (de)convolution's geometry: the number of filters, the kernel extents, and the
/// stride, padding and dilation per spatial axis.
struct Geometry {
    k: usize,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    pad: Vec<usize>,
    dil: Vec<usize>,
}

/// Reads `fshape` (`[R, S, K]` or `[T, R, S, K]`, every entry at least 1) and the spatial
/// arguments `[strides, padding, dilation]` of a `what` layer on inputs of shape `xs`
/// (`[batch, C, spatial…]` with one spatial axis per kernel axis); errors name the layer.
fn geometry(
    ctx: &LayerCtx<'_>,
    what: &str,
    fshape: &[usize],
    [strides, padding, dilation]: [&SpatialArg; 3],
    xs: &[usize],
) -> Result<Geometry, LayerError> {
    let valid = fshape.len() >= 3 && fshape.len() <= 4 && !fshape.contains(&0);
    let Some((&k, kernel)) = fshape.split_last().filter(|_| valid) else {
        return Err(ctx.invalid(format!(
            "fshape {fshape:?} must be [R, S, K] or [T, R, S, K] with every entry at least 1"
        )));
    };
    let r = kernel.len();
    if xs.len() != r + 2 {
        return Err(ctx.invalid(format!(
            "a {r}-d {what} needs [batch, C, {}] inputs, got shape {xs:?}",
            if r == 2 { "H, W" } else { "D, H, W" }
        )));
    }
    let arg = |a: &SpatialArg, p: &str, d: usize| a.resolve(p, r, d).map_err(|e| ctx.invalid(e));
    Ok(Geometry {
        k,
        kernel: kernel.to_vec(),
        stride: arg(strides, "str", 1)?,
        pad: arg(padding, "pad", 0)?,
        dil: arg(dilation, "dil", 1)?,
    })
}
