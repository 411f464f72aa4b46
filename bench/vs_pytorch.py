#!/usr/bin/env python3
"""Xenon and PyTorch side by side on this machine: MLP training steps and inference.

Each round runs every workload once on Xenon (`xenon bench --json` / `xenon train --json`,
one process per workload) and then on PyTorch (in this process), so both see the same
machine state; the table gives the median over rounds of each run's median, the range,
and the ratio PyTorch time / Xenon time (> 1: Xenon is faster).

    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch numpy
    .venv-bench/bin/python bench/vs_pytorch.py                 # 1 thread, 3 rounds
    .venv-bench/bin/python bench/vs_pytorch.py --threads 1,2 --isa avx2

Without PyTorch it prints Xenon's figures and how to install PyTorch. Timings are not
assertions: this is a report for people, to be rerun on the machine at hand.
"""
import argparse
import gzip
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XENON = os.path.join(ROOT, "target", "release", "xenon")
MODELS = os.path.join(ROOT, "examples", "models")
MNIST = os.path.join(ROOT, "data", "mnist-subset")
INSTALL = ("python3 -m venv .venv-bench && .venv-bench/bin/pip install torch numpy\n"
           "then run this script with .venv-bench/bin/python")

# (key, label, model file, batch, what): what is "train" or "infer" of `xenon bench`.
STEP_WORKLOADS = [
    ("mlp100_b128_train", "784-100-10 b128 training step", "mlp_784_100_10.yaml", 128, "train"),
    ("mlp100_b128_infer", "784-100-10 b128 inference", "mlp_784_100_10.yaml", 128, "infer"),
    ("mlp100_b1_infer", "784-100-10 b1 inference", "mlp_784_100_10.yaml", 1, "infer"),
    ("mlp2048_b1024_train", "784-2048-2048-10 b1024 training step", "mlp_784_2048_2048_10.yaml", 1024, "train"),
]
SIZES = {"mlp_784_100_10.yaml": [784, 100, 10], "mlp_784_2048_2048_10.yaml": [784, 2048, 2048, 10]}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def xenon(args):
    out = subprocess.run([XENON] + args, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def xenon_step(model, batch, what, threads, isa, reps):
    args = ["bench", os.path.join(MODELS, model), "--batch", str(batch), "--threads",
            str(threads), "--json"]
    if isa:
        args += ["--isa", isa]
    if reps:
        args += ["--reps", str(reps)]
    r = xenon(args)[-1]
    key = "train_step_us_median" if what == "train" else "infer_us_median"
    return r[key], r


def xenon_mnist(threads, isa):
    args = ["train", os.path.join(MODELS, "mnist_mlp.yaml"), "--threads", str(threads), "--json"]
    if isa:
        args += ["--isa", isa]
    done = xenon(args)[-1]
    return done["seconds"] * 1e6, done


class Torch:
    def __init__(self, torch):
        self.torch = torch
        self.nn = torch.nn

    def mlp(self, sizes, bias=True):
        nn = self.nn
        layers = []
        for i in range(len(sizes) - 1):
            lin = nn.Linear(sizes[i], sizes[i + 1], bias=bias)
            nn.init.normal_(lin.weight, 0.0, 0.01)
            if bias:
                nn.init.zeros_(lin.bias)
            layers.append(lin)
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    @staticmethod
    def median_us(fn, budget_s=1.0, lo=5, hi=1000):
        for _ in range(3):
            fn()
        t = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t, 1e-6)
        reps = int(min(hi, max(lo, budget_s / once)))
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1e6)
        return statistics.median(samples)

    def step(self, model, batch, what, reps):
        torch, nn = self.torch, self.nn
        torch.manual_seed(0)
        net = self.mlp(SIZES[model])
        x = torch.rand(batch, SIZES[model][0])
        if what == "infer":
            net.eval()
            with torch.inference_mode():
                return self.median_us(lambda: net(x), lo=reps or 5, hi=reps or 1000)
        y = torch.randint(0, SIZES[model][-1], (batch,))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        def step():
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return self.median_us(step, lo=reps or 5, hi=reps or 1000)

    def mnist(self):
        """neon's mnist_mlp (no biases, logistic + summed BCE, GDM 0.1/0.9, batch 128) for 10
        epochs on the bundled subset: training time in µs."""
        torch, nn = self.torch, self.nn
        torch.manual_seed(0)
        x, y = read_idx(os.path.join(MNIST, "train-images-idx3-ubyte.gz")), \
            read_idx(os.path.join(MNIST, "train-labels-idx1-ubyte.gz"))
        x = torch.tensor(x, dtype=torch.float32).reshape(len(y), -1) / 255.0
        y = torch.tensor(y, dtype=torch.int64)
        net = self.mlp([784, 100, 10], bias=False)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        eye = torch.eye(10)
        gen = torch.Generator().manual_seed(0)
        total = 0.0
        for _ in range(10):
            perm = torch.randperm(len(y), generator=gen)
            t = time.perf_counter()
            for i in range(0, len(y), 128):
                idx = perm[i:i + 128]
                out = net(x[idx])
                loss = nn.functional.binary_cross_entropy_with_logits(
                    out, eye[y[idx]], reduction="sum") / out.shape[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            total += time.perf_counter() - t
        return total * 1e6


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    _, _, ndim = struct.unpack(">HBB", data[:4])
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    return list(body) if ndim == 1 else bytearray(body)


def fmt_us(v):
    return f"{v / 1e3:,.1f} ms" if v >= 1e4 else f"{v:,.1f} µs"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1", help="comma list, e.g. 1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--isa", default=None, help="Xenon's GEMM path: avx512, avx2, portable")
    p.add_argument("--only", default=None, help="comma list of workload keys")
    p.add_argument("--mnist", action="store_true", help="also neon's mnist_mlp, 10 epochs")
    p.add_argument("--json", action="store_true", help="one JSON object at the end")
    args = p.parse_args()

    if not os.path.exists(XENON):
        print("building Xenon (cargo build --release) ...", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    try:
        import torch
        torch_ = Torch(torch)
        tinfo = f"PyTorch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})"
    except ImportError:
        torch_ = None
        tinfo = "PyTorch not installed"
        print(f"PyTorch is not installed; Xenon's figures only. To compare:\n{INSTALL}\n")

    work = [w for w in STEP_WORKLOADS if not args.only or w[0] in args.only.split(",")]
    if args.mnist:
        work.append(("mnist_mlp_10_epochs", "neon mnist_mlp, 10 epochs, training time", None, 128, "mnist"))
    threads = [int(t) for t in args.threads.split(",")]
    res = {}  # (key, threads) -> {"xenon": [...], "torch": [...]}
    extra = {}
    for r in range(args.rounds):
        for t in threads:
            if torch_:
                torch_.torch.set_num_threads(t)
            for key, label, model, batch, what in work:
                reps = 5 if model == "mlp_784_2048_2048_10.yaml" else None
                if what == "mnist":
                    xv, info = xenon_mnist(t, args.isa)
                    tv = torch_.mnist() if torch_ else None
                else:
                    xv, info = xenon_step(model, batch, what, t, args.isa, reps)
                    tv = torch_.step(model, batch, what, reps) if torch_ else None
                extra[(key, t)] = info
                cell = res.setdefault((key, t), {"xenon": [], "torch": []})
                cell["xenon"].append(xv)
                if tv is not None:
                    cell["torch"].append(tv)
                print(f"round {r + 1}/{args.rounds} t={t} {key}: Xenon {fmt_us(xv)}"
                      + (f", PyTorch {fmt_us(tv)}" if tv is not None else ""), file=sys.stderr)

    isa = next((i.get("isa") for i in extra.values() if i.get("isa")), None)
    print(f"\nMachine: {cpu_name()}, {os.cpu_count()} cores; Xenon GEMM path {isa}; {tinfo}; "
          f"{args.rounds} alternating rounds, medians of per-run medians [min–max]\n")
    print("| workload | threads | Xenon | PyTorch | PyTorch / Xenon |")
    print("|---|---|---|---|---|")
    rows = []
    for key, label, *_ in work:
        for t in threads:
            c = res[(key, t)]
            xm = statistics.median(c["xenon"])
            xs = f"{fmt_us(xm)} [{fmt_us(min(c['xenon']))}–{fmt_us(max(c['xenon']))}]"
            if c["torch"]:
                tm = statistics.median(c["torch"])
                ts = f"{fmt_us(tm)} [{fmt_us(min(c['torch']))}–{fmt_us(max(c['torch']))}]"
                ratio = tm / xm
                rs = f"**{ratio:.2f}×**"
            else:
                tm, ts, ratio, rs = None, "—", None, "—"
            print(f"| {label} | {t} | {xs} | {ts} | {rs} |")
            info = extra[(key, t)]
            rows.append({"workload": key, "threads": t, "xenon_us": xm, "torch_us": tm,
                         "ratio": ratio, "xenon_runs_us": c["xenon"], "torch_runs_us": c["torch"],
                         "gemm_gflops": info.get("gemm_gflops"), "peak_gflops": info.get("peak_gflops"),
                         "test_misclass": info.get("test_misclass")})
    for row in rows:
        if row["gemm_gflops"] and row["peak_gflops"] and row["workload"].endswith("train"):
            print(f"\n{row['workload']} t={row['threads']}: Xenon GEMM {row['gemm_gflops']:.1f} GFLOP/s, "
                  f"measured FMA peak {row['peak_gflops']:.1f} GFLOP/s per core", end="")
    print()
    if args.json:
        print(json.dumps({"machine": cpu_name(), "isa": isa, "torch": tinfo, "rows": rows}))


if __name__ == "__main__":
    main()
