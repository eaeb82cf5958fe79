#!/usr/bin/env bash
# Starts a local Kubernetes control plane and Prometheus on loopback:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (one fake node) and
# Prometheus scraping the file-discovered targets in $state/prometheus/targets.
# With HEADROOM_REAL_NODE=1 it also joins a real node (tests/cluster/node/up.sh) and taints
# the kwok node, so that only pods which tolerate it land there.
# With HEADROOM_PEERS=1 the HPA controller runs and prometheus-adapter serves external
# metrics through the aggregation layer (tests/cluster/peers/up.sh), for side-by-side tests.
# Writes $state/env (KUBECONFIG, PROMETHEUS_URL, ...). Starting twice is safe.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
real_node=${HEADROOM_REAL_NODE:-0}
peers=${HEADROOM_PEERS:-0}

if [ -f "$state/env" ] && grep -qx "export HEADROOM_REAL_NODE=$real_node" "$state/env" && grep -qx "export HEADROOM_PEERS=$peers" "$state/env" && pid_alive "$state/pids/kube-apiserver.pid" && pid_alive "$state/pids/prometheus.pid"; then
  # shellcheck disable=SC1091
  source "$state/env"
  if kubectl --kubeconfig "$KUBECONFIG" get --raw /readyz >/dev/null 2>&1; then
    log "already up ($state/env)"
    exit 0
  fi
fi
"$repo/tests/cluster/down.sh" >/dev/null 2>&1 || true

"$repo/tests/cluster/deps.sh"
t0=$(date +%s)
bin=$("$repo/tests/cluster/build.sh" | tail -n 1)
[ "$peers" = 1 ] && peers_bin=$("$repo/tests/cluster/peers/build.sh" | tail -n 1)
t_build=$(( $(date +%s) - t0 ))
mkdir -p "$state"/{pki,pids,logs,etcd,prometheus/targets,prometheus/data}
pki="$state/pki"
api_host=127.0.0.1
if [ "$real_node" = 1 ]; then
  # Pods reach the API server (through the kubernetes Service) and Prometheus only at an
  # address that is not loopback: one on an empty bridge that exists on this machine only.
  ip link show "$NODE_LINK" >/dev/null 2>&1 || ip link add "$NODE_LINK" type bridge
  addrs=$(ip addr show dev "$NODE_LINK")
  [[ $addrs == *" $NODE_IP/"* ]] || ip addr add "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_LINK" up
  api_host=$NODE_IP
fi

# --- certificates and keys ---------------------------------------------------------
t1=$(date +%s)
(
  cd "$pki"
  openssl genrsa -out ca.key 2048 2>/dev/null
  openssl req -x509 -new -key ca.key -subj "/CN=headroom-test-ca" -days 3650 -out ca.crt 2>/dev/null
  sign apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes.default.svc,IP:10.96.0.1
extendedKeyUsage=serverAuth"
  sign admin "/O=system:masters/CN=headroom-admin" "extendedKeyUsage=clientAuth"
  # The aggregation layer's client certificate, to reach metrics adapters.
  sign front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)

etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
kcm_port=$(free_port); sched_port=$(free_port); prom_port=$(free_port); kwok_port=$(free_port)
server="https://$api_host:$api_port"
kubeconfig="$state/admin.kubeconfig"
kubectl config --kubeconfig "$kubeconfig" set-cluster local --server "$server" --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
kubectl config --kubeconfig "$kubeconfig" set-credentials admin --client-certificate "$pki/admin.crt" --client-key "$pki/admin.key" --embed-certs >/dev/null
kubectl config --kubeconfig "$kubeconfig" set-context local --cluster local --user admin >/dev/null
kubectl config --kubeconfig "$kubeconfig" use-context local >/dev/null

# --- etcd and the API server ---------------------------------------------------------
start etcd "$bin/etcd" --name headroom --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "headroom=http://127.0.0.1:$peer_port" --log-level warn
wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address "$api_host" --advertise-address "$api_host" --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --requestheader-client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --authorization-mode RBAC \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
  --requestheader-allowed-names front-proxy-client --requestheader-username-headers X-Remote-User \
  --requestheader-group-headers X-Remote-Group --requestheader-extra-headers-prefix X-Remote-Extra- \
  --profiling=false --enable-priority-and-fairness=false
wait_for "kube-apiserver /readyz" 90 kubectl --kubeconfig "$kubeconfig" get --raw /readyz

# --- controllers, scheduler, fake nodes ----------------------------------------------
# The HPA controller only runs beside its peers: elsewhere tests create HPAs to check that
# Headroom refuses a target one already scales, and nothing should act on those.
controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume'
[ "$peers" = 1 ] || controllers="$controllers,-horizontalpodautoscaling"
start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$kubeconfig" \
  --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --controllers "$controllers" --horizontal-pod-autoscaler-sync-period 15s
start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$kubeconfig" \
  --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false
cat >"$state/kwok.yaml" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: 8
  nodePlayStageParallelism: 4
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 2
---
YAML
cat "$bin/kwok-stages.yaml" >>"$state/kwok.yaml"
start kwok "$bin/kwok" --kubeconfig "$kubeconfig" --config "$state/kwok.yaml" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr 10.244.0.0/16 --node-ip 10.0.0.1 --node-port "$kwok_port" --server-address "127.0.0.1:$(free_port)"

kubectl --kubeconfig "$kubeconfig" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "256", memory: 1Ti, pods: "1000"}
  capacity: {cpu: "256", memory: 1Ti, pods: "1000"}
YAML
wait_for "kwok node Ready" 60 prints True --kubeconfig "$kubeconfig" get node kwok-node-0 -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
wait_for "default service account" 60 kubectl --kubeconfig "$kubeconfig" get serviceaccount default -n default
[ "$real_node" = 1 ] && kubectl --kubeconfig "$kubeconfig" taint node kwok-node-0 kwok.x-k8s.io/node=fake:NoSchedule >/dev/null

# --- Prometheus ------------------------------------------------------------------------
cat >"$state/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: headroom-test
    file_sd_configs:
      - files: ['$state/prometheus/targets/*.json']
        refresh_interval: 1s
YAML
start prometheus prometheus --config.file "$state/prometheus/prometheus.yml" \
  --storage.tsdb.path "$state/prometheus/data" --web.listen-address "$api_host:$prom_port" \
  --storage.tsdb.retention.time 2h --log.level warn
wait_for "Prometheus ready" 60 curl -sf "http://$api_host:$prom_port/-/ready"
if [ "$real_node" = 1 ]; then
  mkdir -p "$state/node" && echo "$bin" >"$state/node/bin"
  BIN=$bin KUBE_SERVER=$server KUBECONFIG=$kubeconfig "$repo/tests/cluster/node/up.sh"
fi

if [ "$peers" = 1 ]; then
  BIN=$peers_bin KUBECONFIG=$kubeconfig PROMETHEUS_URL="http://$api_host:$prom_port" "$repo/tests/cluster/peers/up.sh"
fi

cat >"$state/env" <<ENV
export KUBECONFIG=$kubeconfig
export HEADROOM_CLUSTER_DIR=$state
export HEADROOM_KUBE_SERVER=$server
export HEADROOM_KUBE_CA=$pki/ca.crt
export PROMETHEUS_URL=http://$api_host:$prom_port
export HEADROOM_PROM_TARGETS=$state/prometheus/targets
export HEADROOM_PROM_PID=$(cat "$state/pids/prometheus.pid")
export HEADROOM_REAL_NODE=$real_node
export HEADROOM_PEERS=$peers
ENV
log "up in $(( $(date +%s) - t1 ))s (control plane build/cache check ${t_build}s); source $state/env"
