#!/usr/bin/env bash
# A noisy neighbour, with the operator's limits and with them raised out of the way: the
# same e2e (tests/e2e_noisy.rs) twice on the local cluster. Writes
# target/bench/noisy-neighbour.md (defaults) and noisy-neighbour-unlimited.md. The second
# run is expected to fail its checks; that is the comparison. About 4 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/cluster/deps.sh
bash tests/cluster/build.sh >/dev/null
cargo test --locked --test e2e_noisy -- --nocapture
NOISY_OPERATOR_ARGS="--namespace-queries 64 --max-response-bytes 1GiB" \
  NOISY_FIGURES=noisy-neighbour-unlimited \
  cargo test --locked --test e2e_noisy -- --nocapture || true
cat target/bench/noisy-neighbour.md target/bench/noisy-neighbour-unlimited.md
