//! The optimization report: a value that dumps show and that serializes to JSON.

use crate::ir::{Graph, NodeId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Size and cost of a graph, by the extractor's cost model
/// ([`op_cost`](super::extract::op_cost)).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GraphStats {
    /// Every node, leaves included.
    pub nodes: usize,
    /// Primitive ops: nodes other than inputs, parameters and constants.
    pub ops: usize,
    /// Floating-point operations.
    pub flops: f64,
    /// Bytes read and written, counting every node's operands and result.
    pub bytes: f64,
}

impl GraphStats {
    /// The statistics of `g`.
    pub fn of(g: &Graph) -> GraphStats {
        let mut s = GraphStats::default();
        for id in g.ids() {
            let node = g.node(id);
            s.nodes += 1;
            if !node.op.is_leaf() {
                s.ops += 1;
            }
            let ins: Vec<_> = g.operands(id).iter().map(|&o| g.ty(o).clone()).collect();
            let (f, b) = super::extract::op_cost(&node.op, &node.ty, &ins);
            s.flops += f;
            s.bytes += b;
        }
        s
    }
}

/// One saturation iteration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IterationReport {
    /// E-nodes at the start of the iteration.
    pub egraph_nodes: usize,
    /// E-classes at the start of the iteration.
    pub egraph_classes: usize,
    /// Rules that changed the e-graph in this iteration, with how many times.
    pub applied: BTreeMap<String, usize>,
}

/// One phase (`simplify`, `fuse`, …): its iterations and why it stopped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseReport {
    /// The phase's name.
    pub name: String,
    /// Why saturation stopped: `saturated`, `iteration limit (N)`, `node limit (N)`,
    /// `time limit (S s)` or another reason.
    pub stop_reason: String,
    /// One entry per iteration.
    pub iterations: Vec<IterationReport>,
    /// E-nodes when the phase stopped.
    pub egraph_nodes: usize,
    /// E-classes when the phase stopped.
    pub egraph_classes: usize,
    /// Wall-clock seconds (absent in deterministic dumps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// A group of nodes of the optimized graph that run as one kernel, as lowering partitions
/// it (a matmul's elementwise epilogue, multi-output elementwise kernels).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FusionGroup {
    /// The step that computes it (`step 3: loop max_9 [128, 100], 5 instrs`).
    pub kind: String,
    /// The nodes, in id order.
    pub nodes: Vec<NodeId>,
}

/// What the optimizer did (see the [module docs](super)).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptReport {
    /// The phases, in order.
    pub phases: Vec<PhaseReport>,
    /// Total applications per rule over all phases (rules that never fired are absent).
    pub rule_matches: BTreeMap<String, usize>,
    /// Applications rejected by the type check, per rule.
    pub rejected: BTreeMap<String, usize>,
    /// The graph before optimization.
    pub before: GraphStats,
    /// The graph after optimization.
    pub after: GraphStats,
    /// The extractor's DAG cost of the chosen graph.
    pub extracted_cost: f64,
    /// Fusion groups of the optimized graph.
    pub fusion_groups: Vec<FusionGroup>,
    /// Total wall-clock seconds (absent in deterministic dumps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl OptReport {
    /// The same report without wall-clock times, so that it prints the same on every run.
    pub fn without_timings(&self) -> OptReport {
        let mut r = self.clone();
        r.seconds = None;
        for p in &mut r.phases {
            p.seconds = None;
        }
        r
    }

    /// The group index of every node of the optimized graph (`None` outside groups).
    pub fn group_of(&self, nodes: usize) -> Vec<Option<usize>> {
        let mut g = vec![None; nodes];
        for (i, grp) in self.fusion_groups.iter().enumerate() {
            for n in &grp.nodes {
                if n.index() < nodes {
                    g[n.index()] = Some(i);
                }
            }
        }
        g
    }
}

fn pct(before: f64, after: f64) -> String {
    if before == 0.0 {
        "n/a".into()
    } else {
        format!("{:+.1}%", 100.0 * (after - before) / before)
    }
}

impl fmt::Display for OptReport {
    /// A multi-line summary; every line starts with `# ` (a comment in the text dump).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# optimization report")?;
        if let Some(s) = self.seconds {
            writeln!(f, "#   time: {:.3} ms", s * 1e3)?;
        }
        let (b, a) = (&self.before, &self.after);
        writeln!(
            f,
            "#   ops: {} -> {} ({}); nodes: {} -> {}",
            b.ops,
            a.ops,
            pct(b.ops as f64, a.ops as f64),
            b.nodes,
            a.nodes
        )?;
        writeln!(
            f,
            "#   flops: {} -> {} ({}); bytes moved: {} -> {} ({})",
            b.flops,
            a.flops,
            pct(b.flops, a.flops),
            b.bytes,
            a.bytes,
            pct(b.bytes, a.bytes)
        )?;
        for p in &self.phases {
            write!(
                f,
                "#   phase {}: {} after {} iteration(s), e-graph {} nodes / {} classes",
                p.name,
                p.stop_reason,
                p.iterations.len(),
                p.egraph_nodes,
                p.egraph_classes
            )?;
            if let Some(s) = p.seconds {
                write!(f, ", {:.3} ms", s * 1e3)?;
            }
            writeln!(f)?;
            let sizes: Vec<String> = p
                .iterations
                .iter()
                .map(|i| format!("{}/{}", i.egraph_nodes, i.egraph_classes))
                .collect();
            writeln!(
                f,
                "#     sizes per iteration (nodes/classes): {}",
                sizes.join(" ")
            )?;
        }
        writeln!(f, "#   rule matches:")?;
        for (rule, n) in &self.rule_matches {
            writeln!(f, "#     {rule}: {n}")?;
        }
        if !self.rejected.is_empty() {
            writeln!(f, "#   rejected by the type check:")?;
            for (rule, n) in &self.rejected {
                writeln!(f, "#     {rule}: {n}")?;
            }
        }
        writeln!(f, "#   fusion groups: {}", self.fusion_groups.len())?;
        Ok(())
    }
}
