#!/usr/bin/env bash
# The Helm chart (charts/headroom), checked with a real helm built from its module
# (tests/cluster/helm/build.sh): `helm lint --strict`; at its defaults `helm template` renders
# exactly what `kubectl kustomize deploy/` renders (field by field, apart from Helm's own labels
# and the Namespace, which `helm install --create-namespace` makes); with every option on
# (shards, one watched namespace, allowed hosts, PodMonitor, ServiceMonitor and PrometheusRule)
# its output passes `kubectl apply --dry-run=server` against the running cluster with
# prometheus-operator's CRDs; bad values are refused naming the value. Needs a running cluster:
# scripts/test.sh runs it while one is up. tests/install_check.sh runs `helm install` on the
# real node.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster/lib.sh
# shellcheck disable=SC1091
source "$state/env"
fail() { echo "helm_check: FAILED: $*" >&2; exit 1; }
helm="$(bash tests/cluster/helm/build.sh | tail -n 1)/helm"
crds="$(dirname "$helm")/crds"
chart=charts/headroom
out=target/helm-check
rm -rf "$out" && mkdir -p "$out"

"$helm" lint --strict "$chart" >&2 || fail "helm lint"

# --- defaults: the same objects as deploy/ ------------------------------------------------
"$helm" template headroom "$chart" -n headroom-system --include-crds >"$out/defaults.yaml"
kubectl kustomize deploy/ >"$out/deploy.yaml"
python3 - "$out/defaults.yaml" "$out/deploy.yaml" <<'PY' || fail "the chart at its defaults differs from deploy/"
import json, sys, yaml
HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
               "app.kubernetes.io/version"}
def strip(labels):
    return {k: v for k, v in (labels or {}).items() if k not in HELM_LABELS} or None
def normal(o):
    o["metadata"]["labels"] = strip(o["metadata"].get("labels"))
    spec = o.get("spec") or {}
    if "selector" in spec and isinstance(spec["selector"], dict) and "matchLabels" in spec["selector"]:
        spec["selector"]["matchLabels"] = strip(spec["selector"]["matchLabels"])
    t = spec.get("template")
    if isinstance(t, dict) and "metadata" in t:
        t["metadata"]["labels"] = strip(t["metadata"].get("labels"))
    return o
def objects(path, skip=()):
    docs = [d for d in yaml.safe_load_all(open(path)) if d and d["kind"] not in skip]
    return {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): normal(d) for d in docs}
chart, deploy = objects(sys.argv[1]), objects(sys.argv[2], skip=("Namespace",))
if chart.keys() != deploy.keys():
    sys.exit(f"objects differ: only in the chart {sorted(chart.keys() - deploy.keys())}, only in deploy/ {sorted(deploy.keys() - chart.keys())}")
for k in chart:
    if chart[k] != deploy[k]:
        sys.exit(f"{k} differs:\nchart:  {json.dumps(chart[k], sort_keys=True)}\ndeploy: {json.dumps(deploy[k], sort_keys=True)}")
print(f"helm_check: at its defaults the chart renders deploy/'s {len(chart)} objects", file=sys.stderr)
PY

# --- every option on, checked by the API server -----------------------------------------
kubectl apply --server-side -f "$crds" >/dev/null
for ns in headroom-chart team-a; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done
trap 'kubectl delete namespace headroom-chart team-a --wait=false >/dev/null 2>&1 || true' EXIT
"$helm" template hr "$chart" -n headroom-chart --include-crds \
  --set shards=2 --set replicas=1 --set watchNamespace=team-a \
  --set 'prometheus.allowedHosts={prometheus.team-a:9090}' --set prometheus.scrapeInterval=15s \
  --set 'extraArgs={--query-timeout=10s}' --set image.tag=dev --set image.pullPolicy=Never \
  --set podMonitor.enabled=true --set serviceMonitor.enabled=true --set prometheusRule.enabled=true \
  --set prometheusRule.labels.release=kube-prometheus-stack >"$out/options.yaml"
kubectl apply --dry-run=server -f "$out/options.yaml" >"$out/dry-run.txt" ||
  fail "the API server refused the chart with every option on ($out/options.yaml)"
python3 - "$out/options.yaml" <<'PY' || fail "the chart's options do not render as asked"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
assert sorted(deployments) == ["hr-headroom-shard-0", "hr-headroom-shard-1"], sorted(deployments)
for i in (0, 1):
    d = deployments[f"hr-headroom-shard-{i}"]
    c = d["spec"]["template"]["spec"]["containers"][0]
    args = c["args"]
    for want in (f"--shards=2", f"--shard={i}", "--namespace=team-a", "--lease-name=hr-headroom",
                 "--allowed-prometheus-host=prometheus.team-a:9090", "--scrape-interval=15s",
                 "--query-timeout=10s", "--leader-election"):
        assert want in args, (want, args)
    assert d["spec"]["selector"]["matchLabels"]["headroom.dev/shard"] == str(i)
    assert c["image"] == "ghcr.io/headroom-dev/headroom:dev" and c["imagePullPolicy"] == "Never"
    assert d["spec"]["replicas"] == 1
bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding") and d["roleRef"]["kind"] == "ClusterRole"]
assert [(b["kind"], b["metadata"]["namespace"]) for b in bindings] == [("RoleBinding", "team-a")], bindings
for k in ("PodMonitor", "ServiceMonitor", "PrometheusRule", "Service", "CustomResourceDefinition"):
    assert k in kinds, (k, kinds)
rule = next(d for d in docs if d["kind"] == "PrometheusRule")
assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
assert rule["spec"]["groups"] == yaml.safe_load(open("deploy/monitoring/headroom.rules.yaml"))["groups"]
print(f"helm_check: every option renders as asked ({len(docs)} objects) and the API server takes them", file=sys.stderr)
PY

# --- bad values are refused, naming the value --------------------------------------------
refused() { # what the error must name, --set ...
  local want=$1; shift
  if err=$("$helm" template headroom "$chart" "$@" 2>&1 >/dev/null); then
    fail "helm template $* was accepted"
  fi
  grep -q -- "$want" <<<"$err" || fail "helm template $* failed without naming $want: $err"
}
refused shards --set shards=0
refused url --set prometheus.url=prometheus:9090
refused logFormat --set logFormat=yaml
refused replicaCount --set replicaCount=3
refused watchNamespace --set watchNamespace=Team_A
echo "helm_check: bad values are refused, naming the value" >&2

# --- values cannot add fields to the operator's pod ----------------------------------------
# A newline in a value once injected `hostNetwork`, `hostPID` or a `command`: the schema
# refuses each, naming it, and with the schema skipped the templates still render it as one
# quoted string.
inject() { # the value's path, as the schema names it; values YAML
  local file="$out/inject-${1//\//-}"
  printf '%s\n' "$2" >"$file.yaml"
  if err=$("$helm" template headroom "$chart" -f "$file.yaml" 2>&1 >/dev/null); then
    fail "an injection through $1 was accepted"
  fi
  grep -qF -- "/$1'" <<<"$err" || fail "the injection through $1 was refused without naming it: $err"
  "$helm" template headroom "$chart" -f "$file.yaml" --skip-schema-validation \
    >"$out/injected-${1//\//-}.yaml" || fail "helm template --skip-schema-validation with $1"
}
inject priorityClassName 'priorityClassName: "x\n      hostNetwork: true"'
inject image/tag 'image: {repository: ghcr.io/headroom-dev/headroom, tag: "1\n          command: [sh]"}'
inject extraArgs/0 'extraArgs: ["--a\n          command: [sh]"]'
python3 - "$out"/injected-*.yaml <<'PY' || fail "a value added fields to the operator's pod"
import sys, yaml
for path in sys.argv[1:]:
    for d in yaml.safe_load_all(open(path)):
        if not d or d["kind"] != "Deployment":
            continue
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        for bad in ("hostNetwork", "hostPID"):
            assert bad not in pod, (path, bad)
        assert "command" not in c, path
print("helm_check: values render as quoted strings, never as fields", file=sys.stderr)
PY
echo "helm_check: passed" >&2
