#!/usr/bin/env bash
# The one command that runs every check and test: formatting, lints, unit tests, and the
# end-to-end tests against a local control plane and Prometheus (started here, stopped after).
# Fails, never skips, when the local cluster cannot start. Prints each stage's time at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
source scripts/stages.sh
trap stages_report EXIT
stage "lint: pipelines" bash -c "python3 scripts/lint-pipes.py --self-test && python3 scripts/lint-pipes.py"
stage "lint: cargo fmt" cargo fmt --all -- --check
stage "lint: clippy" cargo clippy --all-targets --locked -- -D warnings
# Targets with `test = false` (the peer tests and the peers benchmark) are linted too.
stage "lint: clippy (test = false targets)" cargo clippy --locked --test e2e_peers --test e2e_real --test e2e_data --test peers_bench --test reality_bench --test real_bench -- -D warnings
stage "build: all targets" cargo build --all-targets --locked
# The book under docs/ (its pages and links are checked by tests/docs.rs).
stage "docs: mdbook build" bash scripts/docs.sh --check
# The alerts' unit tests (deploy/monitoring/headroom.rules.test.yaml) with Debian's promtool.
stage "alerts: promtool check" promtool check rules deploy/monitoring/headroom.rules.yaml
stage "alerts: promtool test" promtool test rules deploy/monitoring/headroom.rules.test.yaml

stage "cluster: up" bash tests/cluster/up.sh
trap 'bash tests/cluster/down.sh; stages_report' EXIT
# The end-to-end tests mostly wait on the cluster, so they run more threads than cores, and
# several test binaries at once (scripts/run-tests.py). Alone, after the rest: e2e_recovery
# restarts the API server, e2e_poison loosens the CRD, e2e_shards and e2e_noisy run operators
# over every namespace.
stage "tests: unit and e2e" python3 scripts/run-tests.py --jobs 3 --first e2e_whatif \
  --alone e2e_recovery --alone e2e_poison --alone e2e_shards --alone e2e_noisy -- --test-threads 8
# The Helm chart against deploy/ and the API server (tests/helm_check.sh).
stage "helm check" bash tests/helm_check.sh
stage "cluster: down" bash tests/cluster/down.sh

# The README's demo: a fast run, then Ctrl-C and SIGTERM (tests/demo_check.sh).
stage "demo check" bash tests/demo_check.sh

# The operator image: built without a registry, run under runc (tests/image_check.sh).
stage "image check" bash tests/image_check.sh

# The real node, started once for the next three stages.
HEADROOM_REAL_NODE=1 stage "cluster: up (real node)" bash tests/cluster/up.sh
trap 'bash tests/cluster/down.sh; stages_report' EXIT
# The install path: `kubectl apply -k` of deploy/ runs that image as two pods on the real node
# (kubelet, containerd, runc), one leading; the other takes over (tests/install_check.sh).
HEADROOM_KEEP_CLUSTER=1 stage "install check (real node)" bash tests/install_check.sh
# Real pods, real signals (tests/e2e_real.rs): the real app under a CPU limit on the real node,
# the kubelet's cAdvisor and kube-state-metrics scraped, real load through its Service.
HEADROOM_REAL_NODE=1 stage "tests: e2e_real" cargo test --locked --test e2e_real -- --test-threads 1
# The real data tier (tests/e2e_data.rs): PostgreSQL, PgBouncer, Redis and their exporters as
# pods on the real node; every query of deploy/examples/ must return data from them.
HEADROOM_REAL_NODE=1 stage "tests: e2e_data" cargo test --locked --test e2e_data -- --test-threads 1
stage "cluster: down" bash tests/cluster/down.sh
trap stages_report EXIT

# Last, so that CI builds the peers (the largest build) while the real node's tests run.
# Beside the peers: the real HPA controller reading prometheus-adapter's external metrics, and
# real KEDA (tests/e2e_peers.rs), on a cluster started for them.
HEADROOM_PEERS=1 stage "cluster: up (peers)" bash tests/cluster/up.sh
trap 'bash tests/cluster/down.sh; stages_report' EXIT
HEADROOM_PEERS=1 stage "tests: e2e_peers" cargo test --locked --test e2e_peers -- --test-threads 2
stage "cluster: down" bash tests/cluster/down.sh
trap stages_report EXIT
echo "all checks and tests passed in $(( $(date +%s) - t0 ))s"
