#!/usr/bin/env bash
# Checks the operator image (scripts/image.sh): it builds from exactly what the Dockerfile
# copies, is an OCI archive, runs as 65532 with no capabilities under runc, and carries the
# binary built from this tree (its CRD is the one in crds/).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "image check failed: $*" >&2; exit 1; }
# shellcheck source=cluster/serial.sh
source tests/cluster/serial.sh
command -v runc >/dev/null || apt_install runc
archive=$(bash scripts/image.sh localhost/headroom:check | tail -n 1)
[ -s "$archive" ] || fail "no archive at $archive"
# Listed whole first: tar piped into a quiet grep fails at random under pipefail (SIGPIPE).
listing=$(tar -tf "$archive")
grep -qx 'index.json' <<<"$listing" || fail "$archive is not an OCI archive"

export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
[ "$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' localhost/headroom:check)" = "65532:65532" ] \
  || fail "the image does not run as 65532:65532"
revision=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}' localhost/headroom:check)
[ "$revision" = "$(git rev-parse HEAD)" ] || fail "revision label $revision is not HEAD"
# Loaded back from the archive, as a node would import it.
buildah rmi localhost/headroom:check >/dev/null
c=$(buildah from --quiet "oci-archive:$archive")
trap 'buildah rm "$c" >/dev/null 2>&1 || true' EXIT
out=$(buildah run --runtime runc --cap-drop ALL "$c" -- /usr/local/bin/headroom crd) \
  || fail "the image's binary did not run"
diff <(echo "$out") crds/scalingpolicy.yaml >/dev/null || fail "the image's CRD differs from crds/"
id=$(buildah run --runtime runc "$c" -- /usr/local/bin/headroom --version)
echo "image check passed: $(du -h "$archive" | cut -f1) archive; $id"
