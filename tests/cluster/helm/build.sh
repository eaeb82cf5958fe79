#!/usr/bin/env bash
# Builds helm from its Go module at the pinned version and caches it outside the repo, like
# the control plane and the peers; fetches the prometheus-operator CRDs from its module beside
# it. Prints the bin directory (helm, and crds/) on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
cache_root=${HEADROOM_CACHE:-$HOME/.cache/headroom}
bin="$cache_root/helm-v$HELM_VERSION-prometheus-operator-v$PROMETHEUS_OPERATOR_VERSION/bin"
if [ -x "$bin/helm" ] && [ -f "$bin/crds/monitoring.coreos.com_prometheusrules.yaml" ]; then
  echo "helm cached in $bin" >&2
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "helm/build.sh: go toolchain not found" >&2; exit 1; }
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin/crds"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
module=helm.sh/helm/v4
cd "$work"
printf 'module headroom.dev/helm\n\ngo 1.25.0\n\nrequire %s v%s\n' "$module" "$HELM_VERSION" > go.mod
# A module's own replace lines do not apply when it is a dependency: copy them.
gomod=$(go mod download -json "$module@v$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
awk '/^(replace|exclude) \(/{block=1} block{print} block&&/^\)/{block=0; next} /^(replace|exclude) [^(]/{print}' "$gomod" >> go.mod
go get "$module/cmd/helm@v$HELM_VERSION" >&2
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION" -o "$bin/helm" "$module/cmd/helm" >&2
po=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
for kind in podmonitors servicemonitors prometheusrules; do
  cp "$po/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$bin/crds/"
done
echo "helm built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
