#!/usr/bin/env bash
# The decision-quality benchmark: every scenario through every autoscaler, figures and the
# targets' verdicts in target/bench/decision-quality.md, plots in target/bench/plots/; then
# the generalization run over generated traces in target/bench/generalization.md, the
# seasonal run in target/bench/seasonal.md and the idle-queue run in target/bench/idle-queues.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin headroom
./target/release/headroom simulate --report target/bench/decision-quality.md --out-dir target/bench/plots "$@"
# Generalization: 105 generated traces (15 of each family), against the HPA, KEDA and Knative's KPA.
./target/release/headroom simulate --family all --count 105 --seed 1 --report target/bench/generalization.md "$@"
# Recurring patterns: 100 multi-day seasonal traces (daily, weekly, hourly batches, and
# patterns that change or stop), the learned forecast against the HPA, KEDA and the KPA.
./target/release/headroom simulate --family seasonal --count 100 --seed 1 --report target/bench/seasonal.md
# Short recurring bursts: 100 traces with two days of the same bursts as history and 100
# without, against the HPA, also at equal replica-minutes.
./target/release/headroom simulate --family bursts --count 100 --seed 1 --report target/bench/bursts.md
./target/release/headroom simulate --family bursts-cold --count 100 --seed 1 --report target/bench/bursts-cold.md
# Scale to zero: 60 idle-queue traces (nightly batches, retry bursts, trickles), the worker
# policy deploy/examples/worker-idle.yaml against KEDA at its defaults and the HPA.
./target/release/headroom simulate --family idle --count 60 --seed 1 --report target/bench/idle-queues.md
