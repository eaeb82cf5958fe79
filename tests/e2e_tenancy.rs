//! A tenant's mistake or malice never stops, misleads or escapes the autoscaler: what the API
//! server accepts always decodes, queries stay in their namespace, Prometheus addresses are
//! allowlisted, and two autoscalers never fight over one target.

mod support;

use std::time::Duration;

use headroom::api::ScalingPolicy;
use support::*;

const MIN: Duration = Duration::from_secs(60);

fn status_of(ns: &str, name: &str, type_: &str) -> Option<(String, String, String)> {
    condition(&policy(ns, name), type_)
}

/// Every integer and duration at its bound is accepted and decodes; just beyond it, the
/// API server refuses with the field named. Nothing accepted fails to decode.
#[test]
fn e2e_what_the_api_server_accepts_always_decodes() {
    let ns = Namespace::new("e2e-bounds");
    let policy = |spec: &str| {
        format!(
            "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: b, namespace: {}}}\nspec:\n  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n{spec}",
            ns.0
        )
    };
    let q = "  signals:\n    - name: q\n      queue: {query: 'sum(x)', targetPerReplica: 100}\n";
    let lat = |field: &str, value: &str| {
        format!(
            "  maxReplicas: 5\n  signals:\n    - name: p95\n      latency: {{metric: m, target: 300ms, {field}: {value}}}\n"
        )
    };
    let budget = |max: &str| {
        format!(
            "  maxReplicas: 5\n{q}  guardrails:\n    connectionBudget: {{database: d, poolSizePerReplica: 10, maxConnections: {max}}}\n"
        )
    };
    let rate = |v: &str| {
        format!(
            "  maxReplicas: 5\n{q}  behavior:\n    scaleUp:\n      policies: [{{type: Pods, value: {v}, periodSeconds: 15}}]\n"
        )
    };
    let floor = |v: &str| {
        format!(
            "  maxReplicas: 5\n{q}  guardrails:\n    schedule: [{{start: '2026-12-01T09:00:00Z', end: '2026-12-01T10:00:00Z', minReplicas: {v}}}]\n"
        )
    };
    // (spec, accepted?, what the refusal names)
    let cases: Vec<(String, bool, &str)> = vec![
        (format!("  maxReplicas: 1000000\n{q}"), true, ""),
        (
            format!("  maxReplicas: 1000001\n{q}"),
            false,
            "spec.maxReplicas",
        ),
        (
            format!("  maxReplicas: 2147483648\n{q}"),
            false,
            "spec.maxReplicas",
        ),
        (
            format!("  maxReplicas: 1000000000000000\n{q}"),
            false,
            "spec.maxReplicas",
        ),
        (
            format!("  minReplicas: 2147483648\n  maxReplicas: 5\n{q}"),
            false,
            "spec.minReplicas",
        ),
        (
            format!("  maxReplicas: 5\n  interval: 999999999h\n{q}"),
            true,
            "",
        ),
        (
            format!("  maxReplicas: 5\n  interval: 9999999999h\n{q}"),
            false,
            "spec.interval",
        ),
        (
            format!("  maxReplicas: 5\n  interval: 18446744073709552s\n{q}"),
            false,
            "spec.interval",
        ),
        (
            format!("  maxReplicas: 5\n  interval: 99999999999999999999h\n{q}"),
            false,
            "spec.interval",
        ),
        (lat("window", "999999999h999999999h999999999m"), true, ""),
        (
            lat("window", "99999999999999999999h"),
            false,
            "spec.signals[0].latency.window",
        ),
        (rate("1000000"), true, ""),
        (
            rate("2147483648"),
            false,
            "spec.behavior.scaleUp.policies[0].value",
        ),
        (budget("10000000"), true, ""),
        (budget("10000001"), false, "maxConnections"),
        (budget("100000000000000000000"), false, "maxConnections"),
        (floor("1000000"), true, ""),
        (floor("2147483648"), false, "minReplicas"),
    ];
    for (spec, accept, field) in cases {
        let out = run_kubectl(
            &cluster().kubeconfig,
            &["apply", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&policy(&spec)),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // Whatever the API server accepts, the operator can hold.
            let decoded = serde_json::from_str::<ScalingPolicy>(&stdout);
            assert!(
                decoded.is_ok(),
                "accepted but undecodable:\n{spec}\n{decoded:?}"
            );
            assert!(accept, "accepted beyond its bound:\n{spec}");
        } else {
            assert!(!accept, "refused at its bound:\n{spec}\n{stderr}");
            assert!(
                stderr.contains(field),
                "refusal should name {field}:\n{stderr}"
            );
        }
    }
}

/// A selector key is written into PromQL verbatim, so one that is not a label name could
/// reach another namespace's series: the API server refuses it, naming the rule.
#[test]
fn e2e_a_selector_key_cannot_inject_promql() {
    let ns = Namespace::new("e2e-inject");
    let evil = r#"x=\"y\"}[1m]))) or histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace=\"victim\",service"#;
    let yaml = format!(
        "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: evil, namespace: {}}}\nspec:\n  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  maxReplicas: 5\n  signals:\n    - name: p95\n      latency:\n        metric: http_request_duration_seconds\n        target: 300ms\n        selector:\n          \"{evil}\": web\n",
        ns.0
    );
    let err = apply(&yaml).expect_err("the injection was accepted");
    assert!(
        err.contains("selector keys must be Prometheus label names"),
        "{err}"
    );
}

/// A raw query naming another namespace is refused; one naming none is confined to the
/// policy's own, so the victim's series are never read.
#[test]
fn e2e_raw_promql_reads_only_its_own_namespace() {
    let victim = Namespace::new("e2e-victim");
    let ns = Namespace::new("e2e-tenant");
    set_backlog(&victim.0, "secret", 5000.0);
    apply(&deployment("thief", &ns.0, 2)).unwrap();
    apply(&deployment("sneak", &ns.0, 2)).unwrap();
    let _op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "thief",
        "thief",
        &backlog_query(&victim.0, "secret"),
        "",
    ))
    .unwrap();
    apply(&queue_policy(
        &ns.0,
        "sneak",
        "sneak",
        "sum(rabbitmq_queue_messages_ready{queue=\"secret\"})",
        "",
    ))
    .unwrap();
    let (_, _, msg) = wait_until("the cross-namespace query to be refused", MIN, || {
        status_of(&ns.0, "thief", "MetricsAvailable").filter(|c| c.0 == "False")
    });
    assert!(
        msg.contains("a policy reads only its own namespace (e2e-tenant)"),
        "{msg}"
    );
    let (_, _, msg) = wait_until("the unqualified query to find nothing here", MIN, || {
        status_of(&ns.0, "sneak", "MetricsAvailable").filter(|c| c.0 == "False")
    });
    assert!(msg.contains("query returned no data"), "{msg}");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(spec_replicas(&ns.0, "deployment", "thief"), 2);
    assert_eq!(spec_replicas(&ns.0, "deployment", "sneak"), 2);
}

/// `prometheus.address` reaches only the operator's allowlist; nothing is sent elsewhere,
/// and the status does not echo what a probed endpoint answered.
#[test]
fn e2e_a_prometheus_address_outside_the_allowlist_is_refused() {
    let ns = Namespace::new("e2e-allowlist");
    set_backlog(&ns.0, "a", 500.0);
    apply(&deployment("probe", &ns.0, 1)).unwrap();
    // Something that answers HTTP on loopback, but is not an allowed Prometheus.
    let target = cluster().prometheus_url.replace("127.0.0.1", "localhost");
    let _op = Operator::start(&ns.0);
    let extra = format!("  prometheus: {{address: '{target}'}}\n");
    apply(&queue_policy(
        &ns.0,
        "probe",
        "probe",
        &backlog_query(&ns.0, "a"),
        &extra,
    ))
    .unwrap();
    let (_, _, msg) = wait_until("the address to be refused", MIN, || {
        status_of(&ns.0, "probe", "MetricsAvailable").filter(|c| c.0 == "False")
    });
    assert!(
        msg.contains("spec.prometheus.address") && msg.contains("is not an allowed Prometheus"),
        "{msg}"
    );
    assert_eq!(spec_replicas(&ns.0, "deployment", "probe"), 1);
}

/// Two policies on one target: the older scales, the newer reports the conflict.
#[test]
fn e2e_two_policies_on_one_target_do_not_fight() {
    let ns = Namespace::new("e2e-conflict");
    set_backlog(&ns.0, "a", 500.0);
    set_backlog(&ns.0, "b", 200.0);
    apply(&deployment("web", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "first",
        "web",
        &backlog_query(&ns.0, "a"),
        "",
    ))
    .unwrap();
    // Creation times have one-second resolution; make the order unambiguous.
    std::thread::sleep(Duration::from_millis(1100));
    apply(&queue_policy(
        &ns.0,
        "second",
        "web",
        &backlog_query(&ns.0, "b"),
        "",
    ))
    .unwrap();
    let (status, reason, msg) = wait_until("the newer policy to report the conflict", MIN, || {
        status_of(&ns.0, "second", "Ready").filter(|c| c.1 == "Conflict")
    });
    assert_eq!(status, "False");
    assert!(
        msg.contains("ScalingPolicy first already scales Deployment/web"),
        "{reason}: {msg}"
    );
    wait_until("the older policy to scale to 5", MIN, || {
        (spec_replicas(&ns.0, "deployment", "web") == 5).then_some(())
    });
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(spec_replicas(&ns.0, "deployment", "web"), 5);
    let scaled = events(&ns.0, "Scaled");
    assert!(
        scaled.iter().all(|e| !e.contains("to 2:")),
        "the newer policy scaled: {scaled:?}"
    );
}

/// A policy on a Deployment's ReplicaSet would fight the Deployment: it is refused as a
/// Conflict naming the Deployment, and the ReplicaSet is left alone.
#[test]
fn e2e_a_target_another_controller_owns_is_refused_naming_the_owner() {
    let ns = Namespace::new("e2e-owned");
    set_backlog(&ns.0, "a", 500.0);
    apply(&deployment("web", &ns.0, 1)).unwrap();
    let rs = wait_until("the Deployment's ReplicaSet", MIN, || {
        let name = kubectl_ok(&[
            "get",
            "replicasets",
            "-n",
            &ns.0,
            "-o",
            // Not items[0]: kubectl fails on an empty list, before the ReplicaSet exists.
            "jsonpath={.items[*].metadata.name}",
        ]);
        name.split_whitespace().next().map(String::from)
    });
    let _op = Operator::start(&ns.0);
    let yaml = queue_policy(&ns.0, "rs", &rs, &backlog_query(&ns.0, "a"), "")
        .replace("kind: Deployment,", "kind: ReplicaSet,");
    apply(&yaml).unwrap();
    let (status, _, msg) = wait_until("the owner conflict to be reported", MIN, || {
        status_of(&ns.0, "rs", "Ready").filter(|c| c.1 == "Conflict")
    });
    assert_eq!(status, "False");
    assert!(
        msg.contains(&format!("ReplicaSet/{rs} is controlled by Deployment/web")),
        "{msg}"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(spec_replicas(&ns.0, "replicaset", &rs), 1);
    assert_eq!(spec_replicas(&ns.0, "deployment", "web"), 1);
}

/// A policy beside an HPA on the same target yields and names the HPA.
#[test]
fn e2e_a_policy_beside_an_hpa_yields() {
    let ns = Namespace::new("e2e-hpa-conflict");
    set_backlog(&ns.0, "a", 500.0);
    apply(&deployment("web", &ns.0, 1)).unwrap();
    apply(&format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: keda-hpa-web, namespace: {}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  minReplicas: 1\n  maxReplicas: 3\n  metrics:\n    - type: Resource\n      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}\n",
        ns.0
    ))
    .unwrap();
    let _op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "web",
        "web",
        &backlog_query(&ns.0, "a"),
        "",
    ))
    .unwrap();
    let (_, _, msg) = wait_until("the HPA conflict to be reported", MIN, || {
        status_of(&ns.0, "web", "Ready").filter(|c| c.1 == "Conflict")
    });
    assert!(
        msg.contains("HorizontalPodAutoscaler keda-hpa-web already scales Deployment/web"),
        "{msg}"
    );
    assert_eq!(spec_replicas(&ns.0, "deployment", "web"), 1);
    // Once the HPA is gone, the policy scales.
    kubectl_ok(&["delete", "hpa", "keda-hpa-web", "-n", &ns.0]);
    wait_until("the policy to scale once the HPA is gone", MIN, || {
        (spec_replicas(&ns.0, "deployment", "web") == 5).then_some(())
    });
}

/// The admin's floor under `interval`: a policy asking for 1s is evaluated every 3s, and its
/// status says so; it still scales.
#[test]
fn e2e_the_admin_interval_floor_applies_and_is_reported() {
    let ns = Namespace::new("e2e-min-interval");
    set_backlog(&ns.0, "jobs", 350.0);
    apply(&deployment("w", &ns.0, 1)).unwrap();
    let _op = Operator::start_args(&ns.0, &["--min-interval", "3s"]);
    let p = queue_policy(&ns.0, "w", "w", &backlog_query(&ns.0, "jobs"), "")
        .replace("interval: 2s", "interval: 1s");
    apply(&p).unwrap();
    let said = wait_until("status.interval", MIN, || {
        policy(&ns.0, "w")["status"]["interval"]
            .as_str()
            .map(String::from)
    });
    assert_eq!(
        said,
        "3s: the operator's minimum (--min-interval); spec.interval asks 1s"
    );
    wait_until("scaled to 4", MIN, || {
        (spec_replicas(&ns.0, "deployment", "w") == 4).then_some(())
    });
}
