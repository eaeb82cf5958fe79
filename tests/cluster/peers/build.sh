#!/usr/bin/env bash
# Builds the peers from Go modules at pinned versions and caches them outside the repo, like
# the control plane: prometheus-adapter (the HPA's custom and external metrics from
# Prometheus) and KEDA's operator and metrics adapter.
# Prints the bin directory on stdout's last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
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
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

# A module's own replace and exclude lines do not apply when it is a dependency: copy them.
directives() { # module@version
  local gomod
  gomod=$(go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  awk '/^(replace|exclude) \(/{block=1} block{print} block&&/^\)/{block=0; next} /^(replace|exclude) [^(]/{print}' "$gomod"
}

build() { # dir, module, version, go version, name=package...
  local dir=$1 module=$2 version=$3 gover=$4; shift 4
  mkdir -p "$work/$dir" && cd "$work/$dir"
  {
    printf 'module headroom.dev/peers/%s\n\ngo %s\n\nrequire %s v%s\n\n' "$dir" "$gover" "$module" "$version"
    directives "$module@v$version"
  } > go.mod
  local pkgs=() out=()
  for p in "$@"; do pkgs+=("${p#*=}@v$version"); out+=("${p%%=*}"); done
  go get "${pkgs[@]}" >&2
  for p in "$@"; do
    echo "building ${p%%=*} ..." >&2
    go build -trimpath -ldflags '-s -w' -o "$bin/${p%%=*}" "${p#*=}"
  done
}

build adapter sigs.k8s.io/prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION" 1.24 \
  prometheus-adapter=sigs.k8s.io/prometheus-adapter/cmd/adapter
build keda github.com/kedacore/keda/v2 "$KEDA_VERSION" 1.26.0 \
  keda-operator=github.com/kedacore/keda/v2/cmd/operator \
  keda-adapter=github.com/kedacore/keda/v2/cmd/adapter
# KEDA's CRDs ship in its module.
keda_dir=$(go mod download -json "github.com/kedacore/keda/v2@v$KEDA_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
cat "$keda_dir"/config/crd/bases/*.yaml > "$bin/keda-crds.yaml"
echo "peers built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
