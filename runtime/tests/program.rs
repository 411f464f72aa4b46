//! `Program::validate` rejects GEMM steps that would write where they read.

use xenon_runtime::DType;
use xenon_runtime::program::{
    BufferDecl, BufferKind, GemmStep, MatView, MemoryPlan, Program, ProgramError, Step,
};

fn temp(len: usize, offset: usize) -> BufferDecl {
    BufferDecl {
        dtype: DType::F32,
        len,
        kind: BufferKind::Temp,
        offset,
        node: None,
    }
}

fn view(buffer: usize) -> MatView {
    MatView {
        buffer,
        offset: 0,
        row_stride: 4,
        col_stride: 1,
        batch_stride: 0,
    }
}

/// A 4×4·4×4 product over three temporaries at the given arena offsets (bytes).
fn product(offsets: [usize; 3]) -> Program {
    Program {
        buffers: offsets.iter().map(|&o| temp(16, o)).collect(),
        steps: vec![Step::Gemm(GemmStep {
            dtype: DType::F32,
            m: 4,
            n: 4,
            k: 4,
            batch: 1,
            a: view(0),
            b: view(1),
            c: view(2),
            sum_batch: false,
        })],
        outputs: vec![("c".into(), 2)],
        updates: vec![],
        plan: MemoryPlan {
            arena_bytes: 192,
            naive_bytes: 192,
            in_place: 0,
        },
    }
}

#[test]
fn disjoint_operands_are_accepted() {
    product([0, 64, 128]).validate().unwrap();
}

#[test]
fn an_output_over_an_operand_is_rejected() {
    for offsets in [[0, 64, 0], [0, 64, 96], [0, 100, 64]] {
        match product(offsets).validate() {
            Err(ProgramError::Step { step: 0, reason }) => {
                assert!(reason.contains("overlaps its operand"), "{reason}")
            }
            other => panic!("{offsets:?}: {other:?}"),
        }
    }
}

// ------------------------------------------------------------------------------------
// Everything the executor trusts `validate` for is rejected with an error that names it.

use xenon_runtime::kernel::{Access, Instr, KernelArg, LoopKernel, Store};
use xenon_runtime::program::LibraryStep;

fn input(len: usize, name: &str) -> BufferDecl {
    BufferDecl {
        dtype: DType::F32,
        len,
        kind: BufferKind::Input { name: name.into() },
        offset: 0,
        node: None,
    }
}

/// `y[i] = x[i]` over 8 elements, from buffer `from` into buffer `to`.
fn copy_kernel(from: usize, to: usize) -> LoopKernel {
    LoopKernel {
        name: "copy".into(),
        shape: vec![8],
        args: vec![
            KernelArg {
                buffer: from,
                dtype: DType::F32,
                len: 8,
            },
            KernelArg {
                buffer: to,
                dtype: DType::F32,
                len: 8,
            },
        ],
        body: vec![Instr::Load(Access {
            arg: 0,
            offset: 0,
            strides: vec![1],
        })],
        reduce: None,
        stores: vec![Store {
            access: Access {
                arg: 1,
                offset: 0,
                strides: vec![1],
            },
            value: 0,
        }],
    }
}

/// An input `x` (buffer 0) and two temporaries of 8 f32 at arena offsets 0 and 32
/// (buffers 1, 2), with `steps`.
fn with_steps(steps: Vec<Step>) -> Program {
    Program {
        buffers: vec![input(8, "x"), temp(8, 0), temp(8, 32)],
        steps,
        outputs: vec![("y".into(), 1)],
        updates: vec![],
        plan: MemoryPlan {
            arena_bytes: 64,
            naive_bytes: 64,
            in_place: 0,
        },
    }
}

fn rejected(p: &Program, words: &str) {
    match p.validate() {
        Err(e) => assert!(e.to_string().contains(words), "{e} (expected {words:?})"),
        Ok(()) => panic!("accepted; expected an error containing {words:?}"),
    }
}

#[test]
fn a_well_formed_program_is_accepted() {
    with_steps(vec![Step::Loop(copy_kernel(0, 1))])
        .validate()
        .unwrap();
}

#[test]
fn buffers_outside_the_arena_or_with_wrong_constants_are_rejected() {
    let mut p = with_steps(vec![]);
    p.buffers[2].offset = 40;
    rejected(&p, "buffer 2: outside the arena");
    let mut p = with_steps(vec![]);
    p.buffers[2].kind = BufferKind::Const {
        values: vec![1.0, 2.0],
    };
    rejected(&p, "buffer 2: 2 values for 8 elements");
}

#[test]
fn out_of_bounds_kernel_accesses_are_rejected() {
    let mut k = copy_kernel(0, 1);
    k.stores[0].access.offset = 1;
    rejected(&with_steps(vec![Step::Loop(k)]), "kernel 'copy'");
    let mut k = copy_kernel(0, 1);
    if let Instr::Load(a) = &mut k.body[0] {
        a.strides = vec![2];
    }
    rejected(&with_steps(vec![Step::Loop(k)]), "kernel 'copy'");
}

#[test]
fn wrong_dtypes_and_lengths_and_missing_buffers_are_rejected() {
    let mut k = copy_kernel(0, 1);
    k.args[0].dtype = DType::F64;
    rejected(
        &with_steps(vec![Step::Loop(k)]),
        "step 0: buffer 0 is f32, expected f64",
    );
    let mut k = copy_kernel(0, 1);
    k.args[1].len = 4;
    rejected(
        &with_steps(vec![Step::Loop(k)]),
        "says 4 elements, the buffer has 8",
    );
    rejected(
        &with_steps(vec![Step::Loop(copy_kernel(7, 1))]),
        "buffer 7 does not exist",
    );
}

#[test]
fn writes_to_inputs_and_constants_are_rejected() {
    rejected(
        &with_steps(vec![Step::Loop(copy_kernel(1, 0))]),
        "writes buffer 0, which is not a temporary",
    );
    let mut p = with_steps(vec![Step::Loop(copy_kernel(0, 2))]);
    p.buffers[2].kind = BufferKind::Const { values: vec![0.0] };
    rejected(&p, "writes buffer 2, which is not a temporary");
    let mut p = product([0, 64, 128]);
    p.buffers[2].kind = BufferKind::Input { name: "c".into() };
    rejected(&p, "writes buffer 2, which is not a temporary");
}

#[test]
fn matrix_views_outside_their_buffers_are_rejected() {
    let mut p = product([0, 64, 128]);
    if let Step::Gemm(g) = &mut p.steps[0] {
        g.b.offset = 1;
    }
    rejected(&p, "matrix view of buffer 1 is outside it");
    let mut p = product([0, 64, 128]);
    if let Step::Gemm(g) = &mut p.steps[0] {
        g.a.row_stride = -4;
    }
    rejected(&p, "matrix view of buffer 0 is outside it");
}

#[test]
fn library_steps_with_short_buffers_are_rejected() {
    let mut p = with_steps(vec![Step::Library(LibraryStep::Gather {
        data: 0,
        indices: 2,
        out: 1,
        dtype: DType::F32,
        rows: 2,
        row_len: 4,
    })]);
    p.buffers[2].dtype = DType::I32;
    p.buffers[2].len = 2;
    p.validate().unwrap();
    if let Step::Library(LibraryStep::Gather { row_len, .. }) = &mut p.steps[0] {
        *row_len = 8;
    }
    rejected(&p, "buffer 0 has 8 elements, needs 16");
}

#[test]
fn steps_storing_into_overlapping_outputs_are_rejected() {
    // Two stores of one kernel into different temporaries that share arena bytes.
    let mut k = copy_kernel(0, 1);
    k.args.push(KernelArg {
        buffer: 2,
        dtype: DType::F32,
        len: 8,
    });
    k.stores.push(Store {
        access: Access {
            arg: 2,
            offset: 0,
            strides: vec![1],
        },
        value: 0,
    });
    let mut p = with_steps(vec![Step::Loop(k)]);
    p.validate().unwrap();
    p.buffers[2].offset = 16;
    rejected(&p, "step 0: its outputs, buffers 1 and 2, overlap");
}

#[test]
fn updates_must_name_an_output_and_a_matching_input() {
    let mut p = with_steps(vec![Step::Loop(copy_kernel(0, 1))]);
    p.updates = vec![("y".into(), "x".into())];
    p.validate().unwrap();
    p.updates = vec![("y".into(), "nope".into())];
    rejected(&p, "update \"y\": no input named \"nope\"");
    p.updates = vec![("z".into(), "x".into())];
    rejected(&p, "update \"z\": no such output");
    p.updates = vec![("y".into(), "x".into())];
    p.buffers[0].len = 4;
    rejected(&p, "cannot update \"x\"");
}
