//! Times the transcendental elementwise kernels of a recurrent cell — logistic
//! (`1/(1+exp(-x))`), `tanh` and `exp` — on `[64, 384]` (an LSTM step's gates at batch 64),
//! in ns per element: `cargo run --release -p xenon-compiler --example elementwise_speed
//! [--disasm]` (`--disasm` prints each kernel's machine code).

use std::time::Instant;
use xenon_compiler::codegen::cpu::{CpuOptions, compile, disassemble};
use xenon_runtime::DType;
use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Store};
use xenon_runtime::ops::{BinaryOp, UnaryOp};

fn kernel(name: &str, rows: usize, cols: usize, body: Vec<Instr>) -> LoopKernel {
    let access = |arg| Access {
        arg,
        offset: 0,
        strides: vec![cols as isize, 1],
    };
    let mut all = vec![Instr::Load(access(0))];
    all.extend(body);
    LoopKernel {
        name: name.into(),
        shape: vec![rows, cols],
        args: (0..2)
            .map(|buffer| KernelArg {
                buffer,
                dtype: DType::F32,
                len: rows * cols,
            })
            .collect(),
        stores: vec![Store {
            access: access(1),
            value: all.len() as u32 - 1,
        }],
        body: all,
        reduce: None,
    }
}

fn main() {
    let disasm = std::env::args().any(|a| a == "--disasm");
    let opts = CpuOptions::default();
    let (rows, cols) = (64, 384);
    let unary = |func, a| Instr::Unary { func, a };
    let kernels = [
        kernel(
            "logistic",
            rows,
            cols,
            vec![
                unary(UnaryOp::Neg, 0),
                unary(UnaryOp::Exp, 1),
                Instr::Const {
                    dtype: DType::F32,
                    value: 1.0,
                },
                Instr::Binary {
                    func: BinaryOp::Add,
                    a: 2,
                    b: 3,
                },
                unary(UnaryOp::Recip, 4),
            ],
        ),
        kernel("tanh", rows, cols, vec![unary(UnaryOp::Tanh, 0)]),
        kernel("exp", rows, cols, vec![unary(UnaryOp::Exp, 0)]),
        kernel("copy", rows, cols, vec![unary(UnaryOp::Neg, 0)]),
    ];
    for k in &kernels {
        if disasm {
            println!("{}", disassemble(k, &opts).unwrap());
        }
        let compiled = compile(&[k], &opts).unwrap();
        let f = compiled.get(0);
        let n = rows * cols;
        let x: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 0.1).collect();
        let mut out = vec![0f32; n];
        let args = [x.as_ptr() as *mut u8, out.as_mut_ptr() as *mut u8];
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            // SAFETY: the buffers have the lengths the kernel was validated against.
            unsafe { f(args.as_ptr(), 0, rows) };
            times.push(t.elapsed().as_secs_f64() * 1e9);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{:<9} {:.2} ns/element (median of 200, min {:.2})",
            k.name,
            times[100] / n as f64,
            times[0] / n as f64
        );
    }
}
