//! Affine index maps and buffer layouts: how movement ops become strides.

use crate::ir::strides;

/// A map from a kernel's iteration space (rank `r`) to a node's index space (rank `q`):
/// `index[j] = offset[j] + Σ_d coef[j][d]·i_d`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AffineMap {
    pub offset: Vec<isize>,
    pub coef: Vec<Vec<isize>>,
}

impl AffineMap {
    /// The identity on a space of rank `r`.
    pub fn identity(r: usize) -> AffineMap {
        AffineMap {
            offset: vec![0; r],
            coef: (0..r)
                .map(|j| (0..r).map(|d| isize::from(j == d)).collect())
                .collect(),
        }
    }

    /// Rank of the iteration space.
    pub fn domain_rank(&self) -> usize {
        self.coef.first().map_or(0, |r| r.len())
    }

    /// Through `permute(perm)`: output axis `i` is input axis `perm[i]`.
    pub fn through_permute(&self, perm: &[usize]) -> AffineMap {
        let mut offset = vec![0; perm.len()];
        let mut coef = vec![vec![0; self.domain_rank()]; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            offset[p] = self.offset[i];
            coef[p] = self.coef[i].clone();
        }
        AffineMap { offset, coef }
    }

    /// Through a numpy broadcast from `from` to the current index space: leading axes are
    /// dropped, stretched size-1 axes read index 0.
    pub fn through_broadcast(&self, from: &[usize]) -> AffineMap {
        let lead = self.offset.len() - from.len();
        let r = self.domain_rank();
        let mut offset = Vec::with_capacity(from.len());
        let mut coef = Vec::with_capacity(from.len());
        for (j, &d) in from.iter().enumerate() {
            if d == 1 {
                offset.push(0);
                coef.push(vec![0; r]);
            } else {
                offset.push(self.offset[j + lead]);
                coef.push(self.coef[j + lead].clone());
            }
        }
        AffineMap { offset, coef }
    }

    /// Through `reshape` from shape `from` to the current index space `to`, when the
    /// reshape only splits axes (and adds or drops size-1 axes): each axis of `from` is a
    /// run of consecutive axes of `to`, its index their row-major combination, which is
    /// affine. `None` when the reshape merges axes (that index would need a division).
    pub fn through_reshape(&self, from: &[usize], to: &[usize]) -> Option<AffineMap> {
        let r = self.domain_rank();
        let mut offset = vec![0isize; from.len()];
        let mut coef = vec![vec![0isize; r]; from.len()];
        // The non-unit axes of `to`, in order (a size-1 axis always has index 0).
        let mut rest = (0..to.len()).filter(|&d| to[d] != 1).peekable();
        for (j, &f) in from.iter().enumerate() {
            if f == 1 {
                continue;
            }
            let mut run = Vec::new();
            let mut size = 1usize;
            while size < f {
                let d = rest.next()?;
                size *= to[d];
                run.push(d);
            }
            if size != f {
                return None;
            }
            // index_j = Σ_d index_d · (product of the run's later axes).
            let mut scale = 1isize;
            for &d in run.iter().rev() {
                offset[j] += scale * self.offset[d];
                for (c, &a) in coef[j].iter_mut().zip(&self.coef[d]) {
                    *c += scale * a;
                }
                scale *= to[d] as isize;
            }
        }
        rest.peek().is_none().then_some(AffineMap { offset, coef })
    }

    /// Through `slice(start, step)`: input index `start + step·output index`.
    pub fn through_slice(&self, start: &[usize], step: &[usize]) -> AffineMap {
        AffineMap {
            offset: self
                .offset
                .iter()
                .zip(start.iter().zip(step))
                .map(|(&o, (&s, &t))| s as isize + t as isize * o)
                .collect(),
            coef: self
                .coef
                .iter()
                .zip(step)
                .map(|(row, &t)| row.iter().map(|c| c * t as isize).collect())
                .collect(),
        }
    }
}

/// Where a node's elements are: element `index` is at `offset + Σ_j strides[j]·index[j]`
/// of `buffer`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    pub buffer: usize,
    pub offset: isize,
    pub strides: Vec<isize>,
}

impl Layout {
    /// A dense row-major layout of `shape` at the start of `buffer`.
    pub fn dense(buffer: usize, shape: &[usize]) -> Layout {
        Layout {
            buffer,
            offset: 0,
            strides: strides(shape).into_iter().map(|s| s as isize).collect(),
        }
    }

    /// True when the layout is dense row-major for `shape` (size-1 axes may have any
    /// stride).
    pub fn is_dense(&self, shape: &[usize]) -> bool {
        let want = strides(shape);
        self.strides
            .iter()
            .zip(&want)
            .zip(shape)
            .all(|((&s, &w), &d)| d == 1 || s == w as isize)
    }

    /// The layout of `permute(perm)` of this node.
    pub fn permuted(&self, perm: &[usize]) -> Layout {
        Layout {
            buffer: self.buffer,
            offset: self.offset,
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
        }
    }

    /// The layout of this node (shape `from`) broadcast to `to`.
    pub fn broadcast(&self, from: &[usize], to: &[usize]) -> Layout {
        let lead = to.len() - from.len();
        let strides = (0..to.len())
            .map(|i| {
                if i < lead || from[i - lead] == 1 {
                    0
                } else {
                    self.strides[i - lead]
                }
            })
            .collect();
        Layout {
            buffer: self.buffer,
            offset: self.offset,
            strides,
        }
    }

    /// The layout of `reshape(to)` of this node (shape `from`), when strides can express
    /// it: each run of `to`'s axes must cover whole runs of `from`'s axes that lie evenly
    /// spaced in memory (as torch's `view`). Dropping or adding size-1 axes always works,
    /// so a time step `[b, 1, n]` sliced out of a sequence reads as `[b, n]` in place.
    /// `None` when the reshape needs a copy.
    pub fn reshaped(&self, from: &[usize], to: &[usize]) -> Option<Layout> {
        let with = |strides: Vec<isize>| Layout {
            buffer: self.buffer,
            offset: self.offset,
            strides,
        };
        let numel: usize = from.iter().product();
        if numel == 0 || from.is_empty() {
            return Some(with(strides(to).into_iter().map(|s| s as isize).collect()));
        }
        let mut out = vec![0isize; to.len()];
        let mut view_d = to.len() as isize - 1;
        // The stride of the innermost axis of the current run of `from`'s axes.
        let mut base = *self.strides.last()?;
        let (mut run, mut view) = (1usize, 1usize);
        for d in (0..from.len()).rev() {
            run *= from[d];
            // The run ends at the first axis, or where the next outer axis does not
            // continue it.
            if d == 0 || (from[d - 1] != 1 && self.strides[d - 1] != run as isize * base) {
                while view_d >= 0 && (view < run || to[view_d as usize] == 1) {
                    out[view_d as usize] = view as isize * base;
                    view *= to[view_d as usize];
                    view_d -= 1;
                }
                if view != run {
                    return None;
                }
                if d > 0 {
                    base = self.strides[d - 1];
                    run = 1;
                    view = 1;
                }
            }
        }
        (view_d == -1).then(|| with(out))
    }

    /// The layout of a strided slice of this node.
    pub fn sliced(&self, start: &[usize], step: &[usize]) -> Layout {
        Layout {
            buffer: self.buffer,
            offset: self.offset
                + self
                    .strides
                    .iter()
                    .zip(start)
                    .map(|(&s, &a)| s * a as isize)
                    .sum::<isize>(),
            strides: self
                .strides
                .iter()
                .zip(step)
                .map(|(&s, &t)| s * t as isize)
                .collect(),
        }
    }

    /// The element offset and per-iteration-axis strides of reading this node through `map`.
    pub fn access(&self, map: &AffineMap) -> (isize, Vec<isize>) {
        let offset = self.offset
            + self
                .strides
                .iter()
                .zip(&map.offset)
                .map(|(s, o)| s * o)
                .sum::<isize>();
        let strides = (0..map.domain_rank())
            .map(|d| {
                self.strides
                    .iter()
                    .zip(&map.coef)
                    .map(|(s, row)| s * row[d])
                    .sum()
            })
            .collect();
        (offset, strides)
    }
}

#[cfg(test)]
mod tests {
    use super::Layout;

    fn at(buffer_strides: &[isize], offset: isize) -> Layout {
        Layout {
            buffer: 0,
            offset,
            strides: buffer_strides.to_vec(),
        }
    }

    #[test]
    fn a_reshape_that_splits_axes_is_an_affine_map() {
        use super::AffineMap;
        // [6, 4] viewed as [2, 3, 1, 4]: index (a, b, 0, c) reads (3a + b, c).
        let m = AffineMap::identity(4)
            .through_reshape(&[6, 4], &[2, 3, 1, 4])
            .unwrap();
        assert_eq!(m.offset, [0, 0]);
        assert_eq!(m.coef, [vec![3, 1, 0, 0], vec![0, 0, 0, 1]]);
        // Merging axes is not affine; neither is a regrouping.
        assert!(
            AffineMap::identity(1)
                .through_reshape(&[6, 4], &[24])
                .is_none()
        );
        assert!(
            AffineMap::identity(2)
                .through_reshape(&[6, 4], &[4, 6])
                .is_none()
        );
        // Unit axes come and go.
        let m = AffineMap::identity(2)
            .through_reshape(&[1, 5, 1], &[5, 1])
            .unwrap();
        assert_eq!(m.coef, [vec![0, 0], vec![1, 0], vec![0, 0]]);
    }

    #[test]
    fn reshape_of_a_dense_layout_is_dense() {
        let l = Layout::dense(3, &[4, 6])
            .reshaped(&[4, 6], &[2, 2, 3, 2])
            .unwrap();
        assert_eq!(l.strides, [12, 6, 2, 1]);
        assert_eq!(l.buffer, 3);
    }

    #[test]
    fn a_sliced_time_step_drops_its_unit_axis_in_place() {
        // Step t = 7 of a [32, 50, 512] sequence: [32, 1, 512] → [32, 512].
        let seq = Layout::dense(0, &[32, 50, 512]);
        let step = seq.sliced(&[0, 7, 0], &[1, 1, 1]);
        let l = step.reshaped(&[32, 1, 512], &[32, 512]).unwrap();
        assert_eq!((l.offset, l.strides.clone()), (7 * 512, vec![50 * 512, 1]));
        // And back, with a unit axis anywhere.
        let back = l.reshaped(&[32, 512], &[32, 1, 512]).unwrap();
        assert_eq!(back.strides[0], 50 * 512);
        assert_eq!(back.strides[2], 1);
    }

    #[test]
    fn runs_that_are_not_contiguous_cannot_merge() {
        // Columns 0..4 of an [8, 10] matrix: rows are 10 apart, so [8, 4] → [32] needs a
        // copy, while [8, 4] → [8, 2, 2] splits within a row.
        let l = Layout::dense(0, &[8, 10]).sliced(&[0, 0], &[1, 1]);
        let l = at(&l.strides, 0);
        assert!(l.reshaped(&[8, 4], &[32]).is_none());
        assert!(l.reshaped(&[8, 4], &[4, 8]).is_none());
        let split = l.reshaped(&[8, 4], &[8, 2, 2]).unwrap();
        assert_eq!(split.strides, [10, 2, 1]);
        // A transposed matrix cannot flatten, but its axes can split.
        let t = at(&[1, 8], 5);
        assert!(t.reshaped(&[8, 4], &[32]).is_none());
        assert_eq!(t.reshaped(&[8, 4], &[2, 4, 4]).unwrap().strides, [4, 1, 8]);
    }
}
