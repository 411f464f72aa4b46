//! Summing a node's adjoint contributions.
//!
//! The adjoint of a slice is the slice's gradient padded with zeros to the sliced value's
//! shape. A value read through many slices that tile it — an unrolled recurrent layer's
//! input projection read one time step at a time, the gate blocks of its cell — would get
//! its adjoint as a sum of that many padded copies: `T` steps cost `T` times the value.
//! [`sum`] instead joins the contributions that are zero paddings of disjoint blocks along
//! one axis with a single `concat` (zeros filling the gaps), which costs one copy of the
//! value, and adds the rest as usual.
//!
//! Likewise a weight used by many products — an unrolled recurrent layer's recurrent
//! matrix, read once per step — gets one contribution `dYᵢᵀ·Xᵢ` per use: [`sum`] turns
//! `Σᵢ dYᵢᵀ·Xᵢ` into the one product `[dY₁; …; dYₙ]ᵀ·[X₁; …; Xₙ]`, one large matrix product
//! instead of `n` small ones and their sum. The rows are stacked as sequences
//! (`[batch, n, ·]`), the layout the layer's other consumers of the per-step values use,
//! so that after optimization the product reads those sequences rather than copies.

use super::Result;
use crate::ir::{Graph, NodeId, Op};

/// A contribution that is `operand` padded with zeros along `axis` alone, covering
/// `start..end` of the padded value.
struct Block {
    node: NodeId,
    operand: NodeId,
    axis: usize,
    start: usize,
    end: usize,
}

/// The block a contribution pads, if it is a zero padding along exactly one axis.
fn block(g: &Graph, node: NodeId) -> Option<Block> {
    let Op::Pad {
        low,
        high,
        interior,
        value,
    } = &g.node(node).op
    else {
        return None;
    };
    if *value != 0.0 || interior.iter().any(|&i| i != 0) {
        return None;
    }
    let mut padded = (0..low.len()).filter(|&a| low[a] != 0 || high[a] != 0);
    let axis = padded.next()?;
    if padded.next().is_some() {
        return None;
    }
    let operand = g.operands(node)[0];
    let start = low[axis];
    Some(Block {
        node,
        operand,
        axis,
        start,
        end: start + g.ty(operand).shape[axis],
    })
}

/// The sum of `contributions` (at least one), with zero paddings of disjoint blocks along
/// one axis joined by a `concat` rather than added (see the module documentation).
pub(super) fn sum(g: &mut Graph, contributions: &[NodeId]) -> Result<NodeId> {
    let contributions = join_products(g, contributions)?;
    let contributions = &contributions[..];
    let mut rest: Vec<NodeId> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    for &c in contributions {
        match block(g, c) {
            Some(b) if contributions.len() > 1 => blocks.push(b),
            _ => rest.push(c),
        }
    }
    // Per axis, the blocks in order of their start; those overlapping an earlier one are
    // added as they are.
    blocks.sort_by_key(|b| (b.axis, b.start));
    let mut joined: Vec<NodeId> = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let axis = blocks[i].axis;
        let mut chain: Vec<&Block> = Vec::new();
        while i < blocks.len() && blocks[i].axis == axis {
            match chain.last() {
                Some(last) if blocks[i].start < last.end => rest.push(blocks[i].node),
                _ => chain.push(&blocks[i]),
            }
            i += 1;
        }
        if chain.len() < 2 {
            rest.extend(chain.iter().map(|b| b.node));
            continue;
        }
        let shape = g.ty(chain[0].node).shape.clone();
        let dtype = g.ty(chain[0].node).dtype;
        let mut pieces = Vec::with_capacity(2 * chain.len() + 1);
        let mut at = 0;
        let zeros = |g: &mut Graph, from: usize, to: usize| -> Result<NodeId> {
            let mut s = shape.clone();
            s[axis] = to - from;
            g.full(dtype, &s, 0.0)
        };
        for b in &chain {
            if b.start > at {
                pieces.push(zeros(g, at, b.start)?);
            }
            pieces.push(b.operand);
            at = b.end;
        }
        if at < shape[axis] {
            pieces.push(zeros(g, at, shape[axis])?);
        }
        joined.push(g.concat(&pieces, axis)?);
    }
    let mut all = joined.into_iter().chain(rest);
    let mut acc = all.next().expect("at least one contribution");
    for c in all {
        acc = g.add_(acc, c)?;
    }
    Ok(acc)
}

/// The rank-2 matrices `xs` stacked along their rows: for `n` matrices of one shape
/// `[r, c]`, the rows of `[r, n, c]` (`concat` of the `[r, 1, c]` views along axis 1,
/// reshaped to `[r·n, c]`) — the layout of a sequence of per-step values such as a
/// recurrent layer's outputs or gate gradients (`[batch, T, c]`), so that a product summed
/// over the steps reads the sequence other consumers read instead of a second copy; rows
/// of different counts one after the other (`concat` along axis 0).
fn stack_rows(g: &mut Graph, xs: &[NodeId]) -> Result<NodeId> {
    let shape = g.ty(xs[0]).shape.clone();
    if xs.iter().any(|&x| g.ty(x).shape != shape) {
        return g.concat(xs, 0);
    }
    let (r, c) = (shape[0], shape[1]);
    let steps = xs
        .iter()
        .map(|&x| g.reshape(x, &[r, 1, c]))
        .collect::<Result<Vec<_>>>()?;
    let seq = g.concat(&steps, 1)?;
    g.reshape(seq, &[r * xs.len(), c])
}

/// `contributions` with the matrix products `aᵢᵀ·bᵢ` (rank 2, one output shape) replaced
/// by one product of the `aᵢ` and the `bᵢ` stacked along their rows ([`stack_rows`]; the
/// sum over the rows does not depend on their order), when there are two or more.
fn join_products(g: &mut Graph, contributions: &[NodeId]) -> Result<Vec<NodeId>> {
    let is_product = |g: &Graph, c: NodeId| {
        matches!(
            g.node(c).op,
            Op::MatMul {
                trans_a: true,
                trans_b: false
            }
        ) && g.ty(c).rank() == 2
    };
    let products: Vec<NodeId> = contributions
        .iter()
        .copied()
        .filter(|&c| is_product(g, c))
        .collect();
    if products.len() < 2 {
        return Ok(contributions.to_vec());
    }
    // The uses in program order (autodiff reaches the last use first).
    let (a, b): (Vec<NodeId>, Vec<NodeId>) = products
        .iter()
        .rev()
        .map(|&p| {
            let ops = g.operands(p);
            (ops[0], ops[1])
        })
        .unzip();
    let a = stack_rows(g, &a)?;
    let b = stack_rows(g, &b)?;
    let mut out = vec![g.matmul(a, b, true, false)?];
    out.extend(contributions.iter().copied().filter(|&c| !is_product(g, c)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::DType;

    #[test]
    fn products_summed_over_uses_become_one_product() {
        let mut g = Graph::new();
        let w = g.parameter("w", DType::F64, &[3, 2]).unwrap();
        let xs: Vec<NodeId> = (0..3)
            .map(|i| g.parameter(&format!("x{i}"), DType::F64, &[4, 2]).unwrap())
            .collect();
        let dys: Vec<NodeId> = (0..3)
            .map(|i| g.parameter(&format!("d{i}"), DType::F64, &[4, 3]).unwrap())
            .collect();
        let _ = w;
        let parts: Vec<NodeId> = (0..3)
            .map(|i| g.matmul(dys[i], xs[i], true, false).unwrap())
            .collect();
        let s = sum(&mut g, &parts).unwrap();
        assert!(matches!(
            g.node(s).op,
            Op::MatMul {
                trans_a: true,
                trans_b: false
            }
        ));
        let ops = g.operands(s);
        assert_eq!(
            (g.ty(ops[0]).shape.clone(), g.ty(ops[1]).shape.clone()),
            (vec![12, 3], vec![12, 2])
        );
        assert_eq!(g.ty(s).shape, [3, 2]);
        // Stacked as sequences `[4, 3, ·]` of the uses in program order (the last
        // contribution is the first use).
        for (op, parts) in [(ops[0], &dys), (ops[1], &xs)] {
            assert!(matches!(g.node(op).op, Op::Reshape { .. }));
            let seq = g.operands(op)[0];
            assert!(matches!(g.node(seq).op, Op::Concat { axis: 1 }));
            let steps: Vec<NodeId> = g.operands(seq).iter().map(|&r| g.operands(r)[0]).collect();
            assert_eq!(steps, parts.iter().rev().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn disjoint_blocks_are_joined_and_overlaps_added() {
        let mut g = Graph::new();
        let a = g.parameter("a", DType::F64, &[2, 1]).unwrap();
        let b = g.parameter("b", DType::F64, &[2, 2]).unwrap();
        let pa = g.pad(a, &[0, 0], &[0, 4], &[0, 0], 0.0).unwrap(); // columns 0..1
        let pb = g.pad(b, &[0, 3], &[0, 0], &[0, 0], 0.0).unwrap(); // columns 3..5
        let pc = g.pad(b, &[0, 2], &[0, 1], &[0, 0], 0.0).unwrap(); // columns 2..4
        let s = sum(&mut g, &[pa, pb, pc]).unwrap();
        // In order of their starts, 3..5 overlaps 2..4: concat(a, zeros, b, zeros) + pb.
        let Op::Binary { .. } = g.node(s).op else {
            panic!("the overlapping block is added: {:?}", g.node(s).op)
        };
        let concat = g.operands(s)[0];
        assert!(matches!(g.node(concat).op, Op::Concat { axis: 1 }));
        assert_eq!(g.operands(concat).len(), 4);
        assert_eq!(g.operands(s)[1], pb);
        assert_eq!(g.ty(s).shape, [2, 5]);
    }
}
