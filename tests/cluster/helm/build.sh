#!/usr/bin/env bash
# Builds helm from its Go module at the pinned version and caches it outside the repo, like
# the control plane and the peers; fetches the prometheus-operator CRDs from its module beside
# it. Prints the bin directory (helm, and crds/) on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
# shellcheck source=../serial.sh
source "$here/serial.sh"
hold_build_lock helm
cache_root=${HEADROOM_CACHE:-$HOME/.cache/headroom}
bin="$cache_root/helm-v$HELM_VERSION-prometheus-operator-v$PROMETHEUS_OPERATOR_VERSION/bin"
if [ -x "$bin/helm" ] && [ -f "$bin/crds/monitoring.coreos.com_prometheusrules.yaml" ]; then
  echo "helm cached in $bin" >&2
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "helm/build.sh: go toolchain not found" >&2; exit 1; }
# shellcheck source=../gomod.sh
source "$here/gomod.sh"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go_build_module "$work/helm" "$bin" helm.sh/helm/v4 "$HELM_VERSION" 1.25.0 \
  "-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION" \
  helm=helm.sh/helm/v4/cmd/helm
po=$(go_module_dir "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION")
mkdir -p "$bin/crds"
for kind in podmonitors servicemonitors prometheusrules; do
  cp "$po/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$bin/crds/"
done
echo "helm built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
