//! An in-memory labelled dataset: the `(X, y)` pair that neon's `ArrayIterator` takes.

use super::DataError;

/// `N` labelled examples held in host memory.
///
/// The fields are public so that any source can build one; [`Dataset::new`] checks the
/// invariants, and so does every consumer in this module (through [`Dataset::validate`])
/// before it relies on them:
///
/// * `x.len() == N · F`, where `F` is the product of `feature_shape`;
/// * `labels.len() == N · label_steps`, every label in `0..nclass`;
/// * with `onehot_input = Some(V)`, every input is a whole number in `0..V`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The inputs, `N × F` row-major (one row per example; images are flattened CHW).
    /// For MNIST, pixel intensities scaled to `[0, 1]`.
    pub x: Vec<f32>,
    /// The class of each example, in `0..nclass`.
    pub labels: Vec<i32>,
    /// The number of classes (the width of one-hot targets).
    pub nclass: usize,
    /// The shape of one example, e.g. `[1, 28, 28]` (C, H, W) for MNIST.
    pub feature_shape: Vec<usize>,
    /// Real-valued targets, `N × nclass` row-major (regression, or the inputs themselves
    /// for an autoencoder), which the batches carry instead of one-hot labels; `None` for
    /// classification. With targets, `nclass` is the target width and the labels are 0.
    pub targets: Option<Vec<f32>>,
    /// The example shape of each input stream when every example holds several side by
    /// side (neon's multistream `ArrayIterator`, `X` a list of arrays): stream `i`'s
    /// features follow stream `i − 1`'s, and `feature_shape` is their total, flat. Empty
    /// (the default) for one stream. A model starting with a
    /// [`MergeMultistream`](crate::layer::MergeMultistream) takes one stream per branch.
    pub streams: Vec<Vec<usize>>,
    /// Labels per example: 1 (the default) for one class per example; `T` for a sequence
    /// with a label at each of its `T` time steps (neon's `Text`: the next token), whose
    /// batches carry one-hot targets `[batch, T, nclass]`.
    pub label_steps: usize,
    /// `Some(V)`: the inputs are token ids in `0..V`, one per element of `feature_shape`,
    /// and batches feed each as a one-hot row of `V` values, so a model's input is
    /// `[feature_shape…, V]` (neon's `Text` with `onehot_input=True`). `None` (the
    /// default): the inputs are fed as they are.
    pub onehot_input: Option<usize>,
    /// Whether the examples are consecutive pieces of one stream (neon's `Text`: `T`
    /// tokens each). Batches then read it as `batch_size` contiguous stretches, one per
    /// batch row, each continued by the next batch, so that a recurrent layer's carried
    /// state follows the text; see [`BatchIterator`](super::BatchIterator). Default false.
    pub contiguous: bool,
}

impl Dataset {
    /// Builds a dataset, checking its invariants.
    ///
    /// ```
    /// use xenon_frontend::data::Dataset;
    /// let d = Dataset::new(vec![0.0, 1.0, 2.0, 3.0], vec![0, 1], 2, vec![2]).unwrap();
    /// assert_eq!(d.len(), 2);
    /// assert_eq!(d.sample(1), &[2.0, 3.0]);
    /// assert!(Dataset::new(vec![0.0; 4], vec![0, 2], 2, vec![2]).is_err()); // label 2 ≥ nclass
    /// ```
    pub fn new(
        x: Vec<f32>,
        labels: Vec<i32>,
        nclass: usize,
        feature_shape: Vec<usize>,
    ) -> Result<Dataset, DataError> {
        let d = Dataset {
            x,
            labels,
            nclass,
            feature_shape,
            targets: None,
            streams: Vec::new(),
            label_steps: 1,
            onehot_input: None,
            contiguous: false,
        };
        d.validate()?;
        Ok(d)
    }

    /// A dataset with real-valued targets: `targets` is `N × width` row-major, one row per
    /// example of `x` (neon's `ArrayIterator` with `make_onehot=False`).
    ///
    /// ```
    /// use xenon_frontend::data::Dataset;
    /// let d = Dataset::with_targets(vec![0.0, 1.0, 2.0], vec![0.5, 1.5, 2.5], 1, vec![1]).unwrap();
    /// assert_eq!((d.len(), d.nclass), (3, 1));
    /// assert!(Dataset::with_targets(vec![0.0; 3], vec![0.0; 4], 1, vec![1]).is_err());
    /// ```
    pub fn with_targets(
        x: Vec<f32>,
        targets: Vec<f32>,
        width: usize,
        feature_shape: Vec<usize>,
    ) -> Result<Dataset, DataError> {
        let f: usize = feature_shape.iter().product();
        let n = x.len().checked_div(f).unwrap_or(0);
        let d = Dataset {
            x,
            labels: vec![0; n],
            nclass: width,
            feature_shape,
            targets: Some(targets),
            streams: Vec::new(),
            label_steps: 1,
            onehot_input: None,
            contiguous: false,
        };
        d.validate()?;
        Ok(d)
    }

    /// An autoencoder's dataset: the inputs are also the targets.
    pub fn autoencoder(&self) -> Dataset {
        let n_features = self.n_features();
        Dataset {
            x: self.x.clone(),
            labels: vec![0; self.len()],
            nclass: n_features,
            feature_shape: self.feature_shape.clone(),
            targets: Some(self.x.clone()),
            streams: self.streams.clone(),
            label_steps: 1,
            onehot_input: None,
            contiguous: self.contiguous,
        }
    }

    /// The first `n` examples (all of them when there are fewer), with their targets.
    ///
    /// ```
    /// use xenon_frontend::data::Dataset;
    /// let d = Dataset::new(vec![0.0, 1.0, 2.0], vec![0, 1, 0], 2, vec![1]).unwrap();
    /// let h = d.head(2);
    /// assert_eq!((h.x.as_slice(), h.labels.as_slice()), (&[0.0, 1.0][..], &[0, 1][..]));
    /// ```
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            x: self.x[..n * self.n_features()].to_vec(),
            labels: self.labels[..n * self.label_steps].to_vec(),
            nclass: self.nclass,
            feature_shape: self.feature_shape.clone(),
            targets: self.targets.as_ref().map(|t| t[..n * self.nclass].to_vec()),
            streams: self.streams.clone(),
            label_steps: self.label_steps,
            onehot_input: self.onehot_input,
            contiguous: self.contiguous,
        }
    }

    /// The same examples as `streams` input streams side by side (see
    /// [`Dataset::streams`]): stream `i` has example shape `streams[i]`, and the shapes
    /// must hold the example's features exactly.
    ///
    /// ```
    /// use xenon_frontend::data::Dataset;
    /// let d = Dataset::new(vec![0.0; 6], vec![0, 1], 2, vec![3]).unwrap();
    /// let two = d.clone().with_streams(vec![vec![1], vec![2]]).unwrap();
    /// assert_eq!((two.feature_shape.as_slice(), two.streams.len()), (&[3][..], 2));
    /// assert!(d.with_streams(vec![vec![2], vec![2]]).is_err()); // 4 features, not 3
    /// ```
    pub fn with_streams(mut self, streams: Vec<Vec<usize>>) -> Result<Dataset, DataError> {
        self.feature_shape = vec![self.n_features()];
        self.streams = streams;
        self.validate()?;
        Ok(self)
    }

    /// The same examples given `k` times, once to each of `k` input streams (neon's
    /// `mnist_merge` example feeds `[X, X]`); `k ≤ 1` leaves the data set as it is.
    pub fn copied_to_streams(self, k: usize) -> Result<Dataset, DataError> {
        if k <= 1 {
            return Ok(self);
        }
        let f = self.n_features();
        let x = self
            .x
            .chunks_exact(f)
            .flat_map(|row| std::iter::repeat_n(row, k).flatten().copied())
            .collect();
        let one = match self.streams.is_empty() {
            true => vec![self.feature_shape.clone()],
            false => self.streams.clone(),
        };
        let d = Dataset {
            x,
            feature_shape: vec![f * k],
            streams: one.iter().cycle().take(one.len() * k).cloned().collect(),
            ..self
        };
        d.validate()?;
        Ok(d)
    }

    /// Checks the invariants listed on [`Dataset`].
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |m: String| Err(DataError::InvalidDataset(m));
        let f = self.n_features();
        if f == 0 {
            return invalid(format!(
                "feature shape {:?} has no elements",
                self.feature_shape
            ));
        }
        if self.label_steps == 0 {
            return invalid("label_steps is 0".to_string());
        }
        if !self.labels.len().is_multiple_of(self.label_steps) {
            return invalid(format!(
                "{} labels are not a whole number of {}-step sequences",
                self.labels.len(),
                self.label_steps
            ));
        }
        let n = self.labels.len() / self.label_steps;
        if n.checked_mul(f) != Some(self.x.len()) {
            return invalid(format!(
                "{n} examples and feature shape {:?} need {} inputs, got {}",
                self.feature_shape,
                n as u128 * f as u128,
                self.x.len()
            ));
        }
        if self.nclass == 0 {
            return invalid("nclass is 0".to_string());
        }
        let stream_features = self.streams.iter().try_fold(0usize, |acc, s| {
            let size = s.iter().try_fold(1usize, |p, &d| p.checked_mul(d))?;
            (size > 0).then(|| acc.checked_add(size)).flatten()
        });
        if !self.streams.is_empty() && stream_features != Some(f) {
            return invalid(format!(
                "the streams {:?} do not hold an example's {f} features side by side",
                self.streams
            ));
        }
        if let Some(t) = &self.targets
            && n.checked_mul(self.nclass) != Some(t.len())
        {
            return invalid(format!(
                "{n} examples with {}-wide targets need {} target values, got {}",
                self.nclass,
                n as u128 * self.nclass as u128,
                t.len()
            ));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l < 0 || l as usize >= self.nclass)
        {
            return invalid(format!(
                "label {l} of example {} is outside 0..={}",
                i / self.label_steps,
                self.nclass - 1
            ));
        }
        if let Some(v) = self.onehot_input {
            if v == 0 {
                return invalid("the one-hot input width is 0".to_string());
            }
            if let Some((i, &id)) = self
                .x
                .iter()
                .enumerate()
                .find(|&(_, &id)| !(id >= 0.0 && id < v as f32 && id.fract() == 0.0))
            {
                return invalid(format!(
                    "input {id} of example {} is no token id in 0..={}",
                    i / f,
                    v - 1
                ));
            }
        }
        Ok(())
    }

    /// The number of examples `N`.
    pub fn len(&self) -> usize {
        self.labels.len() / self.label_steps.max(1)
    }

    /// The shape of one example as a model takes it: `feature_shape`, with the one-hot
    /// width appended for token ids ([`Dataset::onehot_input`]).
    pub fn input_shape(&self) -> Vec<usize> {
        let mut s = self.feature_shape.clone();
        s.extend(self.onehot_input);
        s
    }

    /// The shape of one example's targets: `[nclass]`, or `[label_steps, nclass]` for
    /// labels per time step.
    pub fn target_shape(&self) -> Vec<usize> {
        match self.label_steps {
            1 => vec![self.nclass],
            t => vec![t, self.nclass],
        }
    }

    /// The labels of example `i` (`label_steps` of them). Panics if `i >= N`.
    pub fn labels_of(&self, i: usize) -> &[i32] {
        let s = self.label_steps;
        &self.labels[i * s..(i + 1) * s]
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of features `F` per example (the product of `feature_shape`).
    pub fn n_features(&self) -> usize {
        self.feature_shape.iter().product()
    }

    /// The inputs of example `i` (`F` values). Panics if `i >= N`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let f = self.n_features();
        &self.x[i * f..(i + 1) * f]
    }

    /// All targets one-hot, `N × nclass` row-major: row `i` is 1.0 at `labels[i]` and 0.0
    /// elsewhere.
    pub fn onehot(&self) -> Vec<f32> {
        onehot(&self.labels, self.nclass)
    }
}

/// One-hot rows for `labels`, `labels.len() × nclass` row-major. A label outside
/// `0..nclass` gives an all-zero row (validated datasets have none).
pub fn onehot(labels: &[i32], nclass: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; labels.len() * nclass];
    for (row, &l) in labels.iter().enumerate() {
        if l >= 0 && (l as usize) < nclass {
            t[row * nclass + l as usize] = 1.0;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invariants_are_checked() {
        let ok = Dataset::new(vec![0.0; 6], vec![0, 2], 3, vec![3]).unwrap();
        assert_eq!(ok.n_features(), 3);
        let e = Dataset::new(vec![0.0; 5], vec![0, 2], 3, vec![3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid dataset: 2 examples and feature shape [3] need 6 inputs, got 5"
        );
        let e = Dataset::new(vec![0.0; 6], vec![0, -1], 3, vec![3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid dataset: label -1 of example 1 is outside 0..=2"
        );
        assert!(Dataset::new(vec![], vec![], 3, vec![0]).is_err());
        assert!(Dataset::new(vec![0.0; 3], vec![0], 0, vec![3]).is_err());
    }

    #[test]
    fn onehot_rows_mark_the_label() {
        let d = Dataset::new(vec![0.0; 3], vec![2, 0, 1], 3, vec![1]).unwrap();
        assert_eq!(
            d.onehot(),
            vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
    }
}
