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
ctr images import --all-platforms "$archive" >&2
ctr images ls -q | grep -qx "$name" || die "$archive holds no image named $name"
