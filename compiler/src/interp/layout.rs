//! Row-major index arithmetic shared by the kernels: strided walks over a shape.

pub(crate) use crate::ir::strides;

/// The offsets `base + Σ index[a]·strides[a]` of every multi-index of `shape`, in row-major
/// order (the last axis fastest). Strides may be zero (broadcast axes) and need not be
/// row-major (permutations, strided slices, padded destinations).
pub(crate) struct Offsets<'a> {
    shape: &'a [usize],
    strides: &'a [usize],
    index: Vec<usize>,
    offset: usize,
    remaining: usize,
}

/// Walks `shape` with `strides` from `base`; see [`Offsets`].
pub(crate) fn offsets<'a>(shape: &'a [usize], strides: &'a [usize], base: usize) -> Offsets<'a> {
    debug_assert_eq!(shape.len(), strides.len());
    Offsets {
        shape,
        strides,
        index: vec![0; shape.len()],
        offset: base,
        remaining: shape.iter().product(),
    }
}

impl Iterator for Offsets<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.offset;
        // Advance the odometer: bump the last axis, carrying into earlier ones.
        for a in (0..self.shape.len()).rev() {
            self.index[a] += 1;
            self.offset += self.strides[a];
            if self.index[a] < self.shape[a] {
                break;
            }
            self.offset -= self.strides[a] * self.shape[a];
            self.index[a] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Offsets<'_> {}

/// The elements of `data` at the offsets of [`offsets`]`(shape, strides, base)`, in order.
pub(crate) fn read_strided<T: Copy>(
    data: &[T],
    shape: &[usize],
    strides: &[usize],
    base: usize,
) -> Vec<T> {
    offsets(shape, strides, base).map(|o| data[o]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_walk_row_major_with_any_strides() {
        let all: Vec<usize> = offsets(&[2, 3], &[3, 1], 0).collect();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
        // The transpose of a 3×2 row-major matrix.
        let t: Vec<usize> = offsets(&[2, 3], &[1, 2], 0).collect();
        assert_eq!(t, vec![0, 2, 4, 1, 3, 5]);
        // A broadcast axis and a base offset.
        let b: Vec<usize> = offsets(&[2, 2], &[0, 1], 5).collect();
        assert_eq!(b, vec![5, 6, 5, 6]);
        // A scalar has one element at the base.
        assert_eq!(offsets(&[], &[], 7).collect::<Vec<_>>(), vec![7]);
    }
}
