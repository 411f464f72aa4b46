//! Speed of the window routines on the small CNN's shapes: the unfold (`im2col`) of its two
//! convolutions (3×3, padding 1) and of its 2×2 max pooling, 64 images, one image per call
//! as the executor's chunked pairs run it; max pooling's window arg-max (unfold + arg-max
//! against `window_argmax`); and the gather and scatter-add of the pooled elements. Prints
//! the best of 150 runs (the machine is noisy).
//!
//! `cargo run --release -p xenon-runtime --example im2col_speed`
use std::time::Instant;
use xenon_runtime::library::{argmax, gather, im2col, scatter_add, window_argmax};
use xenon_runtime::program::WindowSpec;

fn main() {
    let images = 64;
    // (channels, height = width, kernel, stride, padding)
    for (c, h, k, s, p) in [(32, 16, 3, 1, 1), (3, 32, 3, 1, 1), (32, 32, 2, 2, 0)] {
        let o = (h + 2 * p - k) / s + 1;
        let w = WindowSpec {
            kernel: vec![k, k],
            stride: vec![s, s],
            pad_low: vec![p, p],
            pad_high: vec![p, p],
            dilation: vec![1, 1],
            out: vec![o, o],
        };
        let (pixels, cols) = (c * h * h, c * k * k * o * o);
        let x = vec![1f32; images * pixels];
        let mut out = vec![0f32; images * cols];
        let mut best = f64::MAX;
        for _ in 0..150 {
            let t = Instant::now();
            for (img, dst) in x.chunks_exact(pixels).zip(out.chunks_exact_mut(cols)) {
                im2col(img, &[1, c, h, h], &w, dst);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{c}×{h}×{h}, {k}×{k} window, stride {s}, padding {p}: {:.0} µs for {images} images",
            best * 1e6
        );
    }
    // Max pooling's window arg-max, 2×2 stride 2: the small CNN's first pooling (64·32
    // maps of 32×32) and the MNIST convnet's two (128·16 of 24×24, 128·32 of 8×8); unfold
    // then arg-max (per map, as chunked), against the one pass over the maps.
    for (maps, h) in [(64 * 32, 32), (128 * 16, 24), (128 * 32, 8)] {
        pool_argmax(maps, h);
    }
    // Max pooling's picks: 2×2 windows over 2048 maps of 32×32, the gather of the maxima and
    // the scatter-add of their gradient.
    let (planes, side) = (2048usize, 32usize);
    let picks: Vec<i32> = (0..planes * 256)
        .map(|j| {
            let (m, p) = (j / 256, j % 256);
            let (oy, ox) = (p / 16, p % 16);
            (m * side * side + (2 * oy + j % 2) * side + 2 * ox + (j / 7) % 2) as i32
        })
        .collect();
    let maps = vec![1f32; planes * side * side];
    let mut picked = vec![0f32; picks.len()];
    let gathered = time(&mut || gather(&maps, 1, &picks, &mut picked).unwrap());
    let mut grad = vec![0f32; maps.len()];
    let scattered = time(&mut || scatter_add(&picked, 1, &picks, &mut grad).unwrap());
    println!(
        "max-pool picks of {planes} maps of {side}×{side}: gather {:.0} µs, scatter_add {:.0} µs",
        gathered * 1e6,
        scattered * 1e6
    );
}

/// Unfold + arg-max against `window_argmax` for 2×2 windows at stride 2 over `maps` maps of
/// `h × h`.
fn pool_argmax(maps: usize, h: usize) {
    let o = h / 2;
    let w = WindowSpec {
        kernel: vec![2, 2],
        stride: vec![2, 2],
        pad_low: vec![0, 0],
        pad_high: vec![0, 0],
        dilation: vec![1, 1],
        out: vec![o, o],
    };
    let x: Vec<f32> = (0..maps * h * h)
        .map(|i| ((i * 7919) % 1000) as f32)
        .collect();
    let mut cols = vec![0f32; 4 * o * o];
    let mut at = vec![0i32; maps * o * o];
    let unfold = time(&mut || {
        for (m, a) in x.chunks_exact(h * h).zip(at.chunks_exact_mut(o * o)) {
            im2col(m, &[1, 1, h, h], &w, &mut cols);
            argmax(&cols, 1, 4, o * o, a);
        }
    });
    let direct = time(&mut || window_argmax(&x, &[maps, 1, h, h], &w, &mut at));
    // The same with the maps out of cache (another 64 MB read between runs), as in a
    // training step where they come from an earlier layer.
    let mut other = vec![1f32; 16 << 20];
    let cold = (0..30)
        .map(|i| {
            other[i] += other.iter().sum::<f32>();
            let t = Instant::now();
            window_argmax(&x, &[maps, 1, h, h], &w, &mut at);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min);
    println!(
        "  window_argmax with the maps out of cache: {:.0} µs",
        cold * 1e6
    );
    println!(
        "2×2 max-pool arg-max over {maps} maps of {h}×{h}: unfold + arg-max {:.0} µs, window_argmax {:.0} µs",
        unfold * 1e6,
        direct * 1e6
    );
}

/// The best of 150 runs of `f`, in seconds.
fn time(f: &mut dyn FnMut()) -> f64 {
    (0..150)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}
