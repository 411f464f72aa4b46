//! A stable, human-readable text dump of a graph.
//!
//! `Graph`'s [`Display`](std::fmt::Display) (and [`Graph::to_text`]) prints one line per
//! node in id order, then one line per output:
//!
//! ```text
//! %0 = input "x" : f32[128, 784]
//! %1 = parameter "W1" : f32[100, 784]  # dense1
//! %2 = matmul(%0, %1) trans_a=false, trans_b=true : f32[128, 100]  # dense1
//! %3 = tanh(%2) : f32[128, 100]  # dense1
//! output "h" = %3
//! ```
//!
//! A node line is, in order:
//!
//! - `%id = ` and the op name ([`Op::name`](super::Op::name): `matmul`, `reduce_sum`, `exp`, …);
//! - the operands in parentheses, `(%0, %1)`, when the op has any;
//! - a space and the attributes ([`Op::attrs`](super::Op::attrs)) when the op has any: leaves show their
//!   quoted name, constants their value(s), other ops `key=value` pairs;
//! - ` : ` and the result type ([`TensorType`](super::TensorType)'s display, `f32[2, 3]`,
//!   `f32[]` for a scalar);
//! - `  # scope` when the node was built inside a layer scope.
//!
//! An output line is `output "name" = %id`, in the order the outputs were set. Every line
//! ends with a newline; the text depends only on the graph.

use super::graph::{Graph, NodeId};
use std::fmt;

impl Graph {
    /// The one-line text form of node `id` (without a newline); see the
    /// [module docs](super::printer).
    pub fn node_text(&self, id: NodeId) -> String {
        let node = self.node(id);
        let mut line = format!("{id} = {}", node.op.name());
        let operands = self.operands(id);
        if !operands.is_empty() {
            let ops: Vec<String> = operands.iter().map(|o| o.to_string()).collect();
            line.push_str(&format!("({})", ops.join(", ")));
        }
        let attrs = node.op.attrs();
        if !attrs.is_empty() {
            line.push(' ');
            line.push_str(&attrs);
        }
        line.push_str(&format!(" : {}", node.ty));
        if !node.scope.is_empty() {
            line.push_str(&format!("  # {}", node.scope));
        }
        line
    }

    /// The whole graph as text, the same as its `Display`; see the
    /// [module docs](super::printer).
    ///
    /// ```
    /// use xenon_compiler::ir::{DType, Graph};
    /// let mut g = Graph::new();
    /// let x = g.input("x", DType::F32, &[4, 3]).unwrap();
    /// let w = g.in_scope("dense1", |g| g.parameter("W", DType::F32, &[2, 3])).unwrap();
    /// let y = g.in_scope("dense1", |g| g.matmul(x, w, false, true)).unwrap();
    /// let s = g.sum(y, &[0, 1], false).unwrap();
    /// g.set_output("s", s).unwrap();
    /// assert_eq!(
    ///     g.to_text(),
    ///     "%0 = input \"x\" : f32[4, 3]\n\
    ///      %1 = parameter \"W\" : f32[2, 3]  # dense1\n\
    ///      %2 = matmul(%0, %1) trans_a=false, trans_b=true : f32[4, 2]  # dense1\n\
    ///      %3 = reduce_sum(%2) axes=[0, 1], keepdims=false : f32[]\n\
    ///      output \"s\" = %3\n"
    /// );
    /// ```
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for id in self.ids() {
            writeln!(f, "{}", self.node_text(id))?;
        }
        for (name, id) in self.outputs() {
            writeln!(f, "output {name:?} = {id}")?;
        }
        Ok(())
    }
}
