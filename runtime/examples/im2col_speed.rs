//! Speed of the window unfold (`im2col`) on the small CNN's shapes: its two convolutions
//! (3×3, padding 1) and its 2×2 max pooling, 64 images, one image per call as the
//! executor's chunked pairs run it. Prints the best of 150 runs (the machine is noisy).
//!
//! `cargo run --release -p xenon-runtime --example im2col_speed`
use std::time::Instant;
use xenon_runtime::library::im2col;
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
}
