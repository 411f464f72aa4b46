//! JSON serialization of graphs: a property test over random graphs that use every op kind,
//! a mutation test (bad documents give errors, never panics), and one test per malformed
//! document.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use std::collections::BTreeSet;
use xenon_compiler::ir::{
    BinaryOp, CompareOp, DType, ErrorKind, Graph, GraphDef, GraphError, MAX_TENSOR_BYTES, NodeId,
    Op, ReduceOp, TensorType, UnaryOp, Window,
};

// ----- random graphs ----------------------------------------------------------------------

/// One random construction step: which kind of node to try, and the random choices that
/// fill in its operands and attributes.
#[derive(Clone, Debug)]
struct Step {
    kind: u8,
    picks: Vec<u32>,
    value: f64,
    value2: f64,
    scope: usize,
}

/// The number of step kinds in [`try_step`].
const KINDS: u8 = 22;

/// Scopes a step may be built in (each entry is a stack of nested scopes).
const SCOPES: &[&[&str]] = &[
    &[],
    &[],
    &[],
    &["dense1"],
    &["conv", "2"],
    &["odd \"layer\" ü/x"],
];

/// f64 values that stress the encoding: non-finite values, signed zeros, extremes,
/// subnormals and arbitrary normal values.
fn special_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(0.1),
        -1e3..1e3f64,
        proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..KINDS,
        prop::collection::vec(any::<u32>(), 16),
        special_f64(),
        special_f64(),
        0..SCOPES.len(),
    )
        .prop_map(|(kind, picks, value, value2, scope)| Step {
            kind,
            picks,
            value,
            value2,
            scope,
        })
}

/// The random input of one graph: its steps and its output picks.
fn recipe() -> impl Strategy<Value = (Vec<Step>, Vec<u32>)> {
    (
        prop::collection::vec(step(), 0..28),
        prop::collection::vec(any::<u32>(), 0..4),
    )
}

/// A cursor over a step's random numbers.
struct Picks<'a> {
    v: &'a [u32],
    i: usize,
}

impl Picks<'_> {
    /// A number in `0..n` (`n` > 0).
    fn pick(&mut self, n: usize) -> usize {
        let round = (self.i / self.v.len()) as u32;
        let x = self.v[self.i % self.v.len()]
            .wrapping_add(round.wrapping_mul(0x9E37_79B9))
            .rotate_left(round);
        self.i += 1;
        x as usize % n
    }

    fn flag(&mut self) -> bool {
        self.pick(2) == 1
    }

    /// A u64 covering the full range (seeds).
    fn u64(&mut self) -> u64 {
        let hi = self.pick(1 << 16) as u64;
        let mid = self.pick(1 << 16) as u64;
        let lo = self.pick(1 << 16) as u64;
        match self.pick(4) {
            0 => u64::MAX - lo,
            1 => lo,
            _ => (hi << 48) | (mid << 32) | (lo << 16) | self.pick(1 << 16) as u64,
        }
    }

    fn float_dtype(&mut self) -> DType {
        [DType::F32, DType::F64][self.pick(2)]
    }

    /// f32 or f64 mostly, sometimes i32.
    fn dtype(&mut self) -> DType {
        [DType::F32, DType::F64, DType::F32, DType::F64, DType::I32][self.pick(5)]
    }

    /// A small shape of rank `lo..=hi` with dimensions 1..=4.
    fn shape(&mut self, lo: usize, hi: usize) -> Vec<usize> {
        let rank = lo + self.pick(hi - lo + 1);
        (0..rank).map(|_| 1 + self.pick(4)).collect()
    }

    /// One of the candidates, if there are any.
    fn choose<T: Copy>(&mut self, xs: &[T]) -> Option<T> {
        (!xs.is_empty()).then(|| xs[self.pick(xs.len())])
    }

    /// A random permutation of `0..n`.
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.pick(i + 1));
        }
        p
    }
}

/// Builder state: unique names for new leaves.
struct Builder {
    names: usize,
}

impl Builder {
    fn name(&mut self, base: &str, p: &mut Picks) -> String {
        self.names += 1;
        let decor = ["", "\"q\"", " ü✓", "\\n", "\u{1}"][p.pick(5)];
        format!("{base}{}{decor}", self.names)
    }

    fn input(&mut self, g: &mut Graph, p: &mut Picks, dtype: DType, shape: &[usize]) -> NodeId {
        let name = self.name("x", p);
        g.input(&name, dtype, shape)
            .expect("a fresh input is valid")
    }

    fn parameter(&mut self, g: &mut Graph, p: &mut Picks, dtype: DType, shape: &[usize]) -> NodeId {
        let name = self.name("W", p);
        g.parameter(&name, dtype, shape)
            .expect("a fresh parameter is valid")
    }

    /// An existing node whose type satisfies `ok`, or (sometimes, or when there is none) a
    /// new input of type `fresh`.
    fn node(
        &mut self,
        g: &mut Graph,
        p: &mut Picks,
        ok: impl Fn(&TensorType) -> bool,
        fresh: impl FnOnce(&mut Picks) -> TensorType,
    ) -> NodeId {
        let found: Vec<NodeId> = g.ids().filter(|&id| ok(g.ty(id))).collect();
        match p.choose(&found) {
            Some(id) if p.pick(5) != 0 => id,
            _ => {
                let t = fresh(p);
                self.input(g, p, t.dtype, &t.shape)
            }
        }
    }

    /// Any node (a new f32/f64 input when the graph is empty).
    fn any(&mut self, g: &mut Graph, p: &mut Picks) -> NodeId {
        self.node(
            g,
            p,
            |_| true,
            |p| TensorType::new(p.dtype(), p.shape(0, 3)),
        )
    }

    /// An i32 index tensor.
    fn indices(&mut self, g: &mut Graph, p: &mut Picks) -> NodeId {
        self.node(
            g,
            p,
            |t| t.dtype == DType::I32 && t.rank() <= 2,
            |p| TensorType::new(DType::I32, p.shape(0, 2)),
        )
    }
}

/// The values of a constant of `numel` elements: a splat, one per element, or (sometimes)
/// a wrong count that the builder rejects.
fn literal(p: &mut Picks, numel: usize, a: f64, b: f64) -> Vec<f64> {
    match p.pick(6) {
        0 | 1 => vec![a],
        5 => vec![a; numel + 1],
        _ => (0..numel)
            .map(|i| match p.pick(5) {
                0 => a,
                1 => b,
                2 => -0.0,
                3 => i as f64 * 0.25 - 1.0,
                _ => f64::from(p.pick(1000) as u32) * 1e-3,
            })
            .collect(),
    }
}

/// Tries one step; errors from the builder (invalid candidates) are returned and ignored by
/// the caller.
fn try_step(b: &mut Builder, g: &mut Graph, s: &Step) -> Result<NodeId, GraphError> {
    let p = &mut Picks { v: &s.picks, i: 0 };
    match s.kind {
        0 => {
            let (dtype, shape) = (p.dtype(), p.shape(0, 4));
            Ok(b.input(g, p, dtype, &shape))
        }
        1 => {
            let (dtype, shape) = (p.float_dtype(), p.shape(0, 4));
            Ok(b.parameter(g, p, dtype, &shape))
        }
        2 => {
            let (dtype, shape) = (p.dtype(), p.shape(0, 3));
            let numel = shape.iter().product();
            let values = literal(p, numel, s.value, s.value2);
            g.constant(dtype, &shape, values)
        }
        3 => {
            let (dtype, shape, seed) = (p.float_dtype(), p.shape(0, 3), p.u64());
            let counter = if p.flag() {
                Some(b.node(
                    g,
                    p,
                    |t| t.dtype == DType::I32 && t.rank() == 0,
                    |_| TensorType::scalar(DType::I32),
                ))
            } else {
                None
            };
            if p.flag() {
                g.random_uniform(dtype, &shape, seed, s.value, s.value2, counter)
            } else {
                g.random_normal(dtype, &shape, seed, s.value, s.value2, counter)
            }
        }
        4 => {
            let x = b.any(g, p);
            let func = UnaryOp::ALL[p.pick(UnaryOp::ALL.len())];
            g.unary(func, x)
        }
        5 | 6 => {
            let x = b.any(g, p);
            let tx = g.ty(x).clone();
            let y = b.node(
                g,
                p,
                |t| t.dtype == tx.dtype,
                |p| {
                    let mut shape = tx.shape.clone();
                    for d in shape.iter_mut() {
                        if p.pick(3) == 0 {
                            *d = 1;
                        }
                    }
                    let drop = p.pick(shape.len() + 1);
                    TensorType::new(tx.dtype, shape[drop..].to_vec())
                },
            );
            let (x, y) = if p.flag() { (x, y) } else { (y, x) };
            if s.kind == 5 {
                g.binary(BinaryOp::ALL[p.pick(BinaryOp::ALL.len())], x, y)
            } else {
                g.compare(CompareOp::ALL[p.pick(CompareOp::ALL.len())], x, y)
            }
        }
        7 => {
            let cond = b.any(g, p);
            let a = b.any(g, p);
            let ta = g.ty(a).clone();
            let c = b.node(g, p, |t| *t == ta, |_| ta.clone());
            g.select(cond, a, c)
        }
        8 if p.pick(4) == 0 => {
            let x = b.any(g, p);
            g.scale_grad(x, [0.0, 0.25, -1.5, 1.0][p.pick(4)])
        }
        8 => {
            let x = b.any(g, p);
            g.cast(x, p.dtype())
        }
        9 => {
            let x = b.any(g, p);
            let rank = g.ty(x).rank();
            let mut axes: Vec<usize> = p.permutation(rank);
            axes.truncate(p.pick(rank + 1));
            if p.pick(8) == 0 {
                axes.push(p.pick(rank + 2)); // sometimes out of range or repeated
            }
            let func = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Mean][p.pick(3)];
            g.reduce(func, x, &axes, p.flag())
        }
        10 => {
            let x = b.any(g, p);
            let rank = g.ty(x).rank();
            g.argmax(x, p.pick(rank + 1), p.flag())
        }
        11 => {
            let x = b.any(g, p);
            // Regroup the prime factors of the element count, with some 1s.
            let mut n = g.ty(x).numel();
            let mut factors = Vec::new();
            let mut f = 2;
            while n > 1 {
                while n.is_multiple_of(f) {
                    factors.push(f);
                    n /= f;
                }
                f += 1;
            }
            let mut shape: Vec<usize> = Vec::new();
            for f in factors {
                match shape.last_mut() {
                    Some(last) if p.flag() => *last *= f,
                    _ => shape.push(f),
                }
            }
            for _ in 0..p.pick(3) {
                let at = p.pick(shape.len() + 1);
                shape.insert(at, 1);
            }
            if p.pick(10) == 0 {
                shape.push(2); // a wrong element count
            }
            g.reshape(x, &shape)
        }
        12 => {
            let x = b.any(g, p);
            let perm = p.permutation(g.ty(x).rank());
            g.permute(x, &perm)
        }
        13 => {
            let x = b.any(g, p);
            let mut shape: Vec<usize> = (0..p.pick(3)).map(|_| 1 + p.pick(3)).collect();
            for &d in &g.ty(x).shape {
                shape.push(if d == 1 && p.flag() { 1 + p.pick(4) } else { d });
            }
            g.broadcast_to(x, &shape)
        }
        14 => {
            let x = b.any(g, p);
            let (mut start, mut end, mut step) = (Vec::new(), Vec::new(), Vec::new());
            for &d in &g.ty(x).shape {
                let s0 = p.pick(d);
                start.push(s0);
                end.push(s0 + 1 + p.pick(d - s0));
                step.push(1 + p.pick(3));
            }
            if p.pick(10) == 0
                && let Some(e) = end.first_mut()
            {
                *e += 1; // out of bounds
            }
            g.slice(x, &start, &end, &step)
        }
        15 => {
            let x = b.any(g, p);
            let rank = g.ty(x).rank();
            let low: Vec<usize> = (0..rank).map(|_| p.pick(3)).collect();
            let high: Vec<usize> = (0..rank).map(|_| p.pick(3)).collect();
            let interior: Vec<usize> = (0..rank).map(|_| p.pick(3)).collect();
            g.pad(x, &low, &high, &interior, s.value)
        }
        16 => {
            let x = b.any(g, p);
            let tx = g.ty(x).clone();
            let axis = p.pick(tx.rank().max(1));
            let fits = |t: &TensorType| {
                t.dtype == tx.dtype
                    && t.rank() == tx.rank()
                    && (0..t.rank()).all(|i| i == axis || t.shape[i] == tx.shape[i])
            };
            let mut xs = vec![x];
            for _ in 0..p.pick(3) {
                let y = b.node(g, p, fits, |p| {
                    let mut t = tx.clone();
                    if axis < t.rank() {
                        t.shape[axis] = 1 + p.pick(3);
                    }
                    t
                });
                xs.push(y);
            }
            g.concat(&xs, axis)
        }
        17 => {
            let a = b.node(
                g,
                p,
                |t| t.dtype.is_float() && t.rank() >= 2,
                |p| TensorType::new(p.float_dtype(), p.shape(2, 4)),
            );
            let (ta, tb) = (p.flag(), p.flag());
            let t = g.ty(a).clone();
            let r = t.rank();
            let k = if ta { t.shape[r - 2] } else { t.shape[r - 1] };
            let n = 1 + p.pick(4);
            let mut shape = if p.flag() {
                t.shape[..r - 2].to_vec()
            } else {
                Vec::new()
            };
            shape.extend(if tb { [n, k] } else { [k, n] });
            let other = if p.pick(4) == 0 {
                b.any(g, p) // usually does not fit
            } else {
                b.parameter(g, p, t.dtype, &shape)
            };
            if p.pick(3) == 0 {
                // The rank-2 operand on the left: op(b)·op(a) with the flags reused.
                g.matmul(other, a, tb, ta)
            } else {
                g.matmul(a, other, ta, tb)
            }
        }
        18 => {
            let x = b.node(
                g,
                p,
                |t| t.dtype.is_float() && (3..=5).contains(&t.rank()),
                |p| {
                    let mut shape = vec![1 + p.pick(2), 1 + p.pick(3)];
                    shape.extend((0..1 + p.pick(2)).map(|_| 2 + p.pick(5)));
                    TensorType::new(p.float_dtype(), shape)
                },
            );
            let r = g.ty(x).rank().saturating_sub(2).max(1);
            let window = Window {
                kernel: (0..r).map(|_| 1 + p.pick(3)).collect(),
                stride: (0..r).map(|_| 1 + p.pick(2)).collect(),
                pad_low: (0..r).map(|_| p.pick(2)).collect(),
                pad_high: (0..r).map(|_| p.pick(2)).collect(),
                dilation: (0..r).map(|_| 1 + p.pick(2)).collect(),
            };
            g.im2col(x, &window)
        }
        19 => {
            // Fold the columns of an existing im2col (a valid col2im), or random columns.
            let unfolds: Vec<NodeId> = g
                .ids()
                .filter(|&id| matches!(g.node(id).op, Op::Im2Col { .. }))
                .collect();
            match p.choose(&unfolds) {
                Some(id) if p.pick(4) != 0 => {
                    let Op::Im2Col { window } = g.node(id).op.clone() else {
                        unreachable!()
                    };
                    let image = g.operands(id)[0];
                    let spatial = g.ty(image).shape[2..].to_vec();
                    g.col2im(id, &window, &spatial)
                }
                _ => {
                    let x = b.any(g, p);
                    let window = Window::new(vec![1 + p.pick(2)]);
                    g.col2im(x, &window, &[1 + p.pick(4)])
                }
            }
        }
        20 => {
            let data = b.node(
                g,
                p,
                |t| t.rank() >= 1,
                |p| TensorType::new(p.dtype(), p.shape(1, 3)),
            );
            let idx = b.indices(g, p);
            g.gather(data, idx)
        }
        21 => {
            let idx = b.indices(g, p);
            let mut shape = g.ty(idx).shape.clone();
            shape.extend(p.shape(0, 2));
            let dtype = p.dtype();
            let upd = if p.pick(4) == 0 {
                b.any(g, p)
            } else {
                b.parameter(g, p, dtype, &shape)
            };
            g.scatter_add(upd, idx, 1 + p.pick(5))
        }
        _ => unreachable!("kind {}", s.kind),
    }
}

/// Builds a random graph; invalid candidates are skipped.
fn build(steps: &[Step], outs: &[u32]) -> Graph {
    let mut g = Graph::new();
    let mut b = Builder { names: 0 };
    for s in steps {
        let _ = match SCOPES[s.scope] {
            [] => try_step(&mut b, &mut g, s),
            [a] => g.in_scope(a, |g| try_step(&mut b, g, s)),
            [a, c] => g.in_scope(a, |g| g.in_scope(c, |g| try_step(&mut b, g, s))),
            _ => unreachable!(),
        };
    }
    for (i, &o) in outs.iter().enumerate() {
        if !g.is_empty() {
            let id = NodeId(o % g.len() as u32);
            let name = ["loss", "out", "\"quoted\" ü"][i % 3];
            g.set_output(&format!("{name}{}", o % 2), id).ok();
        }
    }
    g
}

// ----- comparing graphs bit for bit -------------------------------------------------------

/// The bits of every f64 attribute of an op, in field order.
fn float_bits(op: &Op) -> Vec<u64> {
    match op {
        Op::Constant { value } => value.values.iter().map(|v| v.to_bits()).collect(),
        Op::RandomUniform { low, high, .. } => vec![low.to_bits(), high.to_bits()],
        Op::RandomNormal { mean, std, .. } => vec![mean.to_bits(), std.to_bits()],
        Op::Pad { value, .. } => vec![value.to_bits()],
        Op::ScaleGrad { factor } => vec![factor.to_bits()],
        _ => Vec::new(),
    }
}

/// The op with every f64 attribute replaced by 0 (so that `==` compares the rest).
fn without_floats(op: &Op) -> Op {
    let mut op = op.clone();
    match &mut op {
        Op::Constant { value } => value.values.iter_mut().for_each(|v| *v = 0.0),
        Op::RandomUniform { low, high, .. } => (*low, *high) = (0.0, 0.0),
        Op::RandomNormal { mean, std, .. } => (*mean, *std) = (0.0, 0.0),
        Op::Pad { value, .. } => *value = 0.0,
        Op::ScaleGrad { factor } => *factor = 0.0,
        _ => {}
    }
    op
}

/// Asserts that two graphs are identical, comparing f64 attributes bit for bit (so NaN
/// equals NaN and `-0.0` differs from `0.0`).
fn assert_identical(a: &Graph, b: &Graph) {
    assert_eq!(a.len(), b.len(), "node count");
    assert_eq!(a.outputs(), b.outputs(), "outputs");
    for id in a.ids() {
        let (na, nb) = (a.node(id), b.node(id));
        assert_eq!(without_floats(&na.op), without_floats(&nb.op), "op of {id}");
        assert_eq!(float_bits(&na.op), float_bits(&nb.op), "f64 bits of {id}");
        assert_eq!(na.ty, nb.ty, "type of {id}");
        assert_eq!(na.scope, nb.scope, "scope of {id}");
        assert_eq!(a.operands(id), b.operands(id), "operands of {id}");
    }
}

fn has_nan(g: &Graph) -> bool {
    g.ids().any(|id| {
        float_bits(&g.node(id).op)
            .iter()
            .any(|&b| f64::from_bits(b).is_nan())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `from_json(to_json(g))` is `g`, and writing it again gives the same bytes.
    #[test]
    fn json_round_trips_exactly((steps, outs) in recipe()) {
        let g = build(&steps, &outs);
        let json = g.to_json();
        let h = match Graph::from_json(&json) {
            Ok(h) => h,
            Err(e) => panic!("reloading failed: {e}\n{g}\n{json}"),
        };
        assert_identical(&g, &h);
        if !has_nan(&g) {
            prop_assert_eq!(&h, &g);
        }
        prop_assert_eq!(h.to_json(), json.clone());
        // The same recipe builds the same bytes (no hidden nondeterminism).
        prop_assert_eq!(build(&steps, &outs).to_json(), json.clone());
        // Plain serde on `GraphDef` reads the same document.
        let def: GraphDef = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(def.to_json(), json.clone());
        let compact = serde_json::to_string(&GraphDef::from_graph(&g)).unwrap();
        prop_assert_eq!(Graph::from_json(&compact).unwrap().to_json(), json);
    }

    /// Damaged documents give an error or a valid graph, never a panic; a prefix of a
    /// document is never accepted.
    #[test]
    fn damaged_json_never_panics(
        (steps, outs) in recipe(),
        edits in prop::collection::vec((any::<u32>(), 0u8..11, any::<u64>()), 1..4),
        cut in any::<u32>(),
    ) {
        let g = build(&steps, &outs);
        let json = g.to_json();
        let trimmed = json.trim_end();
        let cut = cut as usize % trimmed.len();
        if trimmed.is_char_boundary(cut) {
            let err = Graph::from_json(&trimmed[..cut]).unwrap_err();
            prop_assert_eq!(err.kind, ErrorKind::Malformed);
        }
        let mut doc: Value = serde_json::from_str(&json).unwrap();
        for &(at, how, x) in &edits {
            damage(&mut doc, at, how, x);
        }
        let text = serde_json::to_string(&doc).unwrap();
        if let Ok(h) = Graph::from_json(&text) {
            let again = Graph::from_json(&h.to_json()).unwrap();
            prop_assert_eq!(again.to_json(), h.to_json());
        }
    }
}

/// Every leaf position (value of an object key or array element) in `v`.
fn leaves(v: &Value, path: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(path.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                path.push(PathStep::Key(k.clone()));
                leaves(c, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                path.push(PathStep::Index(i));
                leaves(c, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(v: &'a Value, path: &[PathStep]) -> &'a Value {
    path.iter().fold(v, |v, s| match s {
        PathStep::Key(k) => &v[k.as_str()],
        PathStep::Index(i) => &v[*i],
    })
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_path_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, s| match s {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

/// Replaces or removes one random part of a document: mostly a number (an id, a dimension,
/// an axis, an attribute), so that the graph rules see unusual values, otherwise any part.
fn damage(doc: &mut Value, at: u32, how: u8, x: u64) {
    let mut all = Vec::new();
    leaves(doc, &mut Vec::new(), &mut all);
    let numbers: Vec<&Vec<PathStep>> = all.iter().filter(|p| at_path(doc, p).is_number()).collect();
    let path = match numbers.len() {
        n if n > 0 && how < 6 => numbers[at as usize % n].clone(),
        _ => all[at as usize % all.len()].clone(),
    };
    let big = [u64::MAX, 1 << 63, (1 << 32) + 1, u64::MAX / 3, 1 << 62][x as usize % 5];
    let new = match how {
        0 | 1 => Value::from(big),
        2..=4 => Value::from(x % 7),
        5 => Value::from(-1 - (x % 3) as i64),
        6 => Value::from("nan"),
        7 => Value::Null,
        8 => Value::from(vec![Value::from(big), Value::from(x % 5)]),
        9 => Value::from(1.5),
        _ => {
            // Remove the key or element.
            if let Some((last, parent)) = path.split_last() {
                match (at_path_mut(doc, parent), last) {
                    (Value::Object(m), PathStep::Key(k)) => {
                        m.remove(k);
                    }
                    (Value::Array(a), PathStep::Index(i)) => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
            return;
        }
    };
    *at_path_mut(doc, &path) = new;
}

// ----- the generator covers every op kind ---------------------------------------------------

/// The `"op"` tags of the module docs' table, in the table's order.
const DOCUMENTED_TAGS: [&str; 24] = [
    "input",
    "parameter",
    "constant",
    "random_uniform",
    "random_normal",
    "unary",
    "binary",
    "compare",
    "select",
    "cast",
    "reduce",
    "argmax",
    "reshape",
    "permute",
    "broadcast",
    "slice",
    "pad",
    "concat",
    "matmul",
    "im2col",
    "col2im",
    "gather",
    "scatter_add",
    "scale_grad",
];

/// The random graphs use every op kind (the documented tag of each), and the attributes
/// that are hard to encode: non-finite and negative-zero values, strides, interior padding,
/// transposes, counters.
#[test]
fn generator_covers_every_op_kind() {
    let mut runner = TestRunner::deterministic();
    let mut tags = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for _ in 0..300 {
        let (steps, outs) = recipe().new_tree(&mut runner).unwrap().current();
        let g = build(&steps, &outs);
        for id in g.ids() {
            let op = &g.node(id).op;
            let v = serde_json::to_value(op).unwrap();
            tags.insert(v["op"].as_str().unwrap().to_string());
            for b in float_bits(op) {
                let f = f64::from_bits(b);
                let what = match op {
                    Op::Pad { .. } => "pad",
                    _ => "other",
                };
                if f.is_nan() {
                    seen.insert(format!("{what} nan"));
                } else if f == f64::INFINITY {
                    seen.insert(format!("{what} inf"));
                } else if f == f64::NEG_INFINITY {
                    seen.insert(format!("{what} -inf"));
                } else if b == (-0.0f64).to_bits() {
                    seen.insert(format!("{what} -0.0"));
                }
            }
            match op {
                Op::Slice { step, .. } if step.iter().any(|&s| s > 1) => {
                    seen.insert("strided slice".into());
                }
                Op::Pad { interior, .. } if interior.iter().any(|&s| s > 0) => {
                    seen.insert("interior pad".into());
                }
                Op::MatMul {
                    trans_a: true,
                    trans_b: true,
                } => {
                    seen.insert("matmul both transposed".into());
                }
                Op::MatMul { .. } if g.ty(id).rank() > 2 => {
                    seen.insert("batched matmul".into());
                }
                Op::Reduce { keepdims: true, .. } => {
                    seen.insert("reduce keepdims".into());
                }
                Op::RandomUniform { .. } | Op::RandomNormal { .. } if g.operands(id).len() == 1 => {
                    seen.insert("random counter".into());
                }
                Op::Gather => {
                    assert_eq!(g.ty(g.operands(id)[1]).dtype, DType::I32);
                }
                _ => {}
            }
            if !g.node(id).scope.is_empty() {
                seen.insert("scope".into());
            }
        }
        if !g.outputs().is_empty() {
            seen.insert("outputs".into());
        }
    }
    let documented: BTreeSet<String> = DOCUMENTED_TAGS.iter().map(|s| s.to_string()).collect();
    assert_eq!(tags, documented);
    for want in [
        "pad nan",
        "pad inf",
        "pad -inf",
        "pad -0.0",
        "other nan",
        "other inf",
        "other -inf",
        "other -0.0",
        "strided slice",
        "interior pad",
        "matmul both transposed",
        "batched matmul",
        "reduce keepdims",
        "random counter",
        "scope",
        "outputs",
    ] {
        assert!(seen.contains(want), "the generator never produced {want}");
    }
}

// ----- fixed documents ----------------------------------------------------------------------

/// The graph of the module docs' example.
fn example() -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[4, 3]).unwrap();
    let w = g
        .in_scope("dense1", |g| g.parameter("W", DType::F32, &[2, 3]))
        .unwrap();
    let y = g
        .in_scope("dense1", |g| g.matmul(x, w, false, true))
        .unwrap();
    let z = g.tanh(y).unwrap();
    g.set_output("z", z).unwrap();
    g
}

const EXAMPLE_JSON: &str = r#"{
  "format": "xenon-graph",
  "version": 1,
  "nodes": [
    {"id": 0, "op": {"op": "input", "name": "x"}, "operands": [], "type": {"shape": [4, 3], "dtype": "f32"}, "scope": ""},
    {"id": 1, "op": {"op": "parameter", "name": "W"}, "operands": [], "type": {"shape": [2, 3], "dtype": "f32"}, "scope": "dense1"},
    {"id": 2, "op": {"op": "matmul", "trans_a": false, "trans_b": true}, "operands": [0, 1], "type": {"shape": [4, 2], "dtype": "f32"}, "scope": "dense1"},
    {"id": 3, "op": {"op": "unary", "func": "tanh"}, "operands": [2], "type": {"shape": [4, 2], "dtype": "f32"}, "scope": ""}
  ],
  "outputs": [
    {"name": "z", "node": 3}
  ]
}
"#;

#[test]
fn documented_example_is_the_exact_output() {
    let g = example();
    assert_eq!(g.to_json(), EXAMPLE_JSON);
    assert_eq!(Graph::from_json(EXAMPLE_JSON).unwrap(), g);
    // Any JSON whitespace is accepted.
    let compact: Value = serde_json::from_str(EXAMPLE_JSON).unwrap();
    assert_eq!(Graph::from_json(&compact.to_string()).unwrap(), g);
}

#[test]
fn empty_graph_round_trips() {
    let g = Graph::new();
    let json = g.to_json();
    assert_eq!(
        json,
        "{\n  \"format\": \"xenon-graph\",\n  \"version\": 1,\n  \"nodes\": [],\n  \"outputs\": []\n}\n"
    );
    assert_eq!(Graph::from_json(&json).unwrap(), g);
}

#[test]
fn special_floats_round_trip_bit_for_bit() {
    let values = vec![
        -0.0,
        0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        5e-324,
        f64::MAX,
        0.1 + 0.2,
        1e300,
        -1.0 / 3.0,
    ];
    let mut g = Graph::new();
    let c = g.constant(DType::F64, &[10], values.clone()).unwrap();
    let p = g.pad(c, &[1], &[0], &[2], f64::NEG_INFINITY).unwrap();
    g.random_normal(DType::F32, &[2], u64::MAX, -0.0, f64::INFINITY, None)
        .unwrap();
    g.set_output("p", p).unwrap();
    let json = g.to_json();
    assert!(json.contains(r#""value": [-0.0, 0.0, "inf", "-inf", "nan", 5e-324, "#));
    assert!(json.contains(r#""seed": 18446744073709551615"#));
    let h = Graph::from_json(&json).unwrap();
    assert_identical(&g, &h);
    let Op::Constant { value } = &h.node(c).op else {
        panic!("not a constant")
    };
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&value.values), bits(&values));
}

#[test]
fn nan_payloads_read_back_as_the_canonical_nan() {
    let odd_nan = f64::from_bits(0xfff8_0000_0000_0001);
    let mut g = Graph::new();
    g.scalar(DType::F64, odd_nan).unwrap();
    let h = Graph::from_json(&g.to_json()).unwrap();
    let Op::Constant { value } = &h.node(NodeId(0)).op else {
        panic!("not a constant")
    };
    assert_eq!(value.values[0].to_bits(), f64::NAN.to_bits());
}

// ----- malformed documents --------------------------------------------------------------

/// `text` with the single occurrence of `from` replaced by `to` (panics when `from` does
/// not occur exactly once, so that a test cannot silently leave the document intact).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

/// Loads `text`, expecting an error of `kind` whose message is `message`.
fn rejects(text: &str, kind: ErrorKind, message: &str) {
    match Graph::from_json(text) {
        Ok(g) => panic!("accepted:\n{g}"),
        Err(e) => {
            assert_eq!(e.to_string(), message);
            assert_eq!(e.kind, kind, "{e}");
        }
    }
}

/// Loads `text`, expecting an error of `kind` whose message starts with `prefix`.
fn rejects_with_prefix(text: &str, kind: ErrorKind, prefix: &str) {
    match Graph::from_json(text) {
        Ok(g) => panic!("accepted:\n{g}"),
        Err(e) => {
            assert!(e.to_string().starts_with(prefix), "message: {e}");
            assert_eq!(e.kind, kind, "{e}");
        }
    }
}

#[test]
fn truncated_json_is_malformed() {
    let cut = &EXAMPLE_JSON[..EXAMPLE_JSON.len() / 2];
    rejects_with_prefix(
        cut,
        ErrorKind::Malformed,
        "graph: invalid JSON: EOF while parsing",
    );
    rejects_with_prefix("", ErrorKind::Malformed, "graph: invalid JSON: EOF");
    rejects_with_prefix(
        &format!("{EXAMPLE_JSON}}}"),
        ErrorKind::Malformed,
        "graph: invalid JSON: trailing characters",
    );
}

#[test]
fn non_object_document_is_malformed() {
    rejects(
        "[1, 2]",
        ErrorKind::Malformed,
        "graph: the document is not a JSON object",
    );
}

#[test]
fn unknown_op_name_is_malformed() {
    let text = edit(EXAMPLE_JSON, r#""op": "unary""#, r#""op": "frobnicate""#);
    rejects_with_prefix(
        &text,
        ErrorKind::Malformed,
        "graph: node %3: unknown variant `frobnicate`, expected one of `input`, ",
    );
    let text = edit(EXAMPLE_JSON, r#""func": "tanh""#, r#""func": "sinh""#);
    rejects_with_prefix(
        &text,
        ErrorKind::Malformed,
        "graph: node %3: unknown variant `sinh`, expected one of `neg`, ",
    );
    let text = edit(
        EXAMPLE_JSON,
        r#""shape": [4, 3], "dtype": "f32""#,
        r#""shape": [4, 3], "dtype": "f16""#,
    );
    rejects_with_prefix(
        &text,
        ErrorKind::Malformed,
        "graph: node %0: unknown variant `f16`",
    );
}

#[test]
fn forward_operand_reference_is_malformed() {
    let text = edit(
        EXAMPLE_JSON,
        r#""operands": [0, 1]"#,
        r#""operands": [0, 3]"#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "matmul in layer 'dense1': node %2: operand 1 is %3, which does not precede the node",
    );
    // A node that uses itself, and one that does not exist at all.
    let text = edit(EXAMPLE_JSON, r#""operands": [2]"#, r#""operands": [3]"#);
    rejects(
        &text,
        ErrorKind::Malformed,
        "tanh: node %3: operand 0 is %3, which does not precede the node",
    );
    let text = edit(
        EXAMPLE_JSON,
        r#""operands": [2]"#,
        r#""operands": [4000000000]"#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "tanh: node %3: operand 0 is %4000000000, which does not precede the node",
    );
}

#[test]
fn stored_type_disagreeing_with_the_shape_rules_is_malformed() {
    let text = edit(
        EXAMPLE_JSON,
        r#""operands": [2], "type": {"shape": [4, 2]"#,
        r#""operands": [2], "type": {"shape": [2, 4]"#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "tanh: node %3: the stored type f32[2, 4] differs from the type f32[4, 2] given by the \
         shape rules (operands: f32[4, 2])",
    );
    let text = edit(
        EXAMPLE_JSON,
        r#"[0, 1], "type": {"shape": [4, 2], "dtype": "f32"}"#,
        r#"[0, 1], "type": {"shape": [4, 2], "dtype": "f64"}"#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "matmul in layer 'dense1': node %2: the stored type f64[4, 2] differs from the type \
         f32[4, 2] given by the shape rules (operands: f32[4, 3], f32[2, 3])",
    );
}

#[test]
fn wrong_format_or_version_is_malformed() {
    let text = edit(EXAMPLE_JSON, r#""version": 1"#, r#""version": 2"#);
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: unsupported version 2 (this build reads version 1)",
    );
    let text = edit(EXAMPLE_JSON, r#""version": 1"#, r#""version": "1""#);
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: `version` must be a non-negative integer, got \"1\"",
    );
    let text = edit(EXAMPLE_JSON, "  \"version\": 1,\n", "");
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: missing field `version`",
    );
    let text = edit(EXAMPLE_JSON, r#""xenon-graph""#, r#""onnx""#);
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: unsupported format \"onnx\" (expected \"xenon-graph\")",
    );
    // The header is checked before the rest, so a future version is reported as such.
    rejects(
        r#"{"format": "xenon-graph", "version": 7, "graph": {}}"#,
        ErrorKind::Malformed,
        "graph: unsupported version 7 (this build reads version 1)",
    );
    // `GraphDef::to_graph` checks the header too.
    let mut def = GraphDef::from_graph(&example());
    def.version = 0;
    assert_eq!(
        def.to_graph().unwrap_err().to_string(),
        "graph: unsupported version 0 (this build reads version 1)"
    );
}

#[test]
fn missing_and_unknown_fields_are_malformed() {
    let text = edit(
        EXAMPLE_JSON,
        r#""type": {"shape": [4, 2], "dtype": "f32"}, "scope": ""}"#,
        r#""type": {"shape": [4, 2], "dtype": "f32"}}"#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: node %3: missing field `scope`",
    );
    let text = edit(EXAMPLE_JSON, r#""trans_b": true"#, r#""trans_c": true"#);
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: node %2: missing field `trans_b`",
    );
    let text = edit(
        EXAMPLE_JSON,
        r#""func": "tanh""#,
        r#""func": "tanh", "approx": true"#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: node %3: unknown field \"approx\" in the tanh op",
    );
    let text = edit(
        EXAMPLE_JSON,
        "\"scope\": \"\"}\n  ]",
        "\"scope\": \"\", \"name\": \"n\"}\n  ]",
    );
    rejects_with_prefix(
        &text,
        ErrorKind::Malformed,
        "graph: node %3: unknown field `name`, expected one of `id`, `op`, `operands`, `type`, `scope`",
    );
    let text = edit(
        EXAMPLE_JSON,
        r#""version": 1,"#,
        r#""version": 1, "comment": "hi","#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: unknown field \"comment\" in the document",
    );
    let text = edit(EXAMPLE_JSON, r#""node": 3}"#, r#""node": 3, "extra": 0}"#);
    rejects_with_prefix(
        &text,
        ErrorKind::Malformed,
        "graph: output 0: unknown field `extra`",
    );
    let text = edit(
        EXAMPLE_JSON,
        "  \"outputs\": [\n    {\"name\": \"z\", \"node\": 3}\n  ]\n",
        "",
    );
    let text = edit(&text, "  ],\n}", "  ]\n}");
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: missing field `outputs`",
    );
    let text = edit(EXAMPLE_JSON, r#""operands": [2]"#, r#""operands": "2""#);
    rejects_with_prefix(
        &text,
        ErrorKind::Malformed,
        "graph: node %3: invalid type: string \"2\", expected a sequence",
    );
}

#[test]
fn unknown_window_fields_are_malformed() {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1, 1, 4]).unwrap();
    g.im2col(x, &Window::new(vec![2])).unwrap();
    let text = edit(
        &g.to_json(),
        r#""dilation": [1]"#,
        r#""dilation": [1], "groups": 2"#,
    );
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: node %1: unknown field \"window.groups\" in the im2col op",
    );
}

#[test]
fn ids_out_of_order_are_malformed() {
    let text = edit(EXAMPLE_JSON, r#""id": 1,"#, r#""id": 5,"#);
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: node %1: the node at position 1 has id 5; ids must be 0, 1, 2, … in order",
    );
    let text = edit(EXAMPLE_JSON, r#""id": 0,"#, r#""id": -1,"#);
    rejects_with_prefix(
        &text,
        ErrorKind::Malformed,
        "graph: node %0: invalid value: integer `-1`, expected u32",
    );
}

#[test]
fn bad_outputs_are_rejected() {
    let text = edit(EXAMPLE_JSON, r#""node": 3}"#, r#""node": 4}"#);
    rejects(
        &text,
        ErrorKind::Malformed,
        "graph: output \"z\" names %4, but the graph has 4 nodes",
    );
    let text = edit(
        EXAMPLE_JSON,
        r#"{"name": "z", "node": 3}"#,
        r#"{"name": "z", "node": 3}, {"name": "z", "node": 2}"#,
    );
    rejects(
        &text,
        ErrorKind::DuplicateName,
        "output: output \"z\" is already set",
    );
}

#[test]
fn graph_rule_failures_keep_their_kind_and_name_the_node() {
    // An attribute changed: the shape rules fail, in the node's scope.
    let text = edit(EXAMPLE_JSON, r#""trans_b": true"#, r#""trans_b": false"#);
    rejects(
        &text,
        ErrorKind::ShapeMismatch,
        "matmul in layer 'dense1': node %2: inner dimensions differ: 3 vs 2 (operands: f32[4, 3], f32[2, 3])",
    );
    let text = edit(EXAMPLE_JSON, r#""operands": [2]"#, r#""operands": [2, 0]"#);
    rejects(
        &text,
        ErrorKind::OperandCount,
        "tanh: node %3: expects 1 operand(s), got 2 (operands: f32[4, 2], f32[4, 3])",
    );
    let text = edit(EXAMPLE_JSON, r#""name": "W""#, r#""name": "x""#);
    rejects(
        &text,
        ErrorKind::DuplicateName,
        "parameter in layer 'dense1': node %1: the name \"x\" is already used",
    );
    let text = edit(EXAMPLE_JSON, r#""shape": [4, 3]"#, r#""shape": [4, 0]"#);
    rejects(
        &text,
        ErrorKind::BadAttribute,
        "input: node %0: zero-sized dimension in shape [4, 0]",
    );
}

/// Attribute values that overflow the shape arithmetic are errors, not panics.
#[test]
fn huge_attributes_are_errors_not_panics() {
    const HUGE: &str = "18446744073709551615";
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1, 2, 3]).unwrap();
    g.pad(x, &[0, 0, 0], &[0, 0, 1], &[0, 0, 0], 0.0).unwrap();
    let text = edit(
        &g.to_json(),
        r#""high": [0, 0, 1]"#,
        &format!(r#""high": [0, 0, {HUGE}]"#),
    );
    rejects_with_prefix(&text, ErrorKind::BadAttribute, "pad: node %1: ");
    let text = edit(
        &g.to_json(),
        r#""interior": [0, 0, 0]"#,
        &format!(r#""interior": [0, 0, {HUGE}]"#),
    );
    rejects_with_prefix(&text, ErrorKind::BadAttribute, "pad: node %1: ");

    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1, 2, 3]).unwrap();
    g.reshape(x, &[6]).unwrap();
    let text = edit(
        &g.to_json(),
        r#""op": "reshape", "shape": [6]"#,
        &format!(r#""op": "reshape", "shape": [{HUGE}, 2]"#),
    );
    rejects_with_prefix(&text, ErrorKind::TooLarge, "reshape: node %1: ");
    let text = edit(
        &g.to_json(),
        r#""shape": [1, 2, 3]"#,
        &format!(r#""shape": [{HUGE}, 2, 3]"#),
    );
    rejects_with_prefix(&text, ErrorKind::TooLarge, "input: node %0: ");

    let mut g = Graph::new();
    g.scalar(DType::F32, 1.0).unwrap();
    let text = edit(
        &g.to_json(),
        r#""shape": []"#,
        r#""shape": [4294967296, 4294967296]"#,
    );
    rejects_with_prefix(&text, ErrorKind::TooLarge, "constant: node %0: ");

    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[1, 1, 4]).unwrap();
    let c = g.im2col(x, &Window::new(vec![2])).unwrap();
    g.col2im(c, &Window::new(vec![2]), &[4]).unwrap();
    let json = g.to_json();
    for (from, to) in [
        (r#""pad_low": [0]"#, format!(r#""pad_low": [{HUGE}]"#)),
        (r#""dilation": [1]"#, format!(r#""dilation": [{HUGE}]"#)),
    ] {
        let text = json.replacen(from, &to, 1);
        assert_ne!(text, json);
        let e = Graph::from_json(&text).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadAttribute, "{e}");
        assert!(e.to_string().starts_with("im2col: node %1: "), "{e}");
    }
    let text = edit(
        &json,
        r#""spatial": [4]"#,
        &format!(r#""spatial": [{HUGE}]"#),
    );
    let e = Graph::from_json(&text).unwrap_err();
    assert!(e.to_string().starts_with("col2im: node %2: "), "{e}");

    // Huge values: a size that overflows, or passes the 1 TiB limit on one tensor.
    let mut g = Graph::new();
    let big = 1usize << 61;
    let e = g.input("y", DType::F64, &[big]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    let e = g.input("y", DType::I32, &[big, big]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    // 2^38 i32 values are exactly 1 TiB: the largest tensor there may be.
    let x = g.input("x", DType::I32, &[1 << 38]).unwrap();
    assert_eq!(MAX_TENSOR_BYTES, 1 << 40);
    let e = g.concat(&[x; 2], 0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert!(e.to_string().contains("more than 1 TiB"), "{e}");
    let e = g.reshape(x, &[big, big]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert_eq!(g.len(), 1);
}

// ----- snapshots of the text dump and the JSON document ---------------------------------

/// A small two-layer network with a loss, a convolution-style unfold, constants with
/// special values and a strided slice: every part of a dump line appears.
fn snapshot_graph() -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[4, 6]).unwrap();
    let labels = g.input("labels", DType::I32, &[4]).unwrap();
    let h = g
        .in_scope("dense1", |g| {
            let w = g.parameter("W1", DType::F32, &[3, 6])?;
            let b = g.parameter("b1", DType::F32, &[3])?;
            let y = g.matmul(x, w, false, true)?;
            let y = g.add_(y, b)?;
            g.tanh(y)
        })
        .unwrap();
    let logits = g
        .in_scope("dense2", |g| {
            let w = g.parameter("W2", DType::F32, &[2, 3])?;
            g.matmul(h, w, false, true)
        })
        .unwrap();
    let m = g.reduce_max(logits, &[1], true).unwrap();
    let z = g.sub(logits, m).unwrap();
    let e = g.exp(z).unwrap();
    let s = g.sum(e, &[1], true).unwrap();
    let p = g.div(e, s).unwrap();
    let pick = g.argmax(p, 1, false).unwrap();
    let hit = g.compare(CompareOp::Eq, pick, labels).unwrap();
    let hit = g.cast(hit, DType::F32).unwrap();
    let acc = g.mean(hit, &[0], false).unwrap();
    let img = g.reshape(x, &[1, 4, 6]).unwrap();
    let win = Window::new(vec![3])
        .with_stride(vec![2])
        .with_padding(vec![1]);
    let cols = g.in_scope("conv", |g| g.im2col(img, &win)).unwrap();
    let mask = g
        .constant(DType::F32, &[3], vec![f64::NAN, -0.0, f64::INFINITY])
        .unwrap();
    let strided = g.slice(x, &[0, 1], &[4, 6], &[2, 2]).unwrap();
    let padded = g
        .pad(strided, &[0, 1], &[1, 0], &[0, 1], f64::NEG_INFINITY)
        .unwrap();
    g.set_output("probs", p).unwrap();
    g.set_output("accuracy", acc).unwrap();
    g.set_output("cols", cols).unwrap();
    g.set_output("mask", mask).unwrap();
    g.set_output("padded", padded).unwrap();
    g
}

#[test]
fn text_dump_snapshot() {
    let g = snapshot_graph();
    insta::assert_snapshot!(g.to_text());
    assert_eq!(g.to_text(), g.to_string());
    // The dump survives a JSON round trip.
    assert_eq!(
        Graph::from_json(&g.to_json()).unwrap().to_text(),
        g.to_text()
    );
}

#[test]
fn json_document_snapshot() {
    insta::assert_snapshot!(snapshot_graph().to_json());
}

/// Updates (an output declared the new value of a parameter) survive writing and reading;
/// a graph without them writes no `updates` field; a bad update is refused when read.
#[test]
fn updates_round_trip_and_are_checked() {
    let mut g = Graph::new();
    let w = g.parameter("w", DType::F32, &[3]).unwrap();
    let x = g.input("x", DType::F32, &[3]).unwrap();
    let w2 = g.add_(w, x).unwrap();
    g.set_output("new/w", w2).unwrap();
    assert!(!g.to_json().contains("updates"));
    g.set_update("new/w", "w").unwrap();
    let text = g.to_json();
    assert!(text.contains(r#""updates": ["#), "{text}");
    let back = Graph::from_json(&text).unwrap();
    assert_eq!(back, g);
    assert_eq!(back.update_of("new/w"), Some("w"));
    let bad = text.replace(r#""feed": "w""#, r#""feed": "nope""#);
    assert_ne!(bad, text);
    let e = Graph::from_json(&bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("no input or parameter named \"nope\""),
        "{e}"
    );
}
