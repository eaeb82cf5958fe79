//! End-to-end tests against a real kube-apiserver, etcd, controller-manager, scheduler, kwok
//! and Prometheus, with the real `headroom run` process under its own ServiceAccount.
//! The cluster comes from tests/cluster (started here if it is not running).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const MIN: Duration = Duration::from_secs(60);

#[test]
fn e2e_crd_manifests_and_kubectl_output() {
    let ns = Namespace::new("e2e-kubectl");
    let established = kubectl_ok(&[
        "get",
        "crd",
        "scalingpolicies.headroom.dev",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(established.trim(), "True");

    let dry = must(kubectl(&[
        "apply",
        "-k",
        &repo().join("deploy").to_string_lossy(),
        "--dry-run=server",
    ]));
    for kind in [
        "customresourcedefinition",
        "namespace/headroom-system",
        "clusterrole",
        "deployment.apps/headroom",
    ] {
        assert!(
            dry.contains(kind),
            "server dry run of deploy/ did not mention {kind}:\n{dry}"
        );
    }
    for example in ["deploy/examples/web.yaml", "deploy/examples/worker.yaml"] {
        let out = kubectl(&[
            "apply",
            "-f",
            &repo().join(example).to_string_lossy(),
            "-n",
            &ns.0,
            "--dry-run=server",
        ]);
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    apply(&deployment("web", &ns.0, 1)).unwrap();
    apply(&queue_policy(
        &ns.0,
        "web",
        "web",
        &backlog_query(&ns.0, "q"),
        "",
    ))
    .unwrap();
    let table = kubectl_ok(&["get", "sp", "-n", &ns.0]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "TARGET", "MODE", "MIN", "MAX", "CURRENT", "DESIRED", "LIMITED", "VERDICT",
            "P95", "DB-CPU", "HEADROOM", "AGE"
        ]
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[..5], ["web", "web", "Enforce", "1", "10"], "{table}");
    // The category finds it too.
    assert!(kubectl_ok(&["get", "headroom", "-n", &ns.0]).contains("web"));

    let explain = kubectl_ok(&["explain", "scalingpolicy.spec.signals"]);
    for doc in [
        "Exactly one of",
        "latency",
        "queue",
        "Unique name of this signal",
    ] {
        assert!(
            explain.contains(doc),
            "kubectl explain lacks {doc:?}:\n{explain}"
        );
    }
}

#[test]
fn e2e_invalid_policies_are_rejected_with_cel_messages() {
    let ns = Namespace::new("e2e-invalid");
    let base = |spec: &str| {
        format!(
            "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: bad, namespace: {}}}\nspec:\n  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n{spec}",
            ns.0
        )
    };
    let queue = "    - name: q\n      queue: {query: 'sum(x)', targetPerReplica: 100}\n";
    let cases = [
        (
            format!("  minReplicas: 5\n  maxReplicas: 2\n  signals:\n{queue}"),
            "spec.minReplicas must be less than or equal to spec.maxReplicas",
        ),
        (format!("  maxReplicas: 0\n  signals:\n{queue}"), "spec.maxReplicas must be at least 1"),
        (format!("  minReplicas: -1\n  maxReplicas: 3\n  signals:\n{queue}"), "spec.minReplicas must not be negative"),
        (
            "  maxReplicas: 3\n  signals:\n    - name: q\n      queue: {query: 'sum(x)', targetPerReplica: -5}\n".to_string(),
            "targetPerReplica must be greater than 0",
        ),
        (
            "  maxReplicas: 3\n  signals:\n    - name: c\n      custom: {query: 'sum(x)', target: -1, targetType: Value}\n".to_string(),
            "target must be greater than 0",
        ),
        (format!("  maxReplicas: 3\n  signals:\n{queue}{queue}"), "spec.signals: signal names must be unique"),
        (
            "  maxReplicas: 3\n  signals:\n    - name: s\n      sqs: {queue: emails}\n".to_string(),
            "unknown field \"spec.signals[0].sqs\"",
        ),
        // A respelled address would be a Prometheus of its own, with its own share.
        (
            format!("  maxReplicas: 3\n  prometheus: {{address: 'http://prometheus:9090/?src=2'}}\n  signals:\n{queue}"),
            "spec.prometheus.address",
        ),
        (
            "  maxReplicas: 3\n  signals:\n    - name: c\n      cpu: {targetUtilization: 60, saturation: {throttledPercent: 0}}\n".to_string(),
            "spec.signals[0].cpu.saturation.throttledPercent",
        ),
    ];
    for (spec, message) in cases {
        let err = apply(&base(&spec)).expect_err("the API server accepted an invalid policy");
        assert!(err.contains(message), "expected {message:?} in:\n{err}");
    }
    // The target's name goes into the /scale request's path: only a DNS subdomain gets in.
    let injected = base(&format!("  maxReplicas: 3\n  signals:\n{queue}"))
        .replace("name: web}", "name: 'web?dryRun=All'}");
    let err = apply(&injected).expect_err("a target name with a query string was accepted");
    assert!(err.contains("spec.targetRef.name"), "{err}");
    let both = "  maxReplicas: 3\n  signals:\n    - name: q\n      queue: {query: 'sum(x)', targetPerReplica: 100}\n  guardrails:\n    schedule: [{start: '2026-12-01T09:00:00Z', end: '2026-12-01T10:00:00Z', cron: '0 9 * * *', minReplicas: 2}]\n";
    let err = apply(&base(both)).expect_err("a schedule window with both forms was accepted");
    assert!(
        err.contains("a schedule window has either start and end, or cron and duration"),
        "{err}"
    );
    // Without kubectl's strict field validation the unknown kind is pruned, and the CEL rule
    // still rejects a signal with no kind.
    let spec = "  maxReplicas: 3\n  signals:\n    - name: s\n      sqs: {queue: emails}\n";
    let out = support::run_kubectl(
        &support::cluster().kubeconfig,
        &["apply", "--validate=false", "-f", "-"],
        Some(&base(spec)),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err
                .contains("exactly one of latency, cpu, queue, custom or concurrency must be set"),
        "{err}"
    );
}

#[test]
fn e2e_latency_scales_up_then_down_after_stabilization() {
    let ns = Namespace::new("e2e-latency");
    let labels = [("namespace", ns.0.as_str()), ("service", "web")];
    exporter().latency(&labels, 0.1);
    let q = format!(
        r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{namespace="{}",service="web"}}[10s])))"#,
        ns.0
    );
    wait_prom(&support::cluster().prometheus_url, &q, |v| v < 0.3);
    apply(&deployment("web", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    apply(&latency_policy(
        &ns.0,
        5,
        "10s",
        "  behavior:\n    scaleDown: {stabilizationWindowSeconds: 20}\n",
    ))
    .unwrap();
    wait_until("the policy to be evaluated at 1 replica", MIN, || {
        let p = policy(&ns.0, "web");
        (p["status"]["currentReplicas"] == 1
            && condition(&p, "ScalingActive").is_some_and(|c| c.0 == "True"))
        .then_some(())
    });

    exporter().latency(&labels, 0.9);
    let up = wait_until("a scale-up from p95 above target", MIN, || {
        let r = spec_replicas(&ns.0, "deployment", "web");
        (r > 1).then_some(r)
    });
    let p = policy(&ns.0, "web");
    assert!(p["status"]["lastScaleTime"].is_string(), "{p}");
    let scaled = events(&ns.0, "Scaled");
    assert!(
        scaled
            .iter()
            .any(|e| e.contains("Deployment/web scaled from 1 to") && e.contains("signal p95")),
        "{scaled:?}"
    );
    wait_until("the new pods to be Ready on kwok nodes", MIN, || {
        let ready = kubectl_ok(&[
            "get",
            "deployment",
            "web",
            "-n",
            &ns.0,
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]);
        (ready.trim().parse::<i64>().ok() == Some(spec_replicas(&ns.0, "deployment", "web")))
            .then_some(())
    });
    let nodes = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &ns.0,
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    assert!(
        nodes.split_whitespace().all(|n| n == "kwok-node-0"),
        "{nodes}"
    );

    exporter().latency(&labels, 0.1);
    let low_since = wait_prom(&support::cluster().prometheus_url, &q, |v| v < 0.3);
    let mut saw_stabilization = false;
    let down_at = wait_until("a scale-down once the window has passed", MIN * 2, || {
        let p = policy(&ns.0, "web");
        saw_stabilization |= p["status"]["limitedBy"] == "Stabilization";
        (spec_replicas(&ns.0, "deployment", "web") < up).then(Instant::now)
    });
    let held = down_at.duration_since(low_since);
    println!("scale-down came {held:?} after p95 fell below target (window 20s)");
    assert!(
        held >= Duration::from_secs(15),
        "scaled down after only {held:?}, inside the 20s window"
    );
    assert!(
        saw_stabilization,
        "status never said the scale-down was held by Stabilization"
    );
}

#[test]
fn e2e_queue_worker_statefulset_and_custom_resource() {
    let ns = Namespace::new("e2e-queue");
    set_backlog(&ns.0, "emails", 450.0);
    set_backlog(&ns.0, "reports", 250.0);
    set_backlog(&ns.0, "widgets", 300.0);
    apply(&deployment("worker", &ns.0, 1)).unwrap();
    apply(&format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: reports, namespace: {ns}}}
spec:
  replicas: 1
  serviceName: reports
  selector: {{matchLabels: {{app: reports}}}}
  template:
    metadata: {{labels: {{app: reports}}}}
    spec:
      containers: [{{name: app, image: registry.example/reports:1}}]
"#,
        ns = ns.0
    ))
    .unwrap();
    apply(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.e2e.headroom.dev}
spec:
  group: e2e.headroom.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {replicas: {type: integer}}}
            status: {type: object, properties: {replicas: {type: integer}}}
"#,
    )
    .unwrap();
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.e2e.headroom.dev",
        "--timeout=60s",
    ]);
    apply(&format!("apiVersion: e2e.headroom.dev/v1\nkind: Widget\nmetadata: {{name: w, namespace: {}}}\nspec: {{replicas: 1}}\n", ns.0)).unwrap();

    let op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "worker",
        "worker",
        &backlog_query(&ns.0, "emails"),
        "",
    ))
    .unwrap();
    let sts = queue_policy(
        &ns.0,
        "reports",
        "reports",
        &backlog_query(&ns.0, "reports"),
        "",
    )
    .replace(
        "kind: Deployment, name: reports",
        "kind: StatefulSet, name: reports",
    );
    apply(&sts).unwrap();
    let widget = queue_policy(&ns.0, "widget", "w", &backlog_query(&ns.0, "widgets"), "").replace(
        "apiVersion: apps/v1, kind: Deployment, name: w",
        "apiVersion: e2e.headroom.dev/v1, kind: Widget, name: w",
    );
    apply(&widget).unwrap();

    wait_until("worker scaled to ceil(450/100) = 5", MIN, || {
        (spec_replicas(&ns.0, "deployment", "worker") == 5).then_some(())
    });
    wait_until("StatefulSet scaled to 3", MIN, || {
        (spec_replicas(&ns.0, "statefulset", "reports") == 3).then_some(())
    });
    wait_until("Widget (custom resource) scaled to 3", MIN, || {
        (spec_replicas(&ns.0, "widget", "w") == 3).then_some(())
    });
    let p = policy(&ns.0, "worker");
    assert_eq!(p["status"]["signals"][0]["value"], 450.0, "{p}");
    assert_eq!(p["status"]["signals"][0]["proposedReplicas"], 5, "{p}");
    let metrics = op.metrics();
    assert!(
        metrics.contains("headroom_scale_operations_total{direction=\"up\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("headroom_reconciliations_total{result=\"ok\"}"),
        "{metrics}"
    );
}

#[test]
fn e2e_recommend_never_writes_and_paused_does_nothing() {
    let ns = Namespace::new("e2e-modes");
    set_backlog(&ns.0, "rec", 450.0);
    apply(&deployment("rec", &ns.0, 1)).unwrap();
    apply(&deployment("paused", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "rec",
        "rec",
        &backlog_query(&ns.0, "rec"),
        "  mode: Recommend\n",
    ))
    .unwrap();
    apply(&queue_policy(
        &ns.0,
        "paused",
        "paused",
        &backlog_query(&ns.0, "rec"),
        "  mode: Paused\n",
    ))
    .unwrap();

    // Recommend reports the step Enforce would take now: from 1 replica the HPA's default
    // rate limit allows max(2x1, 4) = 4 of the 5 the backlog asks for.
    wait_until("Recommend mode to report 4 desired replicas", MIN, || {
        (policy(&ns.0, "rec")["status"]["desiredReplicas"] == 4).then_some(())
    });
    wait_until("a Recommended event", MIN, || {
        events(&ns.0, "Recommended")
            .iter()
            .any(|e| e.contains("would scale from 1 to 4"))
            .then_some(())
    });
    let p = wait_until("the paused policy to report Paused", MIN, || {
        let p = policy(&ns.0, "paused");
        condition(&p, "ScalingActive")
            .filter(|c| c.1 == "Paused")
            .map(|_| p)
    });
    assert!(
        p["status"]["desiredReplicas"].is_null(),
        "a paused policy decided something: {p}"
    );
    // Several intervals later neither target has been touched.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(spec_replicas(&ns.0, "deployment", "rec"), 1);
    assert_eq!(spec_replicas(&ns.0, "deployment", "paused"), 1);
    assert_eq!(
        condition(&policy(&ns.0, "rec"), "ScalingActive").map(|c| c.1),
        Some("Recommending".into())
    );
    assert!(events(&ns.0, "Scaled").is_empty());
}

#[test]
fn e2e_prometheus_outage_holds_replicas_and_recovers() {
    let ns = Namespace::new("e2e-outage");
    let mut prom = PrivatePrometheus::start("outage");
    set_backlog(&ns.0, "jobs", 300.0);
    apply(&deployment("jobs", &ns.0, 3)).unwrap();
    let _op = Operator::start_args(&ns.0, &["--allowed-prometheus-host", host_of(&prom.url)]);
    // No scale-down stabilization, so any scale-down on missing data would show at once.
    let extra = format!(
        "  prometheus: {{address: '{}'}}\n  behavior:\n    scaleDown: {{stabilizationWindowSeconds: 0}}\n",
        prom.url
    );
    apply(&queue_policy(
        &ns.0,
        "jobs",
        "jobs",
        &backlog_query(&ns.0, "jobs"),
        &extra,
    ))
    .unwrap();
    wait_until("signals read from the private Prometheus", MIN, || {
        let p = policy(&ns.0, "jobs");
        (condition(&p, "MetricsAvailable").is_some_and(|c| c.0 == "True")
            && p["status"]["desiredReplicas"] == 3)
            .then_some(())
    });

    prom.stop();
    let p = wait_until(
        "MetricsAvailable=False while Prometheus is down",
        MIN,
        || {
            let p = policy(&ns.0, "jobs");
            condition(&p, "MetricsAvailable")
                .filter(|c| c.0 == "False")
                .map(|_| p)
        },
    );
    let (_, reason, message) = condition(&p, "MetricsAvailable").unwrap_or_default();
    assert_eq!(reason, "SignalsUnavailable");
    assert!(message.contains("Prometheus unreachable"), "{message}");
    assert_eq!(
        condition(&p, "ScalingActive").map(|c| c.1),
        Some("MetricsUnavailable".into())
    );
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        spec_replicas(&ns.0, "deployment", "jobs"),
        3,
        "scaled on missing data"
    );
    assert!(!events(&ns.0, "MetricsUnavailable").is_empty());

    prom.restart();
    wait_until(
        "MetricsAvailable=True after Prometheus returns",
        MIN * 2,
        || {
            condition(&policy(&ns.0, "jobs"), "MetricsAvailable")
                .filter(|c| c.0 == "True")
                .map(|_| ())
        },
    );
}

#[test]
fn e2e_bad_promql_and_deleted_target_surface_as_conditions() {
    let ns = Namespace::new("e2e-faults");
    apply(&deployment("api", &ns.0, 2)).unwrap();
    apply(&deployment("doomed", &ns.0, 2)).unwrap();
    set_backlog(&ns.0, "d", 200.0);
    let mut op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "api",
        "api",
        "sum(rate(http_requests_total[1m]",
        "",
    ))
    .unwrap();
    apply(&queue_policy(
        &ns.0,
        "doomed",
        "doomed",
        &backlog_query(&ns.0, "d"),
        "",
    ))
    .unwrap();

    let p = wait_until("bad PromQL to surface", MIN, || {
        let p = policy(&ns.0, "api");
        condition(&p, "MetricsAvailable")
            .filter(|c| c.0 == "False")
            .map(|_| p)
    });
    let message = condition(&p, "MetricsAvailable")
        .map(|c| c.2)
        .unwrap_or_default();
    // Raw PromQL is parsed (to confine it to the namespace) before it is sent, so the
    // parser's message is what the user sees.
    assert!(
        message.contains("refused: cannot parse the query to scope it"),
        "{message}"
    );
    assert_eq!(
        p["status"]["signals"][0]["error"]
            .as_str()
            .map(|e| e.contains("cannot parse the query")),
        Some(true),
        "{p}"
    );
    assert_eq!(spec_replicas(&ns.0, "deployment", "api"), 2);

    wait_until("the doomed policy to be evaluated", MIN, || {
        (policy(&ns.0, "doomed")["status"]["desiredReplicas"] == 2).then_some(())
    });
    kubectl_ok(&["delete", "deployment", "doomed", "-n", &ns.0]);
    let p = wait_until("the missing target to surface", MIN, || {
        let p = policy(&ns.0, "doomed");
        condition(&p, "Ready").filter(|c| c.0 == "False").map(|_| p)
    });
    let (_, reason, message) = condition(&p, "Ready").unwrap_or_default();
    assert_eq!(reason, "TargetUnavailable");
    assert!(
        message.contains("Deployment/doomed") && message.contains("not found"),
        "{message}"
    );
    assert!(
        events(&ns.0, "TargetUnavailable")
            .iter()
            .any(|e| e.contains("not found"))
    );
    assert!(op.is_running(), "the operator died on a missing target");
}

#[test]
fn e2e_operator_restart_does_not_scale_down() {
    let ns = Namespace::new("e2e-restart");
    set_backlog(&ns.0, "r", 400.0);
    apply(&deployment("r", &ns.0, 1)).unwrap();
    let mut op = Operator::start(&ns.0);
    let extra = "  behavior:\n    scaleDown: {stabilizationWindowSeconds: 45}\n";
    apply(&queue_policy(
        &ns.0,
        "r",
        "r",
        &backlog_query(&ns.0, "r"),
        extra,
    ))
    .unwrap();
    wait_until("scaled to 4", MIN, || {
        (spec_replicas(&ns.0, "deployment", "r") == 4).then_some(())
    });

    set_backlog(&ns.0, "r", 100.0);
    wait_prom(
        &support::cluster().prometheus_url,
        &backlog_query(&ns.0, "r"),
        |v| v == 100.0,
    );
    op.crash_and_restart();
    // A restarted operator has no history; it must not take that as licence to scale down.
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        assert_eq!(
            spec_replicas(&ns.0, "deployment", "r"),
            4,
            "the restart caused a scale-down"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(policy(&ns.0, "r")["status"]["limitedBy"], "Stabilization");
}

#[test]
fn e2e_reaction_time_is_measured() {
    let ns = Namespace::new("e2e-reaction");
    set_backlog(&ns.0, "spike", 50.0);
    apply(&deployment("spike", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    let policy_yaml = queue_policy(&ns.0, "spike", "spike", &backlog_query(&ns.0, "spike"), "")
        .replace("interval: 2s", "interval: 5s");
    apply(&policy_yaml).unwrap();
    wait_until("a first evaluation", MIN, || {
        (policy(&ns.0, "spike")["status"]["desiredReplicas"] == 1).then_some(())
    });

    set_backlog(&ns.0, "spike", 500.0);
    let seen = wait_prom(
        &support::cluster().prometheus_url,
        &backlog_query(&ns.0, "spike"),
        |v| v > 100.0,
    );
    let scale_path = format!("/apis/apps/v1/namespaces/{}/deployments/spike/scale", ns.0);
    let scaled = wait_until("/scale to show more replicas", MIN, || {
        let v: serde_json::Value =
            serde_json::from_str(&kubectl_ok(&["get", "--raw", &scale_path])).ok()?;
        (v["spec"]["replicas"].as_i64()? > 1).then(Instant::now)
    });
    let reaction = scaled.duration_since(seen);
    let line = format!(
        "reaction time (Prometheus first over target -> /scale raised), interval 5s, scrape 1s: {:.2}s",
        reaction.as_secs_f64()
    );
    println!("{line}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("reaction-time.txt"), format!("{line}\n"))
        .expect("write target/bench/reaction-time.txt");
}

#[test]
fn e2e_queue_arrival_rate_sizes_workers_with_an_empty_backlog() {
    let ns = Namespace::new("e2e-arrivals");
    set_backlog(&ns.0, "mail", 0.0);
    exporter().gauge(
        "jobs_arriving_per_second",
        &[("namespace", &ns.0), ("queue", "mail")],
        9.0,
    );
    apply(&deployment("mailer", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    let arrivals = format!(
        r#"sum(jobs_arriving_per_second{{namespace="{}",queue="mail"}})"#,
        ns.0
    );
    let yaml = queue_policy(&ns.0, "mailer", "mailer", &backlog_query(&ns.0, "mail"), "").replace(
        "        targetPerReplica: 100\n",
        &format!("        targetPerReplica: 100\n        arrivalRateQuery: '{arrivals}'\n        ratePerReplica: 3\n"),
    );
    apply(&yaml).unwrap();
    // 9 jobs/s at 3 per replica: 3 workers, though the backlog is empty.
    wait_until("3 workers for 9 jobs/s", MIN, || {
        (spec_replicas(&ns.0, "deployment", "mailer") == 3).then_some(())
    });
    let p = policy(&ns.0, "mailer");
    let names: Vec<&str> = p["status"]["signals"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["backlog", "backlog-arrivals"], "{p}");
    assert_eq!(p["status"]["signals"][1]["proposedReplicas"], 3, "{p}");
}

#[test]
fn e2e_cpu_signal_reads_cadvisor_and_kube_state_metrics() {
    let ns = Namespace::new("e2e-cpu");
    apply(&deployment("api", &ns.0, 2)).unwrap();
    wait_until("2 ready pods", MIN, || {
        let ready = kubectl_ok(&[
            "get",
            "deployment",
            "api",
            "-n",
            &ns.0,
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]);
        (ready.trim() == "2").then_some(())
    });
    // The app needs 1.8 cores in all, shared by its pods, each requesting 1 core: 90% on 2
    // pods against a 45% target, 45% once there are 4. New pods report their usage as soon as
    // they exist, as cAdvisor would, and their requests only 8 s later, as kube-state-metrics
    // scraped less often would: read as a ratio over every pod, 90% times 4 would ask for 8.
    let first_seen =
        std::cell::RefCell::new(std::collections::HashMap::<String, Option<Instant>>::new());
    let share = |ns: &str| {
        let pods = kubectl_ok(&[
            "get",
            "pods",
            "-n",
            ns,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        let pods: Vec<&str> = pods.split_whitespace().collect();
        let mut seen = first_seen.borrow_mut();
        let founders = seen.is_empty();
        for pod in &pods {
            let usage = [("namespace", ns), ("pod", pod), ("container", "app")];
            exporter().counter(
                "container_cpu_usage_seconds_total",
                &usage,
                1.8 / pods.len() as f64,
            );
            let since = *seen
                .entry(pod.to_string())
                .or_insert_with(|| (!founders).then(Instant::now));
            if since.is_some_and(|t| t.elapsed() < Duration::from_secs(8)) {
                continue;
            }
            let requests = [
                ("namespace", ns),
                ("pod", pod),
                ("container", "app"),
                ("resource", "cpu"),
                ("unit", "core"),
            ];
            exporter().gauge("kube_pod_container_resource_requests", &requests, 1.0);
        }
    };
    share(&ns.0);
    // The PromQL Headroom renders, checked before the operator starts: a new counter's rate
    // needs its window to settle.
    let utilization = format!(
        r#"100 * sum(rate(container_cpu_usage_seconds_total{{namespace="{n}",container!=""}}[20s])) / sum(kube_pod_container_resource_requests{{namespace="{n}",resource="cpu"}})"#,
        n = ns.0
    );
    wait_prom(&support::cluster().prometheus_url, &utilization, |v| {
        (v - 90.0).abs() < 3.0
    });
    let _op = Operator::start(&ns.0);
    apply(&format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: api, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: api}}
  minReplicas: 1
  maxReplicas: 10
  interval: 2s
  signals:
    - name: cpu
      cpu: {{targetUtilization: 47, window: 20s}}
"#,
        ns = ns.0
    ))
    .unwrap();
    // 87-93 % on 2 pods against 47 % asks for 4 wherever the reading lands in that band
    // (against 45 %, a reading of 90.5 % asked for 5).
    wait_until("a scale-up to 4", MIN, || {
        share(&ns.0);
        (spec_replicas(&ns.0, "deployment", "api") == 4).then_some(())
    });
    // At 45% on 4 pods (within the tolerance of 47%) it stays there, through the new pods'
    // missing requests and the 20 s window that still holds the 2-pod fleet's usage.
    for _ in 0..60 {
        share(&ns.0);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(spec_replicas(&ns.0, "deployment", "api"), 4);
    let p = policy(&ns.0, "api");
    let value = p["status"]["signals"][0]["value"]
        .as_f64()
        .unwrap_or_default();
    assert!(
        (value - 45.0).abs() < 5.0,
        "utilization on 4 pods read as {value}: {p}"
    );
}

/// Requests in flight (Little's law) from the histogram's `_sum`, computed by the real
/// Prometheus from the exporter's series, size the fleet proportionally in one step.
#[test]
fn e2e_concurrency_sizes_on_requests_in_flight() {
    let ns = Namespace::new("e2e-inflight");
    let labels = [("namespace", ns.0.as_str()), ("service", "web")];
    // 50 requests a second of 200 ms each: 10 in flight.
    exporter().requests(&labels, 0.2, 50.0);
    apply(&deployment("web", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    apply(&format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: web, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: 20
  interval: 2s
  behavior:
    scaleUp: {{stabilizationWindowSeconds: 0, policies: [{{type: Pods, value: 20, periodSeconds: 15}}]}}
  signals:
    - name: inflight
      concurrency: {{metric: http_request_duration_seconds, selector: {{service: web}}, window: 20s, targetPerReplica: 2.5}}
"#,
        ns = ns.0
    ))
    .unwrap();
    wait_until("4 replicas for 10 in flight", MIN, || {
        (4..=5)
            .contains(&spec_replicas(&ns.0, "deployment", "web"))
            .then_some(())
    });
    // The rate window fills within 20 s: then Prometheus reads what the exporter serves.
    wait_until("10 in flight read from rate(_sum)", MIN, || {
        let v = policy(&ns.0, "web")["status"]["signals"][0]["value"].as_f64()?;
        ((v - 10.0).abs() < 0.5).then_some(())
    });
    assert!((4..=5).contains(&spec_replicas(&ns.0, "deployment", "web")));
    // Twice the arrivals: twice the fleet, in one step. A rate read a hair over 20 rounds
    // up to 9, so the ceiling's two answers are both right.
    exporter().requests(&labels, 0.2, 100.0);
    wait_until("8 replicas for 20 in flight", MIN, || {
        (8..=9)
            .contains(&spec_replicas(&ns.0, "deployment", "web"))
            .then_some(())
    });
}

/// A steady policy's status is written when it changes at display precision, not on every
/// evaluation: a rate read from Prometheus jitters in its last digits.
#[test]
fn e2e_a_steady_status_is_not_rewritten() {
    let ns = Namespace::new("e2e-quiet");
    exporter().counter("jobs_published_total", &[("namespace", &ns.0)], 50.0);
    apply(&deployment("quiet", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    let query = format!(
        "sum(rate(jobs_published_total{{namespace=\"{}\"}}[10s]))",
        ns.0
    );
    apply(&format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: quiet, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: quiet}}
  maxReplicas: 10
  interval: 2s
  signals:
    - name: rate
      custom: {{query: '{query}', target: 12, targetType: AverageValue}}
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 0}}
"#,
        ns = ns.0
    ))
    .unwrap();
    // Steady: scaled up for ~50 jobs/s (4 or 5 replicas of 12, as the rate window fills),
    // and no longer changing.
    let mut stable = (0, 0);
    wait_until("a steady replica count", 2 * MIN, || {
        std::thread::sleep(Duration::from_secs(1));
        let n = spec_replicas(&ns.0, "deployment", "quiet");
        stable = if n == stable.0 {
            (n, stable.1 + 1)
        } else {
            (n, 0)
        };
        (n >= 4 && stable.1 >= 6).then_some(())
    });
    let version = || {
        policy(&ns.0, "quiet")["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let mut writes = 0;
    let mut last = version();
    // Ten evaluations at 2 s.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_secs(1));
        let v = version();
        if v != last {
            writes += 1;
            last = v;
        }
    }
    eprintln!("status writes in 20 s of a steady policy (interval 2 s): {writes}");
    assert!(
        writes <= 1,
        "{writes} status writes in 20 s with nothing changing"
    );
}

#[test]
fn e2e_prometheus_token_from_a_secret_needs_rbac_and_is_used() {
    let ns = Namespace::new("e2e-token");
    set_backlog(&ns.0, "t", 300.0);
    apply(&deployment("tok", &ns.0, 1)).unwrap();
    kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "prom",
        "-n",
        &ns.0,
        "--from-literal=token=s3cret",
    ]);
    // Prometheus behind a gate that passes only "Bearer s3cret".
    let gate = TokenGate::start(&support::cluster().prometheus_url, "s3cret");
    let _op = Operator::start_args(&ns.0, &["--allowed-prometheus-host", host_of(&gate.url)]);
    let anonymous = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/api/v1/query?query=up", gate.url))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");
    let extra = format!(
        "  prometheus: {{address: '{}', bearerTokenSecretRef: {{name: prom, key: token}}}}\n",
        gate.url
    );
    apply(&queue_policy(
        &ns.0,
        "tok",
        "tok",
        &backlog_query(&ns.0, "t"),
        &extra,
    ))
    .unwrap();
    // The default RBAC reads no Secrets: the policy says so, naming the field.
    let message = wait_until("the forbidden Secret to surface", MIN, || {
        let p = policy(&ns.0, "tok");
        condition(&p, "MetricsAvailable")
            .filter(|c| c.0 == "False")
            .map(|c| c.2)
    });
    assert!(
        message.contains("spec.prometheus.bearerTokenSecretRef") && message.contains("forbidden"),
        "{message}"
    );
    assert_eq!(spec_replicas(&ns.0, "deployment", "tok"), 1);
    // Granted in this namespace, the token is read and the queries go through.
    apply(&format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: headroom-prometheus-token, namespace: {ns}}}
rules: [{{apiGroups: [""], resources: [secrets], resourceNames: [prom], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: headroom-prometheus-token, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: headroom-prometheus-token}}
subjects: [{{kind: ServiceAccount, name: headroom, namespace: headroom-system}}]
"#,
        ns = ns.0
    ))
    .unwrap();
    wait_until("scaled to 3 once the token is readable", MIN, || {
        (spec_replicas(&ns.0, "deployment", "tok") == 3).then_some(())
    });
    // The operator's queries carried the token: the gate passed them, and refused only curl.
    assert!(gate.passed() > 0);
    assert_eq!(
        gate.refused(),
        1,
        "the operator sent a query without the token"
    );
}

#[test]
fn e2e_a_standby_leads_as_soon_as_the_leader_stops_cleanly() {
    let ns = Namespace::new("e2e-handover");
    let lease = ns.0.clone();
    // A 300s lease would outlive this test: start from none, and release it at the end.
    kubectl_ok(&[
        "delete",
        "lease",
        &lease,
        "-n",
        "headroom-system",
        "--ignore-not-found",
    ]);
    // A lease far longer than the wait below: only the release can hand it over in time.
    let long = ["--lease-duration", "300s"];
    let mut first = Operator::start_elected_args(&ns.0, "first", &lease, &long);
    wait_until("first to hold the lease", MIN, || {
        (lease_holder(&lease) == "first").then_some(())
    });
    let mut second = Operator::start_elected_args(&ns.0, "second", &lease, &long);
    // The standby is ready once it stands by; give its watch of the Lease a moment to start.
    std::thread::sleep(Duration::from_secs(2));
    assert!(second.metrics().contains("headroom_leader 0"));
    let status = first.terminate().expect("first was running");
    assert!(status.success(), "SIGTERM should exit cleanly: {status}");
    wait_until("second to take the released lease", MIN, || {
        (lease_holder(&lease) == "second").then_some(())
    });
    wait_until("second to report that it leads", MIN, || {
        second.metrics().contains("headroom_leader 1").then_some(())
    });
    assert!(second.terminate().is_some_and(|s| s.success()));
    assert_eq!(lease_holder(&lease), "", "second kept the lease");
}

#[test]
fn e2e_only_the_lease_holder_scales_and_a_standby_takes_over() {
    let ns = Namespace::new("e2e-leader");
    // A Lease of this test's own, in headroom-system where the operator's RBAC allows it.
    let lease = ns.0.clone();
    set_backlog(&ns.0, "le", 200.0);
    apply(&deployment("le", &ns.0, 1)).unwrap();

    // A clean stop gives the lease up at once instead of letting it expire.
    let mut first = Operator::start_elected(&ns.0, "gamma", &lease);
    wait_until("gamma to hold the lease", MIN, || {
        (lease_holder(&lease) == "gamma").then_some(())
    });
    let status = first.terminate().expect("gamma was running");
    assert!(status.success(), "SIGTERM should exit cleanly: {status}");
    assert_eq!(lease_holder(&lease), "", "gamma kept the lease");

    let mut alpha = Operator::start_elected(&ns.0, "alpha", &lease);
    wait_until("alpha to hold the lease", MIN, || {
        (lease_holder(&lease) == "alpha").then_some(())
    });
    let mut beta = Operator::start_elected(&ns.0, "beta", &lease);
    apply(&queue_policy(
        &ns.0,
        "le",
        "le",
        &backlog_query(&ns.0, "le"),
        "",
    ))
    .unwrap();
    wait_until("alpha to scale to 2", MIN, || {
        (spec_replicas(&ns.0, "deployment", "le") == 2).then_some(())
    });
    assert!(
        beta.metrics().contains("headroom_leader 0"),
        "beta leads too"
    );
    assert!(alpha.metrics().contains("headroom_leader 1"));
    // Give the standby several intervals in which it would have acted if it were leading.
    std::thread::sleep(Duration::from_secs(6));
    let reporters = event_reporters(&ns.0, "Scaled");
    assert_eq!(
        reporters,
        vec!["alpha".to_string()],
        "only the leader scales"
    );

    // The leader crashes: the standby takes over once the lease expires, and scales.
    alpha.kill();
    set_backlog(&ns.0, "le", 400.0);
    wait_until("beta to hold the lease", MIN, || {
        (lease_holder(&lease) == "beta").then_some(())
    });
    wait_until("beta to scale to 4", MIN, || {
        (spec_replicas(&ns.0, "deployment", "le") == 4).then_some(())
    });
    assert!(event_reporters(&ns.0, "Scaled").contains(&"beta".to_string()));

    // Someone else takes the lease: beta stops scaling and exits with an error, so that its
    // restart rejoins as a standby.
    let renew = kubectl_ok(&[
        "get",
        "lease",
        &lease,
        "-n",
        "headroom-system",
        "-o",
        "jsonpath={.spec.renewTime}",
    ]);
    assert!(!renew.is_empty());
    kubectl_ok(&[
        "patch",
        "lease",
        &lease,
        "-n",
        "headroom-system",
        "--type=merge",
        "-p",
        r#"{"spec":{"holderIdentity":"intruder","leaseDurationSeconds":3600}}"#,
    ]);
    let status = beta.exit_within(MIN);
    assert!(
        !status.success(),
        "beta should exit with an error: {status}"
    );
    let log = std::fs::read_to_string(&beta.log).unwrap_or_default();
    assert!(log.contains("lost the lease"), "{log}");
}
