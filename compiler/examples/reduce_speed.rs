//! Times a channel-sum reduction kernel (`[n, c, hw]` over axes 0 and 2, a batch norm's
//! statistics after axis merging) with one accumulator and with 16 partial accumulators,
//! on data that fits the caches and on data that does not: `cargo run --release -p
//! xenon-compiler --example reduce_speed [--disasm]` (`--disasm` prints the small kernels'
//! machine code).

use std::time::Instant;
use xenon_compiler::codegen::cpu::{CpuOptions, compile, disassemble};
use xenon_runtime::DType;
use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Reduction, Store};
use xenon_runtime::ops::ReduceOp;

fn kernel(b: usize, c: usize, hw: usize, partials: u32) -> LoopKernel {
    let access = |arg, strides: Vec<isize>| Access {
        arg,
        offset: 0,
        strides,
    };
    LoopKernel {
        name: format!("channel_sum_p{partials}"),
        shape: vec![b, c, hw],
        args: vec![
            KernelArg {
                buffer: 0,
                dtype: DType::F32,
                len: b * c * hw,
            },
            KernelArg {
                buffer: 1,
                dtype: DType::F32,
                len: c,
            },
        ],
        body: vec![Instr::Load(access(
            0,
            vec![(c * hw) as isize, hw as isize, 1],
        ))],
        reduce: Some(Reduction {
            op: ReduceOp::Sum,
            axes: vec![0, 2],
            value: 0,
            post: vec![Instr::Accumulator],
            partials,
        }),
        stores: vec![Store {
            access: access(1, vec![0, 1, 0]),
            value: 1,
        }],
    }
}

fn main() {
    let disasm = std::env::args().any(|a| a == "--disasm");
    let opts = CpuOptions::default();
    for &(b, c, hw) in &[
        (128usize, 16usize, 576usize),
        (8, 16, 576),
        (2048, 16, 576),
        (2048, 1, 9216),
    ] {
        for p in [1u32, 16] {
            let k = kernel(b, c, hw, p);
            if disasm && b == 8 {
                println!("{}", disassemble(&k, &opts).unwrap());
            }
            let compiled = compile(&[&k], &opts).unwrap();
            let f = compiled.get(0);
            let x: Vec<f32> = (0..b * c * hw).map(|i| (i % 7) as f32 * 0.5).collect();
            let mut out = vec![0f32; c];
            let args = [x.as_ptr() as *mut u8, out.as_mut_ptr() as *mut u8];
            let mut times = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                // SAFETY: the buffers have the lengths the kernel was validated against.
                unsafe { f(args.as_ptr(), 0, c) };
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            times.sort_by(f64::total_cmp);
            let gbs = (b * c * hw * 4) as f64 / times[25] / 1e3;
            println!(
                "[{b}, {c}, {hw}] partials {p:2}: median {:8.1} µs ({gbs:5.1} GB/s), sum[0] = {}",
                times[25], out[0]
            );
        }
    }
}
