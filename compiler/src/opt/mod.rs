//! The e-graph optimizer: algebraic rewrites, transpose folding, gradient cancellations and
//! epilogue-fusion marking with [egg](https://docs.rs/egg), under explicit limits.
//!
//! [`optimize`] turns a [`Graph`] into an e-graph ([`lang`]: one e-node per primitive op,
//! attributes as attribute e-classes; [`analysis`]: the type of every e-class and the value
//! of small constants), runs the **phases** `simplify → fuse → simplify`
//! ([`default_phases`], rules in [`rules`]), extracts the cheapest equivalent graph by a
//! DAG-aware cost of flops and bytes moved ([`extract`]), converts it back to a `Graph`
//! and returns it with an [`OptReport`]: matches per rule, e-graph size per iteration, stop
//! reason and time per phase, ops / flops / bytes before and after, and the fusion groups.
//!
//! Every phase runs under node, iteration and time limits ([`PhaseLimits`]; defaults in
//! [`OptConfig::default`]), may grow the e-graph by only so much relative to its size
//! ([`OptConfig::growth`]), and uses egg's [`BackoffScheduler`], which bans rules that
//! match too often. A stopped e-graph is still extracted, so hitting a limit only means less
//! optimization; the report says which limit stopped each phase. Results are deterministic
//! unless a *time* limit stops a phase.
//!
//! The optimized graph computes what the input graph computes: every rule is an identity
//! of real arithmetic where its left-hand side is defined (see [`rules`]), and every
//! example model and thousands of random graphs are checked against the reference
//! interpreter (`compiler/tests/opt.rs`). Inputs, parameters and outputs keep their names;
//! nodes keep the layer scope of the node they replace.
//!
//! ```
//! use xenon_compiler::ir::{DType, Graph};
//! use xenon_compiler::opt::{optimize, OptConfig};
//!
//! let mut g = Graph::new();
//! let x = g.input("x", DType::F32, &[4]).unwrap();
//! let nx = g.neg(x).unwrap();
//! let y = g.neg(nx).unwrap();               // −(−x)
//! let one = g.scalar(DType::F32, 1.0).unwrap();
//! let z = g.mul(y, one).unwrap();           // ·1
//! g.set_output("z", z).unwrap();
//!
//! let (opt, report) = optimize(&g, &OptConfig::default()).unwrap();
//! assert_eq!(opt.output("z"), opt.find_leaf("x")); // z is x itself
//! assert_eq!(report.after.ops, 0);
//! assert!(report.rule_matches["neg-neg"] >= 1);
//! ```

pub mod analysis;
pub mod dump;
pub mod extract;
pub mod lang;
pub mod report;
pub mod rules;

pub use report::{FusionGroup, GraphStats, OptReport};

use crate::ir::{Graph, GraphError, NodeId, Op};
use analysis::{TypeAnalysis, XGraph};
use egg::{BackoffScheduler, Id, Runner, StopReason};
use lang::{XLang, from_op, op_attr, tensor_children, to_op};
use rules::XRewrite;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The limits of one saturation phase.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseLimits {
    /// Most iterations (rule applications rounds).
    pub iter_limit: usize,
    /// Most e-nodes; the phase stops once the e-graph is larger.
    pub node_limit: usize,
    /// Most wall-clock time.
    pub time_limit: Duration,
}

/// Optimizer settings. Every field's default is given on the field.
#[derive(Clone, Debug, PartialEq)]
pub struct OptConfig {
    /// Limits of each `simplify` phase. Default: 30 iterations, 100,000 e-nodes, 2 s.
    pub simplify: PhaseLimits,
    /// Limits of the `fuse` phase. Default: 5 iterations, 100,000 e-nodes, 1 s.
    pub fuse: PhaseLimits,
    /// Whether to run the `fuse` phase and the second `simplify`. Default: true.
    pub fusion: bool,
    /// DAG improvement passes of the extractor. Default: 3
    /// ([`extract::DEFAULT_PASSES`]).
    pub extract_passes: usize,
    /// The backoff scheduler's initial match limit per rule and iteration. Default: 1,000
    /// (egg's default).
    pub match_limit: usize,
    /// The backoff scheduler's initial ban length, in iterations. Default: 5 (egg's
    /// default).
    pub ban_length: usize,
    /// How many e-nodes each phase may add, as a fraction of the e-graph's size when the
    /// phase starts; default 0.5 (see [`OptConfig::growth_floor`]). This bounds
    /// saturation on large graphs — an unrolled recurrent network repeats the same cell
    /// `T` times, and distribution through its backward recurrence grows the e-graph
    /// without end — while small graphs saturate: most of what the rules find there, they
    /// find in the first iterations.
    pub growth: f64,
    /// The least number of e-nodes a phase may add, whatever the graph's size; default
    /// 2,000 (every example model but the recurrent ones saturates within it).
    pub growth_floor: usize,
}

impl Default for OptConfig {
    fn default() -> OptConfig {
        OptConfig {
            simplify: PhaseLimits {
                iter_limit: 30,
                node_limit: 100_000,
                time_limit: Duration::from_secs(2),
            },
            fuse: PhaseLimits {
                iter_limit: 5,
                node_limit: 100_000,
                time_limit: Duration::from_secs(1),
            },
            fusion: true,
            extract_passes: extract::DEFAULT_PASSES,
            match_limit: 1_000,
            ban_length: 5,
            growth: 0.5,
            growth_floor: 2_000,
        }
    }
}

impl OptConfig {
    /// The same settings with the given limits applied to every phase (`None` keeps a
    /// limit), as the CLI's `--opt-node-limit`, `--opt-iter-limit` and `--opt-time-ms` do.
    pub fn with_limits(
        mut self,
        node_limit: Option<usize>,
        iter_limit: Option<usize>,
        time_limit: Option<Duration>,
    ) -> OptConfig {
        for p in [&mut self.simplify, &mut self.fuse] {
            if let Some(n) = node_limit {
                p.node_limit = n;
            }
            if let Some(n) = iter_limit {
                p.iter_limit = n;
            }
            if let Some(t) = time_limit {
                p.time_limit = t;
            }
        }
        self
    }
}

/// One saturation phase: a named rule set and its limits.
pub struct Phase {
    /// Shown in the report.
    pub name: String,
    /// The rules.
    pub rules: Vec<XRewrite>,
    /// The limits.
    pub limits: PhaseLimits,
}

/// `simplify`, then (when `cfg.fusion`) `fuse` and `simplify` again.
pub fn default_phases(cfg: &OptConfig) -> Vec<Phase> {
    let mut p = vec![Phase {
        name: "simplify".into(),
        rules: rules::simplify(),
        limits: cfg.simplify.clone(),
    }];
    if cfg.fusion {
        p.push(Phase {
            name: "fuse".into(),
            rules: rules::fuse(),
            limits: cfg.fuse.clone(),
        });
        p.push(Phase {
            name: "simplify".into(),
            rules: rules::simplify(),
            limits: cfg.simplify.clone(),
        });
    }
    p
}

/// Why optimization failed (a bug: the optimizer never makes a graph invalid).
#[derive(Debug, thiserror::Error)]
pub enum OptError {
    /// Rebuilding the IR from the e-graph failed.
    #[error("rebuilding the optimized graph failed: {0}")]
    Graph(#[from] GraphError),
    /// No well-typed expression was found for an output.
    #[error("no expression could be extracted for output {0:?}")]
    Extraction(String),
}

/// Optimizes `graph` with the default phases (see the [module docs](self)).
pub fn optimize(graph: &Graph, cfg: &OptConfig) -> Result<(Graph, OptReport), OptError> {
    optimize_with(graph, cfg, &default_phases(cfg))
}

/// The e-graph of `graph`: the e-class of every node, and the scope of the first node in
/// each e-class.
pub fn to_egraph(graph: &Graph) -> (XGraph, Vec<Id>, HashMap<Id, String>) {
    let mut eg = XGraph::new(TypeAnalysis::default());
    let mut class = Vec::with_capacity(graph.len());
    let mut scopes = HashMap::new();
    for id in graph.ids() {
        let node = graph.node(id);
        let ops: Vec<Id> = graph
            .operands(id)
            .iter()
            .map(|o| class[o.index()])
            .collect();
        // After autodiff a gradient factor is the identity: the operand's own e-class.
        if let Op::ScaleGrad { .. } = node.op {
            class.push(ops[0]);
            continue;
        }
        let attr = op_attr(&node.op).map(|a| eg.add(XLang::Attr(a)));
        let declared = (node.op.is_leaf()
            || matches!(node.op, Op::RandomUniform { .. } | Op::RandomNormal { .. }))
        .then(|| node.ty.clone());
        let c = eg.add(from_op(&node.op, declared, &ops, attr));
        scopes.entry(c).or_insert_with(|| node.scope.clone());
        class.push(c);
    }
    eg.rebuild();
    (eg, class, scopes)
}

fn stop_reason(r: &Option<StopReason>) -> String {
    match r {
        Some(StopReason::Saturated) => "saturated".into(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(StopReason::TimeLimit(s)) => format!("time limit ({s:.3} s)"),
        Some(StopReason::Other(s)) => s.clone(),
        None => "not run".into(),
    }
}

/// Optimizes `graph` with the given phases (for custom or test rule sets).
pub fn optimize_with(
    graph: &Graph,
    cfg: &OptConfig,
    phases: &[Phase],
) -> Result<(Graph, OptReport), OptError> {
    let start = Instant::now();
    let (mut eg, class, scopes) = to_egraph(graph);
    let mut phase_reports = Vec::new();
    let mut rule_matches = std::collections::BTreeMap::new();
    for phase in phases {
        let t = Instant::now();
        let scheduler = BackoffScheduler::default()
            .with_initial_match_limit(cfg.match_limit)
            .with_ban_length(cfg.ban_length);
        let start_nodes = eg.total_size();
        let growth = ((start_nodes as f64 * cfg.growth) as usize).max(cfg.growth_floor);
        let node_limit = phase
            .limits
            .node_limit
            .min(start_nodes.saturating_add(growth));
        let runner: Runner<XLang, TypeAnalysis> = Runner::new(TypeAnalysis::default())
            .with_egraph(eg)
            .with_iter_limit(phase.limits.iter_limit)
            .with_node_limit(node_limit)
            .with_time_limit(phase.limits.time_limit)
            .with_scheduler(scheduler)
            .run(&phase.rules);
        let iterations = runner
            .iterations
            .iter()
            .map(|it| report::IterationReport {
                egraph_nodes: it.egraph_nodes,
                egraph_classes: it.egraph_classes,
                applied: it
                    .applied
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
            })
            .collect::<Vec<_>>();
        for it in &iterations {
            for (k, v) in &it.applied {
                *rule_matches.entry(k.clone()).or_insert(0) += v;
            }
        }
        eg = runner.egraph;
        phase_reports.push(report::PhaseReport {
            name: phase.name.clone(),
            stop_reason: stop_reason(&runner.stop_reason),
            iterations,
            egraph_nodes: eg.total_size(),
            egraph_classes: eg.number_of_classes(),
            seconds: Some(t.elapsed().as_secs_f64()),
        });
    }
    let roots: Vec<Id> = graph
        .outputs()
        .iter()
        .map(|(_, id)| eg.find(class[id.index()]))
        .collect();
    let (choice, cost) = extract::extract(&eg, &roots, cfg.extract_passes);
    let out = build(graph, &eg, &choice, &class, &scopes)?;
    let fusion_groups = lowered_groups(&out);
    let report = OptReport {
        phases: phase_reports,
        rule_matches,
        rejected: eg.analysis.rejected.clone(),
        before: GraphStats::of(graph),
        after: GraphStats::of(&out),
        extracted_cost: cost,
        fusion_groups,
        seconds: Some(start.elapsed().as_secs_f64()),
    };
    Ok((out, report))
}

/// Rebuilds a `Graph` from the extracted choice. Inputs and parameters come first, in
/// their original order; then every node the outputs need, operands before users.
fn build(
    graph: &Graph,
    eg: &XGraph,
    choice: &HashMap<Id, XLang>,
    class: &[Id],
    scopes: &HashMap<Id, String>,
) -> Result<Graph, OptError> {
    let mut g = Graph::new();
    let mut built: HashMap<Id, NodeId> = HashMap::new();
    let add = |g: &mut Graph,
               scope: &str,
               op: Op,
               ops: &[NodeId],
               decl: Option<crate::ir::TensorType>|
     -> Result<NodeId, GraphError> {
        if scope.is_empty() {
            g.add_node(op, ops, decl)
        } else {
            g.in_scope(scope, |g| g.add_node(op, ops, decl))
        }
    };
    for id in graph.ids() {
        let node = graph.node(id);
        if matches!(node.op, Op::Input { .. } | Op::Parameter { .. }) {
            let n = add(
                &mut g,
                &node.scope,
                node.op.clone(),
                &[],
                Some(node.ty.clone()),
            )?;
            built.insert(eg.find(class[id.index()]), n);
        }
    }
    let attr = |i: Id| eg[i].data.attr.clone();
    for (name, out) in graph.outputs() {
        let root = eg.find(class[out.index()]);
        // Iterative post-order: (class, scope, children pushed?).
        let mut stack: Vec<(Id, String, bool)> =
            vec![(root, scopes.get(&root).cloned().unwrap_or_default(), false)];
        while let Some((c, scope, expanded)) = stack.pop() {
            if built.contains_key(&c) {
                continue;
            }
            let node = choice
                .get(&c)
                .ok_or_else(|| OptError::Extraction(name.clone()))?;
            let kids: Vec<Id> = tensor_children(node).iter().map(|&k| eg.find(k)).collect();
            if !expanded {
                stack.push((c, scope.clone(), true));
                for &k in kids.iter().rev() {
                    if !built.contains_key(&k) {
                        let s = scopes.get(&k).cloned().unwrap_or_else(|| scope.clone());
                        stack.push((k, s, false));
                    }
                }
                continue;
            }
            let ops: Vec<NodeId> = kids
                .iter()
                .map(|k| {
                    built
                        .get(k)
                        .copied()
                        .ok_or_else(|| OptError::Extraction(name.clone()))
                })
                .collect::<Result<_, _>>()?;
            let id = match node {
                XLang::FusedDense([_, _, f, _]) => {
                    let Some(lang::Attr::Flags(trans_a, trans_b)) = attr(*f) else {
                        return Err(OptError::Extraction(name.clone()));
                    };
                    let m = add(
                        &mut g,
                        &scope,
                        Op::MatMul { trans_a, trans_b },
                        &ops[..2],
                        None,
                    )?;
                    add(
                        &mut g,
                        &scope,
                        Op::Binary {
                            func: crate::ir::BinaryOp::Add,
                        },
                        &[m, ops[2]],
                        None,
                    )?
                }
                _ => {
                    let (op, decl) =
                        to_op(node, attr).ok_or_else(|| OptError::Extraction(name.clone()))?;
                    add(&mut g, &scope, op, &ops, decl)?
                }
            };
            built.insert(c, id);
        }
        g.set_output(name, built[&root])?;
    }
    for (output, feed) in graph.updates() {
        g.set_update(output, feed)?;
    }
    Ok(g)
}

/// The fusion groups of `g`: the kernels lowering builds from it that compute more than one
/// node (a matmul's epilogue, a multi-output kernel), each named by its step; none when
/// `g` does not lower. Lowering's partition is the one fusion decision: the dumps show what
/// will run.
fn lowered_groups(g: &Graph) -> Vec<FusionGroup> {
    match crate::lower::lower(g) {
        Ok(l) => crate::lower::dump::kernel_groups(&l)
            .into_iter()
            .filter(|grp| grp.nodes.len() > 1)
            .collect(),
        Err(_) => Vec::new(),
    }
}
