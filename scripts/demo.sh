#!/usr/bin/env bash
# The demo: a local cluster and Prometheus, Headroom installed from deploy/, and a web app
# whose p95 latency follows a launch-day traffic step (5x) and the replicas that are Ready.
# Watch it with: kubectl get sp -n demo -w   (KUBECONFIG is printed below). Ctrl-C cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DEMO_SECONDS:-240}
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

./target/debug/headroom-test-exporter 127.0.0.1:0 >"$out/exporter.addr" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 40); do [ -s "$out/exporter.addr" ] && break; sleep 0.25; done
exporter=$(cat "$out/exporter.addr")
echo "[{\"targets\": [\"$exporter\"]}]" >"$HEADROOM_PROM_TARGETS/demo.json"
KUBECONFIG="$opkc" ./target/debug/headroom run --prometheus-url "$PROMETHEUS_URL" --listen 127.0.0.1:0 >"$out/operator.log" 2>&1 &
pids+=($!)

echo "== creating the demo app and its ScalingPolicy (namespace demo)"
kubectl create namespace demo >/dev/null
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        pod-create.stage.kwok.x-k8s.io/delay: 0s
        pod-create.stage.kwok.x-k8s.io/jitter-delay: 0s
        pod-ready.stage.kwok.x-k8s.io/delay: 5s
        pod-ready.stage.kwok.x-k8s.io/jitter-delay: 5s
    spec:
      containers: [{name: web, image: registry.example/web:1}]
---
apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: web, namespace: demo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 20
  interval: 5s
  signals:
    - name: p95
      latency:
        metric: http_request_duration_seconds
        selector: {service: web}
        window: 30s
        target: 300ms
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 60
YAML

kubectl rollout status deployment/web -n demo --timeout=120s >/dev/null

echo "== traffic: 100 req/s, then a 5x launch-day step at 30s for 120s (each replica serves ~60 req/s)"
echo "   watch in another shell: KUBECONFIG=$KUBECONFIG kubectl get sp -n demo -w"
csv="$out/timeline.csv"
echo "seconds,requests_per_second,ready_replicas,desired_replicas,p95_seconds" >"$csv"
start=$(date +%s)
while :; do
  t=$(( $(date +%s) - start ))
  [ "$t" -ge "$duration" ] && break
  load=100
  if [ "$t" -ge 30 ] && [ "$t" -lt 150 ]; then load=500; fi
  ready=$(kubectl get deploy web -n demo -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)
  desired=$(kubectl get deploy web -n demo -o jsonpath='{.spec.replicas}' 2>/dev/null || true)
  # p95 of a web tier at utilization u: 100ms service time, growing as u/(1-u) near saturation.
  p95=$(awk -v l="$load" -v r="${ready:-0}" 'BEGIN { c = (r > 0 ? r : 0.5) * 60; u = l / c;
    if (u >= 0.97) p = 3; else { p = 0.1 + 0.1 * u / (1 - u); if (p > 3) p = 3 }; printf "%.3f", p }')
  curl -sf -XPOST -H 'content-type: application/json' "http://$exporter/latency" \
    -d "{\"name\":\"http_request_duration_seconds\",\"labels\":{\"namespace\":\"demo\",\"service\":\"web\"},\"seconds\":$p95,\"perSecond\":$load}" >/dev/null
  echo "$t,$load,${ready:-0},${desired:-0},$p95" >>"$csv"
  if [ $(( t % 10 )) -eq 0 ]; then
    printf 't=%3ss load=%3s req/s ready=%2s p95=%5ss | %s\n' "$t" "$load" "${ready:-0}" "$p95" \
      "$(kubectl get sp web -n demo --no-headers 2>/dev/null | awk '{print "current=" $6 " desired=" $7 " limited=" $8}')"
  fi
  sleep 1
done

echo "== summary"
awk -F, 'NR > 1 { if ($5 > 0.3) slow++; if ($2 == 500 && first == "" && $4 > 2) first = $1; if ($4 > peak) peak = $4 }
  END { printf "peak replicas: %d\nfirst scale-up at: %ss (spike began at 30s)\nseconds with p95 over 300ms: %d\n", peak, first, slow }' "$csv"
kubectl get events.events.k8s.io -n demo --field-selector reason=Scaled -o custom-columns=NOTE:.note --no-headers | head -5
echo "timeline: $csv"
