#!/usr/bin/env bash
# The one command that runs every check and test: formatting, clippy, unit tests, and the
# end-to-end tests against a local control plane and Prometheus (started here, stopped after).
# Fails, never skips, when the local cluster cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Targets with `test = false` (the peer tests and the peers benchmark) are linted too.
cargo clippy --locked --test e2e_peers --test e2e_real --test peers_bench --test reality_bench --test real_bench -- -D warnings
cargo build --all-targets --locked
# The alerts' unit tests (deploy/monitoring/headroom.rules.test.yaml) with Debian's promtool.
promtool check rules deploy/monitoring/headroom.rules.yaml
promtool test rules deploy/monitoring/headroom.rules.test.yaml
bash tests/cluster/up.sh
trap 'bash tests/cluster/down.sh' EXIT
# The end-to-end tests mostly wait on the cluster, so they run more threads than cores.
cargo test --all-targets --locked --no-fail-fast -- --test-threads 8
# The Helm chart against deploy/ and the API server (tests/helm_check.sh).
bash tests/helm_check.sh
bash tests/cluster/down.sh

# Beside the peers: the real HPA controller reading prometheus-adapter's external metrics, and
# real KEDA (tests/e2e_peers.rs), on a cluster started for them.
HEADROOM_PEERS=1 bash tests/cluster/up.sh
HEADROOM_PEERS=1 cargo test --locked --test e2e_peers -- --test-threads 2
bash tests/cluster/down.sh
trap - EXIT

# The README's demo: a fast run, then Ctrl-C and SIGTERM (tests/demo_check.sh).
bash tests/demo_check.sh

# The operator image: built without a registry, run under runc (tests/image_check.sh).
bash tests/image_check.sh

# The install path: `kubectl apply -k` of deploy/ runs that image as two pods on a real node
# (kubelet, containerd, runc), one leading; the other takes over (tests/install_check.sh).
bash tests/install_check.sh

# Real pods, real signals (tests/e2e_real.rs): the real app under a CPU limit on the real node,
# the kubelet's cAdvisor and kube-state-metrics scraped, real load through its Service.
HEADROOM_REAL_NODE=1 bash tests/cluster/up.sh
trap 'bash tests/cluster/down.sh' EXIT
HEADROOM_REAL_NODE=1 cargo test --locked --test e2e_real -- --test-threads 1
bash tests/cluster/down.sh
trap - EXIT
echo "all checks and tests passed in $(( $(date +%s) - t0 ))s"
