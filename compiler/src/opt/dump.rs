//! Graph dumps as text, Graphviz DOT and JSON, with fusion groups and the optimization
//! report. The output depends only on the graph and the report (give
//! [`OptReport::without_timings`] for run-to-run identical bytes).
//!
//! ## Text
//!
//! The graph's text form ([`crate::ir::printer`]), then one line per fusion group
//! (`# group 0 (step 2: loop max_9 [128, 100], 5 instrs): %5 %6 %7`) and the report's lines, all starting with `# `.
//!
//! ## DOT
//!
//! `digraph xenon { … }`: one box per node labelled `%id op attrs`, the type
//! (`f32[128, 10]`) and the scope; one edge per operand (labelled with the operand position
//! when the op has several operands); output names as plain-text nodes; each fusion group
//! a `subgraph cluster_gN`. Render with `dot -Tsvg dump.dot -o dump.svg`.
//!
//! ## JSON
//!
//! One object:
//!
//! ```text
//! {
//!   "format": "xenon-dump", "version": 1, "stage": "optimized",
//!   "nodes": [ { "id": 0, "op": "input", "attrs": {"name": "x"}, "operands": [],
//!                "dtype": "f32", "shape": [128, 784], "scope": "", "group": null }, … ],
//!   "outputs": [ { "name": "cost", "node": 41 }, … ],
//!   "groups": [ { "id": 0, "kind": "step 2: loop max_9 …", "nodes": [5, 6, 7] }, … ],
//!   "report": { … } | null
//! }
//! ```
//!
//! `op` is the op name ([`Op::name`](crate::ir::Op::name)); `attrs` holds the op's
//! attributes as in the graph JSON format ([`crate::ir::serial`]) without the `op` tag;
//! `operands` are node ids; `group` is the index into `groups` or `null`; `report` is the
//! [`OptReport`] (its fields as documented there) for the `optimized` stage and `null`
//! otherwise. Keys are sorted within each object.

use super::report::{FusionGroup, OptReport};
use crate::ir::Graph;
use serde_json::{Value, json};
use std::fmt::Write;

/// The text dump.
pub fn to_text(g: &Graph, report: Option<&OptReport>) -> String {
    to_text_with(g, report.map_or(&[], |r| &r.fusion_groups), report)
}

/// The text dump with the given groups (e.g. the kernels of a lowered program).
pub fn to_text_with(g: &Graph, groups: &[FusionGroup], report: Option<&OptReport>) -> String {
    let mut s = g.to_text();
    for (i, grp) in groups.iter().enumerate() {
        let ids: Vec<String> = grp.nodes.iter().map(|n| n.to_string()).collect();
        writeln!(s, "# group {i} ({}): {}", grp.kind, ids.join(" ")).unwrap();
    }
    if let Some(r) = report {
        write!(s, "{r}").unwrap();
    }
    s
}

/// For each node, the last group holding it.
fn group_of(groups: &[FusionGroup], n: usize) -> Vec<Option<usize>> {
    let mut v = vec![None; n];
    for (i, grp) in groups.iter().enumerate() {
        for id in &grp.nodes {
            if id.index() < n {
                v[id.index()] = Some(i);
            }
        }
    }
    v
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The Graphviz DOT dump.
pub fn to_dot(g: &Graph, report: Option<&OptReport>) -> String {
    to_dot_with(g, report.map_or(&[], |r| &r.fusion_groups))
}

/// The DOT dump with the given groups as clusters.
pub fn to_dot_with(g: &Graph, fusion_groups: &[FusionGroup]) -> String {
    let mut s = String::new();
    s.push_str("digraph xenon {\n");
    s.push_str("  rankdir=TB;\n");
    s.push_str("  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    s.push_str("  edge [fontsize=8];\n");
    let groups = group_of(fusion_groups, g.len());
    {
        for (i, grp) in fusion_groups.iter().enumerate() {
            writeln!(s, "  subgraph cluster_g{i} {{").unwrap();
            writeln!(
                s,
                "    label=\"group {i}: {}\"; style=dashed; color=blue;",
                escape(&grp.kind)
            )
            .unwrap();
            for n in &grp.nodes {
                writeln!(s, "    n{};", n.0).unwrap();
            }
            s.push_str("  }\n");
        }
    }
    for id in g.ids() {
        let node = g.node(id);
        let attrs = node.op.attrs();
        let mut label = format!("{id} {}", node.op.name());
        if !attrs.is_empty() {
            label.push(' ');
            label.push_str(&attrs);
        }
        label = escape(&label);
        label.push_str("\\n");
        label.push_str(&escape(&node.ty.to_string()));
        if !node.scope.is_empty() {
            label.push_str("\\n");
            label.push_str(&escape(&node.scope));
        }
        let style = if node.op.is_leaf() {
            ", style=rounded"
        } else if groups[id.index()].is_some() {
            ", style=filled, fillcolor=lightblue"
        } else {
            ""
        };
        writeln!(s, "  n{} [label=\"{label}\"{style}];", id.0).unwrap();
    }
    for id in g.ids() {
        let ops = g.operands(id);
        for (pos, o) in ops.iter().enumerate() {
            if ops.len() > 1 {
                writeln!(s, "  n{} -> n{} [label=\"{pos}\"];", o.0, id.0).unwrap();
            } else {
                writeln!(s, "  n{} -> n{};", o.0, id.0).unwrap();
            }
        }
    }
    for (i, (name, id)) in g.outputs().iter().enumerate() {
        writeln!(
            s,
            "  out{i} [label=\"{}\", shape=plaintext];\n  n{} -> out{i};",
            escape(name),
            id.0
        )
        .unwrap();
    }
    s.push_str("}\n");
    s
}

/// The JSON dump (see the [module docs](self)).
pub fn to_json(g: &Graph, stage: &str, report: Option<&OptReport>) -> Value {
    to_json_with(g, stage, report.map_or(&[], |r| &r.fusion_groups), report)
}

/// The JSON dump with the given groups.
pub fn to_json_with(
    g: &Graph,
    stage: &str,
    fusion_groups: &[FusionGroup],
    report: Option<&OptReport>,
) -> Value {
    let groups = group_of(fusion_groups, g.len());
    let nodes: Vec<Value> = g
        .ids()
        .map(|id| {
            let node = g.node(id);
            let mut attrs = serde_json::to_value(&node.op).expect("ops serialize");
            if let Value::Object(m) = &mut attrs {
                m.remove("op");
            }
            json!({
                "id": id.0,
                "op": node.op.name(),
                "attrs": attrs,
                "operands": g.operands(id).iter().map(|o| o.0).collect::<Vec<_>>(),
                "dtype": node.ty.dtype.to_string(),
                "shape": node.ty.shape,
                "scope": node.scope,
                "group": groups[id.index()],
            })
        })
        .collect();
    let outputs: Vec<Value> = g
        .outputs()
        .iter()
        .map(|(n, id)| json!({"name": n, "node": id.0}))
        .collect();
    let grps: Vec<Value> = fusion_groups
        .iter()
        .enumerate()
        .map(|(i, grp)| json!({"id": i, "kind": grp.kind, "nodes": grp.nodes.iter().map(|n| n.0).collect::<Vec<_>>()}))
        .collect();
    json!({
        "format": "xenon-dump",
        "version": 1,
        "stage": stage,
        "nodes": nodes,
        "outputs": outputs,
        "groups": grps,
        "report": report.map(|r| serde_json::to_value(r).expect("reports serialize")),
    })
}
