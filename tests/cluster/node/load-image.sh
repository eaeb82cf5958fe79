#!/usr/bin/env bash
# Loads an OCI archive into the real node's containerd (nothing can be pulled here):
#   tests/cluster/node/load-image.sh ARCHIVE NAME
# NAME must be the archive's own tag (buildah push oci-archive:FILE:NAME), fully qualified
# (localhost/headroom:check): the CRI looks images up by their normalized names.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
archive=$1 name=$2
sock="$state/node/containerd.sock"
[ -S "$sock" ] || die "the real node's containerd is not running ($sock)"
ctr() { command ctr --address "$sock" -n k8s.io "$@"; }
# containerd answers `ctr version` before every plugin an import needs is up: a first import
# right after its start can fail, so it is tried again, and every error is shown.
for attempt in 1 2 3; do
  if ctr images import --all-platforms "$archive" >&2; then break; fi
  [ "$attempt" = 3 ] && die "ctr images import $archive failed 3 times"
  sleep 2
done
images=$(ctr images ls -q)
grep -qxF "$name" <<<"$images" || die "$archive holds no image named $name"
