//! Two adjacent steps run image by image: a window unfold (`im2col`) and the batched GEMM
//! (or the arg-max over each window, max pooling's) that reads its columns, or a batched
//! GEMM and the fold (`col2im`) of what it writes. An unfold whose columns only the
//! arg-max reads runs with it as one pass over the maps instead
//! ([`crate::library::window_argmax`]): the columns are never written.
//!
//! Run one after the other, the first step writes a column buffer of every image of the
//! minibatch (13 MB for the MNIST convnet's second convolution at batch 128) and the second
//! reads it back from memory. Run in chunks of a few images, the columns of a chunk are
//! still in the core's cache when the second step reads them. Each image's part of either
//! step reads and writes that image's parts only, so the chunked order computes exactly
//! what the plain order does, bit for bit; the executor checks that the buffers the pair
//! writes overlap none of the others before it runs them chunked.

use crate::program::{GemmStep, LibraryStep, MatView, Program, Step, WindowSpec};
use std::ops::Range;

/// Bytes of columns one chunk may fill: small enough to stay in a core's L2 cache.
pub const CHUNK_BYTES: usize = 256 << 10;

/// Steps `s` and `s + 1` of a program, run chunk by chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interleave {
    /// Images of the minibatch (the GEMM's batch).
    pub images: usize,
    /// Images per chunk.
    pub chunk: usize,
    /// An unfold and the arg-max over its windows that can run as one pass over the
    /// image ([`crate::library::window_argmax`]): no other step reads the columns, one
    /// map per image, windows inside the maps. The columns are then never written.
    pub direct: bool,
}

impl Interleave {
    /// The image ranges of the chunks, in order.
    pub fn chunks(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..self.images)
            .step_by(self.chunk)
            .map(|i| i..(i + self.chunk).min(self.images))
    }
}

/// Column elements per image of a window step over `image` (`N × C × spatial…`).
pub(crate) fn columns_per_image(image: &[usize], w: &WindowSpec) -> usize {
    image.get(1).copied().unwrap_or(0)
        * w.kernel.iter().product::<usize>()
        * w.out.iter().product::<usize>()
}

/// Whether one matrix of `v` (`rows × cols`) lies inside the first `per` elements from its
/// start, with non-negative strides: then product `b` touches image `b`'s block only.
fn inside_one_image(v: &MatView, rows: usize, cols: usize, per: usize) -> bool {
    v.offset == 0
        && v.batch_stride == per as isize
        && v.row_stride >= 0
        && v.col_stride >= 0
        && rows > 0
        && cols > 0
        && (rows - 1) * (v.row_stride as usize) + (cols - 1) * (v.col_stride as usize) < per
}

/// Whether `g` is a plain (not summed) batched product over `images`.
fn batched(g: &GemmStep, images: usize) -> bool {
    g.batch == images && images > 1 && !g.sum_batch
}

/// Whether steps `s` and `s + 1` of `program` can run chunk by chunk, and how.
pub fn interleaving(program: &Program, s: usize) -> Option<Interleave> {
    let (first, second) = (program.steps.get(s)?, program.steps.get(s + 1)?);
    let mut direct = false;
    let (images, per, cols) = match (first, second) {
        (
            Step::Library(LibraryStep::Im2Col {
                out, image, window, ..
            }),
            Step::Gemm(g),
        ) => {
            let per = columns_per_image(image, window);
            let images = image[0];
            // The GEMM reads the columns as exactly one operand, one image per product.
            let fits = match (g.a.buffer == *out, g.b.buffer == *out) {
                (true, false) => inside_one_image(&g.a, g.m, g.k, per),
                (false, true) => inside_one_image(&g.b, g.k, g.n, per),
                _ => false,
            };
            if !fits || g.c.buffer == *out || !batched(g, images) {
                return None;
            }
            (images, per, *out)
        }
        (
            Step::Library(LibraryStep::Im2Col {
                out, image, window, ..
            }),
            Step::Library(LibraryStep::ArgMax {
                x,
                out: found,
                outer,
                axis,
                inner,
                ..
            }),
        ) => {
            // The arg-max over each column's taps: one image's columns per outer index.
            let per = columns_per_image(image, window);
            let images = image[0];
            if x != out || found == out || *outer != images || axis * inner != per {
                return None;
            }
            let taps: usize = window.kernel.iter().product();
            direct = image[1] == 1
                && *axis == taps
                && inside(window, &image[2..])
                && !program.outputs.iter().any(|(_, b)| b == out)
                && program.steps.iter().enumerate().all(|(t, step)| {
                    t == s + 1 || t == s || {
                        let (reads, writes) = step.buffers();
                        !reads.contains(out) && !writes.contains(out)
                    }
                });
            (images, per, *out)
        }
        (
            Step::Gemm(g),
            Step::Library(LibraryStep::Col2Im {
                cols,
                image,
                window,
                ..
            }),
        ) => {
            let per = columns_per_image(image, window);
            let images = image[0];
            if g.c.buffer != *cols
                || g.a.buffer == *cols
                || g.b.buffer == *cols
                || !inside_one_image(&g.c, g.m, g.n, per)
                || !batched(g, images)
            {
                return None;
            }
            (images, per, *cols)
        }
        _ => return None,
    };
    let bytes = per * program.buffers[cols].dtype.size_bytes();
    let chunk = (CHUNK_BYTES / bytes.max(1)).clamp(1, images);
    (chunk < images).then_some(Interleave {
        images,
        chunk,
        direct,
    })
}

/// Whether every window of `w` lies inside `spatial` (no padding, none past the end).
fn inside(w: &WindowSpec, spatial: &[usize]) -> bool {
    (0..spatial.len()).all(|a| {
        w.pad_low[a] == 0
            && w.pad_high[a] == 0
            && w.out[a] > 0
            && (w.out[a] - 1) * w.stride[a] + (w.kernel[a] - 1) * w.dilation[a] < spatial[a]
    })
}

/// Whether the buffers steps `s` and `s + 1` write overlap none of the buffers the two
/// touch (at their addresses `ptrs` in this run, `bytes` long).
pub fn disjoint(program: &Program, s: usize, ptrs: &[*mut u8]) -> bool {
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for step in &program.steps[s..s + 2] {
        let (r, w) = step.buffers();
        reads.extend(r);
        writes.extend(w);
    }
    let range = |b: usize| {
        let start = ptrs[b] as usize;
        start..start + program.buffers[b].bytes()
    };
    let mut all = reads;
    all.extend(&writes);
    all.sort_unstable();
    all.dedup();
    writes.iter().all(|&w| {
        all.iter().all(|&o| {
            let (a, b) = (range(w), range(o));
            o == w || a.end <= b.start || b.end <= a.start
        })
    })
}
