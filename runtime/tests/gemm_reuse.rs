//! A GEMM step whose B is a feed the program never updates (a weight during inference)
//! keeps B's packing from run to run: results stay those of packing anew, and a weight
//! changed between runs (a new stamp) is packed again. Steps reading the same weight (a
//! recurrent layer's time steps) share one packing, also when the program updates the
//! weight (training), which the next run then packs anew.

use std::collections::HashMap;
use std::sync::Arc;
use xenon_runtime::cpu::CpuExecutor;
use xenon_runtime::cpu::gemm::Isa;
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, MatView, MemoryPlan, Program, Step,
};
use xenon_runtime::{DType, Tensor, TensorData};

fn buffer(len: usize, kind: BufferKind) -> BufferDecl {
    BufferDecl::new(DType::F32, len, kind)
}

fn input(name: &str) -> BufferKind {
    BufferKind::Input { name: name.into() }
}

/// A whole matrix of `buffer` with the given strides.
fn view(buffer: usize, row_stride: isize, col_stride: isize) -> MatView {
    MatView {
        buffer,
        offset: 0,
        row_stride,
        col_stride,
        batch_stride: 0,
    }
}

/// `y = x · wᵀ` for inputs `x` (m×k) and `w` (n×k), as a dense layer's forward pass.
fn dense(m: usize, n: usize, k: usize) -> Program {
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

/// `h₁ = x·wᵀ, h₂ = h₁·wᵀ, h₃ = h₂·wᵀ` (x, w: s×s), as a recurrent layer's unrolled
/// steps, with outputs h₂ and h₃; with `update`, h₃ is also the new w.
fn chain(s: usize, update: bool) -> Program {
    let step = |a: usize, c: usize| {
        Step::Gemm(GemmStep {
            dtype: DType::F32,
            m: s,
            n: s,
            k: s,
            batch: 1,
            a: view(a, s as isize, 1),
            b: view(1, 1, s as isize),
            c: view(c, s as isize, 1),
            sum_batch: false,
        })
    };
    let mut temps = (0..3)
        .map(|_| buffer(s * s, BufferKind::Temp))
        .collect::<Vec<_>>();
    for (i, t) in temps.iter_mut().enumerate() {
        t.offset = i * s * s * 4;
    }
    let mut buffers = vec![buffer(s * s, input("x")), buffer(s * s, input("w"))];
    buffers.extend(temps);
    Program {
        buffers,
        steps: vec![step(0, 2), step(2, 3), step(3, 4)],
        outputs: vec![("h2".into(), 3), ("h3".into(), 4)],
        updates: if update {
            vec![("h3".into(), "w".into())]
        } else {
            vec![]
        },
        plan: MemoryPlan {
            arena_bytes: 3 * s * s * 4,
            naive_bytes: 3 * s * s * 4,
            in_place: 0,
        },
    }
}

#[test]
fn steps_sharing_a_weight_share_its_packing_and_follow_its_updates() {
    // 48 = three 16-lane vectors; 70 has a ragged edge.
    for s in [48, 70] {
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            for update in [false, true] {
                let mut exec =
                    CpuExecutor::new(chain(s, update), vec![None; 3], Arc::new(()), 1).unwrap();
                exec.set_isa(isa);
                // Scaled so that products keep the size of their operands.
                let scale = |v: Vec<f32>| v.into_iter().map(|e| e * 3.0 / (s as f32).sqrt());
                let x: Vec<f32> = scale(values(s * s, 4)).collect();
                let mut w: Vec<f32> = scale(values(s * s, 5)).collect();
                let mut feeds = HashMap::from([
                    (
                        "x".to_string(),
                        Tensor::from_f32(vec![s, s], x.clone()).unwrap(),
                    ),
                    (
                        "w".to_string(),
                        Tensor::from_f32(vec![s, s], w.clone()).unwrap(),
                    ),
                ]);
                let shapes = HashMap::from([
                    ("h2".to_string(), vec![s, s]),
                    ("h3".to_string(), vec![s, s]),
                ]);
                for _ in 0..3 {
                    let h1: Vec<f32> = reference(&x, &w, s, s, s)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    let h2 = reference(&h1, &w, s, s, s);
                    let out = if update {
                        exec.run_update(&mut feeds, &shapes, false).unwrap()
                    } else {
                        exec.run(&feeds, &shapes).unwrap()
                    };
                    close(&out["h2"], &h2);
                    if update {
                        // w is now h₃ = h₂·wᵀ; the next run packs that.
                        let h2: Vec<f32> = h2.iter().map(|&v| v as f32).collect();
                        let h3 = reference(&h2, &w, s, s, s);
                        close(&feeds["w"], &h3);
                        w = feeds["w"].as_f32().unwrap().to_vec();
                    }
                }
            }
        }
    }
}
