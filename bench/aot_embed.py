#!/usr/bin/env python3
"""Ahead-of-time bundles on this machine: batch-1 latency of 784-100-10 inference through
the embedded runtime (Rust app, bundle linked at build time and artifact loaded at run
time) against the JIT path (`xenon bench`) and PyTorch, all in the same rounds; the C
program's cold start to its first prediction; and the C executable's size.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch numpy
    .venv-bench/bin/python bench/aot_embed.py            # 5 rounds

It builds what it needs in release mode (xenon, xenon-capi, xenon-embed with the bundle
linked), trains 784-100-10 for 2 epochs and compiles it with `xenon compile --batch 1`,
under target/aot-bench/. Without PyTorch it prints Xenon's figures only. Timings are a
report for people, not assertions.
"""
import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vs_pytorch as vp  # noqa: E402

ROOT = vp.ROOT
WORK = os.path.join(ROOT, "target", "aot-bench")
MODEL = os.path.join(vp.MODELS, "mlp_784_100_10.yaml")
REL = os.path.join(ROOT, "target", "release")


def sh(cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}).stdout


def build():
    os.makedirs(WORK, exist_ok=True)
    sh(["cargo", "build", "--release", "-p", "xenon", "-p", "xenon-capi"])
    weights = os.path.join(WORK, "w.safetensors")
    bundle = os.path.join(WORK, "bundle")
    sh([vp.XENON, "train", MODEL, "--epochs", "2", "--save", weights])
    sh([vp.XENON, "compile", MODEL, "--weights", weights, "--batch", "1", "--name",
        "mnist_mlp", "-o", bundle])
    sh(["cargo", "build", "--release", "-p", "xenon-embed"],
       env={"XENON_EMBED_OBJECT": os.path.join(bundle, "mnist_mlp.o")})
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        with gzip.open(os.path.join(vp.MNIST, name + ".gz")) as src, \
                open(os.path.join(WORK, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
    exe = os.path.join(WORK, "classify")
    sh(["cc", "-O2", "-I", bundle, os.path.join(ROOT, "examples", "embed-c", "main.c"),
        os.path.join(bundle, "mnist_mlp.o"), os.path.join(REL, "libxenon_capi.a"),
        "-lm", "-lpthread", "-ldl", "-Wl,--gc-sections", "-s", "-o", exe])
    return weights, bundle, exe


def embed_us(args):
    out = sh([os.path.join(REL, "xenon-embed")] + args + ["--bench", "20000"])
    return float(re.search(r"median ([0-9.]+) µs", out).group(1))


def cold_start(exe, weights, runs=21):
    """Median wall time of the whole process (exec to exit) with --first, and the median
    the program reports from main() to its first prediction, in ms."""
    walls, firsts = [], []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run([exe, weights, WORK, "--first"], check=True, capture_output=True,
                             text=True).stdout
        walls.append((time.perf_counter() - t) * 1e3)
        firsts.append(float(re.search(r"([0-9.]+) ms", out).group(1)))
    return statistics.median(walls), statistics.median(firsts)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    try:
        import torch
        torch.set_num_threads(1)
        tp = vp.Torch(torch)
    except ImportError:
        tp = None
        print("PyTorch not found; to compare:\n" + vp.INSTALL)
    weights, bundle, exe = build()
    linked = ["--linked", os.path.join(bundle, "mnist_mlp.safetensors")]
    artifact = ["--artifact", os.path.join(bundle, "mnist_mlp.xnb")]
    rows = {"embedded (linked)": [], "embedded (artifact)": [], "JIT (xenon bench)": [],
            "PyTorch": []}
    for _ in range(a.rounds):
        rows["embedded (linked)"].append(embed_us(linked))
        rows["embedded (artifact)"].append(embed_us(artifact))
        rows["JIT (xenon bench)"].append(
            vp.xenon_step("mlp_784_100_10.yaml", 1, "infer", 1, None, 0)[0])
        if tp:
            rows["PyTorch"].append(tp.step("mlp_784_100_10.yaml", 1, "infer", 0))
    print(f"machine: {vp.cpu_name()}, {os.cpu_count()} logical CPUs; 1 thread; "
          f"{a.rounds} rounds")
    print("784-100-10 inference, batch 1 (µs per run: median of rounds, range):")
    torch_med = statistics.median(rows["PyTorch"]) if rows["PyTorch"] else None
    for k, v in rows.items():
        if not v:
            continue
        med = statistics.median(v)
        ratio = f"  PyTorch/this {torch_med / med:.2f}×" if torch_med and k != "PyTorch" else ""
        print(f"  {k:<22} {med:8.2f}  ({min(v):.2f}–{max(v):.2f}){ratio}")
    wall, first = cold_start(exe, os.path.join(bundle, "mnist_mlp.safetensors"))
    print(f"C program cold start to first prediction: {wall:.2f} ms wall (exec to exit), "
          f"{first:.2f} ms from main() (medians of 21)")
    print(f"C executable (stripped, without weights): {os.path.getsize(exe) / 1e6:.2f} MB; "
          f"weights {os.path.getsize(os.path.join(bundle, 'mnist_mlp.safetensors')) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
