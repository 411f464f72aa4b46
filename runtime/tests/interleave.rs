//! The CPU executor runs an unfold and the GEMM (or the arg-max) reading its columns (and a GEMM and the
//! fold of its output) chunk by chunk: the results are those of running them one after
//! the other, bit for bit, and the memory planner keeps the pair's buffers apart.

use std::collections::HashMap;
use std::sync::Arc;
use xenon_runtime::cpu::CpuExecutor;
use xenon_runtime::cpu::interleave::interleaving;
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, LibraryStep, MatView, MemoryPlan, Program, Step, WindowSpec,
};
use xenon_runtime::{DType, Tensor, rng};

const N: usize = 6;
const C: usize = 16;
const H: usize = 20;
const K: usize = 5;
const M: usize = 8;
const P: usize = (H - K + 1) * (H - K + 1);
const CK: usize = C * K * K;

fn buffer(len: usize, kind: BufferKind, offset: usize) -> BufferDecl {
    BufferDecl {
        dtype: DType::F32,
        len,
        kind,
        offset,
        node: None,
    }
}

fn input(len: usize, name: &str) -> BufferDecl {
    buffer(len, BufferKind::Input { name: name.into() }, 0)
}

fn view(buffer: usize, row_stride: usize, col_stride: usize, batch_stride: usize) -> MatView {
    MatView {
        buffer,
        offset: 0,
        row_stride: row_stride as isize,
        col_stride: col_stride as isize,
        batch_stride: batch_stride as isize,
    }
}

/// `y_n = W·im2col(x_n)` and `dx = col2im(Wᵀ·dy_n)` over N images of C×H×H, a K×K
/// window: buffers x, W, dy (inputs), cols, y, dcols, dx (temporaries laid end to end).
fn convolution() -> Program {
    let window = WindowSpec {
        kernel: vec![K, K],
        stride: vec![1, 1],
        pad_low: vec![0, 0],
        pad_high: vec![0, 0],
        dilation: vec![1, 1],
        out: vec![H - K + 1, H - K + 1],
    };
    let lens = [N * CK * P, N * M * P, N * CK * P, N * C * H * H];
    let mut buffers = vec![
        input(N * C * H * H, "x"),
        input(M * CK, "w"),
        input(N * M * P, "dy"),
    ];
    let mut at = 0;
    for len in lens {
        buffers.push(buffer(len, BufferKind::Temp, at));
        at += len * 4;
    }
    let (x, w, dy, cols, y, dcols, dx) = (0, 1, 2, 3, 4, 5, 6);
    let image = vec![N, C, H, H];
    let steps = vec![
        Step::Library(LibraryStep::Im2Col {
            x,
            out: cols,
            dtype: DType::F32,
            image: image.clone(),
            window: window.clone(),
        }),
        Step::Gemm(GemmStep {
            dtype: DType::F32,
            m: M,
            n: P,
            k: CK,
            batch: N,
            a: view(w, CK, 1, 0),
            b: view(cols, P, 1, CK * P),
            c: view(y, P, 1, M * P),
            sum_batch: false,
        }),
        Step::Gemm(GemmStep {
            dtype: DType::F32,
            m: CK,
            n: P,
            k: M,
            batch: N,
            a: view(w, 1, CK, 0),
            b: view(dy, P, 1, M * P),
            c: view(dcols, P, 1, CK * P),
            sum_batch: false,
        }),
        Step::Library(LibraryStep::Col2Im {
            cols: dcols,
            out: dx,
            dtype: DType::F32,
            image,
            window,
        }),
    ];
    Program {
        buffers,
        steps,
        outputs: vec![("y".into(), y), ("dx".into(), dx)],
        updates: vec![],
        plan: MemoryPlan {
            arena_bytes: at,
            naive_bytes: at,
            in_place: 0,
        },
    }
}

fn random(len: usize, seed: u64) -> Tensor {
    let v = (0..len as u64)
        .map(|i| rng::uniform_f64(seed, 1, i) * 2.0 - 1.0)
        .collect::<Vec<_>>();
    Tensor::from_f64_as(DType::F32, vec![len], &v).unwrap()
}

#[test]
fn chunked_pairs_give_the_plain_results_bit_for_bit() {
    let program = convolution();
    let feeds: HashMap<String, Tensor> = [
        ("x", random(N * C * H * H, 1)),
        ("w", random(M * CK, 2)),
        ("dy", random(N * M * P, 3)),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    let shapes: HashMap<String, Vec<usize>> = [("y", N * M * P), ("dx", N * C * H * H)]
        .into_iter()
        .map(|(n, l)| (n.to_string(), vec![l]))
        .collect();
    let steps = program.steps.len();
    let run = |on: bool| {
        let mut e = CpuExecutor::new(program.clone(), vec![None; steps], Arc::new(()), 1).unwrap();
        e.set_interleaving(on);
        let chunked = e.interleaved_steps();
        (chunked, e.run(&feeds, &shapes).unwrap())
    };
    let (chunked, got) = run(true);
    let (plain, want) = run(false);
    // The unfold with its product, and the product with its fold.
    assert_eq!(chunked, vec![0, 2]);
    assert!(plain.is_empty());
    for name in ["y", "dx"] {
        let bits = |t: &Tensor| {
            t.to_f64_vec()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&got[name]), bits(&want[name]), "{name}");
        assert!(want[name].to_f64_vec().iter().any(|&v| v != 0.0));
    }
}

#[test]
fn pairs_whose_buffers_share_memory_run_one_after_the_other() {
    // A copied image `x` dies in the unfold, so a planner may place the product's output
    // over it: run chunked, the product of image 0 would overwrite image 1 before its
    // unfold. The executor sees the overlap and runs the pair one step after the other.
    let conv = convolution();
    let image_bytes = C * H * H * 4;
    let layout = |y_offset: usize| {
        let mut buffers = vec![
            input(N * C * H * H, "x"),
            input(M * CK, "w"),
            buffer(N * C * H * H, BufferKind::Temp, 0),
            buffer(N * CK * P, BufferKind::Temp, N * image_bytes),
            buffer(N * M * P, BufferKind::Temp, y_offset),
        ];
        buffers[3].offset = N * image_bytes;
        let mut steps = vec![Step::Library(LibraryStep::Copy {
            src: 0,
            dst: 2,
            dtype: DType::F32,
            src_offset: 0,
            dst_offset: 0,
            len: N * C * H * H,
        })];
        steps.extend(conv.steps[..2].iter().cloned());
        let Step::Library(LibraryStep::Im2Col { x, out, .. }) = &mut steps[1] else {
            unreachable!()
        };
        (*x, *out) = (2, 3);
        let Step::Gemm(g) = &mut steps[2] else {
            unreachable!()
        };
        (g.a.buffer, g.b.buffer, g.c.buffer) = (1, 3, 4);
        let arena = (N * image_bytes + N * CK * P * 4).max(y_offset + N * M * P * 4);
        Program {
            buffers,
            steps,
            outputs: vec![("y".into(), 4)],
            updates: vec![],
            plan: MemoryPlan {
                arena_bytes: arena + N * M * P * 4,
                naive_bytes: arena + N * M * P * 4,
                in_place: 0,
            },
        }
    };
    let feeds: HashMap<String, Tensor> =
        [("x", random(N * C * H * H, 1)), ("w", random(M * CK, 2))]
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect();
    let shapes: HashMap<String, Vec<usize>> =
        [("y".to_string(), vec![N * M * P])].into_iter().collect();
    let run = |program: Program| {
        let steps = program.steps.len();
        let mut e = CpuExecutor::new(program, vec![None; steps], Arc::new(()), 1).unwrap();
        assert_eq!(e.interleaved_steps(), vec![1]);
        e.run(&feeds, &shapes).unwrap()
    };
    // Apart (after the columns), and over images 1.. of x.
    let apart = run(layout(N * image_bytes + N * CK * P * 4));
    let over = run(layout(image_bytes));
    assert_eq!(over["y"].to_f64_vec(), apart["y"].to_f64_vec());
}

/// Max pooling's unfold and the arg-max over each window's taps, chunk by chunk: the
/// same indices as one step after the other, ties (the first maximum) included.
#[test]
fn an_unfold_and_the_arg_max_over_its_windows_run_chunked() {
    const MAPS: usize = 400;
    const S: usize = 20;
    let out = S / 2;
    let window = WindowSpec {
        kernel: vec![2, 2],
        stride: vec![2, 2],
        pad_low: vec![0, 0],
        pad_high: vec![0, 0],
        dilation: vec![1, 1],
        out: vec![out, out],
    };
    let (pixels, cols) = (MAPS * S * S, MAPS * 4 * out * out);
    let program = Program {
        buffers: vec![
            input(pixels, "x"),
            buffer(cols, BufferKind::Temp, 0),
            BufferDecl {
                dtype: DType::I32,
                len: MAPS * out * out,
                kind: BufferKind::Temp,
                offset: cols * 4,
                node: None,
            },
        ],
        steps: vec![
            Step::Library(LibraryStep::Im2Col {
                x: 0,
                out: 1,
                dtype: DType::F32,
                image: vec![MAPS, 1, S, S],
                window,
            }),
            Step::Library(LibraryStep::ArgMax {
                x: 1,
                out: 2,
                dtype: DType::F32,
                outer: MAPS,
                axis: 4,
                inner: out * out,
            }),
        ],
        outputs: vec![("at".into(), 2)],
        updates: vec![],
        plan: MemoryPlan {
            arena_bytes: cols * 4 + MAPS * out * out * 4,
            naive_bytes: cols * 4 + MAPS * out * out * 4,
            in_place: 0,
        },
    };
    // Three levels only, so that many windows hold a tie.
    let levels = (0..pixels as u64)
        .map(|i| (rng::uniform_f64(4, 1, i) * 3.0).floor())
        .collect::<Vec<_>>();
    let feeds: HashMap<String, Tensor> = [(
        "x".to_string(),
        Tensor::from_f64_as(DType::F32, vec![pixels], &levels).unwrap(),
    )]
    .into_iter()
    .collect();
    let shapes: HashMap<String, Vec<usize>> = [("at".to_string(), vec![MAPS * out * out])]
        .into_iter()
        .collect();
    let run = |program: &Program, on: bool| {
        let mut e = CpuExecutor::new(program.clone(), vec![None; 2], Arc::new(()), 1).unwrap();
        e.set_interleaving(on);
        (e.interleaved_steps(), e.run(&feeds, &shapes).unwrap())
    };
    // Read by nothing else, the columns are skipped: one pass over the maps.
    assert!(interleaving(&program, 0).unwrap().direct);
    let (direct, got) = run(&program, true);
    let (_, want) = run(&program, false);
    assert_eq!(direct, vec![0]);
    let at = want["at"].to_f64_vec();
    assert_eq!(got["at"].to_f64_vec(), at);
    // An output, they are written chunk by chunk.
    let mut kept = program.clone();
    kept.outputs.push(("cols".into(), 1));
    assert!(!interleaving(&kept, 0).unwrap().direct);
    let (chunked, got) = run(&kept, true);
    assert_eq!(chunked, vec![0]);
    assert_eq!(got["at"].to_f64_vec(), at);
    // Every tap index occurs, and ties go to the first maximum.
    for t in 0..4 {
        assert!(at.contains(&(t as f64)), "tap {t}");
    }
    let first = (0..MAPS * out * out).all(|w| {
        let (m, p) = (w / (out * out), w % (out * out));
        let (oy, ox) = (p / out, p % out);
        let v = |t: usize| levels[m * S * S + (2 * oy + t / 2) * S + 2 * ox + t % 2];
        let best = (0..4).map(v).fold(f64::MIN, f64::max);
        at[w] as usize == (0..4).position(|t| v(t) == best).unwrap()
    });
    assert!(first);
}
