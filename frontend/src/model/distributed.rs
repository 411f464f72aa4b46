//! Synchronous data-parallel training: a [`Model`] that is one rank of a group.
//!
//! Every rank holds the same model (the same seed gives the same initial weights; the
//! first `fit` checks it) and the same data. Each global minibatch of `B` examples is split
//! by rows: rank `r` of `N` trains on rows `r·B/N .. (r+1)·B/N` (`B` must be a multiple of
//! `N`). The training step is one graph: after the backward pass, every gradient goes
//! through `all_reduce` and is divided by `N` — the mean of the ranks' mean gradients,
//! which is the gradient of the global batch's mean cost — and then into the optimizer,
//! so every rank applies the same update. The reported cost is summed the same way, and so
//! are the new values of non-trainable buffers (batch norm's running statistics), so the
//! ranks' models stay equal; a batch norm still normalizes by its rank's share of the
//! batch (as PyTorch's DistributedDataParallel without SyncBatchNorm), and dropout draws
//! rank `r`'s masks of step `s` at stream counter `s·N + r`, so ranks mask differently.
//!
//! The backends run the `all_reduce` steps through the [`Collective`] given to
//! [`Model::set_collective`]: an in-process [`LocalGroup`](xenon_runtime::collective::LocalGroup)
//! (tests) or MPI (the `xenon` binary's `mpi` feature). The ranks agree, with a check
//! before the first step, on the compiled program, the weights, the data set and the batch
//! size; after every minibatch on whether to stop (an interrupt on any rank stops all);
//! after every epoch on the weights (a rank that drifted is an error naming it).

use super::{Model, ModelError};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use xenon_compiler::ir::{Graph, GraphError, NodeId};
use xenon_runtime::collective::{Collective, check_agreement};

impl Model {
    /// Makes this model one rank of `comm`'s group for training (see the [module
    /// documentation](self)); `None` trains alone again. Compiled programs are dropped.
    pub fn set_collective(&mut self, comm: Option<Arc<dyn Collective>>) {
        self.comm = comm;
        self.programs.clear();
    }

    /// The group this model trains in, if any.
    pub fn collective(&self) -> Option<&Arc<dyn Collective>> {
        self.comm.as_ref()
    }

    /// `(rank, ranks)`: `(0, 1)` without a group.
    pub fn rank(&self) -> (usize, usize) {
        self.comm.as_ref().map_or((0, 1), |c| (c.rank(), c.size()))
    }

    /// `x` summed over the ranks and divided by their number (nothing alone).
    pub(super) fn rank_mean(&self, g: &mut Graph, x: NodeId) -> Result<NodeId, GraphError> {
        let (_, n) = self.rank();
        if n == 1 {
            return Ok(x);
        }
        let s = g.all_reduce(x)?;
        let dt = g.ty(x).dtype;
        let k = g.scalar(dt, 1.0 / n as f64)?;
        g.mul(s, k)
    }

    /// This rank's share of a global minibatch of `global` examples: an error unless the
    /// ranks divide it.
    pub(super) fn local_batch(&self, global: usize) -> Result<usize, ModelError> {
        let (_, n) = self.rank();
        if !global.is_multiple_of(n) {
            return Err(ModelError::Distributed(format!(
                "the batch size {global} is not a multiple of the {n} ranks: each rank trains on \
                 an equal share of every minibatch (use a batch size such as {})",
                (global / n).max(1) * n
            )));
        }
        Ok(global / n)
    }

    /// Checks that every rank computes the same `value()` (not called alone), naming
    /// `what` differs.
    pub(super) fn agree(&self, value: impl FnOnce() -> u64, what: &str) -> Result<(), ModelError> {
        match &self.comm {
            Some(c) if c.size() > 1 => Ok(check_agreement(&**c, value(), what)?),
            _ => Ok(()),
        }
    }

    /// Whether any rank says `mine` (every rank learns the same answer).
    pub(super) fn any_rank(&self, mine: bool) -> Result<bool, ModelError> {
        match &self.comm {
            Some(c) if c.size() > 1 => Ok(c.all_gather_u64(mine as u64)?.contains(&1)),
            _ => Ok(mine),
        }
    }

    /// A hash of every parameter, buffer and optimizer state value (not the carried
    /// recurrent states, which are each rank's own).
    pub(super) fn values_hash(&self) -> u64 {
        let mut names: Vec<&String> = self
            .values
            .keys()
            .filter(|k| !self.states.iter().any(|(s, _)| s == *k))
            .collect();
        names.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for name in names {
            let t = &self.values[name];
            name.hash(&mut h);
            t.shape().hash(&mut h);
            match t.data() {
                xenon_runtime::TensorData::F32(v) => {
                    v.iter().for_each(|x| x.to_bits().hash(&mut h))
                }
                xenon_runtime::TensorData::F64(v) => {
                    v.iter().for_each(|x| x.to_bits().hash(&mut h))
                }
                xenon_runtime::TensorData::I32(v) => v.hash(&mut h),
            }
        }
        h.finish()
    }
}

/// A stable hash of anything hashable (what the ranks compare).
pub(super) fn hash_of(v: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}
