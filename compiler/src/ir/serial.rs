//! JSON serialization of graphs: a documented, versioned format that round-trips exactly.
//!
//! [`Graph::to_json`] writes a graph; [`Graph::from_json`] reads one back, rebuilding every
//! node through [`Graph::add_node`] so that the shape and dtype rules run again. Reading
//! `to_json`'s output gives a graph equal to the original (node ids, ops and every attribute,
//! types, scopes, operand order, outputs), and writing that graph gives the same bytes.
//! [`GraphDef`] is the same document as plain serde structs, for embedding a graph in a
//! larger serde document.
//!
//! # Format: `xenon-graph`, version 1
//!
//! A document is one JSON object:
//!
//! ```json
//! {
//!   "format": "xenon-graph",
//!   "version": 1,
//!   "nodes": [
//!     {"id": 0, "op": {"op": "input", "name": "x"}, "operands": [], "type": {"shape": [4, 3], "dtype": "f32"}, "scope": ""},
//!     {"id": 1, "op": {"op": "parameter", "name": "W"}, "operands": [], "type": {"shape": [2, 3], "dtype": "f32"}, "scope": "dense1"},
//!     {"id": 2, "op": {"op": "matmul", "trans_a": false, "trans_b": true}, "operands": [0, 1], "type": {"shape": [4, 2], "dtype": "f32"}, "scope": "dense1"},
//!     {"id": 3, "op": {"op": "unary", "func": "tanh"}, "operands": [2], "type": {"shape": [4, 2], "dtype": "f32"}, "scope": ""}
//!   ],
//!   "outputs": [
//!     {"name": "z", "node": 3}
//!   ]
//! }
//! ```
//!
//! ## Top level
//!
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `format` | string | always `"xenon-graph"` |
//! | `version` | integer | the format version, `1`; readers reject versions they do not know |
//! | `nodes` | array of nodes | every node, in id order |
//! | `outputs` | array of outputs | the named outputs, in the order they were set |
//! | `updates` | array of `{"output", "feed"}` | optional: outputs that are the new value of an input or parameter (written back by a training step), in the order declared |
//!
//! ## Node
//!
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `id` | integer | the node id; equal to the node's position in `nodes` (0, 1, 2, …), so ids are a topological order |
//! | `op` | object | the primitive op: [`Op`]'s serde form, an `"op"` tag plus the op's attributes (table below) |
//! | `operands` | array of integers | the operand node ids, in operand order; each is smaller than `id` |
//! | `type` | object | the result type, `{"shape": [dims…], "dtype": "f32" \| "f64" \| "i32"}`; a scalar has `"shape": []`. For `input`, `parameter`, `constant` and the random ops it declares the type; for every other op it repeats the inferred type, and a reader checks that it agrees |
//! | `scope` | string | the layer scope the node was built in (`/`-separated, `""` at top level) |
//!
//! ## Output
//!
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `name` | string | the output name (unique) |
//! | `node` | integer | the id of the node it names |
//!
//! ## Ops
//!
//! The `op` object's `"op"` tag and attributes (the semantics are [`Op`]'s):
//!
//! | `"op"` | attributes | operands |
//! |---|---|---|
//! | `input` | `name`: string | none |
//! | `parameter` | `name`: string | none |
//! | `constant` | `value`: array of f64 (one value = a splat, else one per element, row-major) | none |
//! | `random_uniform` | `seed`: u64, `low`: f64, `high`: f64 | none, or an i32 scalar counter |
//! | `random_normal` | `seed`: u64, `mean`: f64, `std`: f64 | none, or an i32 scalar counter |
//! | `unary` | `func`: `neg` `abs` `sign` `exp` `log` `sqrt` `recip` `tanh` | x |
//! | `binary` | `func`: `add` `sub` `mul` `div` `max` `min` | a, b |
//! | `compare` | `func`: `lt` `le` `gt` `ge` `eq` `ne` | a, b |
//! | `select` | none | cond, a, b |
//! | `cast` | `to`: dtype | x |
//! | `reduce` | `func`: `sum` `max` `mean`, `axes`: array, `keepdims`: bool | x |
//! | `argmax` | `axis`, `keepdims`: bool | x |
//! | `reshape` | `shape`: array | x |
//! | `permute` | `perm`: array | x |
//! | `broadcast` | `shape`: array | x |
//! | `slice` | `start`, `end`, `step`: arrays | x |
//! | `pad` | `low`, `high`, `interior`: arrays, `value`: f64 | x |
//! | `concat` | `axis` | one or more |
//! | `matmul` | `trans_a`, `trans_b`: bool | a, b |
//! | `im2col` | `window` | x |
//! | `col2im` | `window`, `spatial`: array | cols |
//! | `gather` | none | data, indices |
//! | `scatter_add` | `rows` | updates, indices |
//! | `scale_grad` | `factor`: f64 (the gradient's factor; the value is `x`) | x |
//!
//! A `window` is `{"kernel": […], "stride": […], "pad_low": […], "pad_high": […],
//! "dilation": […]}`, one entry per spatial axis. Axes, sizes, ids and seeds are JSON
//! integers.
//!
//! ## Numbers
//!
//! f64 attributes (`value`, `low`, `high`, `mean`, `std`, a pad's `value`) are JSON numbers
//! when finite, written in shortest round-trip form and read back bit for bit (`-0.0` keeps
//! its sign), and the strings `"inf"`, `"-inf"` and `"nan"` otherwise (see
//! [`super::num_serde`]). NaN sign and payload bits are not kept: every NaN reads back as
//! `f64::NAN`.
//!
//! ## Layout
//!
//! [`Graph::to_json`] writes the top-level object over several lines with two-space
//! indentation and each node and output on one line of its own (with a space after every
//! `:` and `,`), then a final newline. The bytes depend only on the graph. Readers accept
//! any JSON whitespace.
//!
//! # Validation
//!
//! [`Graph::from_json`] never panics on bad input. It checks, in order:
//!
//! 1. the text is JSON, and its top level is an object;
//! 2. `format` is `"xenon-graph"` and `version` is `1`;
//! 3. every field is present with the right JSON type, and no field is unknown (at the top
//!    level, in nodes, outputs and op objects), and every op tag, function and dtype is
//!    known;
//! 4. node ids are `0, 1, 2, …` in order, and each operand is an earlier node;
//! 5. each node, rebuilt through [`Graph::add_node`] in its scope, passes the shape and
//!    dtype rules (including unique input and parameter names), and its stored type equals
//!    the type the rules give;
//! 6. every output names an existing node, and output names are unique.
//!
//! Failures of 1–4, a type disagreement, and an output naming a missing node are
//! [`ErrorKind::Malformed`]; a failed shape rule keeps the rule's kind. Every message about a
//! node names it (`node %3: …`), and a failed rule also names the op, its layer scope and its
//! operand types.
//!
//! ```
//! use xenon_compiler::ir::{ErrorKind, Graph};
//! let text = r#"{"format": "xenon-graph", "version": 2, "nodes": [], "outputs": []}"#;
//! let err = Graph::from_json(text).unwrap_err();
//! assert_eq!(err.kind, ErrorKind::Malformed);
//! assert_eq!(err.to_string(), "graph: unsupported version 2 (this build reads version 1)");
//! ```

use super::error::{ErrorKind, GraphError};
use super::graph::{Graph, NodeId};
use super::op::Op;
use super::types::TensorType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io;

type Result<T> = std::result::Result<T, GraphError>;

/// The value of the `format` field.
pub const FORMAT: &str = "xenon-graph";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// A serialized graph: the JSON document as serde structs (see the [module docs](self)).
///
/// Deserializing a `GraphDef` checks only the JSON structure; [`GraphDef::to_graph`] checks
/// the header and the graph rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDef {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u32,
    /// Every node, in id order.
    pub nodes: Vec<NodeDef>,
    /// The named outputs, in the order they were set.
    pub outputs: Vec<OutputDef>,
    /// The outputs that update a feed, in the order declared (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<UpdateDef>,
}

/// One serialized update: output `output` is the new value of input or parameter `feed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateDef {
    pub output: String,
    pub feed: String,
}

/// One serialized node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    /// The node id (its position in [`GraphDef::nodes`]).
    pub id: NodeId,
    /// The primitive op with its attributes.
    pub op: Op,
    /// The operand ids, in operand order.
    pub operands: Vec<NodeId>,
    /// The result type (declared for leaves and random ops, inferred for the others).
    #[serde(rename = "type")]
    pub ty: TensorType,
    /// The layer scope (`""` at top level).
    pub scope: String,
}

/// One named output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputDef {
    /// The output name.
    pub name: String,
    /// The node it names.
    pub node: NodeId,
}

/// A [`ErrorKind::Malformed`] error about the document as a whole or a node that could not
/// be read.
fn malformed(reason: impl Into<String>) -> GraphError {
    GraphError::new(ErrorKind::Malformed, "graph", &[], reason)
}

fn check_header(format: &str, version: u64) -> Result<()> {
    if format != FORMAT {
        return Err(malformed(format!(
            "unsupported format {format:?} (expected {FORMAT:?})"
        )));
    }
    if version != u64::from(VERSION) {
        return Err(malformed(format!(
            "unsupported version {version} (this build reads version {VERSION})"
        )));
    }
    Ok(())
}

/// A serde_json formatter that writes everything on one line with a space after each `:`
/// and `,` (`{"id": 0, "operands": [1, 2]}`).
struct OneLine;

impl serde_json::ser::Formatter for OneLine {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// `value` as one line of JSON.
fn one_line<T: Serialize>(value: &T) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, OneLine);
    value
        .serialize(&mut ser)
        .expect("graph documents contain only strings, numbers, bools, arrays and objects");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// Appends `"key": [items…]` with one item per line.
fn push_array<T: Serialize>(out: &mut String, key: &str, items: &[T]) {
    out.push_str(&format!("  {}: [", one_line(&key)));
    for (i, item) in items.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str(&one_line(item));
    }
    out.push_str(if items.is_empty() { "]" } else { "\n  ]" });
}

/// The field names a JSON object may have.
fn check_fields(obj: &Map<String, Value>, known: &[&str], what: &str) -> Result<()> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(malformed(format!("unknown field {k:?} in {what}"))),
        None => Ok(()),
    }
}

/// Reads node `i` from its JSON value, rejecting unknown fields in the op object too.
fn parse_node(i: usize, value: Value) -> Result<NodeDef> {
    let at = |e: GraphError| GraphError {
        reason: format!("node %{i}: {}", e.reason),
        ..e
    };
    let given_op = value.get("op").cloned();
    let node: NodeDef = serde_json::from_value(value).map_err(|e| at(malformed(e.to_string())))?;
    // `Op`'s derived Deserialize ignores unknown attributes; compare the given op object
    // with the one that was understood.
    if let Some(given) = given_op
        && let Ok(known) = serde_json::to_value(&node.op)
        && let Some(k) = unknown_field(&given, &known)
    {
        return Err(at(malformed(format!(
            "unknown field {k:?} in the {} op",
            node.op.name()
        ))));
    }
    Ok(node)
}

/// The first object key in `given` (searched recursively through objects) that `known`
/// lacks, as a dotted path.
fn unknown_field(given: &Value, known: &Value) -> Option<String> {
    let (Value::Object(given), Value::Object(known)) = (given, known) else {
        return None;
    };
    given.iter().find_map(|(k, v)| match known.get(k) {
        None => Some(k.clone()),
        Some(kv) => unknown_field(v, kv).map(|inner| format!("{k}.{inner}")),
    })
}

impl GraphDef {
    /// The document for `g`.
    pub fn from_graph(g: &Graph) -> GraphDef {
        GraphDef {
            format: FORMAT.to_string(),
            version: VERSION,
            nodes: g
                .ids()
                .map(|id| {
                    let n = g.node(id);
                    NodeDef {
                        id,
                        op: n.op.clone(),
                        operands: g.operands(id),
                        ty: n.ty.clone(),
                        scope: n.scope.clone(),
                    }
                })
                .collect(),
            outputs: g
                .outputs()
                .iter()
                .map(|(name, node)| OutputDef {
                    name: name.clone(),
                    node: *node,
                })
                .collect(),
            updates: g
                .updates()
                .iter()
                .map(|(output, feed)| UpdateDef {
                    output: output.clone(),
                    feed: feed.clone(),
                })
                .collect(),
        }
    }

    /// The document as JSON text, in the layout described in the [module docs](self).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n");
        out.push_str(&format!("  \"format\": {},\n", one_line(&self.format)));
        out.push_str(&format!("  \"version\": {},\n", self.version));
        push_array(&mut out, "nodes", &self.nodes);
        out.push_str(",\n");
        push_array(&mut out, "outputs", &self.outputs);
        if !self.updates.is_empty() {
            out.push_str(",\n");
            push_array(&mut out, "updates", &self.updates);
        }
        out.push_str("\n}\n");
        out
    }

    /// Reads a document, checking the JSON structure, the header and that no field is
    /// unknown, but not the graph rules (see [`GraphDef::to_graph`]). Errors are
    /// [`ErrorKind::Malformed`] and name the node they are about.
    pub fn from_json(text: &str) -> Result<GraphDef> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
        let Value::Object(mut top) = value else {
            return Err(malformed("the document is not a JSON object"));
        };
        let format = match top.get("format") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => return Err(malformed(format!("`format` must be a string, got {v}"))),
            None => return Err(malformed("missing field `format`")),
        };
        let version = match top.get("version") {
            Some(v) => v.as_u64().ok_or_else(|| {
                malformed(format!("`version` must be a non-negative integer, got {v}"))
            })?,
            None => return Err(malformed("missing field `version`")),
        };
        check_header(&format, version)?;
        check_fields(
            &top,
            &["format", "version", "nodes", "outputs", "updates"],
            "the document",
        )?;
        let has_updates = top.contains_key("updates");
        let mut array = |key: &str| match top.remove(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(malformed(format!("`{key}` must be an array, got {v}"))),
            None => Err(malformed(format!("missing field `{key}`"))),
        };
        let nodes = array("nodes")?;
        let outputs = array("outputs")?;
        let updates = match array("updates") {
            Err(_) if !has_updates => Vec::new(),
            a => a?,
        };
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_node(i, v))
            .collect::<Result<Vec<_>>>()?;
        let outputs = outputs
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v).map_err(|e| malformed(format!("output {i}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let updates = updates
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v).map_err(|e| malformed(format!("update {i}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GraphDef {
            format,
            version: VERSION,
            nodes,
            outputs,
            updates,
        })
    }

    /// Builds the graph, checking the header, the ids, that operands precede their users,
    /// the shape rules of every node, that each stored type equals the inferred one, and the
    /// outputs (see the [module docs](self#validation)).
    pub fn to_graph(&self) -> Result<Graph> {
        check_header(&self.format, u64::from(self.version))?;
        let mut g = Graph::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let at = |e: GraphError| GraphError {
                reason: format!("node %{i}: {}", e.reason),
                ..e
            };
            if n.id.index() != i {
                return Err(at(malformed(format!(
                    "the node at position {i} has id {}; ids must be 0, 1, 2, … in order",
                    n.id.0
                ))));
            }
            if let Some((pos, o)) = n.operands.iter().enumerate().find(|(_, o)| o.index() >= i) {
                return Err(at(GraphError::new(
                    ErrorKind::Malformed,
                    n.op.name(),
                    &[],
                    format!("operand {pos} is {o}, which does not precede the node"),
                )
                .in_scope(&n.scope)));
            }
            let id = g
                .in_scope(&n.scope, |g| {
                    g.add_node(n.op.clone(), &n.operands, Some(n.ty.clone()))
                })
                .map_err(at)?;
            let inferred = g.ty(id);
            if *inferred != n.ty {
                let operands: Vec<TensorType> =
                    n.operands.iter().map(|&o| g.ty(o).clone()).collect();
                return Err(at(GraphError::new(
                    ErrorKind::Malformed,
                    n.op.name(),
                    &operands,
                    format!(
                        "the stored type {} differs from the type {inferred} given by the shape rules",
                        n.ty
                    ),
                )
                .in_scope(&n.scope)));
            }
        }
        for out in &self.outputs {
            if out.node.index() >= g.len() {
                return Err(malformed(format!(
                    "output {:?} names {}, but the graph has {} nodes",
                    out.name,
                    out.node,
                    g.len()
                )));
            }
            g.set_output(&out.name, out.node)?;
        }
        for u in &self.updates {
            g.set_update(&u.output, &u.feed)?;
        }
        Ok(g)
    }
}

impl From<&Graph> for GraphDef {
    fn from(g: &Graph) -> GraphDef {
        GraphDef::from_graph(g)
    }
}

impl Graph {
    /// The graph as JSON text in the `xenon-graph` format (see [`crate::ir::serial`]). The
    /// bytes depend only on the graph, so equal graphs give equal text.
    ///
    /// ```
    /// use xenon_compiler::ir::{DType, Graph};
    /// let mut g = Graph::new();
    /// let x = g.input("x", DType::F32, &[2]).unwrap();
    /// let y = g.exp(x).unwrap();
    /// g.set_output("y", y).unwrap();
    /// assert_eq!(
    ///     g.to_json(),
    ///     r#"{
    ///   "format": "xenon-graph",
    ///   "version": 1,
    ///   "nodes": [
    ///     {"id": 0, "op": {"op": "input", "name": "x"}, "operands": [], "type": {"shape": [2], "dtype": "f32"}, "scope": ""},
    ///     {"id": 1, "op": {"op": "unary", "func": "exp"}, "operands": [0], "type": {"shape": [2], "dtype": "f32"}, "scope": ""}
    ///   ],
    ///   "outputs": [
    ///     {"name": "y", "node": 1}
    ///   ]
    /// }
    /// "#
    /// );
    /// let h = Graph::from_json(&g.to_json()).unwrap();
    /// assert_eq!(h, g);
    /// ```
    pub fn to_json(&self) -> String {
        GraphDef::from_graph(self).to_json()
    }

    /// Reads a graph written by [`Graph::to_json`], rebuilding and re-checking every node
    /// (see [`crate::ir::serial`] for the checks). Never panics: bad input gives a
    /// [`GraphError`] that names the offending node.
    ///
    /// ```
    /// use xenon_compiler::ir::{DType, ErrorKind, Graph};
    /// let mut g = Graph::new();
    /// let a = g.input("a", DType::F64, &[2, 3]).unwrap();
    /// let b = g.parameter("b", DType::F64, &[3, 4]).unwrap();
    /// let c = g.in_scope("dense1", |g| g.matmul(a, b, false, false)).unwrap();
    /// g.set_output("c", c).unwrap();
    /// let text = g.to_json();
    /// assert_eq!(Graph::from_json(&text).unwrap(), g);
    ///
    /// // A stored type that disagrees with the shape rules is rejected.
    /// let bad = text.replace(r#""shape": [2, 4]"#, r#""shape": [2, 5]"#);
    /// let err = Graph::from_json(&bad).unwrap_err();
    /// assert_eq!(err.kind, ErrorKind::Malformed);
    /// assert_eq!(
    ///     err.to_string(),
    ///     "matmul in layer 'dense1': node %2: the stored type f64[2, 5] differs from the type \
    ///      f64[2, 4] given by the shape rules (operands: f64[2, 3], f64[3, 4])"
    /// );
    /// ```
    pub fn from_json(text: &str) -> Result<Graph> {
        GraphDef::from_json(text)?.to_graph()
    }
}
