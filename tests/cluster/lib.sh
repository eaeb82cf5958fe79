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

# Starts a component in the background, its output in $state/logs/NAME.log, its PID in
# $state/pids/NAME.pid (down.sh stops exactly these).
start() { # name, command...
  local name=$1; shift
  "$@" >"$state/logs/$name.log" 2>&1 &
  echo $! >"$state/pids/$name.pid"
}

# True when `kubectl ARGS` prints exactly WANT. The output is read whole: a quiet grep reading
# the pipe could close it early and fail the pipeline under pipefail.
prints() { # want, kubectl args...
  local want=$1; shift
  [ "$(kubectl "$@" 2>/dev/null)" = "$want" ]
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  tail_logs
  die "timed out after ${secs}s waiting for $what"
}

# Signs a key pair with the test CA, in the current directory (the cluster's pki/).
sign() { # name, subject, extensions
  openssl genrsa -out "$1.key" 2048 2>/dev/null
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

# Prints the last lines of every component log, for failing tests and scripts.
tail_logs() {
  for f in "$state"/logs/*.log; do
    [ -f "$f" ] || continue
    echo "----- $(basename "$f") (last 30 lines) -----" >&2
    tail -n 30 "$f" >&2
  done
}

# The real node (HEADROOM_REAL_NODE=1): the API server and Prometheus then listen on NODE_IP,
# an address on a bridge with no ports, on this machine only, so that pods reach them.
NODE_IP=${HEADROOM_NODE_IP:-10.86.0.1}
NODE_LINK=hr-api0
NODE_NAME=headroom-node-0
NODE_BRIDGE=hr-cni0
POD_CIDR=10.85.0.0/24
PAUSE_IMAGE=localhost/headroom-pause:test
