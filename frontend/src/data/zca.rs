//! ZCA whitening (neon's `CIFAR10.zca_whiten` and `_compute_zca_transform`).
//!
//! Fitted on the training examples `X` (`n × d`): the mean `μ`, the covariance
//! `C = (X − μ)ᵀ(X − μ) / (n − 1)` (numpy's `np.cov`, which neon calls, divides by
//! `n − 1`), `filter_bias` added to its diagonal, the symmetric eigendecomposition
//! `C + bias·I = E·D·Eᵀ`, and `W = E·D^-½·Eᵀ`; every example `x` (training and test) then
//! becomes `(x − μ)·W`. `W` is symmetric, and `W·(C + bias·I)·W = I`: the whitened
//! training data has covariance `W·C·W = I − bias·W²`.
//!
//! Everything is computed in f64 (as numpy does) from the f32 features, in blocks of
//! [`ZCA_BLOCK`] examples so that no `n × d` f64 copy is made; the products and the
//! eigendecomposition are `faer`'s, on rayon's threads. For CIFAR-10 (`n` = 50,000,
//! `d` = 3,072) in a release build on 2 busy cores, the fit took 11 s (the covariance
//! 6 s, the eigendecomposition 5 s; 8 s on other data) and whitening the 60,000 images
//! 19 s; the f32 images take 0.7 GB, the fit another 0.2 GB.
//!
//! Unlike neon, which keeps `(μ, W)` in `cifar-10-zca-cache.pkl` (and reuses it even when
//! the preprocessing options change), nothing is cached: `W` is recomputed at every load.

use super::DataError;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, Par, Side};

/// neon's `filter_bias`: added to the covariance's diagonal before its inverse square root.
pub const ZCA_FILTER_BIAS: f64 = 0.1;

/// Examples per block when computing the covariance and applying `W` (memory: a
/// `d × ZCA_BLOCK` f64 matrix, 25 MB for CIFAR-10, and its product).
pub const ZCA_BLOCK: usize = 1024;

/// A fitted ZCA whitening transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Zca {
    /// Features per example (`d`).
    pub dim: usize,
    /// The training mean `μ`, `d` values.
    pub mean: Vec<f64>,
    /// `W = E·D^-½·Eᵀ`, `d × d`, row-major (it is symmetric, so column-major too).
    pub w: Vec<f64>,
    /// The eigenvalues of `C + bias·I`, ascending.
    pub eigenvalues: Vec<f64>,
}

fn err(m: String) -> DataError {
    DataError::InvalidDataset(format!("ZCA whitening: {m}"))
}

/// The examples `rows` of `x` (row-major, `dim` features each) minus `mean`, as the columns
/// of a `dim × rows.len()` matrix.
fn centered_block(x: &[f32], dim: usize, rows: std::ops::Range<usize>, mean: &[f64]) -> Mat<f64> {
    let mut a = Mat::<f64>::zeros(dim, rows.len());
    for (j, i) in rows.enumerate() {
        let col = a.col_as_slice_mut(j);
        for ((c, &v), m) in col.iter_mut().zip(&x[i * dim..(i + 1) * dim]).zip(mean) {
            *c = v as f64 - m;
        }
    }
    a
}

impl Zca {
    /// Fits the transform to `x`: `n` examples of `dim` features, row-major (`n ≥ 2`).
    /// `filter_bias` (neon: [`ZCA_FILTER_BIAS`]) must be finite and ≥ 0; an eigenvalue of
    /// `C + bias·I` that is not positive (possible only with a bias of 0) is an error.
    pub fn fit(x: &[f32], dim: usize, filter_bias: f64) -> Result<Zca, DataError> {
        if dim == 0 || !x.len().is_multiple_of(dim) {
            return Err(err(format!(
                "{} values are not a whole number of {dim}-feature examples",
                x.len()
            )));
        }
        let n = x.len() / dim;
        if n < 2 {
            return Err(err(format!(
                "the covariance needs at least 2 training examples, not {n}"
            )));
        }
        if !(filter_bias.is_finite() && filter_bias >= 0.0) {
            return Err(err(format!(
                "filter_bias {filter_bias} is not a finite number ≥ 0"
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(err(format!(
                "training value {i} (example {}) is {}",
                i / dim,
                x[i]
            )));
        }
        let mut mean = vec![0.0f64; dim];
        for row in x.chunks_exact(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        // The lower triangle of Σ (x − μ)(x − μ)ᵀ / (n − 1), block by block.
        let par = Par::rayon(0);
        let mut cov = Mat::<f64>::zeros(dim, dim);
        for start in (0..n).step_by(ZCA_BLOCK) {
            let a = centered_block(x, dim, start..n.min(start + ZCA_BLOCK), &mean);
            triangular::matmul(
                cov.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Add,
                a.as_ref(),
                BlockStructure::Rectangular,
                a.transpose(),
                BlockStructure::Rectangular,
                1.0 / (n - 1) as f64,
                par,
            );
        }
        for i in 0..dim {
            cov[(i, i)] += filter_bias;
        }
        let eig = cov
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| err(format!("the eigendecomposition failed: {e:?}")))?;
        drop(cov);
        let (e, d) = (eig.U(), eig.S());
        let eigenvalues: Vec<f64> = (0..dim).map(|k| d[k]).collect();
        if let Some(k) = eigenvalues
            .iter()
            .position(|v| !(*v > 0.0 && v.is_finite()))
        {
            return Err(err(format!(
                "eigenvalue {k} of the biased covariance is {}, not positive (filter_bias {filter_bias})",
                eigenvalues[k]
            )));
        }
        // W = (E·D^-½)·Eᵀ: the lower triangle, mirrored, so that W is exactly symmetric.
        let mut scaled = e.to_owned();
        for (k, v) in eigenvalues.iter().enumerate() {
            let f = 1.0 / v.sqrt();
            for c in scaled.col_as_slice_mut(k) {
                *c *= f;
            }
        }
        let mut w = Mat::<f64>::zeros(dim, dim);
        triangular::matmul(
            w.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            scaled.as_ref(),
            BlockStructure::Rectangular,
            e.transpose(),
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        let mut out = vec![0.0; dim * dim];
        for j in 0..dim {
            for i in j..dim {
                out[i * dim + j] = w[(i, j)];
                out[j * dim + i] = w[(i, j)];
            }
        }
        Ok(Zca {
            dim,
            mean,
            w: out,
            eigenvalues,
        })
    }

    /// Whitens `x` in place: every example (`dim` values, row-major) becomes
    /// `(x − μ)·W`, rounded to f32.
    pub fn apply(&self, x: &mut [f32]) -> Result<(), DataError> {
        let dim = self.dim;
        if dim == 0 || !x.len().is_multiple_of(dim) {
            return Err(err(format!(
                "{} values are not a whole number of {dim}-feature examples",
                x.len()
            )));
        }
        let n = x.len() / dim;
        // W is symmetric: the whitened examples, as columns, are W·(x − μ).
        let w = Mat::<f64>::from_fn(dim, dim, |i, j| self.w[i * dim + j]);
        let par = Par::rayon(0);
        let mut out = Mat::<f64>::zeros(dim, ZCA_BLOCK.min(n));
        for start in (0..n).step_by(ZCA_BLOCK) {
            let rows = start..n.min(start + ZCA_BLOCK);
            let a = centered_block(x, dim, rows.clone(), &self.mean);
            faer::linalg::matmul::matmul(
                out.as_mut().subcols_mut(0, rows.len()),
                Accum::Replace,
                w.as_ref(),
                a.as_ref(),
                1.0,
                par,
            );
            for (j, i) in rows.enumerate() {
                for (dst, src) in x[i * dim..(i + 1) * dim]
                    .iter_mut()
                    .zip(out.col_as_slice(j))
                {
                    *dst = *src as f32;
                }
            }
        }
        Ok(())
    }
}
