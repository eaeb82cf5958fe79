# Builds commands of a Go module at a pinned version, as the cluster's build scripts do
# (helm, kube-state-metrics, the peers). Sourced; needs go on PATH.
# shellcheck shell=bash
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

# A module's own replace and exclude lines do not apply when it is a dependency: copy them.
go_directives() { # module@version
  local gomod
  gomod=$(go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  awk '/^(replace|exclude) \(/{block=1} block{print} block&&/^\)/{block=0; next} /^(replace|exclude) [^(]/{print}' "$gomod"
}

# The directory of a module's source in the module cache.
go_module_dir() { # module@version
  go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}

# Builds each name=package of `module` at `version` into bin/name, in a fresh module under
# workdir that requires it (with its directives) at Go `goversion`.
go_build_module() { # workdir, bin, module, version, goversion, ldflags, name=package...
  local dir=$1 bin=$2 module=$3 version=$4 gover=$5 ldflags=$6; shift 6
  mkdir -p "$dir" "$bin"
  (
    cd "$dir"
    {
      printf 'module headroom.dev/build/%s\n\ngo %s\n\nrequire %s v%s\n\n' "$(basename "$dir")" "$gover" "$module" "$version"
      go_directives "$module@v$version"
    } > go.mod
    local pkgs=() p
    for p in "$@"; do pkgs+=("${p#*=}@v$version"); done
    go get "${pkgs[@]}" >&2
    for p in "$@"; do
      echo "building ${p%%=*} ..." >&2
      go build -trimpath -ldflags "$ldflags" -o "$bin/${p%%=*}" "${p#*=}" >&2
    done
  )
}
