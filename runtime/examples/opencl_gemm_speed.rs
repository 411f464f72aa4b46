//! GFLOP/s of the OpenCL executor's GEMM on device 0 (default 512³ f32; arguments: m n k):
//! whole runs, so the time includes uploading A and B and reading C back.
//!
//! `cargo run --release -p xenon-runtime --features opencl --example opencl_gemm_speed`

use std::collections::HashMap;
use xenon_runtime::opencl::{self, OclExecutor};
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, MatView, MemoryPlan, Program, Step,
};
use xenon_runtime::{DType, Tensor};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (m, n, k) = match args[..] {
        [m, n, k] => (m, n, k),
        _ => (512, 512, 512),
    };
    match opencl::devices() {
        Ok(d) if !d.is_empty() => println!("{}", d[0]),
        _ => {
            println!("SKIPPED: no OpenCL platform");
            return;
        }
    }
    let input = |name: &str, len| BufferDecl {
        dtype: DType::F32,
        len,
        kind: BufferKind::Input { name: name.into() },
        offset: 0,
        node: None,
    };
    let view = |buffer, cols: usize| MatView {
        buffer,
        offset: 0,
        row_stride: cols as isize,
        col_stride: 1,
        batch_stride: 0,
    };
    let program = Program {
        buffers: vec![
            input("a", m * k),
            input("b", k * n),
            BufferDecl {
                dtype: DType::F32,
                len: m * n,
                kind: BufferKind::Temp,
                offset: 0,
                node: None,
            },
        ],
        steps: vec![Step::Gemm(GemmStep {
            dtype: DType::F32,
            m,
            n,
            k,
            batch: 1,
            a: view(0, k),
            b: view(1, n),
            c: view(2, n),
        })],
        outputs: vec![("c".into(), 2)],
        updates: vec![],
        plan: MemoryPlan {
            arena_bytes: m * n * 4,
            naive_bytes: m * n * 4,
            in_place: 0,
        },
    };
    let fill = |len: usize| (0..len).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
    let feeds: HashMap<String, Tensor> = [
        (
            "a".to_string(),
            Tensor::from_f32(vec![m * k], fill(m * k)).unwrap(),
        ),
        (
            "b".to_string(),
            Tensor::from_f32(vec![k * n], fill(k * n)).unwrap(),
        ),
    ]
    .into();
    let mut ex = match OclExecutor::new(program, vec![None], 0, "") {
        Ok(ex) => ex,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shapes = HashMap::new();
    ex.run(&feeds, &shapes).expect("warm-up run");
    let runs = 10;
    let t = std::time::Instant::now();
    for _ in 0..runs {
        ex.run(&feeds, &shapes).expect("run");
    }
    let secs = t.elapsed().as_secs_f64() / runs as f64;
    let gflops = 2.0 * (m * n * k) as f64 / secs / 1e9;
    println!(
        "{m}×{n}×{k} f32: {:.2} ms per run, {gflops:.2} GFLOP/s",
        secs * 1e3
    );
}
