//! Dumps of a lowered program: its kernels as groups of graph nodes (`kernels` stage) and
//! its step-by-step schedule with the buffer plan (`schedule` stage).
//!
//! - `kernels`: the graph dump of [`crate::opt::dump`] with one group per program step
//!   (`step 3: loop add_12 [128, 100]`, `step 4: gemm 128×100×784`, …): text, DOT with one
//!   cluster per step, JSON with the step index as each node's `group`.
//! - `schedule`: text with one line per step (what it reads and writes) and one per buffer
//!   (kind, dtype, elements, arena offset, live range), then the memory plan; DOT with the
//!   steps in order and the buffers between them; JSON: the `kernels` document plus
//!   `program`, the serialized [`Program`](xenon_runtime::program::Program).

use super::Lowered;
use crate::ir::Graph;
use crate::opt::dump::{to_dot_with, to_json_with, to_text_with};
use crate::opt::report::FusionGroup;
use serde_json::{Value, json};
use std::fmt::Write;
use xenon_runtime::program::{BufferKind, MemoryPlan, Step};

/// One group per step: the graph nodes it computes.
pub fn kernel_groups(l: &Lowered) -> Vec<FusionGroup> {
    l.program
        .steps
        .iter()
        .zip(&l.groups)
        .enumerate()
        .map(|(i, (s, nodes))| {
            let mut nodes = nodes.clone();
            nodes.sort_unstable();
            nodes.dedup();
            FusionGroup {
                kind: format!("step {i}: {}", s.describe()),
                nodes,
            }
        })
        .collect()
}

/// `# memory plan: …` summary line.
pub fn plan_line(p: &MemoryPlan) -> String {
    let pct = if p.naive_bytes == 0 {
        0.0
    } else {
        100.0 * p.arena_bytes as f64 / p.naive_bytes as f64
    };
    format!(
        "# memory plan: arena {} bytes, {} bytes without reuse ({pct:.1}%), {} buffer(s) in place\n",
        p.arena_bytes, p.naive_bytes, p.in_place
    )
}

/// The `kernels` stage as text.
pub fn kernels_text(g: &Graph, l: &Lowered) -> String {
    let mut s = to_text_with(g, &kernel_groups(l), None);
    s.push_str(&plan_line(&l.program.plan));
    s
}

/// The `kernels` stage as DOT.
pub fn kernels_dot(g: &Graph, l: &Lowered) -> String {
    to_dot_with(g, &kernel_groups(l))
}

/// The `kernels` stage as JSON (with the memory plan).
pub fn kernels_json(g: &Graph, l: &Lowered) -> Value {
    let mut v = to_json_with(g, "kernels", &kernel_groups(l), None);
    v["plan"] = serde_json::to_value(&l.program.plan).expect("plans serialize");
    v
}

/// Buffers read (each once, increasing) and written by a step.
fn reads_writes(step: &Step) -> (Vec<usize>, Vec<usize>) {
    let (mut reads, writes) = step.buffers();
    reads.sort_unstable();
    reads.dedup();
    (reads, writes)
}

fn names(v: &[usize]) -> String {
    v.iter()
        .map(|b| format!("b{b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `schedule` stage as text.
pub fn schedule_text(l: &Lowered) -> String {
    let p = &l.program;
    let mut s = String::new();
    for (i, step) in p.steps.iter().enumerate() {
        let (r, w) = reads_writes(step);
        writeln!(
            s,
            "step {i:<3} {:<60} reads {:<24} writes {}",
            step.describe(),
            names(&r),
            names(&w)
        )
        .unwrap();
    }
    for (i, b) in p.buffers.iter().enumerate() {
        let kind = match &b.kind {
            BufferKind::Input { name } => format!("input {name:?}"),
            BufferKind::Const { values } => format!("const ({} values)", values.len()),
            BufferKind::Temp => "temp".to_string(),
        };
        let at = if matches!(b.kind, BufferKind::Input { .. }) {
            "-".to_string()
        } else {
            format!("@{}", b.offset)
        };
        let node = b.node.map(|n| format!(" (node %{n})")).unwrap_or_default();
        writeln!(
            s,
            "b{i:<4} {kind:<28} {} × {:<8} {at}{node}",
            b.dtype, b.len
        )
        .unwrap();
    }
    for (name, b) in &p.outputs {
        writeln!(s, "output {name:?} = b{b}").unwrap();
    }
    s.push_str(&plan_line(&p.plan));
    s
}

/// The `schedule` stage as DOT: steps in order, buffers between them.
pub fn schedule_dot(l: &Lowered) -> String {
    let p = &l.program;
    let mut s = String::from(
        "digraph schedule {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n",
    );
    for (i, b) in p.buffers.iter().enumerate() {
        writeln!(
            s,
            "  b{i} [shape=ellipse, label=\"b{i} {}×{}\"];",
            b.dtype, b.len
        )
        .unwrap();
    }
    for (i, step) in p.steps.iter().enumerate() {
        let label = step.describe().replace('"', "'");
        writeln!(s, "  s{i} [shape=box, label=\"step {i}: {label}\"];").unwrap();
        let (r, w) = reads_writes(step);
        for b in r {
            writeln!(s, "  b{b} -> s{i};").unwrap();
        }
        for b in w {
            writeln!(s, "  s{i} -> b{b};").unwrap();
        }
    }
    s.push_str("}\n");
    s
}

/// The `schedule` stage as JSON.
pub fn schedule_json(g: &Graph, l: &Lowered) -> Value {
    let mut v = to_json_with(g, "schedule", &kernel_groups(l), None);
    v["plan"] = serde_json::to_value(&l.program.plan).expect("plans serialize");
    v["program"] = serde_json::to_value(&l.program).expect("programs serialize");
    v["steps"] = json!(
        l.program
            .steps
            .iter()
            .map(Step::describe)
            .collect::<Vec<_>>()
    );
    v
}
