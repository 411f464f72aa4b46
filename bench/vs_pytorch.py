#!/usr/bin/env python3
"""Xenon and PyTorch side by side on this machine: MLP, convnet and LSTM training steps,
inference.

Each round runs every workload once on Xenon (`xenon bench --json` / `xenon train --json`,
one process per workload) and then on PyTorch (in this process), so both see the same
machine state; the table gives the median over rounds of each run's median, the range,
and the ratio PyTorch time / Xenon time (> 1: Xenon is faster).

    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch numpy
    .venv-bench/bin/python bench/vs_pytorch.py                 # 1 thread, 3 rounds
    .venv-bench/bin/python bench/vs_pytorch.py --threads 1,2 --isa avx2
    .venv-bench/bin/python bench/vs_pytorch.py --only cnn_b64_train --convnet   # convnets only
    .venv-bench/bin/python bench/vs_pytorch.py --only char_lstm_b64_train,lstm_b32_train

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
    ("cnn_b64_train", "small CIFAR-sized CNN b64 training step", "small_cnn.yaml", 64, "train"),
    ("char_lstm_b64_train", "char_lstm (2×LSTM 128, T=50) b64 training step", "char_lstm.yaml", 64,
     "train"),
    ("lstm_b32_train", "LSTM 128 with embedding, T=50, b32 training step", "lstm_step.yaml", 32,
     "train"),
]
SIZES = {"mlp_784_100_10.yaml": [784, 100, 10], "mlp_784_2048_2048_10.yaml": [784, 2048, 2048, 10]}
# Models built by `Torch.net` other than MLPs: name -> (input shape, classes).
CONVNETS = {"small_cnn.yaml": ((3, 32, 32), 10)}
# Recurrent models: name -> what `Torch.recurrent` builds.
RECURRENT = {"char_lstm.yaml": "char_lstm", "lstm_step.yaml": "lstm_step"}


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


def xenon_mnist_convnet(threads, isa):
    """The MNIST convnet for 10 epochs: the epochs' training time (no evaluation, no
    compilation), as PyTorch's figure is measured."""
    args = ["train", os.path.join(MODELS, "mnist_convnet.yaml"), "--threads", str(threads), "--json"]
    if isa:
        args += ["--isa", isa]
    done = xenon(args)[-1]
    return done["train_seconds"] * 1e6, {"test_misclass": done.get("test_misclass"), **done}


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

    def small_cnn(self):
        """torch_cnn_step.py's `cnn` (examples/models/small_cnn.yaml)."""
        nn = self.nn
        return nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))

    def recurrent(self, kind, batch, reps):
        """One training step of a recurrent net on a fixed random batch of character ids,
        T = 50, vocabulary 65:
        char_lstm: ../shared/baselines/torch_char_lstm.py's model (one-hot input, 2 x
        LSTM(128), Linear(65), cross-entropy, RMSprop 2e-3/0.95/1e-6, gradients clipped to
        +-5); lstm_step: ../shared/baselines/torch_cnn_step.py --model lstm (Embedding(65,
        128), LSTM(128), Linear(65), cross-entropy, SGD 0.01 momentum 0.9)."""
        torch, nn = self.torch, self.nn
        V, T = 65, 50
        ids = torch.randint(0, V, (batch, T))
        tgt = torch.randint(0, V, (batch, T))
        if kind == "char_lstm":
            lstm, embed = nn.LSTM(V, 128, num_layers=2, batch_first=True), None
        else:
            lstm, embed = nn.LSTM(128, 128, batch_first=True), nn.Embedding(V, 128)
        out = nn.Linear(128, V)
        params = list(lstm.parameters()) + list(out.parameters())
        params += list(embed.parameters()) if embed else []
        if kind == "char_lstm":
            opt = torch.optim.RMSprop(params, lr=2e-3, alpha=0.95, eps=1e-6)
        else:
            opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

        def step():
            x = embed(ids) if embed else nn.functional.one_hot(ids, V).float()
            h, _ = lstm(x)
            loss = nn.functional.cross_entropy(out(h).reshape(-1, V), tgt.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if kind == "char_lstm":
                nn.utils.clip_grad_value_(params, 5)
            opt.step()
        return self.median_us(step, lo=reps or 5, hi=reps or 1000)

    def step(self, model, batch, what, reps):
        torch, nn = self.torch, self.nn
        torch.manual_seed(0)
        if model in RECURRENT:
            return self.recurrent(RECURRENT[model], batch, reps)
        if model in CONVNETS:
            shape, classes = CONVNETS[model]
            net = self.small_cnn()
            x = torch.rand(batch, *shape)
        else:
            net = self.mlp(SIZES[model])
            x = torch.rand(batch, SIZES[model][0])
            classes = SIZES[model][-1]
        if what == "infer":
            net.eval()
            with torch.inference_mode():
                return self.median_us(lambda: net(x), lo=reps or 5, hi=reps or 1000)
        y = torch.randint(0, classes, (batch,))
        opt = torch.optim.SGD(net.parameters(), lr=0.1 if model not in CONVNETS else 0.01, momentum=0.9)

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


    def mnist_convnet(self):
        """examples/models/mnist_convnet.yaml (neon's cifar10_conv adapted to MNIST: Conv
        5x5x16 + BN + ReLU, MaxPool 2, Conv 5x5x32 + BN + ReLU, MaxPool 2, Affine 500 + BN +
        ReLU, Affine 10, no biases, Uniform(+-0.1), softmax cross-entropy, GDM 0.01/0.9,
        batch 128) for 10 epochs on the bundled subset, as
        ../shared/baselines/torch_mnist_conv.py trains it: training time in us."""
        torch, nn = self.torch, self.nn
        torch.manual_seed(0)
        x, y = read_idx(os.path.join(MNIST, "train-images-idx3-ubyte.gz")), \
            read_idx(os.path.join(MNIST, "train-labels-idx1-ubyte.gz"))
        x = torch.tensor(x, dtype=torch.float32).reshape(len(y), 1, 28, 28) / 255.0
        y = torch.tensor(y, dtype=torch.int64)
        net = nn.Sequential(
            nn.Conv2d(1, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(512, 500, bias=False), nn.BatchNorm1d(500), nn.ReLU(),
            nn.Linear(500, 10, bias=False))
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.uniform_(m.weight, -0.1, 0.1)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        lossf = nn.CrossEntropyLoss()
        total = 0.0
        net.train()
        for _ in range(10):
            perm = torch.randperm(len(y))
            t = time.perf_counter()
            for i in range(0, len(y) - 127, 128):
                idx = perm[i:i + 128]
                opt.zero_grad()
                loss = lossf(net(x[idx]), y[idx])
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
    p.add_argument("--convnet", action="store_true",
                   help="also the MNIST convnet (examples/models/mnist_convnet.yaml), 10 epochs")
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
    if args.convnet:
        work.append(("mnist_convnet_10_epochs", "MNIST convnet, 10 epochs, training time", None, 128,
                     "convnet"))
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
                elif what == "convnet":
                    xv, info = xenon_mnist_convnet(t, args.isa)
                    tv = torch_.mnist_convnet() if torch_ else None
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
