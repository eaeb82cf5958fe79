#!/usr/bin/env bash
# The peers beside Headroom on the local cluster (HEADROOM_PEERS=1 tests/cluster/up.sh):
# prometheus-adapter serving external metrics from the test Prometheus to the HPA controller,
# through the aggregation layer. Called by up.sh with BIN (peers), KUBECONFIG, PROMETHEUS_URL.
# The adapter runs on this machine; its APIService reaches it through an ExternalName Service
# pointing at localhost.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
: "${BIN:?}" "${KUBECONFIG:?}" "${PROMETHEUS_URL:?}"
pki="$state/pki"
dir="$state/peers"
mkdir -p "$dir"
(cd "$pki" && sign peers "/CN=headroom-peers" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth")

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
YAML
port=$(free_port)
start prometheus-adapter "$BIN/prometheus-adapter" \
  --secure-port "$port" --bind-address 127.0.0.1 \
  --tls-cert-file "$pki/peers.crt" --tls-private-key-file "$pki/peers.key" \
  --lister-kubeconfig "$KUBECONFIG" --authentication-kubeconfig "$KUBECONFIG" \
  --authorization-kubeconfig "$KUBECONFIG" \
  --prometheus-url "$PROMETHEUS_URL" --metrics-relist-interval 5s --config "$dir/adapter.yaml" --v 1

kubectl --kubeconfig "$KUBECONFIG" apply -f - >/dev/null <<YAML
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
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  service: {name: external-metrics, namespace: headroom-peers, port: $port}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
---
# What the HPA controller needs to read them, were it running under its own ServiceAccount.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: headroom-peers:external-metrics-reader}
rules:
  - apiGroups: [external.metrics.k8s.io]
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
wait_for "external metrics API available" 90 bash -c "kubectl --kubeconfig '$KUBECONFIG' get apiservice v1beta1.external.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type==\"Available\")].status}' | grep -q True"
log "peers up: prometheus-adapter on 127.0.0.1:$port serving external.metrics.k8s.io"
