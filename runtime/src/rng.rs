//! Counter-based random streams.
//!
//! Xenon's random tensors are pure functions of `(seed, counter, element index)`, so every
//! backend (the reference interpreter, the CPU JIT, OpenCL kernels) produces the same bits
//! without sharing generator state, and a graph that draws random numbers stays a pure
//! function of its inputs. The mixing function is SplitMix64's finaliser, applied to a key
//! built from the three numbers; it passes the usual avalanche tests and is cheap to emit
//! in generated code.
//!
//! ```
//! use xenon_runtime::rng;
//! let a = rng::uniform_f64(7, 0, 3);
//! assert!((0.0..1.0).contains(&a));
//! assert_eq!(a, rng::uniform_f64(7, 0, 3)); // a pure function
//! assert_ne!(a, rng::uniform_f64(7, 1, 3)); // the counter changes the stream
//! ```

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64 random bits for element `index` of the stream `(seed, counter)`.
#[inline]
pub fn bits(seed: u64, counter: u64, index: u64) -> u64 {
    let key = mix64(seed.wrapping_add(GOLDEN))
        ^ mix64(counter.wrapping_mul(GOLDEN) ^ 0x5851_F42D_4C95_7F2D);
    mix64(key.wrapping_add(index.wrapping_mul(GOLDEN)))
}

/// Uniform on `[0, 1)` with 53 random bits.
#[inline]
pub fn uniform_f64(seed: u64, counter: u64, index: u64) -> f64 {
    (bits(seed, counter, index) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform on `[0, 1)` with 24 random bits (every value exactly representable in f32).
#[inline]
pub fn uniform_f32(seed: u64, counter: u64, index: u64) -> f32 {
    (bits(seed, counter, index) >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// Standard normal sample for element `index`, by the Box–Muller transform of two uniforms
/// drawn at indices `2·index` and `2·index + 1`, computed in f64.
#[inline]
pub fn normal_f64(seed: u64, counter: u64, index: u64) -> f64 {
    let u1 = uniform_f64(seed, counter, index.wrapping_mul(2));
    let u2 = uniform_f64(seed, counter, index.wrapping_mul(2).wrapping_add(1));
    // 1 - u1 lies in (0, 1], so the logarithm is finite.
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_moments_are_close_to_theory() {
        let n = 200_000u64;
        let xs: Vec<f64> = (0..n).map(|i| uniform_f64(42, 3, i)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "var {var}");
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
    }

    #[test]
    fn normal_moments_are_close_to_theory() {
        let n = 200_000u64;
        let xs: Vec<f64> = (0..n).map(|i| normal_f64(1, 0, i)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn streams_differ_by_seed_and_counter() {
        let a: Vec<u64> = (0..8).map(|i| bits(1, 0, i)).collect();
        let b: Vec<u64> = (0..8).map(|i| bits(2, 0, i)).collect();
        let c: Vec<u64> = (0..8).map(|i| bits(1, 1, i)).collect();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
    }

    #[test]
    fn f32_uniform_is_in_range_and_uses_24_bits() {
        for i in 0..10_000 {
            let u = uniform_f32(9, 9, i);
            assert!((0.0..1.0).contains(&u));
            assert_eq!((u * (1u32 << 24) as f32).fract(), 0.0);
        }
    }
}
