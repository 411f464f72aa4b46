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
