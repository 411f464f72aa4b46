//! Every invalid graph is an error (never a panic) whose kind names the broken rule and
//! whose text names the op, the layer scope and the operand types; a failed builder call
//! leaves the graph unchanged.

use xenon_compiler::ir::{
    BinaryOp, CompareOp, DType, ErrorKind, Graph, GraphError, NodeId, Op, TensorType, Window,
};

/// Runs `build` on `g`, expecting an error of `kind` whose text is `message`, and checks
/// that the graph did not change.
#[track_caller]
fn fails(
    g: &mut Graph,
    kind: ErrorKind,
    message: &str,
    build: impl FnOnce(&mut Graph) -> Result<NodeId, GraphError>,
) -> GraphError {
    let before = g.clone();
    let e = match build(g) {
        Ok(id) => panic!("accepted: {}", g.node_text(id)),
        Err(e) => e,
    };
    assert_eq!(e.to_string(), message);
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(*g, before, "a failed call changed the graph");
    e
}

/// A graph with `a: f32[2, 3]`, `b: f32[3, 4]`, `v: f64[2, 3]`, `i: i32[4]`.
fn leaves() -> (Graph, [NodeId; 4]) {
    let mut g = Graph::new();
    let a = g.input("a", DType::F32, &[2, 3]).unwrap();
    let b = g.parameter("b", DType::F32, &[3, 4]).unwrap();
    let v = g.input("v", DType::F64, &[2, 3]).unwrap();
    let i = g.input("i", DType::I32, &[4]).unwrap();
    (g, [a, b, v, i])
}

#[test]
fn matmul_inner_dimensions_differ() {
    let (mut g, [a, b, ..]) = leaves();
    let e = fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "matmul: inner dimensions differ: 2 vs 3 (operands: f32[2, 3], f32[3, 4])",
        |g| g.matmul(a, b, true, false),
    );
    assert_eq!(e.op, "matmul");
    assert_eq!(
        e.operands,
        vec![
            TensorType::new(DType::F32, [2, 3]),
            TensorType::new(DType::F32, [3, 4])
        ]
    );
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "matmul: inner dimensions differ: 3 vs 4 (operands: f32[2, 3], f32[3, 4])",
        |g| g.matmul(a, b, false, true),
    );
}

#[test]
fn matmul_batch_dimensions_differ() {
    let mut g = Graph::new();
    let a = g.input("a", DType::F32, &[2, 3, 4]).unwrap();
    let b = g.input("b", DType::F32, &[5, 4, 6]).unwrap();
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "matmul: batch dimensions differ: [2] vs [5] (operands: f32[2, 3, 4], f32[5, 4, 6])",
        |g| g.matmul(a, b, false, false),
    );
    let c = g.input("c", DType::F32, &[4]).unwrap();
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "matmul: operands need rank 2 or more (operands: f32[2, 3, 4], f32[4])",
        |g| g.matmul(a, c, false, false),
    );
    let i = g.input("i", DType::I32, &[4, 4]).unwrap();
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "matmul: needs a floating-point operand, got i32 (operands: i32[4, 4], i32[4, 4])",
        |g| g.matmul(i, i, false, false),
    );
}

#[test]
fn axes_out_of_range() {
    let (mut g, [a, ..]) = leaves();
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "reduce_sum: axis 2 is out of range for rank 2 (operands: f32[2, 3])",
        |g| g.sum(a, &[0, 2], false),
    );
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "argmax: axis 2 is out of range for rank 2 (operands: f32[2, 3])",
        |g| g.argmax(a, 2, true),
    );
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "permute: [0, 2] is not a permutation of 0..2 (operands: f32[2, 3])",
        |g| g.permute(a, &[0, 2]),
    );
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "permute: [1, 1] is not a permutation of 0..2 (operands: f32[2, 3])",
        |g| g.permute(a, &[1, 1]),
    );
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "permute: permutation [0] has 1 entries for rank 2 (operands: f32[2, 3])",
        |g| g.permute(a, &[0]),
    );
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "concat: axis 2 is out of range for rank 2 (operands: f32[2, 3], f32[2, 3])",
        |g| g.concat(&[a, a], 2),
    );
    let s = g.scalar(DType::F32, 1.0).unwrap();
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "permute: transpose needs rank 2 or more (operands: f32[])",
        |g| g.transpose(s),
    );
}

#[test]
fn repeated_reduce_axis() {
    let (mut g, [a, ..]) = leaves();
    fails(
        &mut g,
        ErrorKind::AxisOutOfRange,
        "reduce_max: axis 1 is repeated (operands: f32[2, 3])",
        |g| g.reduce_max(a, &[1, 0, 1], true),
    );
}

#[test]
fn dtype_mismatches() {
    let (mut g, [a, b, v, i]) = leaves();
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "add: operand dtypes differ: f32 vs f64 (operands: f32[2, 3], f64[2, 3])",
        |g| g.add_(a, v),
    );
    // Broadcastable shapes: the dtype check comes before any broadcast node is added.
    let row = g.input("row", DType::F64, &[3]).unwrap();
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "lt: operand dtypes differ: f32 vs f64 (operands: f32[2, 3], f64[2, 3])",
        |g| g.compare(CompareOp::Lt, a, row),
    );
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "exp: needs a floating-point operand, got i32 (operands: i32[4])",
        |g| g.exp(i),
    );
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "div: needs a floating-point operand, got i32 (operands: i32[4], i32[4])",
        |g| g.div(i, i),
    );
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "reduce_mean: needs a floating-point operand, got i32 (operands: i32[4])",
        |g| g.mean(i, &[0], false),
    );
    let fi = g.input("fi", DType::F32, &[2]).unwrap();
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "gather: indices must be i32, got f32 (operands: f32[3, 4], f32[2])",
        |g| g.gather(b, fi),
    );
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "scatter_add: indices must be i32, got f32 (operands: f32[2], f32[2])",
        |g| g.scatter_add(fi, fi, 3),
    );
    let mask = g.cast(a, DType::I32).unwrap();
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "select: operand dtypes differ: f32 vs f64 (operands: i32[2, 3], f32[2, 3], f64[2, 3])",
        |g| g.select(mask, a, v),
    );
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "concat: operand dtypes differ: f32 vs f64 (operands: f32[2, 3], f64[2, 3])",
        |g| g.concat(&[a, v], 0),
    );
    let counter = g.scalar(DType::F32, 0.0).unwrap();
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "random_uniform: the counter operand must be an i32 scalar, got f32[] (operands: f32[])",
        |g| g.random_uniform(DType::F32, &[2], 7, 0.0, 1.0, Some(counter)),
    );
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "random_normal: needs a floating-point operand, got i32",
        |g| g.random_normal(DType::I32, &[2], 7, 0.0, 1.0, None),
    );
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "im2col: needs a floating-point operand, got i32 (operands: i32[4])",
        |g| g.im2col(i, &Window::new(vec![1])),
    );
}

#[test]
fn bad_reshape() {
    let (mut g, [a, ..]) = leaves();
    fails(
        &mut g,
        ErrorKind::BadReshape,
        "reshape: cannot reshape 6 elements [2, 3] into 5 elements [5] (operands: f32[2, 3])",
        |g| g.reshape(a, &[5]),
    );
    fails(
        &mut g,
        ErrorKind::BadReshape,
        "reshape: cannot reshape 6 elements [2, 3] into 12 elements [3, 2, 2] (operands: f32[2, 3])",
        |g| g.reshape(a, &[3, 2, 2]),
    );
}

#[test]
fn operands_that_do_not_broadcast() {
    let (mut g, [a, b, ..]) = leaves();
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "mul: operand shapes do not broadcast together (operands: f32[2, 3], f32[3, 4])",
        |g| g.mul(a, b),
    );
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "broadcast: cannot broadcast [2, 3] to [4, 3] (operands: f32[2, 3])",
        |g| g.broadcast_to(a, &[4, 3]),
    );
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "broadcast: cannot broadcast [2, 3] to [3] (operands: f32[2, 3])",
        |g| g.broadcast_to(a, &[3]),
    );
    // The primitive op itself does not broadcast.
    let row = g.input("row", DType::F32, &[3]).unwrap();
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "sub: operand shapes differ: [2, 3] vs [3] (operands: f32[2, 3], f32[3])",
        |g| {
            g.add(
                Op::Binary {
                    func: BinaryOp::Sub,
                },
                &[a, row],
            )
        },
    );
}

#[test]
fn bad_slice_bounds() {
    let (mut g, [a, ..]) = leaves();
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "slice: axis 1: slice 1..4 step 1 is empty or outside 0..3 (operands: f32[2, 3])",
        |g| g.slice(a, &[0, 1], &[2, 4], &[1, 1]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "slice: axis 0: slice 1..1 step 1 is empty or outside 0..2 (operands: f32[2, 3])",
        |g| g.slice(a, &[1, 0], &[1, 3], &[1, 1]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "slice: axis 1: slice 0..3 step 0 is empty or outside 0..3 (operands: f32[2, 3])",
        |g| g.slice(a, &[0, 0], &[2, 3], &[1, 0]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "slice: start has 1 entries for rank 2 (operands: f32[2, 3])",
        |g| g.slice(a, &[0], &[2, 3], &[1, 1]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "pad: interior has 3 entries for rank 2 (operands: f32[2, 3])",
        |g| g.pad(a, &[0, 0], &[0, 0], &[0, 0, 0], 0.0),
    );
}

#[test]
fn windows_that_do_not_fit() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1, 2, 3, 3]).unwrap();
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "im2col: spatial axis 1: kernel 2 (dilation 3, stride 1) does not fit input 3 with padding 0+0 (operands: f32[1, 2, 3, 3])",
        |g| g.im2col(x, &Window::new(vec![1, 2]).with_dilation(vec![1, 3])),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "im2col: spatial axis 0: kernel 3 (dilation 1, stride 0) does not fit input 3 with padding 0+0 (operands: f32[1, 2, 3, 3])",
        |g| g.im2col(x, &Window::new(vec![3, 3]).with_stride(vec![0, 1])),
    );
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "im2col: a 1-d window needs an operand of rank 3 (N, C, spatial…), got rank 4 (operands: f32[1, 2, 3, 3])",
        |g| g.im2col(x, &Window::new(vec![3])),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "im2col: window stride has 1 entries for 2 spatial axes (operands: f32[1, 2, 3, 3])",
        |g| g.im2col(x, &Window::new(vec![3, 3]).with_stride(vec![1])),
    );
    // Padding makes it fit; folding back needs the matching spatial size.
    let w = Window::new(vec![2, 2]).with_padding(vec![1, 1]);
    let cols = g.im2col(x, &w).unwrap();
    assert_eq!(g.ty(cols).shape, vec![1, 8, 16]);
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "col2im: 16 column positions, but the window gives 25 for spatial size [4, 4] (operands: f32[1, 8, 16])",
        |g| g.col2im(cols, &w, &[4, 4]),
    );
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "col2im: column rows 8 are not a multiple of the kernel size 3 (operands: f32[1, 8, 16])",
        |g| g.col2im(cols, &Window::new(vec![3]), &[3]),
    );
}

#[test]
fn wrong_operand_counts() {
    let (mut g, [a, ..]) = leaves();
    fails(
        &mut g,
        ErrorKind::OperandCount,
        "matmul: expects 2 operand(s), got 1 (operands: f32[2, 3])",
        |g| {
            g.add(
                Op::MatMul {
                    trans_a: false,
                    trans_b: false,
                },
                &[a],
            )
        },
    );
    fails(
        &mut g,
        ErrorKind::OperandCount,
        "select: expects 3 operand(s), got 2 (operands: f32[2, 3], f32[2, 3])",
        |g| g.add(Op::Select, &[a, a]),
    );
    fails(
        &mut g,
        ErrorKind::OperandCount,
        "concat: expects at least one operand",
        |g| g.concat(&[], 0),
    );
    fails(
        &mut g,
        ErrorKind::OperandCount,
        "input: expects 0 operand(s), got 1 (operands: f32[2, 3])",
        |g| {
            g.add_node(
                Op::Input { name: "y".into() },
                &[a],
                Some(TensorType::scalar(DType::F32)),
            )
        },
    );
    let c = g.input("c", DType::I32, &[]).unwrap();
    fails(
        &mut g,
        ErrorKind::OperandCount,
        "random_uniform: expects 0 or 1 operands, got 2 (operands: i32[], i32[])",
        |g| {
            g.add_node(
                Op::RandomUniform {
                    seed: 0,
                    low: 0.0,
                    high: 1.0,
                },
                &[c, c],
                Some(TensorType::scalar(DType::F32)),
            )
        },
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "parameter: needs a declared type",
        |g| g.add(Op::Parameter { name: "p".into() }, &[]),
    );
}

#[test]
fn zero_sized_dimensions() {
    let (mut g, [a, _, _, i]) = leaves();
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "input: zero-sized dimension in shape [2, 0]",
        |g| g.input("z", DType::F32, &[2, 0]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "constant: zero-sized dimension in shape [0]",
        |g| g.constant(DType::F32, &[0], vec![]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "reshape: zero-sized dimension in shape [6, 0] (operands: f32[2, 3])",
        |g| g.reshape(a, &[6, 0]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "broadcast: zero-sized dimension in shape [0, 2, 3] (operands: f32[2, 3])",
        |g| g.broadcast_to(a, &[0, 2, 3]),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "random_normal: zero-sized dimension in shape [0]",
        |g| g.random_normal(DType::F32, &[0], 1, 0.0, 1.0, None),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "scatter_add: rows must be at least 1 (operands: f32[2, 3], i32[4])",
        |g| g.scatter_add(a, i, 0),
    );
    fails(
        &mut g,
        ErrorKind::BadAttribute,
        "constant: constant of shape [2, 3] needs 1 or 6 values, got 2",
        |g| g.constant(DType::F32, &[2, 3], vec![1.0, 2.0]),
    );
}

#[test]
fn duplicate_names() {
    let (mut g, [a, ..]) = leaves();
    fails(
        &mut g,
        ErrorKind::DuplicateName,
        "input: the name \"a\" is already used",
        |g| g.input("a", DType::F64, &[1]),
    );
    fails(
        &mut g,
        ErrorKind::DuplicateName,
        "parameter: the name \"a\" is already used",
        |g| g.parameter("a", DType::F32, &[2, 3]),
    );
    g.set_output("y", a).unwrap();
    let before = g.clone();
    let e = g.set_output("y", a).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateName);
    assert_eq!(e.to_string(), "output: output \"y\" is already set");
    assert_eq!(g, before);
}

#[test]
fn unknown_node_ids() {
    let (mut g, [a, ..]) = leaves();
    let ghost = NodeId(99);
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "exp: operand %99 does not exist",
        |g| g.exp(ghost),
    );
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "matmul: operand %99 does not exist (operands: f32[2, 3])",
        |g| g.matmul(a, ghost, false, false),
    );
    // The broadcasting builders look the operands up before anything else.
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "add: operand %99 does not exist (operands: f32[2, 3])",
        |g| g.add_(a, ghost),
    );
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "select: operand %99 does not exist",
        |g| g.select(ghost, a, a),
    );
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "permute: operand %99 does not exist",
        |g| g.transpose(ghost),
    );
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "reshape: operand %99 does not exist",
        |g| g.reshape(ghost, &[6]),
    );
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "concat: operand %99 does not exist (operands: f32[2, 3])",
        |g| g.concat(&[a, ghost], 0),
    );
    let e = g.set_output("y", ghost).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnknownNode);
    assert_eq!(e.to_string(), "output: %99 does not exist");
    assert!(g.outputs().is_empty());
}

#[test]
fn errors_name_the_layer_scope() {
    let (mut g, [a, b, v, i]) = leaves();
    let e = fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "matmul in layer 'dense1': inner dimensions differ: 3 vs 4 (operands: f32[2, 3], f32[3, 4])",
        |g| g.in_scope("dense1", |g| g.matmul(a, b, false, true)),
    );
    assert_eq!(e.scope, "dense1");
    fails(
        &mut g,
        ErrorKind::DTypeMismatch,
        "add in layer 'dense1': operand dtypes differ: f32 vs f64 (operands: f32[2, 3], f64[2, 3])",
        |g| g.in_scope("dense1", |g| g.add_(a, v)),
    );
    fails(
        &mut g,
        ErrorKind::ShapeMismatch,
        "add in layer 'dense1': operand shapes do not broadcast together (operands: f32[2, 3], i32[4])",
        |g| g.in_scope("dense1", |g| g.add_(a, i)),
    );
    fails(
        &mut g,
        ErrorKind::DuplicateName,
        "parameter in layer 'dense1': the name \"b\" is already used",
        |g| g.in_scope("dense1", |g| g.parameter("b", DType::F32, &[1])),
    );
    fails(
        &mut g,
        ErrorKind::UnknownNode,
        "exp in layer 'dense1': operand %99 does not exist",
        |g| g.in_scope("dense1", |g| g.exp(NodeId(99))),
    );
    fails(
        &mut g,
        ErrorKind::BadReshape,
        "reshape in layer 'net/dense1': cannot reshape 6 elements [2, 3] into 7 elements [7] (operands: f32[2, 3])",
        |g| g.in_scope("net", |g| g.in_scope("dense1", |g| g.reshape(a, &[7]))),
    );
    // The scope ends with the closure.
    fails(
        &mut g,
        ErrorKind::BadReshape,
        "reshape: cannot reshape 6 elements [2, 3] into 7 elements [7] (operands: f32[2, 3])",
        |g| g.reshape(a, &[7]),
    );
    assert_eq!(g.scope(), "");
}
