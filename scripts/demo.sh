#!/usr/bin/env bash
# The demo: a local cluster and Prometheus, Headroom installed from deploy/, and a simulated
# app (headroom-demo-app) whose metrics come from Headroom's app model, fed the launch-day
# scenario (5x traffic, 4 hours played in 4 minutes) and the Deployments' real ready replicas.
# Watch it with: kubectl get sp -n demo -w   (KUBECONFIG is printed below). Ctrl-C cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
speed=${DEMO_SPEED:-60}
out=target/demo
mkdir -p "$out"

cargo build --quiet --bins
bash tests/cluster/up.sh
# shellcheck disable=SC1091
source target/cluster/env
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash tests/cluster/down.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== installing Headroom from deploy/"
kubectl apply -k deploy/ >/dev/null
kubectl wait --for=condition=Established crd/scalingpolicies.headroom.dev --timeout=60s >/dev/null
# kwok's nodes are fake and cannot run the image: the operator runs here as a local process,
# with the ServiceAccount and RBAC that deploy/ installed.
kubectl -n headroom-system scale deployment/headroom --replicas=0 >/dev/null
token=$(kubectl create token headroom -n headroom-system --duration=2h)
opkc="$out/operator.kubeconfig"
kubectl config --kubeconfig "$opkc" set-cluster local --server "$HEADROOM_KUBE_SERVER" --certificate-authority "$HEADROOM_KUBE_CA" --embed-certs >/dev/null
kubectl config --kubeconfig "$opkc" set-credentials headroom --token "$token" >/dev/null
kubectl config --kubeconfig "$opkc" set-context local --cluster local --user headroom >/dev/null
kubectl config --kubeconfig "$opkc" use-context local >/dev/null

# The local Prometheus scrapes every second.
KUBECONFIG="$opkc" ./target/debug/headroom run --prometheus-url "$PROMETHEUS_URL" --scrape-interval 1s --listen 127.0.0.1:0 >"$out/operator.log" 2>&1 &
pids+=($!)

echo "== creating the demo app (web and worker Deployments) and their ScalingPolicies (namespace demo)"
kubectl create namespace demo >/dev/null
for name in web worker; do
  kubectl apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: $name}}
  template:
    metadata:
      labels: {app: $name}
      annotations:
        pod-create.stage.kwok.x-k8s.io/delay: 0s
        pod-create.stage.kwok.x-k8s.io/jitter-delay: 0s
        pod-ready.stage.kwok.x-k8s.io/delay: 5s
        pod-ready.stage.kwok.x-k8s.io/jitter-delay: 5s
    spec:
      containers: [{name: $name, image: registry.example/$name:1}]
YAML
done
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: web, namespace: demo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 20
  interval: 5s
  signals:
    # Sizing: each replica serves about 56 req/s (70% of its capacity).
    - name: requests
      custom:
        query: sum(rate(http_requests_total{namespace="demo",service="web"}[20s]))
        target: 56
        targetType: AverageValue
    # Leading indicator: pushes up when p95 passes 300ms.
    - name: p95
      latency:
        metric: http_request_duration_seconds
        selector: {service: web}
        window: 20s
        target: 300ms
  indicators:
    databaseCpu: {query: 'max(pg_cpu_utilization_ratio{namespace="demo"})', regularlyWindow: 2m}
  guardrails:
    panic: {stableWindow: 60s}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 30}
---
apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: worker, namespace: demo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
  minReplicas: 1
  maxReplicas: 20
  interval: 5s
  signals:
    - name: backlog
      queue: {query: 'sum(rabbitmq_queue_messages_ready{namespace="demo",queue="jobs"})', targetPerReplica: 50}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 60}
YAML
kubectl rollout status deployment/web -n demo --timeout=120s >/dev/null
kubectl rollout status deployment/worker -n demo --timeout=120s >/dev/null

echo "== launch day: 40 req/s, then 5x for two hours, played at ${speed}x (each line is 10 real seconds)"
echo "   watch in another shell: KUBECONFIG=$KUBECONFIG kubectl get sp -n demo -w"
./target/debug/headroom-demo-app --namespace demo --scenario launch --speed "$speed" --out "$out" >"$out/app.out" 2>"$out/app.err" &
app=$!
pids+=($app)
for _ in $(seq 1 40); do [ -s "$out/app.out" ] && break; sleep 0.25; done
addr=$(head -n 1 "$out/app.out")
echo "[{\"targets\": [\"$addr\"]}]" >"$HEADROOM_PROM_TARGETS/demo.json"
tail -n +2 -f "$out/app.out" --pid "$app" | while IFS= read -r line; do
  case "$line" in
    t=*) printf '%s | %s\n' "$line" "$(kubectl get sp web -n demo --no-headers 2>/dev/null | awk '{print "LIMITED=" $8 " VERDICT=" $9 " P95=" $10}')";;
  esac
done &
printer=$!
pids+=($printer)
# The printer runs in the background because bash holds its traps until a foreground
# pipeline ends; `wait` lets Ctrl-C and SIGTERM clean up at once.
status=0
wait "$app" || status=$?
wait "$printer" || true
[ "$status" -eq 0 ] || { cat "$out/app.err" >&2; exit 1; }

echo "== summary"
grep -E '^(summary|timeline|plot):' "$out/app.out"
kubectl get sp -n demo
scaled=$(kubectl get events.events.k8s.io -n demo --field-selector reason=Scaled -o custom-columns=NOTE:.note --no-headers)
sed -n 1,8p <<<"$scaled"
