//! The training loop.

use super::{Model, ModelError, T, X, shape_batch};
use crate::callback::Callback;
use crate::cost::Cost;
use crate::data::BatchIterator;
use crate::layer::STEP;
use crate::optimizer::{Optimizer, OptimizerError};
use std::time::Instant;
use xenon_compiler::backend::{BackendError, Executable};
use xenon_compiler::ir::{DType, Graph, GraphError, NodeId};
use xenon_compiler::pipeline::{ApplyError, Request, Stage};
use xenon_runtime::exec::ExecError;
use xenon_runtime::{Tensor, TensorData};

/// What one epoch of training did.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// The epoch's index (counting across `fit` calls).
    pub epoch: usize,
    /// Mean of the minibatch costs (neon's reported train cost).
    pub train_cost: f64,
    /// Minibatches run.
    pub batches: usize,
    /// Samples processed (batches × batch size, wrap-around filler included).
    pub samples: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The `step` input of a training step (the counter of its random streams): the step's
/// index (counting from 1) as an i32 scalar, wrapping after 2³¹ steps.
pub fn step_counter(step: u64) -> Tensor {
    Tensor::full(DType::I32, vec![], (step % (1 << 31)) as f64)
}

/// Name of a parameter's optimizer state `state` (e.g. `Linear_0/W/velocity`).
pub fn state_name(param: &str, state: &str) -> String {
    format!("{param}/{state}")
}

impl Model {
    /// The training-step graph for `batch` samples: inputs `x`, `t`, `lr`, every parameter
    /// and optimizer state; outputs `cost` (batch mean) and `new/<name>` for every
    /// parameter and state.
    pub fn train_graph(
        &self,
        batch: usize,
        nclass: usize,
        cost: &Cost,
        optimizer: &Optimizer,
    ) -> Result<Graph, ModelError> {
        let request = self.train_request(batch, nclass, cost, optimizer)?;
        Ok(self.pipeline.graph(request, Stage::Autodiff)?.0)
    }

    /// The training step for `batch` samples compiled by the model's pipeline (what
    /// [`Model::fit`] runs; see [`Model::train_graph`] for its inputs and outputs). Run it
    /// with [`Executable::run_update`](xenon_compiler::backend::Executable::run_update) on
    /// feeds holding `x`, `t`, `lr`, every parameter and optimizer state.
    pub fn compile_train_step(
        &self,
        batch: usize,
        nclass: usize,
        cost: &Cost,
        optimizer: &Optimizer,
    ) -> Result<Box<dyn Executable>, ModelError> {
        let request = self.train_request(batch, nclass, cost, optimizer)?;
        Ok(self.pipeline.compile(request)?)
    }

    /// The training step as a [`Request`] for a compile pipeline (to dump or lower it; see
    /// [`Model::compile_train_step`] to compile it with the model's pipeline): the graph holds the forward pass, the
    /// targets `t`, the cost and the learning-rate input `lr`; the autodiff stage
    /// differentiates the cost's objective with respect to every parameter and hands the
    /// gradients to the optimizer, which adds its state parameters and the `new/<name>`
    /// outputs, each declared the update of its parameter or state.
    pub fn train_request<'a>(
        &'a self,
        batch: usize,
        nclass: usize,
        cost: &Cost,
        optimizer: &'a Optimizer,
    ) -> Result<Request<'a>, ModelError> {
        cost.check().map_err(ModelError::Cost)?;
        let (mut g, outputs) = self.forward_graph(batch, true)?;
        // Distributed: the new values of non-trainable buffers (batch norm's running
        // statistics) are the ranks' mean, so that every rank keeps the same ones.
        for (out, feed) in g.updates().to_vec() {
            if self.params.iter().any(|p| p.name == feed && !p.trainable) {
                let node = g.output(&out).expect("an update names an output");
                let mean = self.rank_mean(&mut g, node)?;
                g.replace_output(&out, mean)?;
            }
        }
        if outputs.len() != cost.outputs() {
            return Err(ModelError::Cost(if outputs.len() > 1 {
                format!(
                    "the model ends in a tree with {} outputs; give it a Multicost of {} costs, not {}",
                    outputs.len(),
                    outputs.len(),
                    cost_size(cost)
                )
            } else {
                format!(
                    "{} has {} costs but the model has one output (a Multicost is for a model ending in a Tree)",
                    cost.name(),
                    cost.outputs()
                )
            }));
        }
        let (ys, t) = self.targets_all(&mut g, &outputs, nclass)?;
        let c = cost.lower_all(&mut g, &ys, t)?;
        let lrs: Vec<(String, NodeId)> = optimizer
            .learning_rates(0, 1)
            .into_iter()
            .map(|(name, _)| Ok((name.clone(), g.input(&name, self.dtype, &[])?)))
            .collect::<Result<_, GraphError>>()?;
        let params: Vec<_> = self
            .trainable()
            .map(|p| {
                g.find_leaf(&p.name)
                    .expect("forward declares every parameter")
            })
            .collect();
        let wrt = params.clone();
        let apply = move |g: &mut Graph, grads: &[NodeId]| -> Result<(), ApplyError> {
            // Distributed: the ranks' mean gradient (of the global batch's mean cost) and
            // the global mean cost; alone, the gradients and cost as they are.
            let boxed = |e: GraphError| Box::new(e) as ApplyError;
            let grads = grads
                .iter()
                .map(|&gr| self.rank_mean(g, gr))
                .collect::<Result<Vec<_>, _>>()
                .map_err(boxed)?;
            let mean = self.rank_mean(g, c.mean).map_err(boxed)?;
            self.add_update(g, optimizer, &lrs, &wrt, &grads, mean)
                .map_err(|e| Box::new(e) as ApplyError)
        };
        Ok(Request::train(g, c.objective, params, apply))
    }

    /// Adds `optimizer`'s update of the parameter nodes `params` from their gradients
    /// `grads` (each group of parameters by the optimizer [`Optimizer::assign`] gives it,
    /// with its learning-rate input from `lrs`), and the outputs `cost` (the batch mean
    /// `mean`) and `new/<name>` for every parameter and state.
    fn add_update(
        &self,
        g: &mut Graph,
        optimizer: &Optimizer,
        lrs: &[(String, NodeId)],
        params: &[NodeId],
        grads: &[NodeId],
        mean: NodeId,
    ) -> Result<(), ModelError> {
        optimizer.validate()?;
        // Parameter indices per learning-rate input (one per optimizer), in first-use order.
        let specs: Vec<&crate::layer::ParamSpec> = self.trainable().collect();
        let mut groups: Vec<(String, &Optimizer, Vec<usize>)> = Vec::new();
        for (i, p) in specs.iter().enumerate() {
            let (key, opt) = Self::assigned(optimizer, p)?;
            match groups.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, members)) => members.push(i),
                None => groups.push((key, opt, vec![i])),
            }
        }
        g.set_output("cost", mean)?;
        for (key, opt, members) in groups {
            let Some(&(_, lr)) = lrs.iter().find(|(k, _)| *k == key) else {
                return Err(ModelError::Optimizer(OptimizerError::Argument {
                    optimizer: opt.class(),
                    reason: format!("no learning-rate input {key:?}"),
                }));
            };
            let mut states = Vec::new();
            for &i in &members {
                let p = specs[i];
                let mut s = Vec::new();
                for st in opt.state_names() {
                    s.push(g.parameter(&state_name(&p.name, st), self.dtype, &p.shape)?);
                }
                states.push(s);
            }
            let ps: Vec<NodeId> = members.iter().map(|&i| params[i]).collect();
            let gs: Vec<NodeId> = members.iter().map(|&i| grads[i]).collect();
            let updates = opt.update(g, lr, &ps, &gs, &states)?;
            for (&i, u) in members.iter().zip(&updates) {
                let p = specs[i];
                let out = format!("new/{}", p.name);
                g.set_output(&out, u.param)?;
                g.set_update(&out, &p.name)?;
                for (st, &node) in opt.state_names().iter().zip(&u.state) {
                    let state = state_name(&p.name, st);
                    let out = format!("new/{state}");
                    g.set_output(&out, node)?;
                    g.set_update(&out, &state)?;
                }
            }
        }
        Ok(())
    }

    /// The learning-rate input and optimizer that update parameter `p`.
    fn assigned<'o>(
        optimizer: &'o Optimizer,
        p: &crate::layer::ParamSpec,
    ) -> Result<(String, &'o Optimizer), ModelError> {
        optimizer
            .assign(&p.layer, &p.class)
            .ok_or_else(|| ModelError::Optimizer(OptimizerError::NoDefault(String::new())))
    }

    /// Every optimizer state `optimizer` keeps, with its shape (its parameter's), in
    /// parameter order: what the training step reads besides the parameters.
    pub fn state_names(&self, optimizer: &Optimizer) -> Vec<(String, Vec<usize>)> {
        let mut names = Vec::new();
        for p in self.trainable() {
            if let Ok((_, opt)) = Self::assigned(optimizer, p) {
                for st in opt.state_names() {
                    names.push((state_name(&p.name, st), p.shape.clone()));
                }
            }
        }
        names
    }

    /// Trains for `epochs` epochs on the batches of `train` (neon's `Model.fit`): for each
    /// minibatch, one training step (forward, cost, gradients, update). The epoch index
    /// continues across calls, and learning-rate schedules are queried with it. Stops with
    /// [`ModelError::NonFinite`] as soon as the cost or a parameter becomes NaN or infinite,
    /// naming where.
    /// Positions `train` where the training this model's file was saved from left off
    /// ([`Model::resume_state`]), so that [`Model::fit`] continues it exactly: same
    /// examples in the same order; a checkpoint of an interrupted epoch makes the next
    /// `fit` skip the minibatches that epoch already trained. Nothing to do for a model
    /// never trained. A different dataset size or batch size is an error naming both.
    pub fn resume_batches(&mut self, train: &mut BatchIterator) -> Result<(), ModelError> {
        let Some(r) = &self.resume else {
            return Ok(());
        };
        if r.ndata != train.ndata() || r.batch_size != train.batch_size() {
            return Err(ModelError::Resume(format!(
                "the checkpoint was trained on {} examples in batches of {}, this run has {} in batches of {}",
                r.ndata,
                r.batch_size,
                train.ndata(),
                train.batch_size()
            )));
        }
        if r.shuffle != train.options().shuffle {
            let order = |s: Option<u64>| match s {
                Some(seed) => format!("reshuffled every epoch from seed {seed}"),
                None => "in their fixed order".to_string(),
            };
            return Err(ModelError::Resume(format!(
                "the checkpoint was trained on examples {}, this run batches them {}",
                order(r.shuffle),
                order(train.options().shuffle)
            )));
        }
        train.seek(r.data_epoch, r.data_start)?;
        self.skip_batches = r.batches_done;
        Ok(())
    }

    /// Brings the values the program `key` kept on its device back into the model.
    fn sync_values(&mut self, key: &str) -> Result<(), ModelError> {
        if let Some(exe) = self.programs.get_mut(key) {
            exe.sync_updates(&mut self.values)?;
        }
        Ok(())
    }

    /// Adds zero optimizer state for every parameter that has none yet; an error, before
    /// allocating it, when the parameters and their state would not fit in memory.
    pub(crate) fn init_state(&mut self, optimizer: &Optimizer) -> Result<(), ModelError> {
        let states = self
            .params
            .iter()
            .filter(|p| p.trainable)
            .filter_map(|p| Self::assigned(optimizer, p).ok())
            .map(|(_, opt)| opt.state_names().len())
            .max()
            .unwrap_or(0);
        self.check_memory("the parameters and their optimizer state", 1 + states)?;
        for p in self.params.iter().filter(|p| p.trainable) {
            let Ok((_, opt)) = Self::assigned(optimizer, p) else {
                continue;
            };
            for st in opt.state_names() {
                self.values
                    .entry(state_name(&p.name, st))
                    .or_insert_with(|| Tensor::zeros(self.dtype, p.shape.clone()));
            }
        }
        Ok(())
    }

    pub fn fit(
        &mut self,
        train: &mut BatchIterator,
        cost: &Cost,
        optimizer: &Optimizer,
        epochs: usize,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<Vec<EpochStats>, ModelError> {
        Self::check_optimizer(optimizer)?;
        self.require_values()?;
        let data = train.dataset();
        self.check_input(data)?;
        let nclass = data.nclass;
        // The global minibatch, and this rank's share of it (all of it alone).
        let global = train.batch_size();
        let b = self.local_batch(global)?;
        let ranks = self.rank();
        self.init_state(optimizer)?;
        let key = format!("train/{b}/{}/{nclass}/{cost:?}/{optimizer:?}", ranks.1);
        // Distributed: the ranks start from the same data, batching and values.
        let batching = (data.len(), nclass, global, train.options().shuffle);
        let position = (train.epoch(), train.start_offset(), self.skip_batches);
        self.agree(
            || super::distributed::hash_of((batching, position)),
            "data set size, batch size, shuffling or position",
        )?;
        self.agree(|| self.values_hash(), "weights and optimizer state")?;
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(self, epochs)?;
        }
        let mut history = Vec::with_capacity(epochs);
        // `(input, value, tensor)` of each learning rate fed.
        let mut lr_feeds: Vec<(String, f64, Tensor)> = Vec::new();
        for _ in 0..epochs {
            let epoch = self.epoch_index;
            let start = Instant::now();
            self.reset_states(b);
            let position = (train.epoch(), train.start_offset());
            let batches = train.next_epoch();
            let nbatches = batches.nbatches();
            // A checkpoint taken mid-epoch: its first minibatches are already trained.
            let skip = std::mem::take(&mut self.skip_batches).min(nbatches);
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(epoch, nbatches);
            }
            let mut total = 0.0;
            let fed_shape = self.fed_shape();
            let (token_ids, dtype) = (self.token_ids, self.dtype);
            let mut batches = batches.skip(skip).map(|batch| {
                let x = shape_batch(&fed_shape, token_ids, batch.x, batch.ids, dtype)?;
                let t = super::in_dtype(batch.t, dtype);
                Ok::<_, ModelError>((shard(x, ranks)?, shard(t, ranks)?))
            });
            // One minibatch ahead: a device backend uploads it during the current step.
            let mut upcoming = batches.next();
            let mut k = skip;
            while let Some(now) = upcoming.take() {
                let (x, t) = now?;
                upcoming = batches.next();
                let next: Vec<(&str, &Tensor)> = upcoming
                    .iter()
                    .flatten()
                    .flat_map(|(x, t)| [(X, x), (T, t)])
                    .collect();
                // The values move into the feeds and back, and the step writes the new
                // values into them in place: nothing is copied per step.
                let mut feeds = std::mem::take(&mut self.values);
                feeds.insert(X.into(), x);
                feeds.insert(T.into(), t);
                // The learning rates of this update (a tensor is kept while its value
                // stays the same, so a device backend does not upload it again).
                let step = self.step_index + 1;
                for (name, value) in optimizer.learning_rates(epoch, step) {
                    let fresh = match lr_feeds.iter().position(|(n, _, _)| *n == name) {
                        Some(j) if lr_feeds[j].1 == value => None,
                        Some(j) => Some(j),
                        None => {
                            lr_feeds.push((
                                name.clone(),
                                f64::NAN,
                                Tensor::zeros(self.dtype, vec![]),
                            ));
                            Some(lr_feeds.len() - 1)
                        }
                    };
                    if let Some(j) = fresh {
                        lr_feeds[j] = (name, value, Tensor::full(self.dtype, vec![], value));
                    }
                }
                for (name, _, t) in &lr_feeds {
                    feeds.insert(name.clone(), t.clone());
                }
                // The counter of this step's random streams (dropout masks); each rank of a
                // group draws its own (`step·N + rank`), as its rows are other examples.
                let counter = match ranks {
                    (_, 1) => step,
                    (r, n) => step.wrapping_mul(n as u64).wrapping_add(r as u64),
                };
                feeds.insert(STEP.into(), step_counter(counter));
                let result = self
                    .program(key.clone(), |m| {
                        let mut exe = m.compile_train_step(b, nclass, cost, optimizer)?;
                        if let Some(c) = &m.comm {
                            exe.set_collective(c.clone())?;
                            m.agree(
                                || exe.fingerprint().unwrap_or(0),
                                "compiled training step (the model, its options or the \
                                 optimizer's result differ)",
                            )?;
                        }
                        Ok(exe)
                    })
                    .and_then(|exe| Ok(exe.run_update_resident(&mut feeds, true, &next)?));
                for k in [X, T, STEP] {
                    feeds.remove(k);
                }
                for (name, _, _) in &lr_feeds {
                    feeds.remove(name);
                }
                // A non-finite update leaves every value as it was before the step. A
                // device backend keeps the values on the device between steps; they come
                // back at the end of the epoch, and before any error is returned.
                self.values = feeds;
                if result.is_err() {
                    self.sync_values(&key)?;
                }
                let out = match result {
                    Ok(out) => out,
                    Err(ModelError::Backend(BackendError::Exec(ExecError::NonFinite {
                        output,
                        element,
                    }))) => {
                        // The parameter or state the failed update was for.
                        let name = self
                            .programs
                            .get(&key)
                            .and_then(|e| e.updates().iter().find(|(o, _)| *o == output))
                            .map_or(output.as_str(), |(_, feed)| feed.as_str());
                        let what = format!("'{name}' (element {element})");
                        return Err(ModelError::NonFinite {
                            what,
                            epoch,
                            batch: k,
                        });
                    }
                    Err(e) => return Err(e),
                };
                let c = out["cost"].to_f64_vec()[0];
                if !c.is_finite() {
                    self.sync_values(&key)?;
                    return Err(ModelError::NonFinite {
                        what: "the cost".into(),
                        epoch,
                        batch: k,
                    });
                }
                total += c;
                self.step_index += 1;
                for cb in callbacks.iter_mut() {
                    cb.on_minibatch_end(epoch, k, c);
                }
                k += 1;
                // An interrupt on any rank stops every rank after this minibatch.
                let stop = self.any_rank(crate::interrupt::stop_requested())?;
                if stop && k < nbatches {
                    self.sync_values(&key)?;
                    self.resume = Some(super::ResumeState {
                        data_epoch: position.0,
                        data_start: position.1,
                        ndata: data.len(),
                        batch_size: global,
                        batches_done: k,
                        shuffle: train.options().shuffle,
                        optimizer: optimizer.clone(),
                    });
                    return Err(ModelError::Interrupted { epoch, batch: k });
                }
            }
            self.sync_values(&key)?;
            self.epoch_index += 1;
            self.resume = Some(super::ResumeState {
                data_epoch: train.epoch(),
                data_start: train.start_offset(),
                ndata: data.len(),
                batch_size: global,
                batches_done: 0,
                shuffle: train.options().shuffle,
                optimizer: optimizer.clone(),
            });
            let stats = EpochStats {
                epoch,
                train_cost: total / (nbatches - skip).max(1) as f64,
                batches: nbatches - skip,
                samples: (nbatches - skip) * global,
                seconds: start.elapsed().as_secs_f64(),
            };
            for cb in callbacks.iter_mut() {
                cb.on_epoch_end(self, &stats)?;
            }
            history.push(stats);
            // Distributed: the ranks still hold the same values, and stop together when a
            // callback (rank 0's early stopping) asks.
            self.agree(
                || self.values_hash(),
                &format!("weights after epoch {epoch}"),
            )?;
            if self.any_rank(callbacks.iter().any(|cb| cb.stop_requested()))? {
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(self)?;
        }
        Ok(history)
    }
}

/// The rows of global minibatch `t` that rank `r` of `n` trains on (`(r, n)`; the
/// caller checked that `n` divides the rows).
fn shard(t: Tensor, (r, n): (usize, usize)) -> Result<Tensor, ModelError> {
    if n == 1 {
        return Ok(t);
    }
    let (mut shape, data) = t.into_parts();
    let rows = shape[0] / n;
    let per: usize = shape[1..].iter().product();
    shape[0] = rows;
    let range = r * rows * per..(r + 1) * rows * per;
    let data = match data {
        TensorData::F32(v) => TensorData::F32(v[range].to_vec()),
        TensorData::F64(v) => TensorData::F64(v[range].to_vec()),
        TensorData::I32(v) => TensorData::I32(v[range].to_vec()),
    };
    Tensor::new(shape, data).map_err(|e| ModelError::Distributed(e.to_string()))
}

/// `a Multicost of N costs` or the cost's name.
fn cost_size(cost: &Cost) -> String {
    match cost {
        Cost::Multicost { costs, .. } => format!("a Multicost of {}", costs.len()),
        c => c.name().to_string(),
    }
}
