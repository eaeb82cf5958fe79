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

/// Headroom on the backlog of queue `q`, 10 messages per replica, every 15 s.
fn by_headroom(ns: &str, floor: &str) -> String {
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: by-headroom, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: by-headroom}}
  {floor}
  maxReplicas: 10
  interval: 15s
  signals:
    - name: backlog
      queue: {{query: '{q}', targetPerReplica: 10}}
"#,
        q = backlog_query(ns, "q")
    )
}

/// KEDA on the backlog of queue `q` from Prometheus, 10 messages per replica, polling every 30 s.
fn by_keda(ns: &str, prometheus: &str, floor: &str) -> String {
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: by-keda, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: by-keda}}
  {floor}
  maxReplicaCount: 10
  triggers:
    - type: prometheus
      metadata:
        serverAddress: {prometheus}
        query: '{q}'
        threshold: "10"
"#,
        q = backlog_query(ns, "q")
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
    apply(&by_headroom(&ns.0, "minReplicas: 1")).expect("the policy");
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
    apply(&by_keda(
        &ns.0,
        &cluster.prometheus_url,
        "minReplicaCount: 1",
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

#[test]
fn e2e_peers_keda_and_headroom_start_the_same_queue_from_zero_and_return_to_it() {
    let cluster = cluster_with_peers();
    let ns = Namespace::new("e2e-peers-zero");
    set_backlog(&ns.0, "q", 0.0);
    apply(&deployment("by-keda", &ns.0, 0)).expect("Deployment by-keda");
    apply(&deployment("by-headroom", &ns.0, 0)).expect("Deployment by-headroom");
    // Both at their usual intervals (KEDA polls every 30 s, Headroom evaluates every 15 s),
    // 10 messages per replica, back to zero 30 s after the queue is empty.
    apply(&by_keda(
        &ns.0,
        &cluster.prometheus_url,
        "minReplicaCount: 0\n  cooldownPeriod: 30",
    ))
    .expect("the ScaledObject");
    let _operator = Operator::start(&ns.0);
    apply(&by_headroom(&ns.0, "minReplicas: 0\n  idleCooldown: 30s")).expect("the policy");
    wait_until(
        "KEDA's HPA for the ScaledObject",
        Duration::from_secs(90),
        || {
            kubectl(&["get", "hpa", "keda-hpa-by-keda", "-n", &ns.0])
                .status
                .success()
                .then_some(())
        },
    );
    wait_until("the policy idle at zero", Duration::from_secs(60), || {
        (limited_by(&ns.0, "by-headroom") == "Idle").then_some(())
    });

    set_backlog(&ns.0, "q", 30.0);
    let seen = wait_prom(&cluster.prometheus_url, &backlog_query(&ns.0, "q"), |v| {
        v > 0.0
    });
    let timeout = Duration::from_secs(150);
    let (keda, headroom) = std::thread::scope(|s| {
        let keda = s.spawn(|| watch_replicas(&ns.0, "by-keda", 0, 3, seen, timeout));
        let headroom = watch_replicas(&ns.0, "by-headroom", 0, 3, seen, timeout);
        (keda.join().unwrap_or((None, None)), headroom)
    });
    set_backlog(&ns.0, "q", 0.0);
    let empty = wait_prom(&cluster.prometheus_url, &backlog_query(&ns.0, "q"), |v| {
        v == 0.0
    });
    let (keda_zero, headroom_zero) = std::thread::scope(|s| {
        let keda = s.spawn(|| watch_replicas(&ns.0, "by-keda", 3, 0, empty, timeout));
        let headroom = watch_replicas(&ns.0, "by-headroom", 3, 0, empty, timeout);
        (keda.join().unwrap_or((None, None)).1, headroom.1)
    });
    let fmt = |v: Option<f64>| v.map_or("never".to_string(), |s| format!("{s:.1}s"));
    let report = format!(
        "# From zero, beside real KEDA\n\n0 -> 30 messages (10 per replica), seconds after Prometheus first shows them; then empty, seconds after Prometheus shows 0 (both cool down 30 s).\n\n| | first replica | at 3 | back at 0 |\n|---|---|---|---|\n| KEDA (polling 30 s) | {} | {} | {} |\n| Headroom (interval 15 s) | {} | {} | {} |\n",
        fmt(keda.0),
        fmt(keda.1),
        fmt(keda_zero),
        fmt(headroom.0),
        fmt(headroom.1),
        fmt(headroom_zero)
    );
    println!("{report}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("peers-from-zero.md"), &report)
        .expect("write target/bench/peers-from-zero.md");
    assert!(keda.0.is_some(), "KEDA did not start from zero within 150s");
    // Headroom: within one interval and 2 s of the messages, straight to 3.
    let first = headroom.0.unwrap_or(f64::INFINITY);
    assert!(first <= 17.0, "Headroom started after {first:.1}s");
    assert_eq!(headroom.0, headroom.1, "Headroom went to 3 in one step");
    let back = headroom_zero.unwrap_or(f64::INFINITY);
    assert!(
        (27.0..=60.0).contains(&back),
        "Headroom back at zero after {back:.1}s (cooldown 30s)"
    );
}
