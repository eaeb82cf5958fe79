#!/usr/bin/env bash
# The peers beside Headroom on the local cluster (HEADROOM_PEERS=1 tests/cluster/up.sh):
# prometheus-adapter and KEDA (operator and metrics adapter), both serving external metrics
# from the test Prometheus to the HPA controller through the aggregation layer, and
# prometheus-adapter the resource metrics API (CPU and memory from cAdvisor, real node only). Called by up.sh
# with BIN (peers), KUBECONFIG, PROMETHEUS_URL. They run on this machine; the APIService
# reaches them through an ExternalName Service pointing at localhost, where route.py sends
# KEDA's metrics to KEDA's adapter and the rest to prometheus-adapter.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
: "${BIN:?}" "${KUBECONFIG:?}" "${PROMETHEUS_URL:?}"
pki="$state/pki"
dir="$state/peers"
mkdir -p "$dir"
(cd "$pki" && sign peers "/CN=headroom-peers" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth")
# KEDA's operator and adapter talk gRPC with mTLS, both from one certificate directory.
keda_certs="$dir/keda-certs"
mkdir -p "$keda_certs"
cp "$pki/ca.crt" "$keda_certs/ca.crt"
cp "$pki/peers.crt" "$keda_certs/tls.crt"
cp "$pki/peers.key" "$keda_certs/tls.key"

# Every gauge with a namespace is an external metric of that name; `<histogram>_p95` is the
# p95 of a latency histogram over 1m, what a user would write to compare with Headroom's
# latency signal.
cat >"$dir/adapter.yaml" <<'YAML'
externalRules:
  - seriesQuery: '{__name__=~"^(rabbitmq_queue_messages_ready|queue_backlog)$",namespace!=""}'
    resources: {overrides: {namespace: {resource: namespace}}}
    metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
  - seriesQuery: '{__name__=~"^http_request_duration_seconds_bucket$",namespace!=""}'
    resources: {overrides: {namespace: {resource: namespace}}}
    name: {matches: "^(.*)_bucket$", as: "${1}_p95"}
    metricsQuery: 'histogram_quantile(0.95, sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (le))'
# The resource metrics API (what `kubectl top` and an HPA on CPU read), from the kubelet's
# cAdvisor as kube-prometheus configures prometheus-adapter; only the real node has them.
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (irate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!="",pod!=""}[120s]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (irate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,id="/"}[120s]))'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,container!="",pod!=""})'
    nodeQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,id="/"})'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  window: 5m
YAML
adapter_port=$(free_port)
start prometheus-adapter "$BIN/prometheus-adapter" \
  --secure-port "$adapter_port" --bind-address 127.0.0.1 \
  --tls-cert-file "$pki/peers.crt" --tls-private-key-file "$pki/peers.key" \
  --lister-kubeconfig "$KUBECONFIG" --authentication-kubeconfig "$KUBECONFIG" \
  --authorization-kubeconfig "$KUBECONFIG" \
  --prometheus-url "$PROMETHEUS_URL" --metrics-relist-interval 5s --config "$dir/adapter.yaml" --v 1

# KEDA as its chart runs it, minus the pods: every namespace watched, certificates given.
kubectl --kubeconfig "$KUBECONFIG" apply --server-side -f "$BIN/keda-crds.yaml" >/dev/null
kubectl --kubeconfig "$KUBECONFIG" create namespace keda --dry-run=client -o yaml | kubectl --kubeconfig "$KUBECONFIG" apply -f - >/dev/null
grpc_port=$(free_port)
keda_port=$(free_port)
export WATCH_NAMESPACE="" POD_NAMESPACE=keda KEDA_CLUSTER_OBJECT_NAMESPACE=keda
KUBECONFIG=$KUBECONFIG start keda-operator "$BIN/keda-operator" \
  --enable-cert-rotation=false --cert-dir "$keda_certs" --ca-dir "$keda_certs" \
  --metrics-bind-address 0 --health-probe-bind-address "127.0.0.1:$(free_port)" \
  --metrics-service-bind-address "127.0.0.1:$grpc_port" --zap-log-level info
KUBECONFIG=$KUBECONFIG start keda-adapter "$BIN/keda-adapter" \
  --secure-port "$keda_port" --bind-address 127.0.0.1 --cert-dir "$keda_certs" \
  --tls-cert-file "$keda_certs/tls.crt" --tls-private-key-file "$keda_certs/tls.key" \
  --authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG" \
  --lister-kubeconfig "$KUBECONFIG" --port "$(free_port)" \
  --metrics-service-address "127.0.0.1:$grpc_port"

port=$(free_port)
start metrics-route python3 "$(dirname "$0")/route.py" "$port" "$pki/peers.crt" "$pki/peers.key" \
  "$pki/front-proxy-client.crt" "$pki/front-proxy-client.key" "$adapter_port" "$keda_port"

# Both metrics APIs are served through the one route.
apiservices() {
  local group
  for group in external.metrics.k8s.io metrics.k8s.io; do
    cat <<YAML
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.$group}
spec:
  group: $group
  version: v1beta1
  service: {name: external-metrics, namespace: headroom-peers, port: $port}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
  done
}

{ cat <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: headroom-peers}
---
apiVersion: v1
kind: Service
metadata: {name: external-metrics, namespace: headroom-peers}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: https, port: $port}]
---
# What the HPA controller needs to read them, were it running under its own ServiceAccount.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: headroom-peers:external-metrics-reader}
rules:
  - apiGroups: [external.metrics.k8s.io, metrics.k8s.io]
    resources: ["*"]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: headroom-peers:hpa-external-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "headroom-peers:external-metrics-reader"}
subjects:
  - {kind: ServiceAccount, name: horizontal-pod-autoscaler, namespace: kube-system}
YAML
  apiservices
} | kubectl --kubeconfig "$KUBECONFIG" apply -f - >/dev/null
for group in external.metrics.k8s.io metrics.k8s.io; do
  wait_for "$group available" 90 prints True --kubeconfig "$KUBECONFIG" get apiservice "v1beta1.$group" -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}'
done
wait_for "KEDA's operator watching ScaledObjects" 90 grep -qi "Starting workers.*scaledobject" "$state/logs/keda-operator.log"
log "peers up: external.metrics.k8s.io on 127.0.0.1:$port routes to prometheus-adapter (:$adapter_port) and KEDA's adapter (:$keda_port)"
