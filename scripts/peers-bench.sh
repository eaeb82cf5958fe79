#!/usr/bin/env bash
# The peers benchmark: the real HPA (through prometheus-adapter, without and with its default
# behavior written out), real KEDA and Headroom at 5 s and 15 s, side by side on the local
# cluster, through a step, a spike and a decay of a queue backlog. Writes target/bench/peers.md,
# peers.json and peers-<scenario>.svg. PEERS_BENCH_REPS sets the repetitions (default 5; each
# takes up to 13 minutes, the scenarios run at once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/cluster/deps.sh
bash tests/cluster/build.sh >/dev/null
bash tests/cluster/peers/build.sh >/dev/null
HEADROOM_PEERS=1 cargo test --locked --test peers_bench -- --nocapture
