//! The tensor IR: primitive ops, static types, and the graph that holds them.
//!
//! Start with [`Graph`]: its builder methods add nodes, check shapes and dtypes as they go,
//! and return a [`GraphError`] that names the op, the layer scope and every operand type
//! when something does not fit.

pub mod error;
pub mod graph;
pub mod infer;
pub mod num_serde;
pub mod op;
pub mod printer;
pub mod serial;
pub mod types;

pub use error::{ErrorKind, GraphError};

/// The most bytes one value of a graph may take: 2^40 (1 TiB). A node whose type is larger
/// (or whose size overflows) is an [`ErrorKind::TooLarge`] error, so every size computed
/// from a graph's types fits in `usize` with room to spare.
pub const MAX_TENSOR_BYTES: usize = 1 << 40;
pub use graph::{Graph, Node, NodeId};
pub use op::{BinaryOp, CompareOp, Literal, Op, OpGroup, ReduceOp, UnaryOp, Window};
pub use serial::{GraphDef, NodeDef, OutputDef};
pub use types::{DType, TensorType, strides, unravel};
