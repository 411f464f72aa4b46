//! ZCA whitening (neon's definition): `W` against a closed-form inverse square root for
//! two features, and for four features checked to be the symmetric positive-definite
//! `W` with `W·(C + bias·I)·W = I`; the whitened training data's covariance
//! `I − bias·W²`; the errors. Whitening CIFAR-10 itself (3,072 features) is tested in
//! `cifar_pickle.rs`.

use xenon_frontend::data::*;

/// The mean and the covariance (`n − 1`, as `np.cov`) of row-major `x`, in f64.
fn mean_cov(x: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / d;
    let mut mean = vec![0.0; d];
    for r in x.chunks(d) {
        for j in 0..d {
            mean[j] += r[j] as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0; d * d];
    for r in x.chunks(d) {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] +=
                    (r[i] as f64 - mean[i]) * (r[j] as f64 - mean[j]) / (n - 1) as f64;
            }
        }
    }
    (mean, cov)
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut c = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            for j in 0..d {
                c[i * d + j] += a[i * d + k] * b[k * d + j];
            }
        }
    }
    c
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{k}]: {x} vs {y}");
    }
}

fn identity(d: usize) -> Vec<f64> {
    (0..d * d)
        .map(|k| if k / d == k % d { 1.0 } else { 0.0 })
        .collect()
}

#[test]
fn w_is_the_closed_form_inverse_square_root_for_two_features() {
    let x = [1.0f32, 2.0, 3.0, 1.0, 0.0, 0.0, 4.0, 5.0, 2.0, 2.0];
    let zca = Zca::fit(&x, 2, ZCA_FILTER_BIAS).unwrap();
    // By hand: mean (2, 2); centred rows (−1, 0), (1, −1), (−2, −2), (2, 3), (0, 0);
    // Σ = [[10, 9], [9, 14]] / 4; A = Σ + 0.1·I.
    assert_eq!(zca.mean, [2.0, 2.0]);
    let (a, b, c): (f64, f64, f64) = (2.5 + 0.1, 2.25, 3.5 + 0.1);
    // √A = (A + s·I) / t with s = √det A, t = √(tr A + 2s); W = (√A)⁻¹.
    let s = (a * c - b * b).sqrt();
    let t = (a + c + 2.0 * s).sqrt();
    let (p, q, r) = ((a + s) / t, b / t, (c + s) / t);
    let det = p * r - q * q;
    let w = [r / det, -q / det, -q / det, p / det];
    assert_close(&zca.w, &w, 1e-12, "W");
    assert_close(
        &zca.eigenvalues,
        &[
            (a + c) / 2.0 - (((a - c) / 2.0).powi(2) + b * b).sqrt(),
            (a + c) / 2.0 + (((a - c) / 2.0).powi(2) + b * b).sqrt(),
        ],
        1e-12,
        "eigenvalues",
    );
}

/// `n` examples of 4 correlated features from a fixed pseudo-random sequence.
fn correlated(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut x = Vec::new();
    for _ in 0..n {
        let (u, v, w, z) = (next(), next(), next(), next());
        x.extend([u, u + 0.5 * v, 2.0 * w, u - 2.0 * w + 0.1 * z]);
    }
    x
}

#[test]
fn w_is_the_symmetric_positive_inverse_square_root_for_four_features() {
    let d = 4;
    let x = correlated(40, 7);
    let zca = Zca::fit(&x, d, ZCA_FILTER_BIAS).unwrap();
    let (mean, cov) = mean_cov(&x, d);
    assert_close(&zca.mean, &mean, 1e-12, "mean");
    // Exactly symmetric.
    for i in 0..d {
        for j in 0..d {
            assert_eq!(zca.w[i * d + j], zca.w[j * d + i]);
        }
    }
    // W·A·W = I with A = C + bias·I.
    let mut a = cov.clone();
    for i in 0..d {
        a[i * d + i] += ZCA_FILTER_BIAS;
    }
    let waw = matmul(&matmul(&zca.w, &a, d), &zca.w, d);
    assert_close(&waw, &identity(d), 1e-10, "W·A·W");
    // Positive definite (a Cholesky factorization exists): with the line above, W is the
    // one symmetric positive-definite inverse square root of A.
    let mut l = vec![0.0f64; d * d];
    for j in 0..d {
        let diag = zca.w[j * d + j] - (0..j).map(|k| l[j * d + k].powi(2)).sum::<f64>();
        assert!(diag > 0.0, "W is not positive definite");
        l[j * d + j] = diag.sqrt();
        for i in j + 1..d {
            l[i * d + j] = (zca.w[i * d + j]
                - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>())
                / l[j * d + j];
        }
    }
    // The eigenvalues of A, ascending, sum to its trace.
    assert!(zca.eigenvalues.windows(2).all(|p| p[0] <= p[1]));
    let trace: f64 = (0..d).map(|i| a[i * d + i]).sum();
    assert!((zca.eigenvalues.iter().sum::<f64>() - trace).abs() < 1e-12);
    // Whitened, the training data has covariance I − bias·W².
    let mut white = x.clone();
    zca.apply(&mut white).unwrap();
    let (wmean, wcov) = mean_cov(&white, d);
    assert_close(&wmean, &[0.0; 4], 1e-5, "whitened mean");
    let w2 = matmul(&zca.w, &zca.w, d);
    let want: Vec<f64> = identity(d)
        .iter()
        .zip(&w2)
        .map(|(i, w)| i - ZCA_FILTER_BIAS * w)
        .collect();
    assert_close(&wcov, &want, 1e-4, "whitened covariance");
    // Other examples (the test set) become (x − μ)·W too.
    let test = correlated(3, 99);
    let mut got = test.clone();
    zca.apply(&mut got).unwrap();
    for (r, g) in test.chunks(d).zip(got.chunks(d)) {
        for (j, &gj) in g.iter().enumerate() {
            let want: f64 = (0..d)
                .map(|k| (r[k] as f64 - mean[k]) * zca.w[k * d + j])
                .sum();
            assert!((gj as f64 - want).abs() < 1e-5, "{gj} vs {want}");
        }
    }
}

#[test]
fn blocks_do_not_change_the_result() {
    // More examples than one block: the same W as from the naive covariance.
    let d = 4;
    let x = correlated(ZCA_BLOCK * 2 + 37, 3);
    let zca = Zca::fit(&x, d, ZCA_FILTER_BIAS).unwrap();
    let (_, mut a) = mean_cov(&x, d);
    for i in 0..d {
        a[i * d + i] += ZCA_FILTER_BIAS;
    }
    let waw = matmul(&matmul(&zca.w, &a, d), &zca.w, d);
    assert_close(&waw, &identity(d), 1e-9, "W·A·W");
    let mut white = x.clone();
    zca.apply(&mut white).unwrap();
    let k = ZCA_BLOCK + 5;
    let want: f64 = (0..d)
        .map(|j| (x[k * d + j] as f64 - zca.mean[j]) * zca.w[j * d + 2])
        .sum();
    assert!((white[k * d + 2] as f64 - want).abs() < 1e-5);
}

#[test]
fn constant_data_is_scaled_by_the_bias_alone_and_bad_input_is_an_error() {
    // A zero covariance: every eigenvalue is the bias, W = I / √bias.
    let x = [0.5f32; 3 * 5];
    let zca = Zca::fit(&x, 3, 0.25).unwrap();
    assert_close(
        &zca.w,
        &identity(3).iter().map(|v| v * 2.0).collect::<Vec<_>>(),
        1e-12,
        "W",
    );
    // Without the bias it is singular.
    let e = Zca::fit(&x, 3, 0.0).unwrap_err().to_string();
    assert!(e.contains("not positive"), "{e}");
    for (x, d, bias, want) in [
        (
            &[1.0f32, 2.0, 3.0][..],
            3,
            0.1,
            "at least 2 training examples",
        ),
        (&[1.0, 2.0, 3.0], 2, 0.1, "not a whole number"),
        (&[1.0, 2.0, 3.0, 4.0], 2, f64::NAN, "filter_bias NaN"),
        (
            &[1.0, 2.0, f32::INFINITY, 4.0],
            2,
            0.1,
            "value 2 (example 1) is inf",
        ),
    ] {
        let e = Zca::fit(x, d, bias).unwrap_err().to_string();
        assert!(
            e.contains("ZCA whitening") && e.contains(want),
            "{want}: {e}"
        );
    }
    let mut odd = [1.0f32; 5];
    assert!(zca.apply(&mut odd).is_err());
}
