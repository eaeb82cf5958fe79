#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kwok and etcd, and for the
# real node kubelet, kube-proxy and crictl, from Go modules (no prebuilt downloads are possible
# here) and caches them outside the repo, keyed by version.
# Prints the bin directory on stdout's last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=serial.sh
source "$here/serial.sh"
hold_build_lock control-plane
cache_root=${HEADROOM_CACHE:-$HOME/.cache/headroom}
bin="$cache_root/k8s-v$KUBE_VERSION-kwok-v$KWOK_VERSION-etcd-v$ETCD_VERSION/bin"
want=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kwok etcd crictl)

have_all() { for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done; }

# kwok ships its pod/node lifecycle stages as kustomizations in its module; render the ones
# we use (fast nodes with lease heartbeats, "general" pods whose ready delay is set per pod
# by the annotation pod-ready.stage.kwok.x-k8s.io/delay).
stages() {
  [ -s "$bin/kwok-stages.yaml" ] && return 0
  local dir
  dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$dir/kustomize/stage" ] || { echo "build.sh: kwok stages not found in $dir" >&2; return 1; }
  {
    for s in node/fast node/heartbeat-with-lease pod/general; do
      kubectl kustomize "$dir/kustomize/stage/$s"
      echo "---"
    done
  } > "$bin/kwok-stages.yaml.tmp"
  mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
}

if have_all; then
  stages
  echo "control plane v$KUBE_VERSION cached in $bin" >&2
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "build.sh: go toolchain not found" >&2; exit 1; }

start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

# k8s.io/kubernetes requires its staging modules at v0.0.0 through replace directives that
# point into its own tree; a small module maps each one to its published release instead.
build_kube() {
  local staging="0.${KUBE_VERSION#1.}" minor gomod mods ver
  mkdir "$work/kube" && cd "$work/kube"
  gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  mods=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | sort -u)
  [ -n "$mods" ] || { echo "build.sh: no staging modules found in $gomod" >&2; exit 1; }
  {
    printf 'module headroom.dev/controlplane\n\ngo 1.24\n\nrequire k8s.io/kubernetes v%s\n\n' "$KUBE_VERSION"
    for m in $mods; do echo "replace $m => $m v$staging"; done
  } > go.mod
  echo "building kube v$KUBE_VERSION (staging v$staging, $(echo "$mods" | wc -l) modules) ..." >&2
  go get "${kube_components[@]/%/@v$KUBE_VERSION}" >&2
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  ver="-X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION"
  ver="$ver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ver="$ver -X k8s.io/component-base/version.gitTreeState=clean"
  for c in "${kube_components[@]#k8s.io/kubernetes/cmd/}"; do
    [ -x "$bin/$c" ] && continue
    go build -trimpath -ldflags "-s -w $ver" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c" >&2
    mv "$bin/$c.tmp" "$bin/$c"
    echo "  built $c ($(( $(date +%s) - start ))s)" >&2
  done
}

# kwok and etcd are built in modules of their own: their dependency graphs differ.
build_single() { # name, module@version, package
  mkdir "$work/$1" && cd "$work/$1"
  printf 'module headroom.dev/%s\n\ngo 1.24\n' "$1" > go.mod
  go get "$2" >&2
  go build -trimpath -ldflags "-s -w" -o "$bin/$1.tmp" "$3" >&2
  mv "$bin/$1.tmp" "$bin/$1"
  echo "  built $1 ($(( $(date +%s) - start ))s)" >&2
}

kube_components=()
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  kube_components+=("k8s.io/kubernetes/cmd/$c")
done
for c in "${kube_components[@]#k8s.io/kubernetes/cmd/}"; do
  [ -x "$bin/$c" ] || { build_kube; break; }
done
[ -x "$bin/kwok" ] || build_single kwok "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
[ -x "$bin/etcd" ] || build_single etcd "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" go.etcd.io/etcd/server/v3
[ -x "$bin/crictl" ] || build_single crictl "sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
stages
echo "control plane built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
