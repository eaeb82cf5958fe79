#!/usr/bin/env bash
# The data tier's image: no image can be pulled here, so the pods run Debian's own programs
# from the host's /usr, mounted read-only (hostPath), on a base that holds only the links a
# merged-/usr system needs, a user for the databases (999), postgres_exporter and the
# PgBouncer exporter.
#   tests/cluster/data/image.sh [NAME:TAG]   default localhost/headroom-data:check
# Writes target/image/data.oci.tar and prints its path on the last line.
set -euo pipefail
cd "$(dirname "$0")/../../.."
name=${1:-localhost/headroom-data:check}
out=target/image
bin=$(bash tests/cluster/data/build.sh | tail -n 1)
root="$out/data-root"
rm -rf "$root" && mkdir -p "$root"/{usr,etc,tmp,data,opt/headroom,var/run/postgresql}
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$root/$l"; done
printf 'root:x:0:0:root:/root:/bin/sh\ndata:x:999:999:data:/data:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ndata:x:999:\n' >"$root/etc/group"
cp "$bin/postgres_exporter" "$root/opt/headroom/"
cp -r "$bin/python" "$root/opt/headroom/python"
chmod 1777 "$root/tmp" "$root/var/run/postgresql"
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config --user 999:999 "$ctr"
buildah commit --quiet --timestamp 0 "$ctr" "$name" >/dev/null
rm -f "$out/data.oci.tar"
buildah push --quiet "$name" "oci-archive:$out/data.oci.tar:$name" >/dev/null
echo "$out/data.oci.tar"
