//! [`LayerGraph`]: layers wired by name into a directed acyclic graph with named inputs and
//! outputs, lowered in topological order. neon's containers (`Sequential`, `Tree`,
//! `MergeBroadcast`, `MergeSum`, `Multicost`) are shapes of this graph.
//!
//! The graph of layers is a `petgraph` `DiGraph`: its edges order the layers (each after
//! the layers it reads, otherwise in the order added) and `petgraph::algo::toposort` names a
//! layer on a cycle.

use super::{Layer, LayerCtx, LayerError, LayerInfo, Mode, ParamSpec};
use petgraph::Direction;
use petgraph::algo::toposort;
use petgraph::graph::DiGraph;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use xenon_compiler::ir::{DType, Graph, NodeId};

/// A value in a [`LayerGraph`]: a graph input, or one output of a layer. A `&str` converts
/// to the first output of the layer of that name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// The graph input of this name.
    Input(String),
    /// Output `output` (counted from 0) of the layer `name`.
    Layer { name: String, output: usize },
}

impl Port {
    /// Output `output` of the layer `name`.
    pub fn output(name: impl Into<String>, output: usize) -> Port {
        Port::Layer {
            name: name.into(),
            output,
        }
    }
}

impl From<&str> for Port {
    fn from(name: &str) -> Port {
        Port::output(name, 0)
    }
}

impl From<String> for Port {
    fn from(name: String) -> Port {
        Port::output(name, 0)
    }
}

/// One layer in the graph, with its inputs and its expanded parts.
#[derive(Clone, Debug, PartialEq)]
struct LayerNode {
    /// The layer's unique name (its `name` argument, or `<class>_<k>`).
    name: String,
    inputs: Vec<Port>,
    /// The layer's expansion, each part with its unique name; a simple layer is its one
    /// part, under the layer's name.
    parts: Vec<(String, Layer)>,
}

/// Layers with named inputs (graph inputs or other layers' outputs, several per layer where
/// the layer takes several) and named graph outputs.
///
/// Layers are named when added: by their `name` argument, or else `<class>_<k>`, `k`
/// counting the layers of that class added before (named ones included), as in neon. A
/// compound layer's parts are named and counted the same way, in order. Parameters are
/// `<part name>/<W|b>`.
///
/// ```
/// use xenon_compiler::ir::{DType, Graph};
/// use xenon_frontend::init::Initializer;
/// use xenon_frontend::layer::{LayerGraph, Linear, MergeSum};
///
/// let init = Initializer::Constant { val: 0.5 };
/// let mut net = LayerGraph::new();
/// let x = net.input("x").unwrap();
/// let a = net.add(Linear::new(3, init.clone()).with_name("a"), [x.clone()]).unwrap();
/// let b = net.add(Linear::new(3, init).with_name("b"), [x]).unwrap();
/// let sum = net.add(MergeSum::new(), [a, b]).unwrap();
/// net.output("y", sum).unwrap();
///
/// let mut g = Graph::new();
/// let x = g.input("x", DType::F32, &[8, 4]).unwrap();
/// let fwd = net.forward(&mut g, &[x]).unwrap();
/// assert_eq!(g.ty(fwd.outputs[0]).shape, [8, 3]);
/// let names: Vec<_> = fwd.params.iter().map(|p| p.name.as_str()).collect();
/// assert_eq!(names, ["a/W", "b/W"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerGraph {
    inputs: Vec<String>,
    layers: Vec<LayerNode>,
    outputs: Vec<(String, Port)>,
    /// Layers (and parts) of each class added so far, for `<class>_<k>` names.
    counts: HashMap<&'static str, usize>,
    /// The layers' names and their parts' names, for the duplicate checks of
    /// [`LayerGraph::add`] (a scan of `layers` would make adding `n` layers quadratic).
    layer_names: HashSet<String>,
    part_names: HashSet<String>,
}

/// A lowered [`LayerGraph`].
#[derive(Clone, Debug)]
pub struct GraphForward {
    /// The graph outputs' nodes, in the order they were declared.
    pub outputs: Vec<NodeId>,
    /// Parameters in declaration order (each a `parameter` node named `spec.name`).
    pub params: Vec<ParamSpec>,
    /// One entry per (expanded) layer, in the order they were lowered.
    pub layers: Vec<LayerInfo>,
}

impl LayerGraph {
    /// An empty graph.
    pub fn new() -> LayerGraph {
        LayerGraph::default()
    }

    /// Declares the next graph input; `forward` takes its node in this position.
    pub fn input(&mut self, name: &str) -> Result<Port, LayerError> {
        if self.inputs.iter().any(|n| n == name) {
            return Err(duplicate("graph inputs", name));
        }
        self.inputs.push(name.to_string());
        Ok(Port::Input(name.to_string()))
    }

    /// Adds `layer` fed by `inputs` (which may name layers added later) and returns its
    /// first output. A duplicate name, a wrong number of inputs or an invalid compound layer
    /// is an error here; unknown references and cycles are errors of [`LayerGraph::forward`].
    pub fn add<P: Into<Port>>(
        &mut self,
        layer: impl Into<Layer>,
        inputs: impl IntoIterator<Item = P>,
    ) -> Result<Port, LayerError> {
        let layer = layer.into();
        let inputs: Vec<Port> = inputs.into_iter().map(Into::into).collect();
        let parts = layer.expand()?;
        let simple = parts.len() == 1 && parts[0] == layer;
        // Counted only once the layer is accepted.
        let mut counts = self.counts.clone();
        let named: Vec<(String, Layer)> = parts
            .into_iter()
            .map(|part| (next_name(&mut counts, &part), part))
            .collect();
        let name = match &named[..] {
            [(name, _)] if simple => name.clone(),
            _ => next_name(&mut counts, &layer),
        };
        if self.layer_names.contains(&name) {
            return Err(duplicate("layers", &name));
        }
        for (part, _) in &named {
            if self.part_names.contains(part) {
                return Err(duplicate("layers", part));
            }
        }
        let arity = layer.arity();
        if !arity.accepts(inputs.len()) {
            return Err(LayerError::Arity {
                layer: name,
                kind: layer.type_name(),
                arity,
                found: inputs.len(),
            });
        }
        self.counts = counts;
        self.layer_names.insert(name.clone());
        self.part_names
            .extend(named.iter().map(|(part, _)| part.clone()));
        self.layers.push(LayerNode {
            name: name.clone(),
            inputs,
            parts: named,
        });
        Ok(Port::output(name, 0))
    }

    /// Declares the graph output `name`, the value at `port`.
    pub fn output(&mut self, name: &str, port: impl Into<Port>) -> Result<(), LayerError> {
        if self.outputs.iter().any(|(n, _)| n == name) {
            return Err(duplicate("graph outputs", name));
        }
        self.outputs.push((name.to_string(), port.into()));
        Ok(())
    }

    /// The graph inputs' names, in order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// The graph outputs' names, in order.
    pub fn outputs(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(|(n, _)| n.as_str())
    }

    /// The layers' names, in the order they were added.
    pub fn layer_names(&self) -> impl Iterator<Item = &str> {
        self.layers.iter().map(|l| l.name.as_str())
    }

    /// Adds the forward pass to `g`: `inputs` are the graph inputs' nodes (in declaration
    /// order, each `[batch, features…]`), every layer is lowered after the layers it reads,
    /// and every parameter is declared as a `parameter` node with the first input's dtype
    /// (f32 when the graph has no inputs).
    pub fn forward(&self, g: &mut Graph, inputs: &[NodeId]) -> Result<GraphForward, LayerError> {
        self.forward_mode(g, inputs, Mode::Inference)
    }

    /// [`LayerGraph::forward`] for a graph of `mode`: a training step (batch statistics
    /// and running-statistic updates in batch norm, dropout masks) or inference.
    pub fn forward_mode(
        &self,
        g: &mut Graph,
        inputs: &[NodeId],
        mode: Mode,
    ) -> Result<GraphForward, LayerError> {
        if inputs.len() != self.inputs.len() {
            return Err(LayerError::Inputs {
                expected: self.inputs.len(),
                names: self.inputs.join(", "),
                found: inputs.len(),
            });
        }
        let dtype = inputs.first().map_or(DType::F32, |&x| g.ty(x).dtype);
        let values: HashMap<&str, NodeId> = self
            .inputs
            .iter()
            .map(String::as_str)
            .zip(inputs.iter().copied())
            .collect();
        let mut layer_outputs: HashMap<&str, Vec<NodeId>> = HashMap::new();
        let mut params = Vec::new();
        let mut infos = Vec::new();
        for i in self.order()? {
            let layer = &self.layers[i];
            let user = format!("layer '{}'", layer.name);
            let mut h = layer
                .inputs
                .iter()
                .map(|p| resolve(p, &values, &layer_outputs, &user))
                .collect::<Result<Vec<_>, _>>()?;
            for (name, part) in &layer.parts {
                let before = params.len();
                h = g.in_scope(name, |g| {
                    part.lower(
                        &mut LayerCtx::new(g, name, dtype, &mut params).with_mode(mode),
                        &h,
                    )
                })?;
                infos.push(LayerInfo {
                    name: name.clone(),
                    kind: part.describe(),
                    out_shape: h
                        .first()
                        .map(|&y| g.ty(y).shape.get(1..).unwrap_or_default().to_vec())
                        .unwrap_or_default(),
                    params: params[before..]
                        .iter()
                        .filter(|p| p.trainable)
                        .map(|p| p.shape.iter().product::<usize>())
                        .sum(),
                });
            }
            layer_outputs.insert(&layer.name, h);
        }
        let outputs = self
            .outputs
            .iter()
            .map(|(name, p)| {
                let user = format!("graph output '{name}'");
                resolve(p, &values, &layer_outputs, &user)
            })
            .collect::<Result<_, _>>()?;
        Ok(GraphForward {
            outputs,
            params,
            layers: infos,
        })
    }

    /// The layers' indices in an order where each comes after the layers it reads. Checks
    /// every reference (the graph outputs' too) and that there is no cycle.
    fn order(&self) -> Result<Vec<usize>, LayerError> {
        let index: HashMap<&str, usize> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.as_str(), i))
            .collect();
        let mut dag = DiGraph::<usize, ()>::new();
        let nodes: Vec<_> = (0..self.layers.len()).map(|i| dag.add_node(i)).collect();
        let uses = self.layers.iter().enumerate().flat_map(|(i, l)| {
            let user = format!("layer '{}'", l.name);
            l.inputs.iter().map(move |p| (Some(i), user.clone(), p))
        });
        let outs = self
            .outputs
            .iter()
            .map(|(n, p)| (None, format!("graph output '{n}'"), p));
        for (consumer, user, port) in uses.chain(outs) {
            let known = match port {
                Port::Input(name) => self.inputs.contains(name).then_some(None),
                Port::Layer { name, .. } => index.get(name.as_str()).map(Some),
            };
            let Some(producer) = known else {
                let (Port::Input(name) | Port::Layer { name, .. }) = port;
                return Err(LayerError::UnknownReference {
                    user,
                    name: name.clone(),
                });
            };
            if let (Some(&p), Some(c)) = (producer, consumer) {
                dag.add_edge(nodes[p], nodes[c], ());
            }
        }
        // Kahn's algorithm, taking the earliest-added ready layer first, so that unrelated
        // layers (and their parameters) keep the order they were added in.
        let mut waiting: Vec<usize> = nodes
            .iter()
            .map(|&n| dag.neighbors_directed(n, Direction::Incoming).count())
            .collect();
        let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len())
            .filter(|&i| waiting[i] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for next in dag.neighbors_directed(nodes[i], Direction::Outgoing) {
                let j = dag[next];
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(Reverse(j));
                }
            }
        }
        if order.len() == nodes.len() {
            return Ok(order);
        }
        // Some layers wait on a cycle; petgraph names a layer on it.
        let on_cycle = match toposort(&dag, None) {
            Err(cycle) => dag[cycle.node_id()],
            Ok(_) => (0..nodes.len()).find(|&i| waiting[i] > 0).unwrap_or(0),
        };
        Err(LayerError::Cycle {
            layer: self.layers[on_cycle].name.clone(),
        })
    }
}

/// The node of `port`, once its producer is lowered (`order` checked the name).
fn resolve(
    port: &Port,
    inputs: &HashMap<&str, NodeId>,
    layers: &HashMap<&str, Vec<NodeId>>,
    user: &str,
) -> Result<NodeId, LayerError> {
    let (name, output, outs) = match port {
        Port::Input(name) => (name, 0, inputs.get(name.as_str()).map(std::slice::from_ref)),
        Port::Layer { name, output } => {
            (name, *output, layers.get(name.as_str()).map(Vec::as_slice))
        }
    };
    let outs = outs.unwrap_or_default();
    outs.get(output)
        .copied()
        .ok_or_else(|| LayerError::NoSuchOutput {
            user: user.to_string(),
            name: name.clone(),
            port: output,
            outputs: outs.len(),
        })
}

/// The layer's own name or `<class>_<k>`, counting the class either way.
fn next_name(counts: &mut HashMap<&'static str, usize>, layer: &Layer) -> String {
    let kind = layer.type_name();
    let k = counts.entry(kind).or_insert(0);
    let name = layer
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{kind}_{k}"));
    *k += 1;
    name
}

fn duplicate(what: &'static str, name: &str) -> LayerError {
    LayerError::DuplicateName {
        what,
        name: name.to_string(),
    }
}
