//! A convolution's epilogue — the bias, the ReLU, a batch-norm-style sum over each image's
//! maps — runs in the CPU executor's unfold → GEMM → loop group, image chunk by image
//! chunk, with the JIT-compiled kernels: the results are those of the plain order, bit for
//! bit, and the memory plan keeps the group's buffers apart.

use std::collections::HashMap;
use std::sync::Arc;
use xenon_compiler::codegen::cpu::{CpuOptions, compile};
use xenon_compiler::ir::{DType, Graph, Window};
use xenon_compiler::lower::lower;
use xenon_runtime::cpu::CpuExecutor;
use xenon_runtime::cpu::interleave::interleaving;
use xenon_runtime::program::{BufferKind, Program, Step};
use xenon_runtime::{Tensor, rng};

const N: usize = 12;
const C: usize = 8;
const H: usize = 18;
const M: usize = 16;

/// `relu(W·im2col(x) + b)` and the per-image sums of the product over its pixels.
fn graph() -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[N, C, H, H]).unwrap();
    let w = g.input("w", DType::F32, &[M, C * 9]).unwrap();
    let b = g.input("b", DType::F32, &[1, M, 1]).unwrap();
    let cols = g.im2col(x, &Window::new([3, 3])).unwrap();
    let y = g.matmul(w, cols, false, false).unwrap();
    let biased = g.add_(y, b).unwrap();
    let zero = g.scalar(DType::F32, 0.0).unwrap();
    let r = g.max(biased, zero).unwrap();
    let s = g.sum(y, &[2], false).unwrap();
    g.set_output("r", r).unwrap();
    g.set_output("s", s).unwrap();
    g
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let len: usize = shape.iter().product();
    let v = (0..len as u64)
        .map(|i| rng::uniform_f64(seed, 1, i) * 2.0 - 1.0)
        .collect::<Vec<_>>();
    Tensor::from_f64_as(DType::F32, shape.to_vec(), &v).unwrap()
}

fn executor(program: &Program) -> CpuExecutor {
    let loops = program.loop_kernels();
    let code = compile(&loops, &CpuOptions::default()).unwrap();
    let mut next = 0;
    let table = program
        .steps
        .iter()
        .map(|s| {
            matches!(s, Step::Loop(_)).then(|| {
                next += 1;
                code.get(next - 1)
            })
        })
        .collect();
    CpuExecutor::new(program.clone(), table, Arc::new(code), 1).unwrap()
}

#[test]
fn a_convolution_epilogue_runs_image_by_image_bit_for_bit() {
    let lowered = lower(&graph()).unwrap();
    let p = &lowered.program;
    let groups: Vec<(usize, usize)> = (0..p.steps.len())
        .filter_map(|s| interleaving(p, s).map(|il| (s, il.steps)))
        .collect();
    // The unfold, the product and the loop after it: one group of three.
    let (start, len) = groups[0];
    assert_eq!(len, 3, "{groups:?}: {:#?}", p.steps);
    assert!(matches!(p.steps[start + 1], Step::Gemm(_)));
    assert!(matches!(p.steps[start + 2], Step::Loop(_)));
    // Every temporary the group touches has memory of its own.
    let mut touched: Vec<usize> = p.steps[start..start + len]
        .iter()
        .flat_map(|st| {
            let (r, w) = st.buffers();
            r.into_iter().chain(w)
        })
        .filter(|&b| matches!(p.buffers[b].kind, BufferKind::Temp))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    for &a in &touched {
        for &b in &touched {
            let (ra, rb) = (&p.buffers[a], &p.buffers[b]);
            let apart = ra.offset + ra.bytes() <= rb.offset || rb.offset + rb.bytes() <= ra.offset;
            assert!(a == b || apart, "buffers {a} and {b} share memory");
        }
    }
    let feeds: HashMap<String, Tensor> = [
        ("x", random(&[N, C, H, H], 1)),
        ("w", random(&[M, C * 9], 2)),
        ("b", random(&[1, M, 1], 3)),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    let run = |on: bool| {
        let mut e = executor(p);
        e.set_interleaving(on);
        (
            e.interleaved_steps(),
            e.run(&feeds, &lowered.output_shapes).unwrap(),
        )
    };
    let (chunked, got) = run(true);
    let (plain, want) = run(false);
    assert!(chunked.contains(&start));
    assert!(plain.is_empty());
    for name in ["r", "s"] {
        let bits = |t: &Tensor| {
            t.to_f64_vec()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&got[name]), bits(&want[name]), "{name}");
        let v = want[name].to_f64_vec();
        assert!(v.iter().any(|&v| v > 0.0) && v.iter().any(|&v| v != 1.0));
    }
}
