#!/usr/bin/env bash
# The real data tier's programs: PostgreSQL 15 (with pg_stat_statements), PgBouncer, Redis 7
# and redis_exporter from Debian's packages (their services are not started on the host);
# postgres_exporter built from its Go module and the PgBouncer exporter (pure Python, run by
# Debian's python3 with Debian's psycopg2 and prometheus_client) from PyPI, both pinned and
# cached outside the repo like the control plane. Prints the cache directory on its last line
# (postgres_exporter, and python/ for the PgBouncer exporter).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
# shellcheck source=../serial.sh
source "$here/serial.sh"
hold_build_lock data-tier
cache_root=${HEADROOM_CACHE:-$HOME/.cache/headroom}
bin="$cache_root/data-postgres-exporter-v$POSTGRES_EXPORTER_VERSION/bin"

need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v pgbouncer >/dev/null || need+=(pgbouncer)
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)
for m in psycopg2:python3-psycopg2 prometheus_client:python3-prometheus-client pythonjsonlogger:python3-pythonjsonlogger yaml:python3-yaml; do
  /usr/bin/python3 -c "import ${m%%:*}" 2>/dev/null || need+=("${m#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  # The packages' own services stay down: the tier runs as pods on the real node.
  mkdir -p /etc/postgresql-common
  [ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  apt_install "${need[@]}"
  [ "$had_policy" = 1 ] || rm -f /usr/sbin/policy-rc.d
fi

python="$bin/python"
if [ ! -f "$python/.v$PGBOUNCER_EXPORTER_VERSION" ]; then
  rm -rf "$python"
  python3 -m pip install --quiet --no-deps --no-compile --target "$python" \
    "prometheus-pgbouncer-exporter==$PGBOUNCER_EXPORTER_VERSION" >&2
  touch "$python/.v$PGBOUNCER_EXPORTER_VERSION"
fi

if [ -x "$bin/postgres_exporter" ]; then
  echo "postgres_exporter cached in $bin" >&2
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "data/build.sh: go toolchain not found" >&2; exit 1; }
# shellcheck source=../gomod.sh
source "$here/gomod.sh"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
module=github.com/prometheus-community/postgres_exporter
go_build_module "$work/pge" "$bin" "$module" "$POSTGRES_EXPORTER_VERSION" 1.24.0 \
  "-s -w -X github.com/prometheus/common/version.Version=$POSTGRES_EXPORTER_VERSION" \
  "postgres_exporter=$module/cmd/postgres_exporter"
echo "postgres_exporter built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
