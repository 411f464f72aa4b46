//! neon's `LookupTable`: a word embedding, one learned row per token id.

use super::{LayerCtx, LayerError, LayerKind};
use crate::init::{Fans, Initializer};
use serde::{Deserialize, Serialize};
use xenon_compiler::ir::{CompareOp, DType, NodeId};

/// neon's `LookupTable`: token ids `[batch, T]` (whole numbers held in a float input, as
/// neon's are; each is cast to an integer by truncation) give their rows of the table
/// `W [vocab_size, embedding_dim]`, a sequence `[batch, T, embedding_dim]` (see
/// [`sequence`](super::sequence)). `vocab_size · embedding_dim` parameters.
///
/// - **Initialization.** `init` fills `W` in neon's shape `(vocab_size, embedding_dim)`,
///   whose first axis is also the fan-in (the table is a product with one-hot vectors of
///   `vocab_size`): neon's `Xavier`/`Kaiming` take `shape[0]` = `vocab_size` with
///   `local=True` and `shape[1]` = `embedding_dim` with `local=False`, and so does Xenon
///   here.
/// - **`pad_idx`.** Positions whose id is `pad_idx` give zeros and send no gradient to the
///   table (the gathered rows are multiplied by the mask `id ≠ pad_idx`), so the padding row
///   never changes and never shows; neon zeroes that row and skips it in the update.
/// - **`update: false`.** The table is frozen: initialized and saved, never trained, and not
///   counted as a parameter.
/// - **Ids outside `0..vocab_size`** are an error when the model runs (the gather names
///   the offending position); nothing is clamped.
///
/// ```
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{Layer, LookupTable};
///
/// let lut = LookupTable::new(20000, 128, Initializer::Uniform { low: -0.1, high: 0.1 });
/// assert_eq!((lut.update, lut.pad_idx), (true, None));
/// assert_eq!(Layer::from(lut).describe(), "LookupTable(20000, 128)");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupTable {
    /// The number of token ids, the table's rows (required, at least 1).
    pub vocab_size: usize,
    /// The size of each embedding, the table's columns (required, at least 1).
    pub embedding_dim: usize,
    /// The initializer of the table (required).
    pub init: Initializer,
    /// Default true: the table is trained. False freezes it.
    #[serde(default = "update")]
    pub update: bool,
    /// Default none: no padding id. Otherwise the id (below `vocab_size`) whose positions
    /// give zeros and no gradient.
    #[serde(default)]
    pub pad_idx: Option<usize>,
    /// Default none: the layer is named `LookupTable_<k>`.
    #[serde(default)]
    pub name: Option<String>,
}

fn update() -> bool {
    true
}

impl LookupTable {
    /// `LookupTable(vocab_size, embedding_dim, init)` with neon's defaults: trained, no
    /// padding id.
    pub fn new(vocab_size: usize, embedding_dim: usize, init: Initializer) -> LookupTable {
        LookupTable {
            vocab_size,
            embedding_dim,
            init,
            update: true,
            pad_idx: None,
            name: None,
        }
    }
}

impl LayerKind for LookupTable {
    fn detail(&self) -> Option<String> {
        Some(format!("{}, {}", self.vocab_size, self.embedding_dim))
    }

    fn lower(&self, ctx: &mut LayerCtx<'_>, inputs: &[NodeId]) -> Result<Vec<NodeId>, LayerError> {
        let x = ctx.single("LookupTable", inputs)?;
        let (v, e) = (self.vocab_size, self.embedding_dim);
        if v == 0 || e == 0 {
            return Err(ctx.invalid(format!(
                "vocab_size and embedding_dim must be at least 1, got {v} and {e}"
            )));
        }
        if let Some(p) = self.pad_idx
            && p >= v
        {
            return Err(ctx.invalid(format!(
                "pad_idx {p} is outside the table of vocab_size {v}"
            )));
        }
        let xs = ctx.shape(x)?;
        let [b, t] = xs[..] else {
            return Err(ctx.invalid(format!(
                "LookupTable expects token ids [batch, time steps], got shape {xs:?}"
            )));
        };
        let fans = Fans {
            rows: v,
            cols: e,
            fan_in: v,
        };
        let w = match self.update {
            true => ctx.param("W", &[v, e], &self.init, fans)?,
            false => ctx.frozen("W", &[v, e], &self.init, fans)?,
        };
        let dt = ctx.dtype();
        let g = &mut *ctx.g;
        let ids = g.cast(x, DType::I32)?;
        let y = g.gather(w, ids)?;
        let y = match self.pad_idx {
            Some(p) => {
                let idf = g.cast(ids, dt)?;
                let pad = g.scalar(dt, p as f64)?;
                let keep = g.compare(CompareOp::Ne, idf, pad)?;
                let keep = g.reshape(keep, &[b, t, 1])?;
                g.mul(y, keep)?
            }
            None => y,
        };
        Ok(vec![y])
    }
}
