//! Symbolic reverse-mode automatic differentiation as a graph transform.
//!
//! [`grad`] walks the graph backwards from a scalar loss and adds, for every node between
//! the loss and the requested nodes, the nodes that compute its adjoint (the gradient of the
//! loss with respect to it), using one rule per primitive op ([`rules`]). Broadcasts are
//! un-broadcast by sum reductions, so every gradient has its value's exact shape. The result
//! lives in the same IR as the forward pass: one graph can hold the forward pass, its
//! gradients and the optimizer update, and every later pass (optimizer, kernels, backends)
//! treats gradient nodes like any other.
//!
//! [`with_gradients`] is the usual entry point: it adds the gradients of a named loss with
//! respect to named parameters as outputs `grad/<name>`, then prunes the nodes nothing
//! needs.
//!
//! ```
//! use xenon_compiler::{autodiff, interp, ir::{DType, Graph}};
//! use xenon_runtime::Tensor;
//!
//! let mut g = Graph::new();
//! let x = g.parameter("x", DType::F64, &[2]).unwrap();
//! let y = g.mul(x, x).unwrap();            // x²
//! let loss = g.sum(y, &[0], false).unwrap();
//! g.set_output("loss", loss).unwrap();
//! let g = autodiff::with_gradients(&g, "loss", &["x"]).unwrap();
//!
//! let feeds = [("x".to_string(), Tensor::from_f64(vec![2], vec![3.0, -1.0]).unwrap())];
//! let out = interp::run(&g, &feeds.into_iter().collect()).unwrap();
//! assert_eq!(out["grad/x"].to_f64_vec(), vec![6.0, -2.0]); // d/dx Σx² = 2x
//! ```

mod accumulate;
pub mod rules;

use crate::ir::{ErrorKind, Graph, GraphError, NodeId};

type Result<T> = std::result::Result<T, GraphError>;

/// Adds nodes computing `∂loss/∂w` for each `w` in `wrt` and returns them in `wrt`'s order.
///
/// `loss` must be a floating-point scalar (shape `[]`). A node the loss does not depend on
/// gets a zero gradient. Integer-valued paths (indices, `argmax`, masks cast to i32) carry no
/// gradient. Gradient nodes are built in the scope `<forward scope>/grad` (`grad` at top
/// level), so dumps show which layer each belongs to.
pub fn grad(g: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>> {
    let err = |kind, reason: String| GraphError::new(kind, "autodiff", &[], reason);
    let lt = g
        .get(loss)
        .ok_or_else(|| {
            err(
                ErrorKind::UnknownNode,
                format!("loss {loss} does not exist"),
            )
        })?
        .ty
        .clone();
    if lt.rank() != 0 || !lt.dtype.is_float() {
        return Err(GraphError::new(
            ErrorKind::ShapeMismatch,
            "autodiff",
            &[lt],
            "the loss must be a floating-point scalar (shape [])",
        ));
    }
    for &w in wrt {
        if g.get(w).is_none() {
            return Err(err(ErrorKind::UnknownNode, format!("{w} does not exist")));
        }
    }

    // Nodes on a path from some `wrt` node to the loss: only they need adjoints.
    let n = loss.index() + 1;
    let mut depends = vec![false; n];
    for &w in wrt {
        if w.index() < n {
            depends[w.index()] = true;
        }
    }
    for id in (0..n as u32).map(NodeId) {
        if !depends[id.index()] && g.operands(id).iter().any(|o| depends[o.index()]) {
            depends[id.index()] = true;
        }
    }
    let mut needed = vec![false; n];
    needed[loss.index()] = depends[loss.index()];
    for id in (0..n as u32).rev().map(NodeId) {
        if needed[id.index()] {
            for o in g.operands(id) {
                if depends[o.index()] {
                    needed[o.index()] = true;
                }
            }
        }
    }

    // Adjoint contributions per node, summed when the node is reached.
    let mut parts: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    let mut adjoint: Vec<Option<NodeId>> = vec![None; n];
    if needed[loss.index()] {
        let one = g.in_scope("grad", |g| g.scalar(lt.dtype, 1.0))?;
        parts[loss.index()].push(one);
    }
    for id in (0..n as u32).rev().map(NodeId) {
        if !needed[id.index()] || parts[id.index()].is_empty() {
            continue;
        }
        let node = g.node(id).clone();
        let scope = if node.scope.is_empty() {
            "grad".to_string()
        } else {
            format!("{}/grad", node.scope)
        };
        let contributions = std::mem::take(&mut parts[id.index()]);
        let out_grad = g.in_scope(&scope, |g| accumulate::sum(g, &contributions))?;
        adjoint[id.index()] = Some(out_grad);
        if !node.ty.dtype.is_float() {
            continue;
        }
        let operands = g.operands(id);
        let want: Vec<bool> = operands
            .iter()
            .map(|o| needed[o.index()] && g.ty(*o).dtype.is_float())
            .collect();
        if !want.iter().any(|&w| w) {
            continue;
        }
        let grads = g.in_scope(&scope, |g| rules::vjp(g, id, &operands, out_grad, &want))?;
        for ((o, w), gr) in operands.iter().zip(&want).zip(grads) {
            if let (true, Some(gr)) = (*w, gr) {
                parts[o.index()].push(gr);
            }
        }
    }

    wrt.iter()
        .map(|&w| match adjoint.get(w.index()).copied().flatten() {
            Some(a) => Ok(a),
            None => {
                let t = g.ty(w).clone();
                g.in_scope("grad", |g| g.full(t.dtype, &t.shape, 0.0))
            }
        })
        .collect()
}

/// A copy of `graph` with the gradients of the output `loss` with respect to the named
/// inputs or parameters added as outputs `grad/<name>`, and dead nodes removed.
pub fn with_gradients(graph: &Graph, loss: &str, wrt: &[&str]) -> Result<Graph> {
    let mut g = graph.clone();
    let loss_id = g.output(loss).ok_or_else(|| {
        GraphError::new(
            ErrorKind::UnknownNode,
            "autodiff",
            &[],
            format!("there is no output named {loss:?}"),
        )
    })?;
    let ids = wrt
        .iter()
        .map(|name| {
            g.find_leaf(name).ok_or_else(|| {
                let known: Vec<String> = g
                    .parameters()
                    .into_iter()
                    .chain(g.inputs())
                    .map(|(n, _)| n)
                    .collect();
                GraphError::new(
                    ErrorKind::UnknownNode,
                    "autodiff",
                    &[],
                    format!(
                        "there is no input or parameter named {name:?} (known: {})",
                        known.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let grads = grad(&mut g, loss_id, &ids)?;
    for (name, gr) in wrt.iter().zip(grads) {
        g.set_output(&format!("grad/{name}"), gr)?;
    }
    Ok(g.prune().0)
}
