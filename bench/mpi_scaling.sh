#!/usr/bin/env bash
# Samples per second of `xenon train` in 1 process and in N MPI ranks (default 2), each
# single-threaded, on the 784-2048-2048-10 MLP at global batch 1024 (or MODEL, BATCH),
# alternating runs; prints each run and the medians and their ratio. The first epoch
# (compilation) is left out of each figure.
#
#   bench/mpi_scaling.sh [ROUNDS] [MODEL] [BATCH] [RANKS] [EPOCHS]
#
# Needs a build with MPI: cargo build --release --features mpi
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
model=${2:-examples/models/mlp_784_2048_2048_10.yaml}
batch=${3:-1024}
ranks=${4:-2}
epochs=${5:-4}
xenon=target/release/xenon
rate() {
    python3 -c '
import json, sys
batch = int(sys.argv[1])
eps = [json.loads(l) for l in sys.stdin if l.startswith("{")]
eps = [e for e in eps if e.get("event") == "epoch"][1:]
print(round(sum(e["batches"] for e in eps) * batch / sum(e["seconds"] for e in eps), 1))
' "$batch"
}
one=(); many=()
for i in $(seq "$rounds"); do
    a=$("$xenon" train "$model" --threads 1 -z "$batch" -e "$epochs" --json | rate)
    b=$(mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$xenon" train "$model" \
        --threads 1 -z "$batch" -e "$epochs" --json | rate)
    echo "round $i: 1 process $a samples/s, $ranks ranks $b samples/s"
    one+=("$a"); many+=("$b")
done
python3 -c '
import statistics, sys
n = int(sys.argv[1]); a = [float(x) for x in sys.argv[2:2 + n]]; b = [float(x) for x in sys.argv[2 + n:]]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median: 1 process {ma:.0f} samples/s (range {min(a):.0f}-{max(a):.0f}), "
      f"ranks {mb:.0f} samples/s (range {min(b):.0f}-{max(b):.0f}); "
      f"speed-up {mb / ma:.2f} (per-round ratios {min(y / x for x, y in zip(a, b)):.2f}-{max(y / x for x, y in zip(a, b)):.2f})")
' "$rounds" "${one[@]}" "${many[@]}"
