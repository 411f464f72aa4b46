//! `all_reduce` on every backend, against the interpreter, with ranks as threads
//! ([`LocalGroup`]): the sums, their order in a training-like step (small buckets and
//! large buffers, consumers delayed behind the rest), one rank without a group, and a lost
//! rank.

use std::sync::Arc;
use std::time::Duration;
use xenon_compiler::backend::{Backend, BackendError, Cpu, Interpreter};
use xenon_compiler::interp::{self, Feeds};
use xenon_compiler::ir::{DType, Graph, NodeId};
use xenon_runtime::Tensor;
use xenon_runtime::collective::{Collective, LocalGroup};
use xenon_runtime::exec::ExecError;
use xenon_runtime::program::{LibraryStep, Step};

/// A step-like graph: gradient-like products of several sizes (one above the bucket
/// size), each summed over the ranks and used by an update; a cost-like scalar summed too;
/// and work that needs no sum (`z`). The large one updates `w` through a momentum-like
/// state `m` that only the update reads (`m' = 0.9·m + Σ`, `w' = w − 0.5·m'`).
fn step_graph(dtype: DType, n: usize) -> Graph {
    step_graph_with(dtype, n, &mut |g, x, _| g.all_reduce(x).unwrap())
}

/// [`step_graph`] with `reduce(graph, x, k)` in place of the `k`-th `all_reduce`.
fn step_graph_with(
    dtype: DType,
    n: usize,
    reduce: &mut dyn FnMut(&mut Graph, NodeId, usize) -> NodeId,
) -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", dtype, &[8, n]).unwrap();
    let w = g.parameter("w", dtype, &[n, n]).unwrap();
    let b = g.parameter("b", dtype, &[n]).unwrap();
    let v = g.parameter("v", dtype, &[3]).unwrap();
    let m = g.parameter("m", dtype, &[n, n]).unwrap();
    // "Gradients": xᵀx (n×n), column sums of x (n), a 3-vector.
    let gw = g.matmul(x, x, true, false).unwrap();
    let gb = g.sum(x, &[0], false).unwrap();
    let sl = g.slice(gb, &[0], &[3], &[1]).unwrap();
    let gv = g.tanh(sl).unwrap();
    let mean = g.mean(x, &[0, 1], false).unwrap();
    let mut sums = Vec::new();
    for (k, grad) in [gw, gb, gv, mean].into_iter().enumerate() {
        sums.push(reduce(&mut g, grad, k));
    }
    let lr = g.scalar(dtype, 0.5).unwrap();
    let mu = g.scalar(dtype, 0.9).unwrap();
    let kept = g.mul(m, mu).unwrap();
    let new_m = g.add_(kept, sums[0]).unwrap();
    g.set_output("new/m", new_m).unwrap();
    g.set_update("new/m", "m").unwrap();
    sums[0] = new_m;
    for (i, (p, name)) in [(w, "w"), (b, "b"), (v, "v")].into_iter().enumerate() {
        let step = g.mul(sums[i], lr).unwrap();
        let new = g.sub(p, step).unwrap();
        g.set_output(&format!("new/{name}"), new).unwrap();
        g.set_update(&format!("new/{name}"), name).unwrap();
    }
    g.set_output("cost", sums[3]).unwrap();
    // Work needing no sum.
    let z = g.matmul(x, w, false, false).unwrap();
    let z = g.tanh(z).unwrap();
    g.set_output("z", z).unwrap();
    g
}

fn feeds(rank: usize, dtype: DType, n: usize) -> Feeds {
    let values = |len: usize, seed: usize| -> Vec<f64> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104729) % 1000) as f64 / 500.0 - 1.0) * 0.25)
            .collect()
    };
    let t = |shape: Vec<usize>, seed: usize| {
        let len = shape.iter().product();
        Tensor::from_f64_as(dtype, shape, &values(len, seed)).unwrap()
    };
    [
        ("x".to_string(), t(vec![8, n], 1 + rank)),
        ("w".to_string(), t(vec![n, n], 100)),
        ("b".to_string(), t(vec![n], 200)),
        ("v".to_string(), t(vec![3], 300)),
        ("m".to_string(), t(vec![n, n], 400)),
    ]
    .into_iter()
    .collect()
}

/// A rank of a `LocalGroup` that says it is alone on the machine, so that a one-thread
/// CPU executor overlaps its sums with the computation (a group of threads says all its
/// ranks share the cores, which turns overlapping off on a small machine).
#[derive(Debug)]
struct AloneOnHost(Arc<LocalGroup>);

impl Collective for AloneOnHost {
    fn rank(&self) -> usize {
        self.0.rank()
    }
    fn size(&self) -> usize {
        self.0.size()
    }
    fn all_reduce_sum(
        &self,
        data: xenon_runtime::collective::ReduceBuf<'_>,
    ) -> Result<(), xenon_runtime::collective::CollectiveError> {
        self.0.all_reduce_sum(data)
    }
    fn all_gather_u64(
        &self,
        value: u64,
    ) -> Result<Vec<u64>, xenon_runtime::collective::CollectiveError> {
        self.0.all_gather_u64(value)
    }
    fn broadcast(
        &self,
        root: usize,
        data: &mut [u8],
    ) -> Result<(), xenon_runtime::collective::CollectiveError> {
        self.0.broadcast(root, data)
    }
}

/// Each rank's outputs (updates written back into the returned feeds) on `backend`, `size`
/// ranks as threads; with `sync`, the executors then complete the feeds
/// (`Executable::sync_updates`).
fn run_ranks(
    backend: &(dyn Backend + Sync),
    graph: &Graph,
    dtype: DType,
    n: usize,
    size: usize,
    sync: bool,
) -> Vec<Feeds> {
    let ranks: Vec<Arc<LocalGroup>> = LocalGroup::new(size).into_iter().map(Arc::new).collect();
    std::thread::scope(|s| {
        let hs: Vec<_> = ranks
            .iter()
            .map(|r| {
                s.spawn(move || {
                    let mut exe = backend.compile(graph).unwrap();
                    exe.set_collective(Arc::new(AloneOnHost(r.clone())))
                        .unwrap();
                    let mut f = feeds(r.rank(), dtype, n);
                    // Two steps: the second starts from the first's updates.
                    let mut out = exe.run_update(&mut f, true).unwrap();
                    out = {
                        let o = exe.run_update(&mut f, true).unwrap();
                        out.extend(o);
                        out
                    };
                    if sync {
                        exe.sync_updates(&mut f).unwrap();
                    }
                    f.extend(out);
                    f
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The interpreter's result for each of `size` ranks, without a group: the operands of
/// every `all_reduce` are evaluated on each rank's feeds and summed by hand in rank order
/// (rounded to the dtype after each addition, as the ranks add), then fed to a copy of the
/// graph in which each `all_reduce` is an input — so the oracle does not depend on the
/// collective under test. Two steps, the second from the first's updates.
fn by_hand(dtype: DType, n: usize, size: usize) -> Vec<Feeds> {
    let graph = step_graph(dtype, n);
    let mut operands = Vec::new();
    let probe = step_graph_with(dtype, n, &mut |g, x, _| {
        operands.push(x);
        g.all_reduce(x).unwrap()
    });
    assert_eq!(probe.to_json(), graph.to_json());
    let fed = step_graph_with(dtype, n, &mut |g, x, k| {
        let ty = g.ty(x).clone();
        g.input(&format!("sum{k}"), ty.dtype, &ty.shape).unwrap()
    });
    let mut fs: Vec<Feeds> = (0..size).map(|r| feeds(r, dtype, n)).collect();
    let mut results: Vec<Feeds> = vec![Feeds::new(); size];
    for _step in 0..2 {
        let mut sums: Vec<Tensor> = Vec::new();
        for (r, f) in fs.iter().enumerate() {
            let vals = interp::eval(&graph, f, &operands).unwrap();
            if r == 0 {
                sums = vals;
                continue;
            }
            for (s, v) in sums.iter_mut().zip(vals) {
                let sum: Vec<f64> = s
                    .to_f64_vec()
                    .iter()
                    .zip(v.to_f64_vec())
                    .map(|(x, y)| x + y)
                    .collect();
                *s = Tensor::from_f64_as(dtype, s.shape().to_vec(), &sum).unwrap();
            }
        }
        for (r, f) in fs.iter_mut().enumerate() {
            let mut all = f.clone();
            for (k, t) in sums.iter().enumerate() {
                all.insert(format!("sum{k}"), t.clone());
            }
            let out = interp::run(&fed, &all).unwrap();
            for (o, feed) in graph.updates() {
                f.insert(feed.clone(), out[o].clone());
            }
            results[r].extend(out);
        }
    }
    for (r, f) in fs.into_iter().enumerate() {
        results[r].extend(f);
    }
    results
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let tol = 1e-5 * (1.0 + x.abs().max(y.abs()));
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

fn check(backend: &(dyn Backend + Sync), dtype: DType) {
    // n = 600: the n×n sum is 1.4 MB in f32, above the 1 MiB bucket size.
    let n = 600;
    let g = step_graph(dtype, n);
    for size in [1, 3] {
        let want = by_hand(dtype, n, size);
        let got = run_ranks(backend, &g, dtype, n, size, true);
        for r in 0..size {
            for name in ["w", "b", "v", "m", "cost", "z"] {
                assert_close(
                    &got[r][name],
                    &want[r][name],
                    &format!("{} {dtype} rank {r} of {size}: {name}", backend.name()),
                );
            }
        }
        // Every rank holds the same bits of the summed values.
        for r in 1..size {
            for name in ["w", "b", "v", "m", "cost"] {
                assert_eq!(
                    got[r][name].to_f64_vec(),
                    got[0][name].to_f64_vec(),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn interpreter_sums_over_the_ranks() {
    check(&Interpreter, DType::F32);
}

#[test]
fn cpu_sums_over_the_ranks() {
    check(&Cpu::with_threads(1), DType::F32);
    check(&Cpu::with_threads(2), DType::F64);
}

/// The CPU executor shards the large update over the ranks: before `sync_updates` each
/// rank's `m` is current in its part only (its other parts are an older step's), and the
/// parameter `w`, which `z` reads, is complete on every rank. (`cpu_sums_over_the_ranks`
/// checks the synced values against the oracle.)
#[test]
fn cpu_shards_large_updates_and_sync_completes_the_state() {
    let (n, size) = (600, 3);
    let g = step_graph(DType::F32, n);
    let want = by_hand(DType::F32, n, size);
    let got = run_ranks(&Cpu::with_threads(1), &g, DType::F32, n, size, false);
    for r in 0..size {
        let (m, m_want) = (got[r]["m"].to_f64_vec(), want[r]["m"].to_f64_vec());
        let mine = xenon_runtime::collective::part(n * n, r, size);
        let close = |i: &usize| (m[*i] - m_want[*i]).abs() <= 1e-5 * (1.0 + m_want[*i].abs());
        let off = |range: std::ops::Range<usize>| range.filter(|i| !close(i)).count();
        assert_eq!(off(mine.clone()), 0, "rank {r}'s part of m");
        let others = off(0..mine.start) + off(mine.end..n * n);
        assert!(
            others > n * n / 2,
            "rank {r}: m was not sharded ({others} stale)"
        );
        assert_close(&got[r]["w"], &want[r]["w"], &format!("rank {r}: w"));
        assert_eq!(got[r]["w"].to_f64_vec(), got[0]["w"].to_f64_vec());
    }
}

#[cfg(feature = "opencl")]
#[test]
fn opencl_sums_over_the_ranks() {
    match xenon_runtime::opencl::devices() {
        Ok(d) if !d.is_empty() => check(&xenon_compiler::backend::OpenCl { device: 0 }, DType::F32),
        other => eprintln!("SKIPPED: no OpenCL device ({other:?})"),
    }
}

#[test]
fn without_a_group_all_reduce_is_the_identity() {
    let g = step_graph(DType::F32, 16);
    let want = by_hand(DType::F32, 16, 1);
    for backend in [&Interpreter as &dyn Backend, &Cpu::with_threads(1)] {
        let mut exe = backend.compile(&g).unwrap();
        let mut f = feeds(0, DType::F32, 16);
        let mut out = exe.run_update(&mut f, true).unwrap();
        out.extend(exe.run_update(&mut f, true).unwrap());
        f.extend(out);
        for name in ["w", "b", "v", "cost", "z"] {
            assert_close(&f[name], &want[0][name], name);
        }
    }
}

#[test]
fn the_lowering_starts_sums_before_the_updates_that_need_them() {
    let g = step_graph(DType::F32, 600);
    let lowered = xenon_compiler::lower::lower(&g).unwrap();
    let steps = &lowered.program.steps;
    let last_reduce = steps
        .iter()
        .rposition(|s| matches!(s, Step::Library(LibraryStep::AllReduce { .. })))
        .unwrap();
    // The tanh(x·w) work, which needs no sum, runs before the last sum is started…
    let first_reduce = steps
        .iter()
        .position(|s| matches!(s, Step::Library(LibraryStep::AllReduce { .. })))
        .unwrap();
    assert!(first_reduce < last_reduce);
    // The large gradient is summed in place (no copy).
    assert!(steps.iter().any(|s| matches!(
        s,
        Step::Library(LibraryStep::AllReduce { x, out, len, .. }) if x == out && *len == 600 * 600
    )));
    // …and no step reading a sum comes before the last all_reduce.
    let outs: Vec<usize> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Library(LibraryStep::AllReduce { out, .. }) => Some(*out),
            _ => None,
        })
        .collect();
    for (i, s) in steps.iter().enumerate().take(last_reduce) {
        if matches!(s, Step::Library(LibraryStep::AllReduce { .. })) {
            continue;
        }
        let (reads, _) = s.buffers();
        assert!(
            !reads.iter().any(|b| outs.contains(b)),
            "step {i} ({}) reads a sum before every sum has started",
            s.describe()
        );
    }
}

#[test]
fn a_lost_rank_is_an_error_naming_it_not_a_hang() {
    let g = step_graph(DType::F32, 16);
    let ranks: Vec<Arc<LocalGroup>> = LocalGroup::with_timeout(2, Duration::from_millis(300))
        .into_iter()
        .map(Arc::new)
        .collect();
    let exe_backend = Cpu::with_threads(1);
    let mut exe = exe_backend.compile(&g).unwrap();
    exe.set_collective(ranks[0].clone()).unwrap();
    let mut f = feeds(0, DType::F32, 16);
    let before = f["w"].to_f64_vec();
    // Rank 1 never runs.
    let e = exe.run_update(&mut f, true).unwrap_err();
    match &e {
        BackendError::Exec(ExecError::Collective(c)) => {
            assert!(
                c.to_string()
                    .starts_with("lost rank 1 during the all-reduce"),
                "{c}"
            )
        }
        other => panic!("{other}"),
    }
    assert_eq!(f["w"].to_f64_vec(), before, "nothing updated");
}

/// A NaN that only one rank's part of a sharded update holds stops every rank, each naming
/// the same output and element, and no rank writes any update back.
#[test]
fn a_nan_in_one_ranks_part_stops_every_rank_alike() {
    let (n, size) = (600, 2);
    let g = step_graph(DType::F32, n);
    // Element 300,000 of `m` lies in rank 1's part.
    let bad = 300_000;
    assert!(xenon_runtime::collective::part(n * n, 1, size).contains(&bad));
    let ranks: Vec<Arc<LocalGroup>> = LocalGroup::new(size).into_iter().map(Arc::new).collect();
    let results: Vec<(String, Vec<f64>, Vec<f64>)> = std::thread::scope(|s| {
        let hs: Vec<_> = ranks
            .iter()
            .map(|r| {
                let g = &g;
                s.spawn(move || {
                    let mut exe = Cpu::with_threads(1).compile(g).unwrap();
                    exe.set_collective(r.clone()).unwrap();
                    let mut f = feeds(r.rank(), DType::F32, n);
                    let mut m = f["m"].to_f64_vec();
                    m[bad] = f64::NAN;
                    f.insert(
                        "m".into(),
                        Tensor::from_f64_as(DType::F32, vec![n, n], &m).unwrap(),
                    );
                    let before = f["w"].to_f64_vec();
                    let e = exe.run_update(&mut f, true).unwrap_err();
                    (e.to_string(), before, f["w"].to_f64_vec())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (e, before, after) in &results {
        assert_eq!(e, &results[0].0);
        assert!(e.contains("new/m") && e.contains(&bad.to_string()), "{e}");
        assert_eq!(before, after, "nothing updated");
    }
}
