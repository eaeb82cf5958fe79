#!/usr/bin/env bash
# The one command that runs every check and test: formatting, clippy, unit tests, and the
# end-to-end tests against a local control plane and Prometheus (started here, stopped after).
# Fails, never skips, when the local cluster cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --all-targets --locked
bash tests/cluster/up.sh
trap 'bash tests/cluster/down.sh' EXIT
# The end-to-end tests mostly wait on the cluster, so they run more threads than cores.
cargo test --all-targets --locked --no-fail-fast -- --test-threads 8
bash tests/cluster/down.sh
trap - EXIT

# The README's demo, played at 4x its speed on a cluster of its own: it must scale the web
# tier up on the launch and print its summary and plot.
mkdir -p target/demo
DEMO_SPEED=240 bash scripts/demo.sh >target/demo/check.log 2>&1 || { cat target/demo/check.log; exit 1; }
peak=$(sed -n 's/^summary: peak web replicas \([0-9]*\),.*/\1/p' target/demo/check.log)
if [ -z "$peak" ] || [ "$peak" -le 2 ] || ! grep -q '^plot: ' target/demo/check.log \
  || ! grep -q 'Deployment/web scaled from 2 to' target/demo/check.log; then
  cat target/demo/check.log
  echo "demo check failed: no scale-up, summary or plot" >&2
  exit 1
fi
echo "demo check: peak web replicas $peak"
echo "all checks and tests passed in $(( $(date +%s) - t0 ))s"
