#!/usr/bin/env bash
# The install path as users take it: `kubectl apply -k` of an overlay of deploy/ that changes
# only the image and the Prometheus address runs the operator image as two real pods on a
# real node (tests/cluster/node/), under the restricted Pod Security level. Checks that both
# replicas are Ready with a read-only root filesystem, one leads by Lease, the leader scales
# a workload from a policy, Prometheus scrapes /metrics through the pods' annotations, and
# when the leader pod is deleted the other replica leads and scales within the lease
# duration. Run by scripts/test.sh after tests/image_check.sh, which builds the image.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source tests/cluster/lib.sh
image=localhost/headroom:check
archive=target/image/headroom.oci.tar
ns=install-e2e
lease_seconds=15 # the operator's default --lease-duration
t0=$(date +%s)

fail() { echo "install_check: FAILED: $*" >&2; kubectl get pods -A -o wide >&2 || true; tail_logs; exit 1; }

ref=$(tar -xOf "$archive" index.json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' 2>/dev/null || true)
if [ "$ref" != "$image" ]; then
  bash scripts/image.sh "$image" >/dev/null
fi

# A real-node cluster already up is used as it is (scripts/test.sh starts one for this check and
# e2e_real); with HEADROOM_KEEP_CLUSTER=1 it is left running after, else stopped.
# Set before the start: a start that fails half-way leaves processes to stop too.
[ "${HEADROOM_KEEP_CLUSTER:-0}" = 1 ] || trap 'bash tests/cluster/down.sh' EXIT
HEADROOM_REAL_NODE=1 bash tests/cluster/up.sh
# shellcheck disable=SC1091
source "$state/env"
[ "$HEADROOM_REAL_NODE" = 1 ] || fail "the cluster has no real node"
bash tests/cluster/node/load-image.sh "$archive" "$image"

# --- the overlay: only the image and the Prometheus address differ ----------------------
overlay=target/install-overlay
rm -rf "$overlay" && mkdir -p "$overlay"
cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../deploy
images:
  - name: ghcr.io/headroom-dev/headroom
    newName: ${image%:*}
    newTag: ${image##*:}
patches:
  - target: {kind: Deployment, name: headroom}
    patch: |
      - {op: test, path: /spec/template/spec/containers/0/args/1, value: "--prometheus-url=http://prometheus-server.monitoring:9090"}
      - {op: replace, path: /spec/template/spec/containers/0/args/1, value: "--prometheus-url=$PROMETHEUS_URL"}
YAML
kubectl apply -k "$overlay" >/dev/null
kubectl rollout status deployment/headroom -n headroom-system --timeout 180s >&2 ||
  fail "the operator's Deployment did not become available"

ready_pods() {
  kubectl get pods -n headroom-system -l app.kubernetes.io/name=headroom -o json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])):
        print(p["metadata"]["name"], end=" ")'
}
read -r -a names <<<"$(ready_pods)"
[ "${#names[@]}" = 2 ] || fail "expected 2 Ready operator pods, got: ${names[*]:-none}"
for p in "${names[@]}"; do
  node_of=$(kubectl get pod "$p" -n headroom-system -o jsonpath='{.spec.nodeName}')
  [ "$node_of" = "$NODE_NAME" ] || fail "$p runs on $node_of, not on the real node"
done
[ "$(kubectl get ns headroom-system -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')" = restricted ] ||
  fail "headroom-system does not enforce the restricted Pod Security level"
# What the runtime really did, not what the manifest asked for.
crictl() { "$(cat "$state/node/bin")/crictl" --runtime-endpoint "unix://$state/node/containerd.sock" "$@"; }
for id in $(crictl ps -q --label io.kubernetes.container.name=headroom); do
  crictl inspect "$id" | python3 -c '
import json, sys
spec = json.load(sys.stdin)["info"]["runtimeSpec"]
assert spec["root"].get("readonly") is True, "root filesystem is writable"
assert spec["process"]["user"]["uid"] == 65532, spec["process"]["user"]
caps = spec["process"].get("capabilities", {})
assert not any(caps.get(k) for k in ("bounding", "effective", "permitted")), caps
assert spec["process"].get("noNewPrivileges") is True, "privilege escalation allowed"
' || fail "container $id does not run as deploy/ asks (read-only root, user 65532, no capabilities)"
done
echo "install_check: 2 operator pods Ready on $NODE_NAME ($(( $(date +%s) - t0 ))s)" >&2

holder() { kubectl get lease headroom -n headroom-system -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
wait_for "a leader" 60 bash -c "[ -n \"\$(kubectl get lease headroom -n headroom-system -o jsonpath='{.spec.holderIdentity}')\" ]"
leader=$(holder)
[[ " ${names[*]} " == *" $leader "* ]] || fail "the Lease is held by '$leader', not by an operator pod"

# --- /metrics, scraped through the pods' annotations -------------------------------------
# Debian's Prometheus is built without Kubernetes discovery, so this does its part: read the
# annotations each pod carries and write the targets they name.
python3 - "$HEADROOM_PROM_TARGETS/operator-pods.json" <<'PY'
import json, subprocess, sys
pods = json.loads(subprocess.check_output(
    ["kubectl", "get", "pods", "-n", "headroom-system", "-o", "json"]))["items"]
targets = []
for p in pods:
    a = p["metadata"].get("annotations", {})
    if a.get("prometheus.io/scrape") != "true" or not p["status"].get("podIP"):
        continue
    targets.append({"targets": [f'{p["status"]["podIP"]}:{a["prometheus.io/port"]}'],
                    "labels": {"job": "headroom-operator", "pod": p["metadata"]["name"],
                               "__metrics_path__": a.get("prometheus.io/path", "/metrics")}})
assert len(targets) == 2, targets
json.dump(targets, open(sys.argv[1] + ".tmp", "w"))
PY
mv "$HEADROOM_PROM_TARGETS/operator-pods.json.tmp" "$HEADROOM_PROM_TARGETS/operator-pods.json"
scraped() {
  curl -sf "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=count(up{job="headroom-operator"} == 1)' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r and r[0]["value"][1] == "2" else 1)'
}
wait_for "Prometheus to scrape both operator pods" 60 scraped
curl -sf "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=count({job="headroom-operator",__name__=~"headroom_.*"})' |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r and int(r[0]["value"][1]) > 0 else 1)' ||
  fail "the operator pods' /metrics carry no headroom_ series"
echo "install_check: Prometheus scrapes both pods' /metrics through their annotations" >&2

# --- the leader scales a workload (its pods are kwok's) ----------------------------------
cargo build --quiet --locked --bin headroom-test-exporter
exporter_log="$state/logs/install-exporter.log"
target/debug/headroom-test-exporter 127.0.0.1:0 >"$exporter_log" 2>&1 &
echo $! >"$state/pids/install-exporter.pid"
wait_for "the test exporter" 30 grep -q . "$exporter_log"
first=$(head -n 1 "$exporter_log")
[[ $first =~ ([0-9.]+:[0-9]+) ]] || fail "the test exporter printed no address: $first"
exporter=${BASH_REMATCH[1]}
printf '[{"targets": ["%s"], "labels": {"job": "install-e2e"}}]\n' "$exporter" >"$HEADROOM_PROM_TARGETS/install.json"
backlog() { # value
  curl -sf "http://$exporter/gauge" -H 'content-type: application/json' \
    -d "{\"name\": \"rabbitmq_queue_messages_ready\", \"labels\": {\"queue\": \"jobs\", \"namespace\": \"$ns\"}, \"value\": $1}" >/dev/null
}
backlog 30
# A kwok worker and its queue policy, in a new namespace $1.
worker_with_policy() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: $1}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata:
      labels: {app: worker}
      annotations: {pod-ready.stage.kwok.x-k8s.io/delay: 1s}
    spec:
      nodeSelector: {type: kwok}
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers: [{name: worker, image: worker:not-pulled}]
---
apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: worker, namespace: $1}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
  minReplicas: 1
  maxReplicas: 20
  interval: 5s
  signals:
    - name: backlog
      queue:
        query: sum(rabbitmq_queue_messages_ready{queue="jobs"})
        targetPerReplica: 10
YAML
}
worker_with_policy "$ns"
replicas() { kubectl get deployment worker -n "$ns" -o jsonpath='{.spec.replicas}'; }
wait_for "the leader to scale the worker to 3" 90 bash -c "[ \"\$(kubectl get deployment worker -n $ns -o jsonpath='{.spec.replicas}')\" = 3 ]"
reporter=$(kubectl get events.events.k8s.io -n "$ns" -o json |
  python3 -c 'import json,sys; print(" ".join(sorted({e.get("reportingInstance","") for e in json.load(sys.stdin)["items"] if e.get("reason") == "Scaled"})))')
[ "$reporter" = "$leader" ] || fail "the Scaled event came from '$reporter', not from the leader $leader"
echo "install_check: leader $leader scaled the worker 1 -> 3 ($(( $(date +%s) - t0 ))s)" >&2

# --- failover: delete the leader pod -----------------------------------------------------
backlog 60
kubectl delete pod "$leader" -n headroom-system --wait=false >/dev/null
deleted=$(date +%s.%N)
wait_for "a new leader" 60 bash -c "h=\$(kubectl get lease headroom -n headroom-system -o jsonpath='{.spec.holderIdentity}'); [ -n \"\$h\" ] && [ \"\$h\" != '$leader' ]"
new_leader=$(holder)
led=$(date +%s.%N)
wait_for "the new leader to scale the worker to 6" 60 bash -c "[ \"\$(kubectl get deployment worker -n $ns -o jsonpath='{.spec.replicas}')\" = 6 ]"
scaled=$(date +%s.%N)
[[ " ${names[*]} " == *" $new_leader "* ]] || fail "the Lease went to '$new_leader', not to the other replica"
lead_s=$(python3 -c "print(round($led - $deleted, 1))")
scale_s=$(python3 -c "print(round($scaled - $deleted, 1))")
python3 -c "import sys; sys.exit(0 if $scaled - $deleted <= $lease_seconds else 1)" ||
  fail "the other replica scaled ${scale_s}s after the leader was deleted (lease ${lease_seconds}s)"
echo "install_check: leader pod deleted; $new_leader led after ${lead_s}s and scaled 3 -> 6 after ${scale_s}s (lease ${lease_seconds}s)" >&2
kubectl get pods -n headroom-system >&2
kubectl get sp -A >&2

# Uninstall as a user would, so the node's pods are torn down through the kubelet.
kubectl delete namespace "$ns" --wait=false >/dev/null
kubectl delete -k "$overlay" --wait=true --timeout 120s >/dev/null

# --- the same, installed with Helm ---------------------------------------------------------
# charts/headroom renders deploy/ at its defaults (tests/helm_check.sh); here `helm install`
# runs it on the real node, and its leader scales a workload.
helm="$(bash tests/cluster/helm/build.sh | tail -n 1)/helm"
ns=install-helm
"$helm" install headroom charts/headroom -n headroom-system --create-namespace \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
  --set prometheus.url="$PROMETHEUS_URL" --wait --timeout 180s >&2 ||
  fail "helm install did not make the operator available"
read -r -a names <<<"$(ready_pods)"
[ "${#names[@]}" = 2 ] || fail "helm install: expected 2 Ready operator pods, got: ${names[*]:-none}"
wait_for "a leader (helm)" 60 bash -c "[ -n \"\$(kubectl get lease headroom -n headroom-system -o jsonpath='{.spec.holderIdentity}')\" ]"
leader=$(holder)
[[ " ${names[*]} " == *" $leader "* ]] || fail "helm install: the Lease is held by '$leader', not by an operator pod"
backlog 40
worker_with_policy "$ns"
wait_for "the Helm-installed leader to scale the worker to 4" 90 bash -c "[ \"\$(kubectl get deployment worker -n $ns -o jsonpath='{.spec.replicas}')\" = 4 ]"
echo "install_check: helm install: 2 pods Ready, $leader leads and scaled the worker 1 -> 4 ($(( $(date +%s) - t0 ))s)" >&2
kubectl delete namespace "$ns" --wait=false >/dev/null
"$helm" uninstall headroom -n headroom-system --wait --timeout 120s >/dev/null || fail "helm uninstall"
# Helm never deletes what a chart's crds/ installed.
kubectl delete -f charts/headroom/crds/scalingpolicy.yaml --wait=true --timeout 60s >/dev/null
echo "install_check: passed in $(( $(date +%s) - t0 ))s" >&2
