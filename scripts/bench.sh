#!/usr/bin/env bash
# The decision-quality benchmark: every scenario through every autoscaler, figures and the
# targets' verdicts in target/bench/decision-quality.md, plots in target/bench/plots/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin headroom
./target/release/headroom simulate --report target/bench/decision-quality.md --out-dir target/bench/plots "$@"
