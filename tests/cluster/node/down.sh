#!/usr/bin/env bash
# Stops the real node and removes what it made outside $state: its pods (through the CRI, so
# the CNI tears their network namespaces down), kube-proxy's rules, the containerd shims of
# this containerd only, mounts under $state/node, the kubepods cgroups and the bridge.
# Called by tests/cluster/down.sh before the control plane stops. Safe to repeat.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
node="$state/node"
[ -d "$node" ] || exit 0
bin=$(cat "$node/bin" 2>/dev/null || true)
sock="$node/containerd.sock"

stop_pid() { # name
  local f="$state/pids/$1.pid"
  if pid_alive "$f"; then
    kill "$(cat "$f")" 2>/dev/null
    for _ in $(seq 1 40); do pid_alive "$f" || break; sleep 0.25; done
    pid_alive "$f" && kill -9 "$(cat "$f")" 2>/dev/null
  fi
  rm -f "$f"
}

# The kubelet first, or it would start the pods again.
stop_pid kubelet
if [ -S "$sock" ] && [ -x "$bin/crictl" ]; then
  "$bin/crictl" --runtime-endpoint "unix://$sock" --timeout 30s rmp --all --force >/dev/null 2>&1 ||
    log "crictl could not remove every pod sandbox"
fi
stop_pid kube-proxy
[ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1
# The kubelet's own chains (its canary and the localnet firewall), which --cleanup leaves.
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    for hook in INPUT OUTPUT; do
      while "$ipt" -t "$table" -D "$hook" -j KUBE-FIREWALL 2>/dev/null; do :; done
    done
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null && "$ipt" -t "$table" -X "$chain" 2>/dev/null
    done
  done
done
stop_pid containerd
# Shims outlive containerd by design; these are the ones started for this socket.
for pid in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock" || true); do
  kill -9 "$pid" 2>/dev/null
done
findmnt -rn -o TARGET | grep -F "$node/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
for c in /sys/fs/cgroup/*/kubepods; do
  [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done
ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && ip link del "$NODE_BRIDGE"
rm -rf "$node"
exit 0
