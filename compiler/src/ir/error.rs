//! Errors raised while building or loading a graph.

use super::types::TensorType;
use std::fmt;

/// What kind of rule an invalid node broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Operand shapes do not fit together (matmul inner dimensions, elementwise operands,
    /// concat, gather/scatter, window sizes).
    ShapeMismatch,
    /// Operand dtypes differ, or the op does not accept the dtype.
    DTypeMismatch,
    /// An axis attribute is outside the operand's rank, repeated, or a permutation is not one.
    AxisOutOfRange,
    /// A reshape changes the element count.
    BadReshape,
    /// Another attribute is invalid (zero-sized dimension, slice bounds, window parameters).
    BadAttribute,
    /// The op got the wrong number of operands.
    OperandCount,
    /// An operand refers to a node that does not exist (or does not precede this one).
    UnknownNode,
    /// A name is used twice (inputs, parameters, outputs).
    DuplicateName,
    /// A serialized graph is malformed or disagrees with the shape rules.
    Malformed,
    /// A value would hold more than [`MAX_TENSOR_BYTES`](super::MAX_TENSOR_BYTES) bytes
    /// (or its size overflows).
    TooLarge,
}

/// A graph-construction error: names the op, the layer scope it was built in, every
/// operand type, and the broken rule.
///
/// ```
/// use xenon_compiler::ir::{DType, ErrorKind, Graph};
/// let mut g = Graph::new();
/// let x = g.input("x", DType::F32, &[128, 784]).unwrap();
/// let w = g.parameter("W", DType::F32, &[100, 785]).unwrap();
/// let err = g.matmul(x, w, false, true).unwrap_err();
/// assert_eq!(err.kind, ErrorKind::ShapeMismatch);
/// assert_eq!(
///     err.to_string(),
///     "matmul: inner dimensions differ: 784 vs 785 (operands: f32[128, 784], f32[100, 785])"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    /// The rule that was broken.
    pub kind: ErrorKind,
    /// The op's name (`matmul`, `reshape`, …).
    pub op: String,
    /// The layer scope the node was being built in (empty at top level).
    pub scope: String,
    /// The operand types.
    pub operands: Vec<TensorType>,
    /// What is wrong, in words.
    pub reason: String,
}

impl GraphError {
    /// An error for `op` with the given operand types.
    pub fn new(
        kind: ErrorKind,
        op: impl Into<String>,
        operands: &[TensorType],
        reason: impl Into<String>,
    ) -> GraphError {
        GraphError {
            kind,
            op: op.into(),
            scope: String::new(),
            operands: operands.to_vec(),
            reason: reason.into(),
        }
    }

    /// The same error, attributed to a layer scope.
    pub fn in_scope(mut self, scope: &str) -> GraphError {
        if self.scope.is_empty() {
            self.scope = scope.to_string();
        }
        self
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.op)?;
        if !self.scope.is_empty() {
            write!(f, " in layer '{}'", self.scope)?;
        }
        write!(f, ": {}", self.reason)?;
        if !self.operands.is_empty() {
            let ops: Vec<String> = self.operands.iter().map(|t| t.to_string()).collect();
            write!(f, " (operands: {})", ops.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}
