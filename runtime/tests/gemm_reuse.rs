//! A GEMM step whose B is a feed the program never updates (a weight during inference)
//! keeps B's packing from run to run: results stay those of packing anew, and a weight
//! changed between runs (a new stamp) is packed again.

use std::collections::HashMap;
use std::sync::Arc;
use xenon_runtime::cpu::CpuExecutor;
use xenon_runtime::cpu::gemm::Isa;
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, MatView, MemoryPlan, Program, Step,
};
use xenon_runtime::{DType, Tensor, TensorData};

fn buffer(len: usize, kind: BufferKind) -> BufferDecl {
    BufferDecl {
        dtype: DType::F32,
        len,
        kind,
        offset: 0,
        node: None,
    }
}

/// `y = x · wᵀ` for inputs `x` (m×k) and `w` (n×k), as a dense layer's forward pass.
fn dense(m: usize, n: usize, k: usize) -> Program {
    let input = |name: &str| BufferKind::Input { name: name.into() };
    let view = |buffer, row_stride, col_stride| MatView {
        buffer,
        offset: 0,
        row_stride,
        col_stride,
        batch_stride: 0,
    };
    Program {
        buffers: vec![
            buffer(m * k, input("x")),
            buffer(n * k, input("w")),
            buffer(m * n, BufferKind::Temp),
        ],
        steps: vec![Step::Gemm(GemmStep {
            dtype: DType::F32,
            m,
            n,
            k,
            batch: 1,
            a: view(0, k as isize, 1),
            b: view(1, 1, k as isize),
            c: view(2, n as isize, 1),
            sum_batch: false,
        })],
        outputs: vec![("y".into(), 2)],
        updates: vec![],
        plan: MemoryPlan {
            arena_bytes: m * n * 4,
            naive_bytes: m * n * 4,
            in_place: 0,
        },
    }
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) as f32 / 65536.0 - 0.5
        })
        .collect()
}

fn reference(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    (0..m * n)
        .map(|e| {
            let (i, j) = (e / n, e % n);
            (0..k)
                .map(|p| x[i * k + p] as f64 * w[j * k + p] as f64)
                .sum()
        })
        .collect()
}

fn close(got: &Tensor, want: &[f64]) {
    let got = got.as_f32().unwrap();
    for (e, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            ((*g as f64) - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "element {e}: {g} vs {w}"
        );
    }
}

#[test]
fn reused_packing_matches_fresh_packing_and_follows_weight_changes() {
    // 100 columns: the last 4 run as a product of their own; 40: no split; fewer rows
    // than a micro-tile (batch-1 inference) stream the kept panels too.
    for (m, n, k) in [
        (30, 100, 64),
        (32, 40, 50),
        (7, 130, 1100),
        (1, 100, 300),
        (3, 10, 40),
    ] {
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            for threads in [1, 2] {
                let mut exec =
                    CpuExecutor::new(dense(m, n, k), vec![None], Arc::new(()), threads).unwrap();
                exec.set_isa(isa);
                let x = values(m * k, 1);
                let w0 = values(n * k, 2);
                let mut feeds = HashMap::from([
                    (
                        "x".to_string(),
                        Tensor::from_f32(vec![m, k], x.clone()).unwrap(),
                    ),
                    (
                        "w".to_string(),
                        Tensor::from_f32(vec![n, k], w0.clone()).unwrap(),
                    ),
                ]);
                let shapes = HashMap::from([("y".to_string(), vec![m, n])]);
                let first = exec.run(&feeds, &shapes).unwrap().remove("y").unwrap();
                close(&first, &reference(&x, &w0, m, n, k));
                // The same weight again: the kept packing gives the same bits.
                let again = exec.run(&feeds, &shapes).unwrap().remove("y").unwrap();
                assert_eq!(first, again, "{isa} {threads} threads {m}×{n}×{k}");
                // A weight changed in place is packed anew.
                let w1 = values(n * k, 3);
                let w = feeds.get_mut("w").unwrap();
                *w.data_mut() = TensorData::F32(w1.clone());
                let changed = exec.run(&feeds, &shapes).unwrap().remove("y").unwrap();
                close(&changed, &reference(&x, &w1, m, n, k));
                // And a different tensor with the original values gives the first result.
                feeds.insert(
                    "w".into(),
                    Tensor::from_f32(vec![n, k], w0.clone()).unwrap(),
                );
                let back = exec.run(&feeds, &shapes).unwrap().remove("y").unwrap();
                assert_eq!(first, back);
            }
        }
    }
}
