#!/usr/bin/env bash
# Builds kube-state-metrics from its Go module at the pinned version and caches it outside
# the repo, like the control plane and the peers. Prints the bin directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
cache_root=${HEADROOM_CACHE:-$HOME/.cache/headroom}
bin="$cache_root/kube-state-metrics-v$KUBE_STATE_METRICS_VERSION/bin"
if [ -x "$bin/kube-state-metrics" ]; then
  echo "kube-state-metrics cached in $bin" >&2
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "real/build.sh: go toolchain not found" >&2; exit 1; }
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
module=k8s.io/kube-state-metrics/v2
cd "$work"
printf 'module headroom.dev/real/ksm\n\ngo 1.24.5\n\nrequire %s v%s\n' "$module" "$KUBE_STATE_METRICS_VERSION" > go.mod
# A module's own replace lines do not apply when it is a dependency: copy them.
gomod=$(go mod download -json "$module@v$KUBE_STATE_METRICS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
awk '/^(replace|exclude) \(/{block=1} block{print} block&&/^\)/{block=0; next} /^(replace|exclude) [^(]/{print}' "$gomod" >> go.mod
go get "$module@v$KUBE_STATE_METRICS_VERSION" >&2
go build -trimpath -ldflags '-s -w' -o "$bin/kube-state-metrics" "$module" >&2
echo "kube-state-metrics built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
