//! Minibatches over a [`Dataset`]: neon's `ArrayIterator`, batch-major and optionally
//! shuffled. The rules for the last partial batch are on [`LastBatch`]. A
//! [`Dataset::contiguous`] data set (text) is read as neon's `Text` reads it instead: in
//! [`contiguous_order`], never shuffled, its `N mod batch_size` last examples left out.

use super::{DataError, Dataset, dataset};
use xenon_runtime::{Tensor, rng};

/// What happens to the examples left over when `N` is not a multiple of the batch size.
///
/// An epoch walks the examples in its *order* (the identity, or a seeded permutation when
/// shuffling) from a *start offset*, `batch_size` at a time. Every batch is full, because
/// a static graph is compiled for one batch size. When fewer than `batch_size` examples are
/// left at the end, this policy decides:
///
/// * [`LastBatch::WrapAround`] (the default, neon's `ArrayIterator` behaviour): the last
///   batch takes the `r` remaining examples and is **filled with the first
///   `batch_size − r` examples of the same epoch's order**; the *next* epoch then starts at
///   offset `batch_size − r` of its own order. An epoch that ends exactly on a batch
///   boundary leaves the offset unchanged. So an epoch starting at offset `s` has
///   `ceil((N − s) / batch_size)` batches: with N = 8000 and batch 128, epoch 0 has 63
///   batches (the last is examples 7936..8000 then 0..64), and every later epoch starts
///   at 64 and has exactly 62. With N = 60000 (full MNIST), epoch 0 has 469. As in neon,
///   examples before the offset are not visited in such later epochs (without shuffling,
///   examples 0..64 are seen only in epoch 0, twice); with shuffling they are different
///   examples each epoch. [`Batch::n_valid`] tells the new examples from the filler, and
///   [`BatchIterator::reset`] returns to offset 0 (neon calls `reset` before evaluating).
/// * [`LastBatch::DropLast`]: the `N mod batch_size` examples left at the end of each
///   epoch's order are skipped; every epoch starts at offset 0 and has
///   `floor(N / batch_size)` batches, and no example appears twice in an epoch.
///
/// With shuffling, the order of epoch `e` is [`shuffled_order`]`(N, seed, e)`; without it,
/// `0..N` (neon's `ArrayIterator` never shuffles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LastBatch {
    /// Fill the last batch from the start of the epoch's order, and start the next epoch
    /// where the filling stopped (neon's `ArrayIterator`). The default.
    #[default]
    WrapAround,
    /// Skip the leftover examples; every epoch starts at the beginning of its order.
    DropLast,
}

/// How a [`BatchIterator`] cuts a dataset into minibatches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    /// Examples per batch; must be in `1..=N`. Default 128 (neon's default `-z`).
    pub batch_size: usize,
    /// `Some(seed)` reshuffles every epoch with [`shuffled_order`]; `None` (the default)
    /// keeps the dataset's order.
    pub shuffle: Option<u64>,
    /// The last-partial-batch policy; default [`LastBatch::WrapAround`].
    pub last_batch: LastBatch,
    /// Random crops and flips of `[C, H, W]` images; default none.
    pub augment: Option<Augment>,
}

/// Training-time image augmentation (neon's CIFAR-10 recipe: pad by 4, random 32×32 crop,
/// random horizontal flip): each `[C, H, W]` example is padded with `pad` zeros on every
/// side and cropped back to `H × W` at a random offset, and mirrored left to right with
/// probability ½ when `flip`. The choices come from the counter-based stream of `seed`
/// keyed by the epoch and the example's position in it, so a seeded run — and a resumed
/// one — sees the same images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Zero padding per side before the crop (0: no crop).
    #[serde(default)]
    pub pad: usize,
    /// Mirror left to right with probability ½.
    #[serde(default)]
    pub flip: bool,
    /// The stream's seed.
    #[serde(default)]
    pub seed: u64,
}

impl Augment {
    /// Writes the augmented `[c, h, w]` image `src` for example position `pos` of epoch
    /// `epoch` to `out`.
    pub fn apply(
        &self,
        src: &[f32],
        [c, h, w]: [usize; 3],
        epoch: u64,
        pos: usize,
        out: &mut Vec<f32>,
    ) {
        let u = |k: u64| xenon_runtime::rng::uniform_f32(self.seed, epoch, 3 * pos as u64 + k);
        let span = 2 * self.pad + 1;
        let pick = |v: f32| ((v * span as f32) as usize).min(span - 1);
        let (dy, dx) = (pick(u(0)), pick(u(1)));
        let flip = self.flip && u(2) < 0.5;
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let xs = if flip { w - 1 - x } else { x };
                    let (sy, sx) = (
                        (y + dy) as isize - self.pad as isize,
                        (xs + dx) as isize - self.pad as isize,
                    );
                    let inside = sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w;
                    out.push(if inside {
                        src[(ch * h + sy as usize) * w + sx as usize]
                    } else {
                        0.0
                    });
                }
            }
        }
    }
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions::new(128)
    }
}

impl BatchOptions {
    /// `batch_size` examples per batch, unshuffled, wrapping around.
    pub fn new(batch_size: usize) -> Self {
        BatchOptions {
            batch_size,
            shuffle: None,
            last_batch: LastBatch::WrapAround,
            augment: None,
        }
    }

    /// Augments `[C, H, W]` images with random crops and flips.
    pub fn augment(mut self, augment: Augment) -> Self {
        self.augment = Some(augment);
        self
    }

    /// Reshuffle every epoch from `seed`.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// Sets the last-partial-batch policy.
    pub fn last_batch(mut self, policy: LastBatch) -> Self {
        self.last_batch = policy;
        self
    }
}

/// The order of a [`Dataset::contiguous`] data set's examples for `nbatches` batches of
/// `batch_size`: batch `i`, row `j` is example `j·nbatches + i` (neon's `Text`: the stream
/// cut into `batch_size` contiguous stretches, read side by side). The last
/// `N mod batch_size` examples are not read.
///
/// ```
/// use xenon_frontend::data::contiguous_order;
/// assert_eq!(contiguous_order(3, 2), [0, 3, 1, 4, 2, 5]);
/// ```
pub fn contiguous_order(nbatches: usize, batch_size: usize) -> Vec<usize> {
    (0..nbatches)
        .flat_map(|i| (0..batch_size).map(move |j| j * nbatches + i))
        .collect()
}

/// One minibatch, batch-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The inputs, f32 of shape `[batch_size, F]`: row `j` is example `indices[j]`
    /// (`F·V` one-hot values for a data set of token ids, see [`Dataset::onehot_input`]).
    pub x: Tensor,
    /// For a data set of token ids fed one-hot ([`Dataset::onehot_input`]): the ids
    /// themselves, f32 whole numbers of shape `[batch_size, F]` (what a model that takes
    /// ids reads, see [`Model::with_token_ids`](crate::model::Model::with_token_ids));
    /// `None` for other data sets.
    pub ids: Option<Tensor>,
    /// The targets, f32 of shape `[batch_size, nclass]`: one-hot labels, or the rows of the
    /// dataset's real-valued targets; `[batch_size, T, nclass]` for labels per time step
    /// ([`Dataset::label_steps`]).
    pub t: Tensor,
    /// The class ids, i32 of shape `[batch_size]` (`[batch_size, T]` per time step).
    pub labels: Tensor,
    /// The dataset row of each batch row.
    pub indices: Vec<usize>,
    /// How many leading rows are new in this epoch; the remaining
    /// `batch_size − n_valid` rows are wrap-around filler (only in an epoch's last batch
    /// under [`LastBatch::WrapAround`]). An evaluation that must count every example once
    /// uses only the first `n_valid` rows.
    pub n_valid: usize,
}

/// The number of batches in an epoch of `n` examples that starts at offset `start`
/// (`start < n`; always 0 under [`LastBatch::DropLast`]): `ceil((n − start) / batch_size)`
/// when wrapping around, `floor(n / batch_size)` when dropping the last partial batch, and
/// 0 when `batch_size` is 0.
///
/// ```
/// use xenon_frontend::data::{LastBatch, batches_per_epoch};
/// assert_eq!(batches_per_epoch(60000, 128, 0, LastBatch::WrapAround), 469);
/// assert_eq!(batches_per_epoch(60000, 128, 0, LastBatch::DropLast), 468);
/// ```
pub fn batches_per_epoch(n: usize, batch_size: usize, start: usize, policy: LastBatch) -> usize {
    if batch_size == 0 {
        return 0;
    }
    match policy {
        LastBatch::WrapAround => n.saturating_sub(start).div_ceil(batch_size),
        LastBatch::DropLast => n / batch_size,
    }
}

/// Salt xor-ed into the shuffle seed, so that a model seeded with the same number as its
/// data draws independent streams.
const SHUFFLE_SALT: u64 = 0x5348_5546_464C_4521; // "SHUFFLE!"

/// The permutation of `0..n` that epoch `epoch` uses when shuffling with `seed`.
///
/// A pure function of `(n, seed, epoch)` computed with integer arithmetic only, so a seed
/// gives the same order on every machine and every run. It is a Fisher–Yates shuffle
/// driven by Xenon's counter-based generator, so it needs no generator state and no extra
/// crate:
///
/// ```text
/// order = [0, 1, …, n−1]
/// for i = n−1 down to 1:
///     r = xenon_runtime::rng::bits(seed ^ 0x5348_5546_464C_4521, epoch, i)   // 64 bits
///     j = (r · (i+1)) >> 64            // 128-bit product: j uniform in 0..=i
///     swap(order[i], order[j])
/// ```
///
/// The multiply-shift maps 64 random bits onto `0..=i` with a bias below `(i+1)/2⁶⁴`.
///
/// ```
/// use xenon_frontend::data::shuffled_order;
/// let a = shuffled_order(10, 42, 0);
/// let mut sorted = a.clone();
/// sorted.sort();
/// assert_eq!(sorted, (0..10).collect::<Vec<_>>()); // a permutation
/// assert_eq!(a, shuffled_order(10, 42, 0)); // reproducible
/// assert_ne!(a, shuffled_order(10, 42, 1)); // reshuffled per epoch
/// ```
pub fn shuffled_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let r = rng::bits(seed ^ SHUFFLE_SALT, epoch, i as u64);
        let j = ((u128::from(r) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// Cuts a [`Dataset`] into full minibatches, epoch after epoch. What happens to the last
/// partial batch is set by [`LastBatch`] (neon's wrap-around by default).
///
/// Each call to [`next_epoch`](BatchIterator::next_epoch) plans one epoch (its order and
/// its start offset) and advances the iterator's state at once, whether or not the
/// returned [`Epoch`] is consumed.
///
/// ```
/// use xenon_frontend::data::{BatchIterator, BatchOptions, Dataset};
/// // Five one-feature examples whose value is their index.
/// let d = Dataset::new(vec![0.0, 1.0, 2.0, 3.0, 4.0], vec![0, 1, 0, 1, 0], 2, vec![1]).unwrap();
/// let mut it = BatchIterator::new(&d, BatchOptions::new(2)).unwrap();
/// assert_eq!(it.batches_per_epoch(), 3);
/// let batches: Vec<_> = it.next_epoch().collect();
/// assert_eq!(batches[2].x.as_f32().unwrap(), &[4.0, 0.0]); // filled from the start
/// assert_eq!(batches[2].n_valid, 1);
/// assert_eq!(batches[2].t.shape(), &[2, 2]);
/// // The next epoch starts where the filling stopped: examples 1..5, two batches.
/// let next: Vec<_> = it.next_epoch().map(|b| b.indices).collect();
/// assert_eq!(next, vec![vec![1, 2], vec![3, 4]]);
/// ```
#[derive(Debug, Clone)]
pub struct BatchIterator<'a> {
    data: &'a Dataset,
    opts: BatchOptions,
    epoch: u64,
    start: usize,
}

impl<'a> BatchIterator<'a> {
    /// Batches `data` as `opts` says. Fails when the dataset breaks its invariants or the
    /// batch size is not in `1..=N`.
    pub fn new(data: &'a Dataset, opts: BatchOptions) -> Result<Self, DataError> {
        data.validate()?;
        if opts.augment.is_some() && data.feature_shape.len() != 3 {
            return Err(DataError::InvalidDataset(format!(
                "crop and flip augmentation needs [C, H, W] images, not examples of shape {:?}",
                data.feature_shape
            )));
        }
        if opts.batch_size == 0 || opts.batch_size > data.len() {
            return Err(DataError::BatchSize {
                batch_size: opts.batch_size,
                n: data.len(),
            });
        }
        Ok(BatchIterator {
            data,
            opts,
            epoch: 0,
            start: 0,
        })
    }

    /// The dataset being batched.
    pub fn dataset(&self) -> &'a Dataset {
        self.data
    }

    /// The options.
    pub fn options(&self) -> &BatchOptions {
        &self.opts
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.opts.batch_size
    }

    /// The number of examples `N`.
    pub fn ndata(&self) -> usize {
        self.data.len()
    }

    /// The index of the next epoch (0 before the first).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Where the next epoch starts in its order (0 except after a wrap-around).
    pub fn start_offset(&self) -> usize {
        self.start
    }

    /// The number of batches of the next epoch (neon's `nbatches`).
    pub fn batches_per_epoch(&self) -> usize {
        if self.data.contiguous {
            return self.data.len() / self.opts.batch_size;
        }
        batches_per_epoch(
            self.data.len(),
            self.opts.batch_size,
            self.start,
            self.opts.last_batch,
        )
    }

    /// Continues from a saved position: the next epoch is `epoch` (its order is that
    /// epoch's) and starts at offset `start` (see [`BatchIterator::start_offset`]), which
    /// must be below the batch size (an offset a wrap-around can leave).
    pub fn seek(&mut self, epoch: u64, start: usize) -> Result<(), DataError> {
        if start >= self.opts.batch_size
            || (start > 0 && self.opts.last_batch == LastBatch::DropLast)
        {
            return Err(DataError::Resume(format!(
                "start offset {start} cannot follow an epoch with batch size {}",
                self.opts.batch_size
            )));
        }
        self.epoch = epoch;
        self.start = start;
        Ok(())
    }

    /// Returns to the state of a new iterator: epoch 0, offset 0.
    pub fn reset(&mut self) {
        self.epoch = 0;
        self.start = 0;
    }

    /// Plans the next epoch and advances to the one after it.
    pub fn next_epoch(&mut self) -> Epoch<'a> {
        let n = self.data.len();
        let b = self.opts.batch_size;
        let nbatches = self.batches_per_epoch();
        let order = match self.opts.shuffle {
            _ if self.data.contiguous => contiguous_order(nbatches, b),
            Some(seed) => shuffled_order(n, seed, self.epoch),
            None => (0..n).collect(),
        };
        let epoch = Epoch {
            data: self.data,
            order,
            index: self.epoch,
            start: self.start,
            batch_size: b,
            nbatches,
            next: 0,
            augment: self.opts.augment,
        };
        if self.opts.last_batch == LastBatch::WrapAround && !self.data.contiguous {
            let rem = (n - self.start) % b;
            if rem != 0 {
                self.start = b - rem;
            }
        }
        self.epoch += 1;
        epoch
    }
}

/// The batches of one epoch, in order; see [`BatchIterator::next_epoch`].
#[derive(Debug, Clone)]
pub struct Epoch<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    index: u64,
    start: usize,
    batch_size: usize,
    nbatches: usize,
    next: usize,
    augment: Option<Augment>,
}

impl Epoch<'_> {
    /// The epoch's index (0 for the first).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The order this epoch walks: `0..N`, or the epoch's permutation when shuffling.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The offset into [`order`](Epoch::order) of the first batch's first example.
    pub fn start_offset(&self) -> usize {
        self.start
    }

    /// The number of batches in the epoch.
    pub fn nbatches(&self) -> usize {
        self.nbatches
    }

    fn batch(&self, k: usize) -> Batch {
        let (n, b) = (self.order.len(), self.batch_size);
        let first = self.start + k * b;
        // Positions past the end wrap to the start of the order (b ≤ n, so once at most).
        let indices: Vec<usize> = (first..first + b).map(|p| self.order[p % n]).collect();
        let f = self.data.n_features();
        let mut x = Vec::with_capacity(b * f);
        for (slot, &i) in indices.iter().enumerate() {
            match &self.augment {
                Some(a) => {
                    let s = &self.data.feature_shape;
                    a.apply(
                        self.data.sample(i),
                        [s[0], s[1], s[2]],
                        self.index,
                        first + slot,
                        &mut x,
                    );
                }
                None => x.extend_from_slice(self.data.sample(i)),
            }
        }
        // Token ids (validated whole numbers in 0..v) as one-hot rows.
        let (x, f, ids) = match self.data.onehot_input {
            Some(v) => {
                let ids: Vec<i32> = x.iter().map(|&id| id as i32).collect();
                let x_ids = Tensor::from_f32(vec![b, f], x).expect("b rows of f ids");
                (dataset::onehot(&ids, v), f * v, Some(x_ids))
            }
            None => (x, f, None),
        };
        let steps = self.data.label_steps;
        let labels: Vec<i32> = indices
            .iter()
            .flat_map(|&i| self.data.labels_of(i).iter().copied())
            .collect();
        let w = self.data.nclass;
        let t = match &self.data.targets {
            Some(targets) => indices
                .iter()
                .flat_map(|&i| targets[i * w..(i + 1) * w].iter().copied())
                .collect(),
            None => dataset::onehot(&labels, w),
        };
        let (t_shape, label_shape) = match steps {
            1 => (vec![b, w], vec![b]),
            s => (vec![b, s, w], vec![b, s]),
        };
        Batch {
            x: Tensor::from_f32(vec![b, f], x).expect("b rows of f features"),
            ids,
            t: Tensor::from_f32(t_shape, t).expect("b target rows"),
            labels: Tensor::from_i32(label_shape, labels).expect("b labels"),
            indices,
            n_valid: b.min(n - first),
        }
    }
}

impl Iterator for Epoch<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.nbatches {
            return None;
        }
        let batch = self.batch(self.next);
        self.next += 1;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.nbatches - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Epoch<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` one-feature examples whose value is their index, labels `i mod 3`.
    fn ramp(n: usize) -> Dataset {
        Dataset::new(
            (0..n).map(|i| i as f32).collect(),
            (0..n).map(|i| (i % 3) as i32).collect(),
            3,
            vec![1],
        )
        .unwrap()
    }

    #[test]
    fn counts_follow_neon() {
        let d = ramp(8000);
        let mut it = BatchIterator::new(&d, BatchOptions::new(128)).unwrap();
        let mut counts = Vec::new();
        for _ in 0..4 {
            assert_eq!(it.batches_per_epoch(), it.clone().next_epoch().len());
            counts.push(it.next_epoch().count());
        }
        assert_eq!(counts, vec![63, 62, 62, 62]);
        assert_eq!(it.start_offset(), 64);
        it.reset();
        assert_eq!(
            (it.epoch(), it.start_offset(), it.batches_per_epoch()),
            (0, 0, 63)
        );

        let d = ramp(60000);
        let mut it = BatchIterator::new(&d, BatchOptions::new(128)).unwrap();
        assert_eq!(it.batches_per_epoch(), 469);
        assert_eq!(it.next_epoch().count(), 469);
        // 60000 = 468·128 + 96: the next epoch starts at 32 and has ceil(59968/128) = 469.
        assert_eq!(it.start_offset(), 32);
        assert_eq!(it.batches_per_epoch(), 469);
    }

    #[test]
    fn offsets_chain_when_every_epoch_is_partial() {
        // N = 10, batch 4: epoch 0 from 0 has 3 batches (2 filler) → offset 2;
        // from 2: 8 left, 2 batches, exact → offset stays 2.
        let d = ramp(10);
        let mut it = BatchIterator::new(&d, BatchOptions::new(4)).unwrap();
        let e0: Vec<_> = it.next_epoch().map(|b| (b.indices, b.n_valid)).collect();
        assert_eq!(
            e0,
            vec![
                (vec![0, 1, 2, 3], 4),
                (vec![4, 5, 6, 7], 4),
                (vec![8, 9, 0, 1], 2)
            ]
        );
        let e1: Vec<_> = it.next_epoch().map(|b| b.indices).collect();
        assert_eq!(e1, vec![vec![2, 3, 4, 5], vec![6, 7, 8, 9]]);
        // N = 7, batch 3: offsets 0 → 2 → 1, then 6 left from 1 end exactly: stays 1.
        let d = ramp(7);
        let mut it = BatchIterator::new(&d, BatchOptions::new(3)).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push((it.start_offset(), it.next_epoch().count()));
        }
        assert_eq!(seen, vec![(0, 3), (2, 2), (1, 2), (1, 2)]);
    }

    #[test]
    fn batches_carry_the_right_rows() {
        let d = ramp(10);
        let mut it = BatchIterator::new(&d, BatchOptions::new(4).shuffle(5)).unwrap();
        let epoch = it.next_epoch();
        let order = epoch.order().to_vec();
        let batches: Vec<Batch> = epoch.collect();
        let last = &batches[2];
        // Rows 8, 9 of the permutation, then rows 0, 1 of the same permutation.
        assert_eq!(last.indices, vec![order[8], order[9], order[0], order[1]]);
        for b in &batches {
            let xs: Vec<usize> = b.x.as_f32().unwrap().iter().map(|&v| v as usize).collect();
            assert_eq!(xs, b.indices);
            let labels = b.labels.as_i32().unwrap();
            let t = b.t.as_f32().unwrap();
            for (j, &i) in b.indices.iter().enumerate() {
                assert_eq!(labels[j], (i % 3) as i32);
                let row = &t[j * 3..j * 3 + 3];
                assert_eq!(row.iter().sum::<f32>(), 1.0);
                assert_eq!(row[labels[j] as usize], 1.0);
            }
        }
    }

    #[test]
    fn drop_last_keeps_whole_batches_only() {
        let d = ramp(10);
        let opts = BatchOptions::new(4).last_batch(LastBatch::DropLast);
        let mut it = BatchIterator::new(&d, opts).unwrap();
        for _ in 0..3 {
            assert_eq!(it.batches_per_epoch(), 2);
            let idx: Vec<Vec<usize>> = it.next_epoch().map(|b| b.indices).collect();
            assert_eq!(idx, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
            assert_eq!(it.start_offset(), 0);
        }
    }

    #[test]
    fn bad_batch_sizes_are_rejected() {
        let d = ramp(10);
        for b in [0, 11] {
            let e = BatchIterator::new(&d, BatchOptions::new(b)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("batch size {b} is not in 1..=10 for a dataset of 10 samples")
            );
        }
        assert!(BatchIterator::new(&d, BatchOptions::new(10)).is_ok());
    }

    #[test]
    fn shuffle_is_pinned() {
        // Any change to the shuffle algorithm breaks seeded runs everywhere; this pins it.
        assert_eq!(shuffled_order(10, 42, 0), PINNED_42_0);
        assert_eq!(shuffled_order(1, 42, 0), vec![0]);
        assert!(shuffled_order(0, 42, 0).is_empty());
    }

    /// Cross-checked against an independent Python transcription of the documented
    /// algorithm (SplitMix64 mixer, `rng::bits`, multiply-shift Fisher–Yates).
    const PINNED_42_0: [usize; 10] = [5, 9, 8, 4, 7, 2, 6, 0, 1, 3];
}
