//! What lowering makes of common training-step patterns: multi-output fusion of a value
//! with several consumers into its first consumer's kernel, leading-axis sums as GEMMs,
//! and concat operands stored in place.
//! (Their results are checked against the interpreter in `backend_parity.rs`.)

use xenon_compiler::ir::{DType, Graph, NodeId};
use xenon_compiler::lower::lower;
use xenon_runtime::program::Step;

fn loops(steps: &[Step]) -> Vec<usize> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Loop(k) => Some(k.stores.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_momentum_update_is_one_kernel_with_two_outputs() {
    let mut g = Graph::new();
    let v = g.input("v", DType::F32, &[100, 784]).unwrap();
    let grad = g.input("grad", DType::F32, &[100, 784]).unwrap();
    let w = g.input("w", DType::F32, &[100, 784]).unwrap();
    let mu = g.scalar(DType::F32, 0.9).unwrap();
    let lr = g.scalar(DType::F32, 0.1).unwrap();
    let mv = g.mul(mu, v).unwrap();
    let lg = g.mul(lr, grad).unwrap();
    let v2 = g.sub(mv, lg).unwrap();
    let w2 = g.add_(w, v2).unwrap();
    g.set_output("new/v", v2).unwrap();
    g.set_output("new/w", w2).unwrap();
    let l = lower(&g).unwrap();
    assert_eq!(loops(&l.program.steps), vec![2], "{:?}", l.program.steps);
}

/// `h = relu(f(x)); dz = select(f(x) > 0, dy, 0)`: the kernels a value with two readers
/// (as a ReLU's input is needed again for its gradient) lowers to.
fn relu_and_its_mask(f: impl Fn(&mut Graph, NodeId) -> NodeId) -> Vec<usize> {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[128, 100]).unwrap();
    let dy = g.input("dy", DType::F32, &[128, 100]).unwrap();
    let z = f(&mut g, x);
    let zero = g.scalar(DType::F32, 0.0).unwrap();
    let h = g.max(z, zero).unwrap();
    let c = g
        .compare(xenon_compiler::ir::CompareOp::Gt, z, zero)
        .unwrap();
    let dz = g.select(c, dy, zero).unwrap();
    g.set_output("h", h).unwrap();
    g.set_output("dz", dz).unwrap();
    let l = lower(&g).unwrap();
    loops(&l.program.steps)
}

#[test]
fn a_value_with_two_readers_is_stored_by_the_first_or_computed_again_when_cheap() {
    // z = tanh(x) is needed again later: the ReLU's kernel stores it as a second output
    // instead of a pass of its own.
    let kept = relu_and_its_mask(|g, x| g.tanh(x).unwrap());
    assert_eq!(kept, vec![2, 1]);
    // z = x + b is one addition: both kernels compute it from x and b, and it is never
    // written.
    let again = relu_and_its_mask(|g, x| {
        let b = g.input("b", DType::F32, &[100]).unwrap();
        g.add_(x, b).unwrap()
    });
    assert_eq!(again, vec![1, 1]);
}

#[test]
fn leading_axis_sums_are_matrix_vector_products() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1024, 2048]).unwrap();
    let s = g.sum(x, &[0], false).unwrap();
    let r = g.sum(x, &[1], false).unwrap();
    g.set_output("s", s).unwrap();
    g.set_output("r", r).unwrap();
    let l = lower(&g).unwrap();
    let gemms: Vec<(usize, usize, usize)> = l
        .program
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Gemm(g) => Some((g.m, g.n, g.k)),
            _ => None,
        })
        .collect();
    // The column sum is 1ᵀ·X; the row sum (contiguous axis) stays a loop kernel.
    assert_eq!(gemms, vec![(1, 2048, 1024)]);
    assert_eq!(loops(&l.program.steps).len(), 1);
}

#[test]
fn the_memory_plan_keeps_the_buffers_of_interleaved_pairs_apart() {
    // relu(x) dies in the unfold, so without the pair rule its memory could hold the
    // product's output, which the CPU executor writes image by image between unfolds.
    use xenon_compiler::ir::Window;
    use xenon_runtime::cpu::interleave::interleaving;
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[8, 16, 20, 20]).unwrap();
    let w = g.input("w", DType::F32, &[8, 400]).unwrap();
    let zero = g.scalar(DType::F32, 0.0).unwrap();
    let r = g.max(x, zero).unwrap();
    let cols = g.im2col(r, &Window::new([5, 5])).unwrap();
    let y = g.matmul(w, cols, false, false).unwrap();
    g.set_output("y", y).unwrap();
    let p = lower(&g).unwrap().program;
    let pairs: Vec<usize> = (0..p.steps.len())
        .filter(|&s| interleaving(&p, s).is_some())
        .collect();
    assert_eq!(pairs.len(), 1, "{:?}", p.steps);
    let s = pairs[0];
    let mut touched: Vec<usize> = p.steps[s..s + 2]
        .iter()
        .flat_map(|st| {
            let (r, w) = st.buffers();
            r.into_iter().chain(w)
        })
        .filter(|&b| matches!(p.buffers[b].kind, xenon_runtime::program::BufferKind::Temp))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    assert_eq!(touched.len(), 3, "relu(x), the columns and the product");
    for &a in &touched {
        for &b in &touched {
            let (ra, rb) = (&p.buffers[a], &p.buffers[b]);
            let apart = ra.offset + ra.bytes() <= rb.offset || rb.offset + rb.bytes() <= ra.offset;
            assert!(a == b || apart, "buffers {a} and {b} share memory");
        }
    }
}

#[test]
fn concat_operands_are_stored_in_place_and_copied_only_into_a_second_concat() {
    // Three step outputs h_t = tanh(x_t), each read by a sequence concat (through a
    // reshape), a stacking concat and a product: each is stored by its own kernel into the
    // stack and copied into the sequence; the stack copies nothing.
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[3, 4, 5]).unwrap();
    let w = g.input("w", DType::F32, &[5, 5]).unwrap();
    let mut hs = Vec::new();
    let mut steps = Vec::new();
    for t in 0..3 {
        let xt = g.slice(x, &[t, 0, 0], &[t + 1, 4, 5], &[1, 1, 1]).unwrap();
        let xt = g.reshape(xt, &[4, 5]).unwrap();
        let h = g.tanh(xt).unwrap();
        let p = g.matmul(h, w, false, false).unwrap();
        g.set_output(&format!("p{t}"), p).unwrap();
        steps.push(g.reshape(h, &[4, 1, 5]).unwrap());
        hs.push(h);
    }
    let seq = g.concat(&steps, 1).unwrap();
    let stacked = g.concat(&hs, 0).unwrap();
    g.set_output("seq", seq).unwrap();
    g.set_output("stacked", stacked).unwrap();
    let l = lower(&g).unwrap();
    let names: Vec<&str> = l
        .program
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Loop(k) => Some(k.name.as_str()),
            _ => None,
        })
        .collect();
    let seq_copies = names
        .iter()
        .filter(|n| **n == format!("concat_{}", seq.0))
        .count();
    let stack_copies = names
        .iter()
        .filter(|n| **n == format!("concat_{}", stacked.0))
        .count();
    assert_eq!((seq_copies, stack_copies), (3, 0), "{names:?}");
    // The tanh kernels write the stack's buffer.
    let tanh_writes: Vec<usize> = l
        .program
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Loop(k) if k.name.starts_with("tanh") => {
                Some(k.args[k.stores[0].access.arg].buffer)
            }
            _ => None,
        })
        .collect();
    assert_eq!(tanh_writes.len(), 3, "{names:?}");
    assert!(
        tanh_writes.iter().all(|&b| b == tanh_writes[0]),
        "{tanh_writes:?}"
    );
}
