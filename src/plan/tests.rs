use super::*;
use crate::api::ScalingPolicy;

fn spec(yaml: &str) -> ScalingPolicySpec {
    match serde_yaml::from_str::<ScalingPolicy>(yaml) {
        Ok(p) => p.spec,
        Err(e) => panic!("{e}"),
    }
}

const WEB: &str = include_str!("../../deploy/examples/web.yaml");
const WORKER: &str = include_str!("../../deploy/examples/worker.yaml");

#[test]
fn the_examples_plan_every_reading_once_with_its_field() {
    let p = Plan::resolve(&spec(WEB)).map_err(|e| e.to_string());
    let p = p.as_ref().map_err(String::as_str);
    assert!(p.is_ok(), "{p:?}");
    let Ok(p) = p else { return };
    let keys: Vec<&str> = p.queries().iter().map(|q| q.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "p95",
            "p95@short",
            "cpu",
            "cpu@short",
            "cpu/throttled",
            "cpu/pressure",
            "forecast/cpu",
            "inflight",
            "inflight@short",
            "forecast/inflight",
            "databaseCpu",
            "databaseCpu/regularly",
            "slowQuery",
            "errorRate",
            "connections",
            "poolWait",
            "creepingLatency/p95",
            "creepingLatency/requests",
            "connectionBudget/maxConnections",
            "predictive/load",
        ]
    );
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), keys.len());
    assert!(p.queries().iter().all(|q| q.field.starts_with("spec.")));
    assert!(p.signals[0].up_only && !p.signals[1].up_only);

    let w = Plan::resolve(&spec(WORKER)).map_err(|e| e.to_string());
    let names: Vec<String> = w
        .map(|w| w.signals.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["backlog", "backlog-arrivals"]);
}

#[test]
fn the_hpa_view_keeps_the_targets_and_drops_the_guardrails() {
    let Ok(p) = Plan::resolve(&spec(WEB)) else {
        panic!("example")
    };
    let h = p.as_hpa();
    assert!(h.guardrails.is_none());
    assert!(h.signals.iter().all(|s| !s.up_only));
    let keys: Vec<&str> = h.queries().iter().map(|q| q.key.as_str()).collect();
    assert_eq!(keys, ["p95", "cpu", "inflight"]);
}

/// A policy's plan from the lines of its spec after targetRef.
fn planned(yaml_tail: &str) -> Result<Plan, FieldErrors> {
    let text = format!(
        "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: x}}\nspec:\n  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: x}}\n{yaml_tail}"
    );
    Plan::resolve(&spec(&text))
}

fn errors(yaml_tail: &str) -> Vec<String> {
    match planned(yaml_tail) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn what_the_schema_cannot_check_is_refused_with_its_field() {
    let e = errors(
        "  maxReplicas: 5\n  signals:\n    - name: p95\n      latency: {metric: m, target: 0s}\n",
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("spec.signals[0].latency.target")),
        "{e:?}"
    );
    let e = errors(
        "  maxReplicas: 5\n  signals:\n    - name: p95\n      latency: {metric: m, target: 1s, selector: {'a\"}': b}}\n",
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("spec.signals[0].latency.selector: key")),
        "{e:?}"
    );
    let e = errors(
        "  maxReplicas: 5\n  signals:\n    - name: q\n      queue: {query: x, targetPerReplica: 1}\n  guardrails:\n    connectionBudget: {database: d, poolSizePerReplica: 10, maxConnections: -100}\n",
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("spec.guardrails.connectionBudget.maxConnections")),
        "{e:?}"
    );
    let e = errors(
        "  maxReplicas: 5\n  signals:\n    - name: q\n      queue: {query: x, targetPerReplica: 1}\n  guardrails:\n    schedule:\n      - {start: '2026-12-01T11:00:00Z', end: '2026-12-01T09:00:00Z', minReplicas: 2}\n",
    );
    assert_eq!(e, ["spec.guardrails.schedule[0].end: must be after start"]);
    let e = errors(
        "  maxReplicas: 5\n  signals:\n    - name: q\n      queue: {query: x, targetPerReplica: 1}\n  indicators:\n    poolWait: {query: w, watch: 2, act: 1}\n",
    );
    assert_eq!(e, ["spec.indicators.poolWait.watch: must not exceed act"]);
    let e = errors("  minReplicas: 6\n  maxReplicas: 5\n  interval: 2h\n  signals: []\n");
    assert!(e.iter().any(|e| e.starts_with("spec.minReplicas")), "{e:?}");
    assert!(e.iter().any(|e| e.starts_with("spec.interval")), "{e:?}");
    assert!(e.iter().any(|e| e.starts_with("spec.signals")), "{e:?}");
}

#[test]
fn the_calibration_window_defaults_to_three_hours_and_is_bounded() {
    let q = "  maxReplicas: 5\n  signals:\n    - name: q\n      queue: {query: x, targetPerReplica: 1}\n";
    for (window, error) in [
        (
            "30s",
            Some("spec.headroom.calibrationWindow: must be between 1m and 168h, got 30s"),
        ),
        (
            "200h",
            Some("spec.headroom.calibrationWindow: must be between 1m and 168h, got 200h"),
        ),
        ("6h", None),
    ] {
        let e = errors(&format!("{q}  headroom: {{calibrationWindow: {window}}}\n"));
        match error {
            Some(msg) => assert_eq!(e, [msg], "{window}"),
            None => assert!(e.is_empty(), "{window}: {e:?}"),
        }
    }
    let text = format!(
        "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: x}}\nspec:\n  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: x}}\n{q}"
    );
    let plan = Plan::resolve(&spec(&text)).map_err(|e| e.to_string());
    assert_eq!(
        plan.map(|p| p.calibration_window),
        Ok(PromDuration::from_secs(3 * 3600))
    );
}

#[test]
fn short_windows_hold_two_samples_at_the_scrape_interval() {
    let Ok(p) = Plan::resolve(&spec(WEB)) else {
        panic!("example")
    };
    let window = |p: &Plan, key: &str| {
        p.queries()
            .iter()
            .find(|q| q.key == key)
            .and_then(|q| match &q.measure {
                Measure::Latency { window, .. } | Measure::CpuUtilization { window } => {
                    Some(*window)
                }
                _ => None,
            })
    };
    assert_eq!(window(&p, "p95@short"), Some(PromDuration::from_secs(6)));
    // cAdvisor refreshes every 10-15 s: CPU's short window is never under 30 s.
    assert_eq!(window(&p, "cpu@short"), Some(PromDuration::from_secs(30)));
    let at_15s = p
        .clone()
        .for_scrape_interval(std::time::Duration::from_secs(15));
    assert_eq!(
        window(&at_15s, "p95@short"),
        Some(PromDuration::from_secs(30))
    );
    assert_eq!(
        window(&at_15s, "cpu@short"),
        Some(PromDuration::from_secs(30))
    );
    // The signals' own windows are the user's: unchanged.
    assert_eq!(window(&at_15s, "p95"), Some(PromDuration::from_secs(60)));
    // A 1 s scrape (the test cluster) keeps the 6 s window.
    let at_1s = p.for_scrape_interval(std::time::Duration::from_secs(1));
    assert_eq!(
        window(&at_1s, "p95@short"),
        Some(PromDuration::from_secs(6))
    );
}

#[test]
fn predictive_scaling_is_planned_with_its_step_and_its_load_or_refused_by_field() {
    let p = planned(
        "  maxReplicas: 5\n  signals:\n    - name: p95\n      latency: {metric: http_seconds, target: 300ms, selector: {service: web}}\n  predictive: {mode: Observe, lookback: 336h}\n",
    );
    let Ok(p) = p else { panic!("{p:?}") };
    let Some(pp) = &p.predictive else {
        panic!("planned")
    };
    assert!(!pp.enforce);
    // 14 days over 2016 readings: 10 minutes a step.
    assert_eq!((pp.step_seconds, pp.points()), (600, 2016));
    assert_eq!(
        pp.load_query,
        "sum(rate(http_seconds_count{service=\"web\"}[1m]))"
    );
    assert!(p.queries().iter().any(|q| q.key == "predictive/load"));
    // The HPA's view has no forecast.
    assert!(p.as_hpa().predictive.is_none());
    let off = planned(
        "  maxReplicas: 5\n  signals:\n    - name: p95\n      latency: {metric: m, target: 300ms}\n  predictive: {mode: Disabled}\n",
    );
    assert!(off.is_ok_and(
        |p| p.predictive.is_none() && !p.queries().iter().any(|q| q.key == "predictive/load")
    ));

    let e = errors(
        "  maxReplicas: 5\n  signals:\n    - name: c\n      cpu: {targetUtilization: 70}\n  predictive: {mode: Enforce, lookback: 2h, horizon: 2h}\n",
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("spec.predictive.lookback: must be 24h to 672h")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("spec.predictive.horizon: must be 1m to 1h")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("spec.predictive: needs a load to learn")),
        "{e:?}"
    );
}

#[test]
fn a_target_named_outside_what_kubernetes_accepts_is_refused_by_field() {
    let with = |target: &str| {
        let text = format!(
            "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: x}}\nspec:\n  targetRef: {target}\n  maxReplicas: 5\n  signals:\n    - name: cpu\n      cpu: {{targetUtilization: 60}}\n"
        );
        match Plan::resolve(&spec(&text)) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }
    };
    for ok in [
        "{apiVersion: apps/v1, kind: Deployment, name: web}",
        "{apiVersion: v1, kind: ReplicationController, name: web.v2-0}",
        "{apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: a}",
        "{apiVersion: example.com/v2beta3, kind: Web2, name: web}",
    ] {
        assert_eq!(with(ok), Vec::<String>::new(), "{ok}");
    }
    for (bad, field) in [
        (
            "{apiVersion: apps/v1, kind: Deployment, name: 'web?dryRun=All'}",
            "spec.targetRef.name",
        ),
        (
            "{apiVersion: apps/v1, kind: Deployment, name: '../secrets/x'}",
            "spec.targetRef.name",
        ),
        (
            "{apiVersion: apps/v1, kind: Deployment, name: Web}",
            "spec.targetRef.name",
        ),
        (
            "{apiVersion: apps/v1, kind: Deployment, name: ''}",
            "spec.targetRef.name",
        ),
        (
            "{apiVersion: apps/v1, kind: 'deployments/x', name: web}",
            "spec.targetRef.kind",
        ),
        (
            "{apiVersion: apps/v1, kind: deployment, name: web}",
            "spec.targetRef.kind",
        ),
        (
            "{apiVersion: 'apps/v1/../x', kind: Deployment, name: web}",
            "spec.targetRef.apiVersion",
        ),
        (
            "{apiVersion: apps/1, kind: Deployment, name: web}",
            "spec.targetRef.apiVersion",
        ),
        (
            "{apiVersion: apps/v1gamma1, kind: Deployment, name: web}",
            "spec.targetRef.apiVersion",
        ),
    ] {
        let e = with(bad);
        assert!(e.iter().any(|e| e.starts_with(field)), "{bad}: {e:?}");
    }
}

#[test]
fn a_query_longer_than_the_bound_is_refused_by_its_field() {
    let long = "x".repeat(super::validate::MAX_QUERY_BYTES + 1);
    let e = errors(&format!(
        "  maxReplicas: 5\n  signals:\n    - name: q\n      queue: {{query: 'sum(a)', arrivalRateQuery: '{long}', ratePerReplica: 2, targetPerReplica: 10}}\n"
    ));
    assert!(
        e.iter()
            .any(|e| e
                .starts_with("spec.signals[0].queue.arrivalRateQuery: must be at most 4096 bytes")),
        "{e:?}"
    );
    let fits = "x".repeat(super::validate::MAX_QUERY_BYTES);
    let e = errors(&format!(
        "  maxReplicas: 5\n  signals:\n    - name: q\n      custom: {{query: 'sum({fits})', target: 1, targetType: Value}}\n"
    ));
    assert!(
        e.iter()
            .any(|e| e.contains("custom.query: must be at most")),
        "{e:?}"
    );
    assert!(errors("  maxReplicas: 5\n  signals:\n    - name: q\n      queue: {query: 'sum(a)', targetPerReplica: 10}\n").is_empty());
}
