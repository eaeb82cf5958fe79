#!/usr/bin/env bash
# Builds the real app's image (headroom-real-app: real CPU work per request, a real latency
# histogram) like the operator's: a static musl release binary on an empty base, no registry.
#   tests/cluster/real/app-image.sh [NAME:TAG]   default localhost/headroom-real-app:check
# Writes target/image/real-app.oci.tar and prints its path on the last line.
set -euo pipefail
cd "$(dirname "$0")/../../.."
name=${1:-localhost/headroom-real-app:check}
target=x86_64-unknown-linux-musl
out=target/image
t0=$(date +%s)
# shellcheck source=../serial.sh
source tests/cluster/serial.sh
hold_lock "$out/.real-app-image.lock"
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
apt_install "${missing[@]}"
installed=$(rustup target list --installed)
grep -qxF "$target" <<<"$installed" || rustup target add "$target" >&2
cargo build --release --locked --target "$target" --bin headroom-real-app >&2
mkdir -p "$out/real-app/usr/local/bin"
strip -o "$out/real-app/usr/local/bin/headroom-real-app" "target/$target/release/headroom-real-app"
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$out/real-app" / >/dev/null
buildah config --user 65532:65532 --port 8080 \
  --entrypoint '["/usr/local/bin/headroom-real-app"]' --cmd serve "$ctr"
buildah commit --quiet --timestamp 0 --rm "$ctr" "$name" >/dev/null
trap - EXIT
rm -f "$out/real-app.oci.tar"
buildah push --quiet "$name" "oci-archive:$out/real-app.oci.tar:$name" >/dev/null
echo "image $name built in $(( $(date +%s) - t0 ))s" >&2
echo "$out/real-app.oci.tar"
