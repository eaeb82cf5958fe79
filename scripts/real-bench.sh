#!/usr/bin/env bash
# Real pods beside the real HPA: the real app on the real node, a load step through its
# Service, Headroom and the real HPA controller in turn on CPU (the resource metrics API from
# prometheus-adapter over cAdvisor) and on p95, and `simulate`'s prediction for each. Writes
# target/bench/real-hpa.md and real-hpa.json. REAL_BENCH_REPS sets the repetitions (default 1;
# each rep takes about 25 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/cluster/deps.sh
bash tests/cluster/build.sh >/dev/null
bash tests/cluster/peers/build.sh >/dev/null
HEADROOM_PEERS=1 HEADROOM_REAL_NODE=1 cargo test --locked --test real_bench -- --nocapture
