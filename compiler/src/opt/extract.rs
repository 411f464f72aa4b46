//! DAG-aware extraction with a cost model of flops and bytes moved.
//!
//! egg's [`Extractor`](egg::Extractor) minimizes *tree* cost: a subgraph used twice is
//! counted twice, which over-counts shared work exponentially in the depth of sharing and
//! can favour rewrites that duplicate it. Here the cost of a choice (one e-node per
//! e-class) is its **DAG cost**: the sum of the costs of the e-nodes reachable from the
//! roots, each e-class counted once.
//!
//! 1. A bottom-up fixpoint picks, per e-class, the e-node of least tree cost (egg's
//!    algorithm, in `f64`); this choice is acyclic.
//! 2. Improvement passes (at most `passes`, default [`DEFAULT_PASSES`]) visit every
//!    reachable e-class in id order and switch it to any other e-node that lowers the DAG
//!    cost without creating a cycle.
//!
//! The result is deterministic: e-classes and e-nodes are visited in sorted order and ties
//! keep the earlier choice.
//!
//! ## Cost model
//!
//! [`op_cost`] gives `(flops, bytes)` per op: elementwise ops count one flop per element
//! (4 for `div`, `recip`, `sqrt`; 8 for `exp`, `log`, `tanh`), reductions one per input
//! element, matmul `2·m·n·k` per batch; bytes are the operands read plus the result written.
//! Views (`reshape`, `broadcast`, `permute`, `slice`: strides after lowering) cost no flops
//! and no bytes. Leaves cost nothing, except non-splat
//! constants (their bytes). The cost of an e-node is `1 + flops + bytes` (the `1` makes
//! fewer ops win ties); `fused_dense` costs its matmul plus one flop per output element
//! and reads `a`, `b` and `c` once, without writing and re-reading the matmul result.
//! Negative splat constants cost a token `0.001`, so that of two equal forms the one with
//! a positive scale is shown.

use super::analysis::{XGraph, enode_type};
use super::lang::{Attr, XLang, tensor_children, to_op};
use crate::ir::{Op, TensorType, UnaryOp};
use egg::Id;
use std::collections::HashMap;

/// Default number of DAG improvement passes.
pub const DEFAULT_PASSES: usize = 3;

/// `(flops, bytes moved)` of `op` with result type `out` and operand types `ins`.
pub fn op_cost(op: &Op, out: &TensorType, ins: &[TensorType]) -> (f64, f64) {
    let n = out.numel() as f64;
    let read: f64 = ins.iter().map(|t| t.size_bytes() as f64).sum();
    let write = out.size_bytes() as f64;
    match op {
        Op::Input { .. } | Op::Parameter { .. } => (0.0, 0.0),
        Op::Constant { value } => {
            if value.values.len() == 1 {
                (0.0, 0.0)
            } else {
                (0.0, write)
            }
        }
        // Views: lowering turns them into strides of their consumers' accesses (see
        // `lower::is_view`), so they cost nothing at run time.
        Op::Reshape { .. } | Op::Broadcast { .. } | Op::Permute { .. } | Op::Slice { .. } => {
            (0.0, 0.0)
        }
        Op::Unary { func } => {
            let w = match func {
                UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh => 8.0,
                UnaryOp::Sqrt | UnaryOp::Recip => 4.0,
                _ => 1.0,
            };
            (w * n, read + write)
        }
        Op::Binary { func } => {
            let w = if *func == crate::ir::BinaryOp::Div {
                4.0
            } else {
                1.0
            };
            (w * n, read + write)
        }
        Op::Reduce { .. } | Op::ArgMax { .. } => {
            (ins.first().map_or(0, |t| t.numel()) as f64, read + write)
        }
        Op::MatMul { trans_a, .. } => {
            let a = &ins[0];
            let k = if *trans_a {
                a.shape[a.rank() - 2]
            } else {
                a.shape[a.rank() - 1]
            };
            (2.0 * n * k as f64, read + write)
        }
        Op::RandomUniform { .. } | Op::RandomNormal { .. } => (4.0 * n, write),
        _ => (n, read + write),
    }
}

/// The cost of one e-node (see the [module docs](self)); `None` if it is ill-typed.
pub fn enode_cost(eg: &XGraph, node: &XLang) -> Option<f64> {
    if let XLang::Attr(_) = node {
        return Some(0.0);
    }
    let out = enode_type(eg, node)?;
    let ins: Vec<TensorType> = tensor_children(node)
        .iter()
        .map(|&c| eg[c].data.ty.clone())
        .collect::<Option<_>>()?;
    if let XLang::FusedDense([_, _, f, _]) = node {
        let Some(Attr::Flags(trans_a, trans_b)) = eg[*f].data.attr.clone() else {
            return None;
        };
        let (flops, _) = op_cost(&Op::MatMul { trans_a, trans_b }, &out, &ins[..2]);
        let read: f64 = ins.iter().map(|t| t.size_bytes() as f64).sum();
        return Some(1.0 + flops + out.numel() as f64 + read + out.size_bytes() as f64);
    }
    let (op, _) = to_op(node, |i| eg[i].data.attr.clone())?;
    if let Op::Constant { value } = &op
        && value.values.len() == 1
    {
        return Some(if value.values[0] < 0.0 { 0.001 } else { 0.0 });
    }
    let (flops, bytes) = op_cost(&op, &out, &ins);
    let base = if op.is_leaf() { 0.0 } else { 1.0 };
    Some(base + flops + bytes)
}

struct Cand {
    node: XLang,
    cost: f64,
    kids: Vec<usize>,
}

/// The chosen e-node of every e-class needed by `roots`, and the DAG cost of the choice.
pub fn extract(eg: &XGraph, roots: &[Id], passes: usize) -> (HashMap<Id, XLang>, f64) {
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let cands: Vec<Vec<Cand>> = ids
        .iter()
        .map(|&id| {
            let mut nodes: Vec<&XLang> = eg[id].nodes.iter().collect();
            nodes.sort();
            nodes
                .into_iter()
                .filter_map(|n| {
                    let cost = enode_cost(eg, n)?;
                    let kids = n.children().iter().map(|&c| index[&eg.find(c)]).collect();
                    Some(Cand {
                        node: n.clone(),
                        cost,
                        kids,
                    })
                })
                .collect()
        })
        .collect();
    let nc = ids.len();

    // 1. Tree-cost fixpoint.
    let mut best: Vec<Option<(f64, usize)>> = vec![None; nc];
    loop {
        let mut changed = false;
        for c in 0..nc {
            for (k, cand) in cands[c].iter().enumerate() {
                let mut total = cand.cost;
                let mut ok = true;
                for &kid in &cand.kids {
                    match best[kid] {
                        Some((t, _)) => total += t,
                        None => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                let total = total.min(1e300);
                if best[c].is_none_or(|(t, _)| total < t) {
                    best[c] = Some((total, k));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut choice: Vec<Option<usize>> = best.iter().map(|b| b.map(|(_, k)| k)).collect();
    let root_ix: Vec<usize> = roots.iter().map(|r| index[&eg.find(*r)]).collect();

    // 2. DAG improvement. `refs[c]` counts the edges into `c` from the e-classes the
    // current choice reaches (plus one per root): switching one e-class's e-node changes
    // the DAG cost by what becomes reachable minus what stops being reachable, found by
    // walking only the changed part. `order` is a topological numbering of the chosen
    // e-nodes (children first): a switch whose new children all come before the e-class
    // cannot close a cycle and keeps the numbering valid; any other switch is checked by
    // a search and renumbers when taken.
    let kids_of = |choice: &[Option<usize>], c: usize| -> &[usize] {
        choice[c].map_or(&[][..], |k| &cands[c][k].kids[..])
    };
    let mut refs = vec![0u32; nc];
    let mut stack: Vec<usize> = Vec::new();
    // Adds one edge into `c`, walking into what becomes reachable; returns the cost added.
    let add_ref = |refs: &mut [u32], choice: &[Option<usize>], c: usize, stack: &mut Vec<usize>| {
        let mut added = 0.0;
        stack.push(c);
        while let Some(c) = stack.pop() {
            refs[c] += 1;
            if refs[c] == 1 {
                added += choice[c].map_or(f64::INFINITY, |k| cands[c][k].cost);
                stack.extend_from_slice(kids_of(choice, c));
            }
        }
        added
    };
    // Removes one edge into `c`, walking into what stops being reachable; returns the cost
    // removed.
    let remove_ref =
        |refs: &mut [u32], choice: &[Option<usize>], c: usize, stack: &mut Vec<usize>| {
            let mut removed = 0.0;
            stack.push(c);
            while let Some(c) = stack.pop() {
                refs[c] -= 1;
                if refs[c] == 0 {
                    removed += choice[c].map_or(f64::INFINITY, |k| cands[c][k].cost);
                    stack.extend_from_slice(kids_of(choice, c));
                }
            }
            removed
        };
    for &r in &root_ix {
        add_ref(&mut refs, &choice, r, &mut stack);
    }
    let topological = |choice: &[Option<usize>]| -> Vec<usize> {
        let mut order = vec![usize::MAX; nc];
        let mut next = 0;
        let mut walk: Vec<(usize, bool)> = Vec::new();
        for start in 0..nc {
            if order[start] != usize::MAX {
                continue;
            }
            walk.push((start, false));
            while let Some((c, done)) = walk.pop() {
                if done {
                    if order[c] == usize::MAX {
                        order[c] = next;
                        next += 1;
                    }
                    continue;
                }
                if order[c] != usize::MAX {
                    continue;
                }
                walk.push((c, true));
                for &k in kids_of(choice, c) {
                    if order[k] == usize::MAX {
                        walk.push((k, false));
                    }
                }
            }
        }
        order
    };
    let reaches = |choice: &[Option<usize>], from: &[usize], target: usize| -> bool {
        let mut seen = vec![false; nc];
        let mut st: Vec<usize> = from.to_vec();
        while let Some(c) = st.pop() {
            if c == target {
                return true;
            }
            if std::mem::replace(&mut seen[c], true) {
                continue;
            }
            st.extend_from_slice(kids_of(choice, c));
        }
        false
    };
    let mut order = topological(&choice);
    for _ in 0..passes {
        let mut improved = false;
        for c in 0..nc {
            if refs[c] == 0 || cands[c].len() < 2 {
                continue;
            }
            #[allow(clippy::needless_range_loop)] // `choice` is mutated inside
            for k in 0..cands[c].len() {
                let kids = &cands[c][k].kids;
                if Some(k) == choice[c] || kids.iter().any(|&kid| choice[kid].is_none()) {
                    continue;
                }
                let ordered = kids.iter().all(|&kid| order[kid] < order[c]);
                if !ordered && reaches(&choice, kids, c) {
                    continue;
                }
                let old = choice[c];
                let old_kids: Vec<usize> = kids_of(&choice, c).to_vec();
                // Switch: the new e-node's cost and children in, the old ones out.
                let mut delta = cands[c][k].cost - old.map_or(0.0, |o| cands[c][o].cost);
                choice[c] = Some(k);
                for &kid in kids {
                    delta += add_ref(&mut refs, &choice, kid, &mut stack);
                }
                for &kid in &old_kids {
                    delta -= remove_ref(&mut refs, &choice, kid, &mut stack);
                }
                if delta < -1e-9 {
                    improved = true;
                    if !ordered {
                        order = topological(&choice);
                    }
                } else {
                    // Back: the old children in, the new ones out.
                    choice[c] = old;
                    for &kid in &old_kids {
                        add_ref(&mut refs, &choice, kid, &mut stack);
                    }
                    for &kid in kids {
                        remove_ref(&mut refs, &choice, kid, &mut stack);
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
    // The exact DAG cost of the final choice, summed afresh.
    let final_cost: f64 = (0..nc)
        .filter(|&c| refs[c] > 0)
        .map(|c| choice[c].map_or(f64::INFINITY, |k| cands[c][k].cost))
        .sum();
    let out = ids
        .iter()
        .enumerate()
        .filter_map(|(c, &id)| choice[c].map(|k| (id, cands[c][k].node.clone())))
        .collect();
    (out, final_cost)
}

use egg::Language;
