//! Initializers: how parameters get their first values (neon's `neon/initializers`).
//!
//! Every initializer fills a parameter from a seeded, counter-based stream
//! ([`xenon_runtime::rng`]): the same seed gives the same weights on every machine. Fan
//! conventions follow neon, which describes every weight by a 2-D shape `(rows, cols)`:
//! Linear weights are `(nout, nin)`, convolution filters `(C·R·S, K)`.
//!
//! One deliberate difference: neon's `Xavier`, `Kaiming` and `IdentityInit` default to
//! `local=True`, which takes the fan-in from `rows` — the *output* size for a Linear layer
//! (neon's networks pass `local=False` for fully connected layers to get the input size).
//! Xenon always takes the fan-in from the layer's real input size when `local` is true
//! (`nin` for Linear, `C·R·S` for convolution); `local=False` keeps neon's `cols`.
//! `Orthonormal` is seeded like every other initializer (neon draws it from numpy's global,
//! unseeded generator).

use serde::{Deserialize, Serialize};
use xenon_runtime::rng;

/// A parameter-initialization rule with neon's names, arguments and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", deny_unknown_fields)]
pub enum Initializer {
    /// Every element equal to `val` (default 0).
    Constant {
        #[serde(default)]
        val: f64,
    },
    /// Uniform on `[low, high)` (defaults 0 and 1).
    Uniform {
        #[serde(default)]
        low: f64,
        #[serde(default = "one")]
        high: f64,
    },
    /// Normal with mean `loc` (default 0) and standard deviation `scale` (default 1).
    Gaussian {
        #[serde(default)]
        loc: f64,
        #[serde(default = "one")]
        scale: f64,
    },
    /// Uniform on `±sqrt(6 / (rows + cols))` (Glorot & Bengio).
    #[serde(deserialize_with = "crate::model_file::no_arguments")]
    GlorotUniform,
    /// Uniform on `±sqrt(3 / fan_in)`.
    Xavier {
        #[serde(default = "yes")]
        local: bool,
    },
    /// Normal with standard deviation `sqrt(2 / fan_in)` (He et al.).
    Kaiming {
        #[serde(default = "yes")]
        local: bool,
    },
    /// Ones on the main diagonal, zeros elsewhere.
    IdentityInit {
        #[serde(default = "yes")]
        local: bool,
    },
    /// A random orthonormal matrix (rows or columns, whichever are fewer, are orthonormal),
    /// times `scale` (default 1.1).
    Orthonormal {
        #[serde(default = "orthonormal_scale")]
        scale: f64,
    },
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn orthonormal_scale() -> f64 {
    1.1
}

/// What an initializer needs to know about the parameter it fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    /// neon's 2-D view of the parameter: `(rows, cols)` = `(nout, nin)` for Linear,
    /// `(C·R·S, K)` for convolution filters, `(n, 1)` for biases.
    pub rows: usize,
    pub cols: usize,
    /// The true fan-in (inputs feeding one output).
    pub fan_in: usize,
}

impl Initializer {
    /// Every initializer class name, in declaration order (for error messages).
    pub const NAMES: [&'static str; 8] = [
        "Constant",
        "Uniform",
        "Gaussian",
        "GlorotUniform",
        "Xavier",
        "Kaiming",
        "IdentityInit",
        "Orthonormal",
    ];

    /// The neon class name.
    pub fn name(&self) -> &'static str {
        match self {
            Initializer::Constant { .. } => "Constant",
            Initializer::Uniform { .. } => "Uniform",
            Initializer::Gaussian { .. } => "Gaussian",
            Initializer::GlorotUniform => "GlorotUniform",
            Initializer::Xavier { .. } => "Xavier",
            Initializer::Kaiming { .. } => "Kaiming",
            Initializer::IdentityInit { .. } => "IdentityInit",
            Initializer::Orthonormal { .. } => "Orthonormal",
        }
    }

    /// `rows·cols` values, row-major in neon's 2-D view, drawn from stream `(seed, stream)`.
    /// The caller lays them out in its own parameter shape (the element count is the same).
    pub fn fill(&self, fans: Fans, seed: u64, stream: u64) -> Vec<f64> {
        let n = fans.rows * fans.cols;
        let uniform = |lo: f64, hi: f64| -> Vec<f64> {
            (0..n as u64)
                .map(|i| lo + (hi - lo) * rng::uniform_f64(seed, stream, i))
                .collect()
        };
        let normal = |mean: f64, std: f64| -> Vec<f64> {
            (0..n as u64)
                .map(|i| mean + std * rng::normal_f64(seed, stream, i))
                .collect()
        };
        let fan = |local: bool| if local { fans.fan_in } else { fans.cols } as f64;
        match *self {
            Initializer::Constant { val } => vec![val; n],
            Initializer::Uniform { low, high } => uniform(low, high),
            Initializer::Gaussian { loc, scale } => normal(loc, scale),
            Initializer::GlorotUniform => {
                let k = (6.0 / (fans.rows + fans.cols) as f64).sqrt();
                uniform(-k, k)
            }
            Initializer::Xavier { local } => {
                let k = (3.0 / fan(local)).sqrt();
                uniform(-k, k)
            }
            Initializer::Kaiming { local } => normal(0.0, (2.0 / fan(local)).sqrt()),
            Initializer::IdentityInit { .. } => {
                let mut v = vec![0.0; n];
                for i in 0..fans.rows.min(fans.cols) {
                    v[i * fans.cols + i] = 1.0;
                }
                v
            }
            Initializer::Orthonormal { scale } => {
                let mut v = normal(0.0, 1.0);
                orthonormalize(&mut v, fans.rows, fans.cols);
                v.iter_mut().for_each(|x| *x *= scale);
                v
            }
        }
    }
}

/// Makes the rows (when `rows ≤ cols`) or else the columns of a row-major matrix
/// orthonormal, by modified Gram–Schmidt in f64.
fn orthonormalize(m: &mut [f64], rows: usize, cols: usize) {
    let by_rows = rows <= cols;
    let (count, len) = if by_rows { (rows, cols) } else { (cols, rows) };
    let at = |v: usize, k: usize| if by_rows { v * cols + k } else { k * cols + v };
    for v in 0..count {
        for u in 0..v {
            let dot: f64 = (0..len).map(|k| m[at(v, k)] * m[at(u, k)]).sum();
            for k in 0..len {
                m[at(v, k)] -= dot * m[at(u, k)];
            }
        }
        let norm = (0..len).map(|k| m[at(v, k)].powi(2)).sum::<f64>().sqrt();
        for k in 0..len {
            m[at(v, k)] /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    const LINEAR: Fans = Fans {
        rows: 100,
        cols: 784,
        fan_in: 784,
    };

    #[test]
    fn gaussian_has_the_requested_moments() {
        let v = Initializer::Gaussian {
            loc: 0.0,
            scale: 0.01,
        }
        .fill(LINEAR, 0, 0);
        let (m, s) = stats(&v);
        assert!(m.abs() < 2e-4, "{m}");
        assert!((s - 0.01).abs() < 2e-4, "{s}");
    }

    #[test]
    fn glorot_xavier_kaiming_bounds_follow_neons_formulas() {
        let k = (6.0f64 / (100.0 + 784.0)).sqrt();
        let v = Initializer::GlorotUniform.fill(LINEAR, 1, 0);
        assert!(v.iter().all(|x| x.abs() <= k));
        assert!(v.iter().any(|x| x.abs() > 0.9 * k));

        let k = (3.0f64 / 784.0).sqrt();
        let v = Initializer::Xavier { local: true }.fill(LINEAR, 1, 1);
        assert!(v.iter().all(|x| x.abs() <= k));
        assert!(v.iter().any(|x| x.abs() > 0.9 * k));

        let (_, s) = stats(&Initializer::Kaiming { local: true }.fill(LINEAR, 1, 2));
        assert!((s - (2.0f64 / 784.0).sqrt()).abs() < 0.002, "{s}");
    }

    #[test]
    fn orthonormal_rows_are_orthonormal_times_scale() {
        let fans = Fans {
            rows: 4,
            cols: 7,
            fan_in: 7,
        };
        let v = Initializer::Orthonormal { scale: 1.1 }.fill(fans, 3, 0);
        for a in 0..4 {
            for b in 0..4 {
                let dot: f64 = (0..7).map(|k| v[a * 7 + k] * v[b * 7 + k]).sum();
                let want = if a == b { 1.21 } else { 0.0 };
                assert!((dot - want).abs() < 1e-12, "{a},{b}: {dot}");
            }
        }
    }

    #[test]
    fn identity_and_constant() {
        let fans = Fans {
            rows: 2,
            cols: 3,
            fan_in: 3,
        };
        assert_eq!(
            Initializer::IdentityInit { local: true }.fill(fans, 0, 0),
            vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
        assert_eq!(
            Initializer::Constant { val: 0.5 }.fill(fans, 0, 0),
            vec![0.5; 6]
        );
    }

    #[test]
    fn seeds_and_streams_change_the_values() {
        let g = Initializer::Gaussian {
            loc: 0.0,
            scale: 1.0,
        };
        let fans = Fans {
            rows: 2,
            cols: 2,
            fan_in: 2,
        };
        assert_eq!(g.fill(fans, 5, 1), g.fill(fans, 5, 1));
        assert_ne!(g.fill(fans, 5, 1), g.fill(fans, 6, 1));
        assert_ne!(g.fill(fans, 5, 1), g.fill(fans, 5, 2));
    }
}
