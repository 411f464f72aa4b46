//! neon's `Reshape`: a new per-sample shape for the same values.

use super::{LayerCtx, LayerError, LayerKind};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::NodeId;

/// Gives each sample the shape `reshape`, keeping the values in order; the batch axis is
/// implicit (it is neither written nor changed). A 0 keeps the input's size on that axis
/// and one -1 takes whatever size makes the element counts agree, as in neon.
///
/// ```
/// use xenon_frontend::layer::{Reshape, Sequential};
/// use xenon_compiler::ir::{DType, Graph};
///
/// let mut g = Graph::new();
/// let x = g.input("x", DType::F32, &[8, 2, 12]).unwrap();
/// let seq = Sequential::new(vec![Reshape::new(&[0, 3, -1]).into()]);
/// let fwd = seq.forward(&mut g, x).unwrap();
/// assert_eq!(g.ty(fwd.output).shape, [8, 2, 3, 4]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reshape {
    /// The per-sample shape (required): sizes, 0 to keep the input's size on that axis, at
    /// most one -1 to infer.
    pub reshape: Vec<i64>,
    /// Default none: the layer is named `Reshape_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

impl Reshape {
    /// `Reshape(reshape)` with no name.
    pub fn new(reshape: &[i64]) -> Reshape {
        Reshape {
            reshape: reshape.to_vec(),
            name: None,
        }
    }

    /// The per-sample output shape for the per-sample input shape `input`, or why there is
    /// none.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let spec = &self.reshape;
        let count: usize = input.iter().product();
        let mismatch =
            |why: String| format!("reshape {spec:?} does not fit the input {input:?}: {why}");
        let mut out = Vec::with_capacity(spec.len());
        let mut infer = None;
        for (axis, &s) in spec.iter().enumerate() {
            out.push(match s {
                -1 if infer.is_some() => {
                    return Err(format!(
                        "reshape {spec:?} has more than one -1 (the input is {input:?})"
                    ));
                }
                -1 => {
                    infer = Some(axis);
                    1
                }
                0 => *input.get(axis).ok_or_else(|| {
                    mismatch(format!("0 at axis {axis} keeps no axis of the input"))
                })?,
                s if s > 0 => s as usize,
                s => {
                    return Err(format!(
                        "reshape {spec:?} has size {s}; sizes are positive, 0 or -1"
                    ));
                }
            });
        }
        let known: usize = out.iter().product();
        match infer {
            Some(axis) => {
                if known == 0 || !count.is_multiple_of(known) {
                    return Err(mismatch(format!(
                        "{count} elements per sample are not a multiple of {known}"
                    )));
                }
                out[axis] = count / known;
            }
            None if known != count => {
                return Err(mismatch(format!(
                    "{known} elements per sample, the input has {count}"
                )));
            }
            None => {}
        }
        Ok(out)
    }
}

impl LayerKind for Reshape {
    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("Reshape", inputs)?;
        let xs = ctx.shape(x)?;
        let mut shape = vec![xs[0]];
        shape.extend(self.out_shape(&xs[1..]).map_err(|e| ctx.invalid(e))?);
        Ok(vec![ctx.g.reshape(x, &shape)?])
    }
}
