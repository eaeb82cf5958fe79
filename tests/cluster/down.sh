#!/usr/bin/env bash
# Stops exactly the processes up.sh started (by PID) and removes their state. Safe to repeat.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
[ -d "$state/pids" ] || { log "not running"; exit 0; }
"$(dirname "$0")/node/down.sh"
# Test helpers first (exporters, extra Prometheus), then the control plane in reverse order.
others=$(cd "$state/pids" && ls -- *.pid 2>/dev/null | sed 's/\.pid$//' | grep -vxE 'kwok|kube-scheduler|kube-controller-manager|prometheus|kube-apiserver|etcd' || true)
for name in $others kwok kube-scheduler kube-controller-manager prometheus kube-apiserver etcd; do
  f="$state/pids/$name.pid"
  if pid_alive "$f"; then
    kill "$(cat "$f")" 2>/dev/null
    for _ in $(seq 1 40); do pid_alive "$f" || break; sleep 0.25; done
    pid_alive "$f" && kill -9 "$(cat "$f")" 2>/dev/null
  fi
  rm -f "$f"
done
ip link show "$NODE_LINK" >/dev/null 2>&1 && ip link del "$NODE_LINK"
rm -rf "$state"
log "stopped"
