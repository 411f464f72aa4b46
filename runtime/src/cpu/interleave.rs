//! Adjacent steps that run image by image: a window unfold (`im2col`) and the batched GEMM
//! (or the arg-max over each window, max pooling's) that reads its columns; a batched GEMM
//! and the fold (`col2im`) of what it writes; a batched GEMM and the loop kernel that reads
//! its output image by image (its epilogue: a bias, an activation, batch norm's statistics,
//! dropout's mask). Pairs that share a step chain into one group (unfold → GEMM →
//! epilogue). An unfold whose columns only the arg-max reads runs with it as one pass over
//! the maps instead ([`crate::library::window_argmax`]): the columns are never written.
//!
//! Run one after the other, the first step writes a buffer for every image of the
//! minibatch (13 MB of columns for the MNIST convnet's second convolution at batch 128)
//! and the next reads it back from memory. Run in chunks of a few images, a chunk's
//! columns and products are still in the core's cache when the next step reads them. Each
//! image's part of every step reads and writes that image's parts only, so the chunked
//! order computes exactly what the plain order does, bit for bit; the executor checks that
//! the buffers the group writes overlap none of the others before it runs them chunked.
//!
//! A loop kernel joins as an epilogue when its first outer axis walks the images (its
//! extent a multiple of theirs: `[images × channels, pixels]` or a flat `[elements]` walk
//! as well as `[images, …]`) and every access it makes to the product lies in the image
//! of its outer index; it then runs on the outer ranges of a chunk's images. Its other
//! arguments are free, but it may touch no other buffer the group writes.

use crate::kernel::{Access, Instr, LoopKernel};
use crate::program::{GemmStep, LibraryStep, MatView, Program, Step, WindowSpec};
use std::ops::Range;

/// Bytes of the buffers passed between a group's steps that one chunk may fill: small
/// enough to stay in a core's L2 cache.
pub const CHUNK_BYTES: usize = 256 << 10;

/// Steps `s..s + steps` of a program, run chunk by chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interleave {
    /// Images of the minibatch (the GEMM's batch).
    pub images: usize,
    /// Images per chunk.
    pub chunk: usize,
    /// Steps in the group (2 or more).
    pub steps: usize,
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

/// Whether steps `s`, `s + 1`, … of `program` can run chunk by chunk, and how: the longest
/// chain of pairs from `s` (a direct unfold and arg-max stays a pair).
pub fn interleaving(program: &Program, s: usize) -> Option<Interleave> {
    let first = pair(program, s)?;
    let (images, direct) = (first.images, first.direct);
    let mut bytes = first.bytes;
    let mut steps = 2;
    while !direct
        && let Some(next) = pair(program, s + steps - 1)
        && next.images == images
        && !next.direct
    {
        // The new step may touch no buffer the group's earlier steps touch but the one
        // handed to it, which the pair's test checked.
        let (r, w) = program.steps[s + steps].buffers();
        let earlier: Vec<usize> = (s..s + steps - 1)
            .flat_map(|t| {
                let (r, w) = program.steps[t].buffers();
                r.into_iter().chain(w)
            })
            .collect();
        if r.iter()
            .chain(&w)
            .any(|b| *b != next.handed && earlier.contains(b))
        {
            break;
        }
        // A chunk's buffers are handed on one after the other: the largest sets the size.
        bytes = bytes.max(next.bytes);
        steps += 1;
    }
    let chunk = (CHUNK_BYTES / bytes.max(1)).clamp(1, images);
    (chunk < images).then_some(Interleave {
        images,
        chunk,
        steps,
        direct,
    })
}

/// Steps `s` and `s + 1` as a pair: the images, the buffer the first hands to the second
/// (the columns or the product) and its bytes per image, and whether they run as one pass.
struct Pair {
    images: usize,
    handed: usize,
    bytes: usize,
    direct: bool,
}

fn pair(program: &Program, s: usize) -> Option<Pair> {
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
        (Step::Gemm(g), Step::Loop(k)) => {
            let images = g.batch;
            let per = g.c.batch_stride.max(0) as usize;
            let c = g.c.buffer;
            if !batched(g, images)
                || !inside_one_image(&g.c, g.m, g.n, per)
                || !epilogue(k, c, images, per)
            {
                return None;
            }
            // The loop may not write what the product reads.
            let (_, writes) = second.buffers();
            if writes.contains(&g.a.buffer) || writes.contains(&g.b.buffer) {
                return None;
            }
            (images, per, c)
        }
        _ => return None,
    };
    Some(Pair {
        images,
        handed: cols,
        bytes: per * program.buffers[cols].dtype.size_bytes(),
        direct,
    })
}

/// Whether loop kernel `k` can run image by image after the product that writes buffer
/// `c` (`images` blocks of `per` elements): its first outer axis is axis 0 (not reduced)
/// and walks the images, `q` indices an image, and every access to `c` by the indices of
/// image `b` lies in block `b`.
fn epilogue(k: &LoopKernel, c: usize, images: usize, per: usize) -> bool {
    let reduced = k.reduce.as_ref().is_some_and(|r| r.axes.contains(&0));
    let extent = k.shape.first().copied().unwrap_or(0);
    if reduced || extent == 0 || !extent.is_multiple_of(images) || k.shape.contains(&0) {
        return false;
    }
    let q = extent / images;
    let on_c = |a: &Access| k.args.get(a.arg).is_some_and(|x| x.buffer == c);
    let loads = k.instrs().filter_map(|i| match i {
        Instr::Load(a) => Some(a),
        _ => None,
    });
    let mut accesses = loads.chain(k.stores.iter().map(|s| &s.access));
    accesses.all(|a| !on_c(a) || in_own_image(a, &k.shape, q, per))
}

/// Whether `a` over `shape`, `q` indices of axis 0 an image, reaches only the block of
/// `per` elements of the image of its axis-0 index.
fn in_own_image(a: &Access, shape: &[usize], q: usize, per: usize) -> bool {
    if a.strides.len() != shape.len() || a.strides.iter().any(|&s| s < 0) {
        return false;
    }
    let s0 = a.strides[0] as usize;
    let reach = shape[1..]
        .iter()
        .zip(&a.strides[1..])
        .try_fold(a.offset, |acc, (&n, &s)| {
            acc.checked_add((n - 1).checked_mul(s as usize)?)
        });
    s0.checked_mul(q) == Some(per)
        && reach
            .and_then(|r| r.checked_add((q - 1) * s0))
            .is_some_and(|r| r < per)
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

/// Whether the buffers steps `s..s + steps` write overlap none of the buffers they touch
/// (at their addresses `ptrs` in this run, `bytes` long).
pub fn disjoint(program: &Program, s: usize, steps: usize, ptrs: &[*mut u8]) -> bool {
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for step in &program.steps[s..s + steps] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::kernel::{KernelArg, Reduction, Store};
    use crate::ops::ReduceOp;

    fn access(offset: usize, strides: &[isize]) -> Access {
        Access {
            arg: 0,
            offset,
            strides: strides.to_vec(),
        }
    }

    #[test]
    fn an_access_stays_in_its_image_or_is_refused() {
        // 128 images of 16 maps × 576 pixels, walked as [images × maps, pixels].
        let (shape, q, per) = ([2048, 576], 16, 16 * 576);
        assert!(in_own_image(&access(0, &[576, 1]), &shape, q, per));
        // One element further reaches the next image.
        assert!(!in_own_image(&access(1, &[576, 1]), &shape, q, per));
        // Transposed: pixel-major.
        assert!(!in_own_image(&access(0, &[1, 2048]), &shape, q, per));
        assert!(!in_own_image(&access(575, &[576, -1]), &shape, q, per));
        // A flat walk, and a broadcast along the pixels.
        assert!(in_own_image(&access(0, &[1]), &[128 * per], per, per));
        assert!(in_own_image(&access(0, &[576, 0]), &shape, q, per));
    }

    #[test]
    fn a_loop_summing_over_the_images_is_no_epilogue() {
        let kernel = |axes: Vec<usize>, store: &[isize]| LoopKernel {
            name: "sum".into(),
            shape: vec![4, 8],
            args: vec![
                KernelArg {
                    buffer: 7,
                    dtype: DType::F32,
                    len: 32,
                },
                KernelArg {
                    buffer: 9,
                    dtype: DType::F32,
                    len: 8,
                },
            ],
            body: vec![Instr::Load(access(0, &[8, 1]))],
            reduce: Some(Reduction {
                op: ReduceOp::Sum,
                axes,
                value: 0,
                post: vec![Instr::Accumulator],
                partials: 1,
            }),
            stores: vec![Store {
                access: Access {
                    arg: 1,
                    offset: 0,
                    strides: store.to_vec(),
                },
                value: 1,
            }],
        };
        // Over each image's pixels: an epilogue of the product in buffer 7.
        assert!(epilogue(&kernel(vec![1], &[1, 0]), 7, 4, 8));
        // Over the images: every image's product is needed first.
        assert!(!epilogue(&kernel(vec![0], &[0, 1]), 7, 4, 8));
        // Images that are not a whole number of the first axis' indices.
        assert!(!epilogue(&kernel(vec![1], &[1, 0]), 7, 3, 8));
    }
}
