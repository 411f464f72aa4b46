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
        })],
        outputs: vec![("c".into(), 2)],
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
