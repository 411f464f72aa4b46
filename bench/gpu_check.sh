#!/bin/bash
# The OpenCL GPU figures of the README, in two halves:
#
#   bench/gpu_check.sh prepare   # here: build with `--features opencl`, fill .gpu/
#   bench/gpu_check.sh run       # on the GPU machine, from the project root (no Rust there)
#
# `run` picks the first device whose line in `xenon devices` names $GPU_MATCH (default
# NVIDIA) and prints: SGEMM kernel speed at $GEMM_SIZES (default 1024³, 2048³, 4096³); `xenon bench` of
# mnist_mlp (batch 128; the training step as training runs it, device-resident, next
# minibatch prefetched); and 10 epochs of `xenon train` on the bundled MNIST subset.
set -eu
case "${1:-}" in
prepare)
    cargo build --release --features opencl --bin xenon
    cargo build --release -p xenon-runtime --features opencl --example opencl_gemm_speed
    mkdir -p .gpu
    cp ../shared/gpu/* .gpu/ 2>/dev/null || true
    cp target/release/xenon target/release/examples/opencl_gemm_speed .gpu/
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >>.git/info/exclude
    du -sh .gpu
    ;;
run)
    if [ -f .gpu/opencl-env.sh ]; then . .gpu/opencl-env.sh; fi
    .gpu/xenon devices
    dev=$(.gpu/xenon devices | grep -m1 "${GPU_MATCH:-NVIDIA}" | sed 's/^#\([0-9]*\).*/\1/')
    if [ -z "$dev" ]; then
        echo "no device matching ${GPU_MATCH:-NVIDIA}" >&2
        exit 1
    fi
    echo "== device $dev"
    for n in ${GEMM_SIZES:-1024 2048 4096}; do
        .gpu/opencl_gemm_speed "$n" "$n" "$n" --kernel-only --device "$dev" | tail -1
    done
    .gpu/xenon bench examples/models/mnist_mlp.yaml --backend opencl --device "$dev" --steps
    .gpu/xenon train examples/models/mnist_mlp.yaml --backend opencl --device "$dev"
    ;;
*)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
