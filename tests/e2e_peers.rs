//! Headroom beside the real HPA and real KEDA on the same cluster and the same series: the HPA
//! controller in kube-controller-manager reads external metrics that prometheus-adapter, or
//! KEDA's adapter for KEDA's own HPAs, serves from the test Prometheus (tests/cluster/peers/
//! route.py gives each its metrics). These fail if the real HPA or KEDA stops scaling in this
//! setup, so the side-by-side comparison and scripts/peers-bench.sh cannot silently rot. Run with `cargo test --test e2e_peers` (scripts/test.sh
//! does, on a cluster started with HEADROOM_PEERS=1).

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Replicas of a Deployment as its spec says, every quarter second until `want` or `timeout`;
/// returns when the count first moved from `from` and when it reached `want`.
fn watch_replicas(
    ns: &str,
    name: &str,
    from: i64,
    want: i64,
    since: Instant,
    timeout: Duration,
) -> (Option<f64>, Option<f64>) {
    let mut first = None;
    while since.elapsed() < timeout {
        let n = spec_replicas(ns, "deployment", name);
        let t = since.elapsed().as_secs_f64();
        if n != from && first.is_none() {
            first = Some(t);
        }
        if n == want {
            return (first, Some(t));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    (first, None)
}

/// The external metric as the HPA controller reads it through the aggregation layer.
fn external_metric(ns: &str, metric: &str, selector: &str) -> Option<f64> {
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}?labelSelector={selector}"
    );
    let out = kubectl(&["get", "--raw", &path]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let q = v["items"][0]["value"].as_str()?;
    // Kubernetes quantities: "5", "100", "300m".
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.parse().ok(),
    }
}

fn hpa(ns: &str, target: &str, metric: &str, selector: &str, target_spec: &str) -> String {
    format!(
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: {target}, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric:
          name: {metric}
          selector: {{matchLabels: {selector}}}
        target: {target_spec}
"#
    )
}

#[test]
fn e2e_peers_the_hpa_and_headroom_scale_the_same_backlog_step() {
    cluster_with_peers();
    let ns = Namespace::new("e2e-peers-step");
    set_backlog(&ns.0, "q", 5.0);
    apply(&deployment("by-hpa", &ns.0, 1)).expect("Deployment by-hpa");
    apply(&deployment("by-headroom", &ns.0, 1)).expect("Deployment by-headroom");
    wait_until(
        "prometheus-adapter serving the backlog",
        Duration::from_secs(60),
        || {
            external_metric(&ns.0, "rabbitmq_queue_messages_ready", "queue%3Dq")
                .filter(|v| (*v - 5.0).abs() < 1e-9)
        },
    );
    // 10 messages per replica for both: 100 messages want 10 replicas.
    apply(&hpa(
        &ns.0,
        "by-hpa",
        "rabbitmq_queue_messages_ready",
        "{queue: q}",
        "{type: AverageValue, averageValue: \"10\"}",
    ))
    .expect("the HPA");
    let _operator = Operator::start(&ns.0);
    apply(&format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: by-headroom, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: by-headroom}}
  minReplicas: 1
  maxReplicas: 10
  interval: 15s
  signals:
    - name: backlog
      queue: {{query: '{q}', targetPerReplica: 10}}
"#,
        ns = ns.0,
        q = backlog_query(&ns.0, "q")
    ))
    .expect("the policy");
    // Both settle at 1 (5 messages) and report the reading before the step.
    wait_until(
        "the HPA reading the metric",
        Duration::from_secs(60),
        || hpa_external_reading(&ns.0, "by-hpa"),
    );
    wait_until(
        "the policy's first decision",
        Duration::from_secs(60),
        || policy(&ns.0, "by-headroom")["status"]["desiredReplicas"].as_i64(),
    );

    set_backlog(&ns.0, "q", 100.0);
    let step = Instant::now();
    let by_hpa = std::thread::scope(|s| {
        let hpa =
            s.spawn(|| watch_replicas(&ns.0, "by-hpa", 1, 10, step, Duration::from_secs(150)));
        let hr = watch_replicas(&ns.0, "by-headroom", 1, 10, step, Duration::from_secs(150));
        let hpa = hpa.join().unwrap_or((None, None));
        (hpa, hr)
    });
    let ((hpa_first, hpa_ten), (hr_first, hr_ten)) = by_hpa;
    println!(
        "step 5 -> 100 messages (10 per replica): HPA first change {hpa_first:?}s, at 10 {hpa_ten:?}s; \
         Headroom (15s) first change {hr_first:?}s, at 10 {hr_ten:?}s"
    );
    println!("{}", kubectl_ok(&["get", "hpa,sp", "-n", &ns.0]));
    assert!(
        hpa_ten.is_some(),
        "the real HPA did not reach 10 replicas within 150s"
    );
    assert!(hr_ten.is_some(), "Headroom did not reach 10 replicas");
}

#[test]
fn e2e_peers_the_hpa_scales_on_p95_through_prometheus_adapter() {
    cluster_with_peers();
    let ns = Namespace::new("e2e-peers-p95");
    let labels = [("namespace", ns.0.as_str()), ("service", "web")];
    exporter().requests(&labels, 0.1, 50.0);
    apply(&deployment("web", &ns.0, 1)).expect("Deployment web");
    wait_until(
        "prometheus-adapter serving the p95",
        Duration::from_secs(90),
        || {
            external_metric(&ns.0, "http_request_duration_seconds_p95", "service%3Dweb")
                .filter(|v| *v > 0.05 && *v < 0.2)
        },
    );
    // What a user would write to compare with Headroom's latency signal: a Value target, so
    // the HPA wants replicas × p95 / 300ms.
    apply(&hpa(
        &ns.0,
        "web",
        "http_request_duration_seconds_p95",
        "{service: web}",
        "{type: Value, value: 300m}",
    ))
    .expect("the HPA");
    // Requests slow to 1.2s: 4x the target, so the HPA wants 4x the replicas.
    exporter().requests(&labels, 1.2, 50.0);
    let (first, _) = watch_replicas(&ns.0, "web", 1, 4, Instant::now(), Duration::from_secs(120));
    println!("{}", kubectl_ok(&["get", "hpa", "-n", &ns.0]));
    assert!(
        first.is_some() && spec_replicas(&ns.0, "deployment", "web") > 1,
        "the real HPA did not scale on the p95 within 120s"
    );
}

#[test]
fn e2e_peers_keda_scales_the_backlog_step_through_its_own_adapter() {
    let cluster = cluster_with_peers();
    let ns = Namespace::new("e2e-peers-keda");
    set_backlog(&ns.0, "q", 5.0);
    apply(&deployment("by-keda", &ns.0, 1)).expect("Deployment by-keda");
    // KEDA at its defaults (pollingInterval 30), a replica floor of 1 so that its HPA scales,
    // 10 messages per replica as above.
    apply(&format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: by-keda, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: by-keda}}
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
    - type: prometheus
      metadata:
        serverAddress: {prometheus}
        query: '{q}'
        threshold: "10"
"#,
        ns = ns.0,
        prometheus = cluster.prometheus_url,
        q = backlog_query(&ns.0, "q")
    ))
    .expect("the ScaledObject");
    // KEDA creates the HPA, which reads `s0-prometheus` through route.py and KEDA's adapter.
    wait_until(
        "KEDA's HPA reading the backlog",
        Duration::from_secs(90),
        || hpa_external_reading(&ns.0, "keda-hpa-by-keda"),
    );
    assert_eq!(
        external_metric(
            &ns.0,
            "s0-prometheus",
            "scaledobject.keda.sh%2Fname%3Dby-keda"
        ),
        Some(5.0),
        "KEDA's adapter serves the backlog it reads from Prometheus"
    );
    set_backlog(&ns.0, "q", 100.0);
    let (first, ten) = watch_replicas(
        &ns.0,
        "by-keda",
        1,
        10,
        Instant::now(),
        Duration::from_secs(150),
    );
    println!("step 5 -> 100 messages: KEDA first change {first:?}s, at 10 {ten:?}s");
    println!("{}", kubectl_ok(&["get", "scaledobject,hpa", "-n", &ns.0]));
    assert!(ten.is_some(), "KEDA did not reach 10 replicas within 150s");
}
