#!/usr/bin/env bash
# Fleet scale: N policies on one operator against the local cluster and its Prometheus.
#   scripts/scale-bench.sh N [minimal|full] [SECONDS] [SETTLE]
# Creates N targets (a custom resource with a scale subresource, so no pods are needed) in
# 10 namespaces with one policy each (minimal: p95 + cpu; full: the shape of
# deploy/examples/web.yaml), serves their series from the test exporter, runs `headroom run`
# with a 15 s interval and --scrape-interval 15s (what real installs use), and measures for
# SECONDS (default 120), from SETTLE seconds (default 60) after every policy has a status.
# Writes target/bench/scale.md (one row appended per run) and target/bench/scale.json (the
# last run). Under SCALE_BENCH_WRAP the operator is killed at the end (a heap profiler then
# reports what it held as leaked) and its cores and RSS are the wrapper's.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: scripts/scale-bench.sh N [minimal|full] [SECONDS] [SETTLE]}
shape=${2:-full}
seconds=${3:-120}
settle=${4:-60}
case "$shape" in minimal | full) ;; *) echo "shape: minimal or full, got $shape" >&2; exit 2 ;; esac

# SCALE_BENCH_WRAP="heaptrack -o target/bench/heap" profiles the operator's heap; a profiler
# sees allocations only through the system allocator.
features=()
if [ -n "${SCALE_BENCH_WRAP:-}" ]; then features=(--features system-allocator); fi
cargo build --release --quiet "${features[@]}" --bin headroom --bin headroom-test-exporter
bash tests/cluster/up.sh
# shellcheck disable=SC1091
source target/cluster/env
mkdir -p target/bench
exec python3 scripts/scale_bench.py "$n" "$shape" "$seconds" "$settle"
