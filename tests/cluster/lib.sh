# Shared helpers of the local cluster scripts.
# shellcheck shell=bash
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=${HEADROOM_CLUSTER_DIR:-$repo/target/cluster}

log() { echo "[cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Prints the last lines of every component log, for failing tests and scripts.
tail_logs() {
  for f in "$state"/logs/*.log; do
    [ -f "$f" ] || continue
    echo "----- $(basename "$f") (last 30 lines) -----" >&2
    tail -n 30 "$f" >&2
  done
}
