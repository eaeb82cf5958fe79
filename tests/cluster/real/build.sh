#!/usr/bin/env bash
# Builds kube-state-metrics from its Go module at the pinned version and caches it outside
# the repo, like the control plane and the peers. Prints the bin directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
# shellcheck source=../serial.sh
source "$here/serial.sh"
hold_build_lock kube-state-metrics
cache_root=${HEADROOM_CACHE:-$HOME/.cache/headroom}
bin="$cache_root/kube-state-metrics-v$KUBE_STATE_METRICS_VERSION/bin"
if [ -x "$bin/kube-state-metrics" ]; then
  echo "kube-state-metrics cached in $bin" >&2
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "real/build.sh: go toolchain not found" >&2; exit 1; }
# shellcheck source=../gomod.sh
source "$here/gomod.sh"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
module=k8s.io/kube-state-metrics/v2
go_build_module "$work/ksm" "$bin" "$module" "$KUBE_STATE_METRICS_VERSION" 1.24.5 '-s -w' \
  "kube-state-metrics=$module"
echo "kube-state-metrics built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
