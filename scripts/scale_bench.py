"""The fleet-scale benchmark's driver (see scripts/scale-bench.sh, which builds and starts the
cluster first). Standard library only."""

import collections
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

N, SHAPE, SECONDS = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
# Seconds between "every policy has a status" and the measurement.
SETTLE = int(sys.argv[4]) if len(sys.argv) > 4 else 60
KUBECONFIG = os.environ["KUBECONFIG"]
PROM = os.environ["PROMETHEUS_URL"]
TARGETS = os.environ["HEADROOM_PROM_TARGETS"]
NAMESPACES = [f"scale-{i}" for i in range(10)]
SERVICES = 50  # distinct services per namespace: bounded series, whatever N is
INTERVAL = 15
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[scale-bench] {msg}", file=sys.stderr, flush=True)


def kubectl(*args, stdin=None, check=True):
    r = subprocess.run(
        ["kubectl", "--kubeconfig", KUBECONFIG, *args],
        input=stdin, text=True, capture_output=True,
    )
    if check and r.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args[:3])}: {r.stderr.strip()[:500]}")
    return r.stdout


def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


# A fixture kind with a scale subresource: N targets without N pods. Status is part of the
# object (no status subresource), so it is set at creation.
FIXTURE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "workloads.bench.headroom.dev"},
    "spec": {
        "group": "bench.headroom.dev",
        "scope": "Namespaced",
        "names": {"kind": "Workload", "plural": "workloads", "singular": "workload"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            "subresources": {"scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            }},
        }],
    },
}


def policy(i, ns):
    name, service = f"w{i}", f"s{i % SERVICES}"
    if SHAPE == "minimal":
        spec = {
            "minReplicas": 1, "maxReplicas": 20, "interval": f"{INTERVAL}s",
            "signals": [
                {"name": "p95", "latency": {"metric": "http_request_duration_seconds",
                                            "selector": {"service": service}, "window": "1m", "target": "300ms"}},
                {"name": "cpu", "cpu": {"targetUtilization": 70}},
            ],
        }
    else:
        with open(os.path.join(REPO, "deploy/examples/web.yaml")) as f:
            text = f.read()
        # The example as users write it, one service and name per target.
        text = text.replace("service: web", f"service: {service}").replace('service="web"', f'service="{service}"')
        # One database per service: 20 workloads share a connection budget at 10,000 policies,
        # not every workload of a namespace (a budget decision weighs all who share it).
        text = text.replace("database: orders", f"database: db-{service}")
        text = text.replace('datname="orders"', f'datname="db-{service}"')
        text = text.replace('database="orders"', f'database="db-{service}"')
        return text.replace("name: web\nspec:", f"name: {name}\n  namespace: {ns}\nspec:").replace(
            "    apiVersion: apps/v1\n    kind: Deployment\n    name: web",
            f"    apiVersion: bench.headroom.dev/v1\n    kind: Workload\n    name: {name}")
    spec["targetRef"] = {"apiVersion": "bench.headroom.dev/v1", "kind": "Workload", "name": name}
    return json.dumps({"apiVersion": "headroom.dev/v1alpha1", "kind": "ScalingPolicy",
                       "metadata": {"name": name, "namespace": ns}, "spec": spec})


def workload(i, ns):
    return json.dumps({"apiVersion": "bench.headroom.dev/v1", "kind": "Workload",
                       "metadata": {"name": f"w{i}", "namespace": ns},
                       "spec": {"replicas": 2},
                       "status": {"replicas": 2, "readyReplicas": 2, "selector": f"app=w{i}"}})


def apply_all(docs):
    for k in range(0, len(docs), 500):
        kubectl("apply", "--server-side", "-f", "-", stdin="---\n" + "\n---\n".join(docs[k:k + 500]))


def metrics(url):
    """name{labels} -> value, summed over nothing: every sample as exposed."""
    out = {}
    for line in http(url).splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def total(sample, name, **labels):
    s = 0.0
    for k, v in sample.items():
        if not (k == name or k.startswith(name + "{")):
            continue
        if all(f'{lk}="{lv}"' in k for lk, lv in labels.items()):
            s += v
    return s


def api_by_verb_resource(sample):
    out = {}
    for k, v in sample.items():
        if not k.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', k))
        key = f"{labels.get('verb', '?')} {labels.get('resource', '?')}" + (
            f"/{labels['subresource']}" if labels.get("subresource") else "")
        out[key] = out.get(key, 0.0) + v
    return out


def api_sample():
    return api_by_verb_resource(metrics_text_to_dict(kubectl("get", "--raw", "/metrics")))


def metrics_text_to_dict(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m and not line.startswith("#"):
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def histogram_quantile(sample, name, q):
    buckets = []
    for k, v in sample.items():
        m = re.match(name + r'_bucket\{le="([^"]+)"\}', k)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), v))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    rank, prev_le, prev_c = q * buckets[-1][1], 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / max(c - prev_c, 1e-9))
        prev_le, prev_c = le, c
    return prev_le


def diff(after, before):
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}


def unreadable_indicators():
    """Indicator name -> how many policies' status rows say it cannot be read."""
    out = kubectl("get", "sp", "-A", "-o", "json", check=False)
    try:
        items = json.loads(out).get("items", [])
    except ValueError:
        return {"(the list failed)": N}
    return dict(collections.Counter(
        row.get("name", "?")
        for p in items
        for row in (p.get("status") or {}).get("indicators") or []
        if row.get("band") == "Unknown"))


def main():
    started = time.time()
    log(f"{N} {SHAPE} policies in {len(NAMESPACES)} namespaces")
    kubectl("delete", "ns", *NAMESPACES, "--ignore-not-found", "--wait=true", "--timeout=600s", check=False)
    kubectl("apply", "-f", os.path.join(REPO, "crds/scalingpolicy.yaml"))
    kubectl("apply", "-f", "-", stdin=json.dumps(FIXTURE_CRD))
    kubectl("wait", "--for=condition=Established", "crd/workloads.bench.headroom.dev", "--timeout=60s")
    for ns in NAMESPACES:
        kubectl("create", "ns", ns)

    exporter = subprocess.Popen([os.path.join(REPO, "target/release/headroom-test-exporter"),
                                 "127.0.0.1:0", "--exit-with-stdin"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ex = "http://" + exporter.stdout.readline().strip()
    exporter_started = time.time()
    for ns in NAMESPACES:
        for s in range(SERVICES):
            http(ex + "/latency", {"name": "http_request_duration_seconds",
                                   "labels": {"namespace": ns, "service": f"s{s}"},
                                   "seconds": 0.1, "perSecond": 20})
            # The request rate the full shape's creepingLatency, error rate and headroom
            # estimate read.
            http(ex + "/counter", {"name": "http_requests_total",
                                   "labels": {"namespace": ns, "service": f"s{s}", "code": "200"},
                                   "perSecond": 20})
            # The series the real exporters write that the example's indicators read, one
            # database per service (postgres_exporter: pg_stat_statements, pg_stat_database).
            db = {"namespace": ns, "datname": f"db-s{s}"}
            http(ex + "/counter", {"name": "pg_stat_statements_seconds_total",
                                   "labels": {**db, "queryid": "1"}, "perSecond": 0.4})
            http(ex + "/counter", {"name": "pg_stat_statements_calls_total",
                                   "labels": {**db, "queryid": "1"}, "perSecond": 20})
            http(ex + "/gauge", {"name": "pg_stat_database_numbackends", "labels": db, "value": 20})
            # PgBouncer's oldest waiting client (prometheus-pgbouncer-exporter).
            http(ex + "/gauge", {"name": "pgbouncer_pools_client_maxwait_seconds",
                                 "labels": {"namespace": ns, "database": f"db-s{s}", "user": "app"},
                                 "value": 0})
        # PostgreSQL's CPU as the kubelet's cAdvisor and kube-state-metrics write it.
        pod = {"namespace": ns, "pod": "postgres-0", "container": "postgres"}
        http(ex + "/counter", {"name": "container_cpu_usage_seconds_total", "labels": pod, "perSecond": 0.3})
        http(ex + "/gauge", {"name": "kube_pod_container_resource_limits",
                             "labels": {**pod, "resource": "cpu"}, "value": 2})
        http(ex + "/gauge", {"name": "pg_settings_max_connections", "labels": {"namespace": ns}, "value": 100000})
    target_file = os.path.join(TARGETS, "scale-bench.json")
    with open(target_file, "w") as f:
        json.dump([{"targets": [ex[len("http://"):]], "labels": {"job": "scale-bench"}}], f)

    docs = []
    for i in range(N):
        ns = NAMESPACES[i % len(NAMESPACES)]
        docs.append(workload(i, ns))
    apply_all(docs)
    apply_all([policy(i, NAMESPACES[i % len(NAMESPACES)]) for i in range(N)])
    log(f"created {N} targets and policies in {time.time() - started:.0f}s")

    # rate() over a series younger than its window reads low and climbs: wait until the
    # exporter's series are older than the longest window the policies use (1m) before the
    # operator starts, or the climb shows up as status writes.
    time.sleep(max(10.0, 75.0 - (time.time() - exporter_started)))
    api0, t_api0 = api_sample(), time.time()
    time.sleep(20)
    api1, t_api1 = api_sample(), time.time()
    idle_api = {k: v / (t_api1 - t_api0) for k, v in diff(api1, api0).items()}

    port = subprocess.run(["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"],
                          capture_output=True, text=True).stdout.strip()
    op_log = open(os.path.join(REPO, "target/bench/scale-operator.log"), "w")
    env = dict(os.environ, RUST_LOG="warn")
    # SCALE_BENCH_WRAP runs the operator under a profiler (e.g. "heaptrack -o target/bench/heap");
    # its cores and RSS are then the wrapper's process's, not comparable with other rows.
    wrap = os.environ.get("SCALE_BENCH_WRAP", "").split()
    op = subprocess.Popen([*wrap, os.path.join(REPO, "target/release/headroom"), "run",
                           "--prometheus-url", PROM, "--listen", f"127.0.0.1:{port}",
                           "--scrape-interval", "15s"], stdout=op_log, stderr=op_log, env=env)
    op_metrics = f"http://127.0.0.1:{port}/metrics"
    t_start = time.time()
    try:
        until_status = None
        while time.time() - t_start < 1800:
            if op.poll() is not None:
                raise SystemExit("the operator exited; see target/bench/scale-operator.log")
            # An API server under this load may refuse a list for a moment ("Too large resource
            # version" while its watch cache catches up): ask again.
            out = kubectl("get", "sp", "-A", "--no-headers", "-o", "custom-columns=G:.status.observedGeneration", check=False)
            have = sum(1 for line in out.splitlines() if line.strip() not in ("", "<none>"))
            if have >= N:
                until_status = time.time() - t_start
                break
            # Listing every policy is load too: less often for a large fleet.
            time.sleep(max(2, N // 1000))
        log(f"every policy has a status after {until_status:.0f}s" if until_status else "timed out waiting for statuses")
        # The first evaluations of a fleet are not its steady state: each policy's history is
        # still being seeded and its first statuses settle. Measure from four intervals on, or
        # later: first headroom estimates (5 calibrations/s) and the Forecast's first full
        # 5-minute history each write once per policy.
        time.sleep(SETTLE)
        # A steady fleet has its first headroom estimates: until they are all in, each first
        # estimate is a status write of a fleet settling (at 200 policies they took 5 minutes,
        # though calibrations may start at 5/s: a policy asks only when it is evaluated).
        calibrated_by = time.time() + max(600, N)
        while time.time() < calibrated_by:
            out = kubectl("get", "sp", "-A", "--no-headers", "-o", "custom-columns=H:.status.headroom.summary", check=False)
            have = sum(1 for line in out.splitlines() if line.strip() not in ("", "<none>"))
            if have >= N:
                log(f"every policy has a headroom estimate after {time.time() - t_start:.0f}s")
                break
            time.sleep(max(5, N // 1000))
        else:
            log("not every policy has a headroom estimate yet; measuring anyway")
        log("measuring")

        p0, a0, o0 = metrics(PROM + "/metrics"), api_sample(), metrics(op_metrics)
        c0, w0 = proc_cpu_seconds(op.pid), time.time()
        rss = 0.0
        while time.time() - w0 < SECONDS:
            time.sleep(5)
            rss = max(rss, proc_rss_mib(op.pid))
        p1, a1, o1 = metrics(PROM + "/metrics"), api_sample(), metrics(op_metrics)
        c1, w1 = proc_cpu_seconds(op.pid), time.time()
    finally:
        if wrap:
            # The operator is the wrapper's child, killed so that what a heap profiler reports as
            # leaked is what it held at the end; the wrapper writes its profile once it exits.
            subprocess.run(["pkill", "-KILL", "-P", str(op.pid), "-f", "target/release/headroom"], check=False)
            op.wait(timeout=300)
        else:
            op.terminate()
            op.wait(timeout=30)
        os.remove(target_file)
        exporter.stdin.close()

    # Every indicator of the full shape reads a series the bench serves under the real
    # exporters' names: one that cannot be read would measure a fleet of errors.
    unreadable = unreadable_indicators()
    log(f"indicator rows unreadable: {sum(unreadable.values())} ({unreadable or 'none'})")
    wall = w1 - w0
    queries = sum(total(p1, "prometheus_http_requests_total", handler=h) - total(p0, "prometheus_http_requests_total", handler=h)
                  for h in ("/api/v1/query", "/api/v1/query_range"))
    busy = (total(p1, "prometheus_engine_query_duration_seconds_sum", slice="inner_eval")
            - total(p0, "prometheus_engine_query_duration_seconds_sum", slice="inner_eval"))
    api = {k: v / wall - idle_api.get(k, 0.0) for k, v in diff(a1, a0).items()}
    api = {k: round(v, 2) for k, v in sorted(api.items(), key=lambda kv: -kv[1]) if v > 0.05}
    writes = sum(v for k, v in api.items() if k.split()[0] in ("PATCH", "PUT", "POST", "APPLY", "CREATE", "UPDATE", "DELETE"))
    evals = (total(o1, "headroom_reconciliations_total") - total(o0, "headroom_reconciliations_total"))
    lag = diff({k: v for k, v in o1.items() if k.startswith("headroom_evaluation_lag_seconds_bucket")},
               {k: v for k, v in o0.items() if k.startswith("headroom_evaluation_lag_seconds_bucket")})
    by_kind = {kind: round((total(o1, "headroom_prometheus_queries_total", kind=kind)
                            - total(o0, "headroom_prometheus_queries_total", kind=kind)) / wall, 2)
               for kind in ("instant", "range", "grouped")}
    result = {
        "policies": N,
        "shape": SHAPE,
        "measuredSeconds": round(wall),
        "settleSeconds": SETTLE,
        "operatorCores": round((c1 - c0) / wall, 3),
        "operatorRssMiB": round(rss, 1),
        "prometheusQueriesPerSecond": round(queries / wall, 2),
        "prometheusQueriesPerSecondByKind": by_kind,
        "prometheusBusySecondsPerSecond": round(busy / wall, 3),
        "apiRequestsPerSecond": round(sum(api.values()), 2),
        "apiWritesPerSecond": round(writes, 2),
        "apiRequestsPerSecondByVerbAndResource": api,
        "evaluationsPerPolicyPerInterval": round(evals / (N * wall / INTERVAL), 3),
        "evaluationLagP50Seconds": histogram_quantile(lag, "headroom_evaluation_lag_seconds", 0.5),
        "evaluationLagP99Seconds": histogram_quantile(lag, "headroom_evaluation_lag_seconds", 0.99),
        "secondsUntilAllHaveStatus": None if until_status is None else round(until_status, 1),
        "unreadableIndicatorRows": unreadable,
        # Queries a namespace's share refused while measuring (the 10 namespaces using most).
        "namespaceQueryRefusals": total(o1, "headroom_namespace_query_refusals_total")
        - total(o0, "headroom_namespace_query_refusals_total"),
    }
    with open(os.path.join(REPO, "target/bench/scale.json"), "w") as f:
        json.dump(result, f, indent=2)
    md = os.path.join(REPO, "target/bench/scale.md")
    if not os.path.exists(md):
        with open(md, "w") as f:
            f.write("# Fleet scale\n\n`scripts/scale-bench.sh N SHAPE`: one operator, interval 15 s, "
                    "--scrape-interval 15s, the local cluster (Prometheus scraping every 1 s). Full: the example web "
                    "policy, one service and database per 1/50 of a namespace. "
                    "API requests are the operator's: the idle rate before it started is subtracted.\n\n"
                    "| policies | shape | operator cores | RSS MiB | Prometheus queries/s (instant/range/grouped) | "
                    "Prometheus busy s/s | API requests/s | API writes/s | evaluations per policy per interval | "
                    "lag p50 / p99 s | s until all have status | API requests by verb and resource |\n"
                    "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    fmt = lambda x: "n/a" if x is None else f"{x:.2f}"
    with open(md, "a") as f:
        f.write(f"| {N} | {SHAPE} | {result['operatorCores']} | {result['operatorRssMiB']} | "
                f"{result['prometheusQueriesPerSecond']} ({by_kind['instant']}/{by_kind['range']}/{by_kind['grouped']}) | "
                f"{result['prometheusBusySecondsPerSecond']} | {result['apiRequestsPerSecond']} | {result['apiWritesPerSecond']} | "
                f"{result['evaluationsPerPolicyPerInterval']} | {fmt(result['evaluationLagP50Seconds'])} / "
                f"{fmt(result['evaluationLagP99Seconds'])} | {result['secondsUntilAllHaveStatus']} | "
                f"{', '.join(f'{k} {v}' for k, v in list(api.items())[:6])} |\n")
    print(json.dumps(result, indent=2))
    kubectl("delete", "ns", *NAMESPACES, "--wait=false", check=False)


if __name__ == "__main__":
    main()
