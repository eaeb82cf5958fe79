#!/usr/bin/env bash
# Builds the peers from Go modules at pinned versions and caches them outside the repo, like
# the control plane: prometheus-adapter (the HPA's custom and external metrics from
# Prometheus) and KEDA's operator and metrics adapter.
# Prints the bin directory on stdout's last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
# shellcheck source=../serial.sh
source "$here/serial.sh"
hold_build_lock peers
cache_root=${HEADROOM_CACHE:-$HOME/.cache/headroom}
bin="$cache_root/peers-adapter-v$PROMETHEUS_ADAPTER_VERSION-keda-v$KEDA_VERSION/bin"
want=(prometheus-adapter keda-operator keda-adapter)
have_all() { for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done; }
if have_all; then
  echo "peers cached in $bin" >&2
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "peers/build.sh: go toolchain not found" >&2; exit 1; }
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin"
# shellcheck source=../gomod.sh
source "$here/gomod.sh"

go_build_module "$work/adapter" "$bin" sigs.k8s.io/prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION" 1.24 '-s -w' \
  prometheus-adapter=sigs.k8s.io/prometheus-adapter/cmd/adapter
go_build_module "$work/keda" "$bin" github.com/kedacore/keda/v2 "$KEDA_VERSION" 1.26.0 '-s -w' \
  keda-operator=github.com/kedacore/keda/v2/cmd/operator \
  keda-adapter=github.com/kedacore/keda/v2/cmd/adapter
# KEDA's CRDs ship in its module.
keda_dir=$(go_module_dir "github.com/kedacore/keda/v2@v$KEDA_VERSION")
cat "$keda_dir"/config/crd/bases/*.yaml > "$bin/keda-crds.yaml"
echo "peers built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
