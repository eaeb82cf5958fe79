#!/usr/bin/env bash
# Builds the operator image with no registry and no base image: a static (musl) release
# binary, the CA bundle and a passwd entry for the non-root user 65532, on an empty base.
# Exports it as an OCI archive:
#   scripts/image.sh [NAME:TAG]     default headroom:<version from Cargo.toml>
# writes target/image/headroom.oci.tar and prints the archive's path on its last line.
# Load it with `podman load -i`, `ctr -n k8s.io images import`, or push it with
# `skopeo copy oci-archive:target/image/headroom.oci.tar docker://REGISTRY/headroom:TAG`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
name=${1:-headroom:$version}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
target=x86_64-unknown-linux-musl
out=target/image
# shellcheck source=../tests/cluster/serial.sh
source tests/cluster/serial.sh
# CI builds the image in the background while tests run; the image check waits for it here.
hold_lock "$out/.operator-image.lock"

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
command -v file >/dev/null || missing+=(file)
apt_install "${missing[@]}"
installed=$(rustup target list --installed)
grep -qxF "$target" <<<"$installed" || rustup target add "$target" >&2

t0=$(date +%s)
# The build stage's COPY lines give the build its files: a source the Dockerfile forgets to
# copy fails this build too. Copies keep their times, so cargo rebuilds nothing that has not
# changed since the last build (new times cost a two-minute rebuild of this crate).
ctx="$out/context"
rm -rf "$ctx" && mkdir -p "$ctx"
grep -E '^COPY [^-]' Dockerfile | while read -r -a words; do
  dest=${words[-1]}
  mkdir -p "$ctx/$dest"
  for src in "${words[@]:1:${#words[@]}-2}"; do
    if [ -d "$src" ]; then cp -rp "$src/." "$ctx/$dest/"; else cp -p "$src" "$ctx/$dest/"; fi
  done
done
(cd "$ctx" && CARGO_TARGET_DIR="$repo/target" cargo build --release --locked --target "$target" --no-default-features --bin headroom >&2)
bin="target/$target/release/headroom"
kind=$(file "$bin")
grep -Eq "static-pie linked|statically linked" <<<"$kind" || { echo "image.sh: $bin is not static: $kind" >&2; exit 1; }
mkdir -p "$out/root/usr/local/bin"
strip -o "$out/root/usr/local/bin/headroom" "$bin"

rm -rf "$out/root/etc" && mkdir -p "$out/root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$out/root/etc/ssl/certs/ca-certificates.crt"
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$out/root/etc/passwd"
printf 'nonroot:x:65532:\n' >"$out/root/etc/group"

# vfs needs no kernel overlay support and no user namespaces: it works in CI's VM as root.
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$out/root" / >/dev/null
buildah config \
  --user 65532:65532 --port 8080 \
  --entrypoint '["/usr/local/bin/headroom"]' --cmd run \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --env MIMALLOC_ALLOW_THP=0 \
  --label org.opencontainers.image.title=headroom \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$commit" \
  --label org.opencontainers.image.source=https://github.com/headroom-dev/headroom \
  "$ctr"
# A fixed timestamp: the same binary gives the same layer digest.
buildah commit --quiet --timestamp 0 --rm "$ctr" "$name" >/dev/null
trap - EXIT
rm -f "$out/headroom.oci.tar"
buildah push --quiet "$name" "oci-archive:$out/headroom.oci.tar:$name" >/dev/null
echo "image $name (${commit:0:12}): binary $(du -h "$out/root/usr/local/bin/headroom" | cut -f1), archive $(du -h "$out/headroom.oci.tar" | cut -f1), built in $(( $(date +%s) - t0 ))s" >&2
echo "$out/headroom.oci.tar"
