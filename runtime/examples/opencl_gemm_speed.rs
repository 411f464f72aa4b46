//! GFLOP/s of the OpenCL executor's GEMM (default 512³ f32).
//!
//! Arguments: `[m n k] [--device N] [--kernel-only]`. By default a run includes uploading
//! A and B once (they stay on the device: same tensors) and reading C back each time;
//! `--kernel-only` keeps C on the device, so the time is the GEMM kernel's (plus one
//! launch and wait). Prints the device, the tile configuration chosen, and the median and
//! range of 10 timed runs after a warm-up.
//!
//! `cargo run --release -p xenon-runtime --features opencl --example opencl_gemm_speed -- 4096 4096 4096 --kernel-only`

use std::collections::HashMap;
use xenon_runtime::opencl::{self, OclExecutor};
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, MatView, MemoryPlan, Program, Step,
};
use xenon_runtime::{DType, Tensor};

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let kernel_only = raw.iter().any(|a| a == "--kernel-only");
    let device = raw
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| raw.get(i + 1))
        .and_then(|d| d.parse::<usize>().ok())
        .unwrap_or(0);
    let sizes: Vec<usize> = raw
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || raw[i - 1] != "--device")
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let (m, n, k) = match sizes[..] {
        [m, n, k] => (m, n, k),
        _ => (512, 512, 512),
    };
    match opencl::devices() {
        Ok(d) if d.len() > device => println!("{}", d[device]),
        Ok(d) if !d.is_empty() => {
            eprintln!("device {device} does not exist ({} device(s))", d.len());
            std::process::exit(1);
        }
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
            sum_batch: false,
        })],
        outputs: if kernel_only {
            vec![]
        } else {
            vec![("c".into(), 2)]
        },
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
    let mut ex = match OclExecutor::new(program, vec![None], device, "") {
        Ok(ex) => ex,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shapes = HashMap::new();
    ex.run(&feeds, &shapes).expect("warm-up run");
    let mut times: Vec<f64> = (0..10)
        .map(|_| {
            let t = std::time::Instant::now();
            ex.run(&feeds, &shapes).expect("run");
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = (times[4] + times[5]) / 2.0;
    let gflops = |secs: f64| 2.0 * (m * n * k) as f64 / secs / 1e9;
    let what = if kernel_only { "kernel" } else { "whole run" };
    println!(
        "{m}×{n}×{k} f32 ({what}, tile {}): median {:.3} ms, {:.1} GFLOP/s (range {:.1}–{:.1})",
        ex.gemm_choices().first().map_or("?", |c| c.1),
        median * 1e3,
        gflops(median),
        gflops(times[9]),
        gflops(times[0]),
    );
}
