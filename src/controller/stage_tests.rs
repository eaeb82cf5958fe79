//! The stages of one evaluation against a recording API server (narrow unit tests; the
//! end-to-end tests run them against a real one): what each stage asks of Kubernetes and
//! Prometheus, given its input.

use std::time::Duration;

use http::{Method, StatusCode};
use kube::Client;
use kube::runtime::events::Reporter;
use serde_json::json;

use super::act::{Acted, act};
use super::context::{Context, Settings};
use super::events::Events;
use super::publish::publish;
use super::read::Read;
use super::target::TargetState;
use super::test_api::{Log, api, logged};
use crate::api::{HeadroomStatus, ScalingPolicy, ScalingPolicyStatus};
use crate::decision::guardrails::Finding;
use crate::decision::{Decision, Evaluation, Limit, SignalReading};
use crate::metrics::Limits;
use crate::plan::{Plan, QueryError};
use crate::telemetry::Metrics;

/// An API server that knows apps/v1 and accepts every write.
fn recording() -> (Client, Log) {
    api(|method, path, _| {
        let answer = match (method, path) {
            (_, "/apis/apps/v1") => json!({"kind": "APIResourceList", "groupVersion": "apps/v1",
                "resources": [
                    {"name": "deployments", "singularName": "deployment", "namespaced": true,
                     "kind": "Deployment", "verbs": ["get", "list", "watch", "patch"]},
                    {"name": "deployments/scale", "singularName": "", "namespaced": true,
                     "group": "autoscaling", "version": "v1", "kind": "Scale",
                     "verbs": ["get", "patch", "update"]}]}),
            (&Method::PATCH, p) if p.ends_with("/scale") => json!({"apiVersion": "autoscaling/v1",
                "kind": "Scale", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"replicas": 5}, "status": {"replicas": 3}}),
            (&Method::PATCH, p) if p.ends_with("/status") => {
                json!({"apiVersion": "headroom.dev/v1alpha1",
                "kind": "ScalingPolicy", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {}})
            }
            _ => json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "e", "namespace": "shop"}, "eventTime": null}),
        };
        let status = if *method == Method::POST {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        (status, answer.to_string().into_bytes())
    })
}

fn context(client: Client) -> Context {
    // One TLS provider for the process, as `headroom run` installs it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = Settings {
        // Nothing listens there: every query fails, as with Prometheus down.
        prometheus_url: "http://127.0.0.1:9".into(),
        query_timeout: Duration::from_secs(1),
        downscale_stabilization_seconds: 300,
        allow_cross_namespace_queries: false,
        allowed_prometheus_hosts: vec![],
        scrape_interval: Some(Duration::from_secs(15)),
        shard: None,
        calibrations_per_second: 5.0,
        forecasts_per_second: 2.0,
        limits: Limits::default(),
        min_interval: Duration::from_secs(1),
        response_bytes_in_flight: 256 << 20,
    };
    let reporter = Reporter {
        controller: "headroom".into(),
        instance: None,
    };
    let events = Events::new(client.clone(), reporter);
    Context::new(client, settings, events, Metrics::default())
}

fn policy(mode: &str) -> ScalingPolicy {
    let yaml = format!(
        r#"
apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: web, namespace: shop, generation: 1}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  mode: {mode}
  minReplicas: 1
  maxReplicas: 10
  signals:
    - name: backlog
      queue: {{query: 'sum(jobs)', targetPerReplica: 10}}
"#
    );
    match serde_yaml::from_str(&yaml) {
        Ok(p) => p,
        Err(e) => panic!("test policy: {e}"),
    }
}

fn read<'a>(policy: &'a ScalingPolicy, prev: Option<ScalingPolicyStatus>) -> Read<'a> {
    let plan = match Plan::resolve(&policy.spec) {
        Ok(p) => p,
        Err(e) => panic!("test plan: {e}"),
    };
    Read {
        policy,
        key: "shop/web".into(),
        ns: "shop".into(),
        plan,
        target: TargetState {
            current_replicas: 3,
            ready_replicas: 3,
            selector: None,
            controller: None,
        },
        prev: prev.map(std::borrow::Cow::Owned),
        raised_interval: None,
    }
}

fn decided(desired: i32, limited_by: Limit) -> Evaluation {
    let decision = Decision {
        desired_replicas: desired,
        reason: "backlog 50 over 10 a replica".into(),
        limited_by,
        proposals: vec![],
        recommendation: Some(desired),
    };
    let reading = SignalReading {
        name: "backlog".into(),
        kind: "queue",
        target: 10.0,
        value: Ok(50.0),
    };
    Evaluation::new(decision, vec![reading])
}

fn asked(log: &Log) -> Vec<String> {
    logged(log)
}

#[tokio::test]
async fn act_writes_the_scale_in_enforce_and_says_scaled() {
    let (client, log) = recording();
    let ctx = context(client);
    let p = policy("Enforce");
    let acted = act(&ctx, &read(&p, None), &decided(5, Limit::None)).await;
    assert!(acted.is_ok_and(|a| a.scaled_at.is_some()));
    let asked = asked(&log);
    assert!(
        asked.contains(&"PATCH /apis/apps/v1/namespaces/shop/deployments/web/scale".into()),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|a| a.starts_with("POST ") && a.contains("events")),
        "{asked:?}"
    );
    assert!(ctx.state.is_own_write("shop/Deployment/web", Some(5)));
}

#[tokio::test]
async fn act_only_recommends_in_recommend_mode_and_says_it_once() {
    let (client, log) = recording();
    let ctx = context(client);
    let p = policy("Recommend");
    let acted = act(&ctx, &read(&p, None), &decided(5, Limit::None)).await;
    assert!(acted.is_ok_and(|a| a.scaled_at.is_none()));
    let first = asked(&log);
    assert!(!first.iter().any(|a| a.ends_with("/scale")), "{first:?}");
    assert_eq!(first.iter().filter(|a| a.contains("events")).count(), 1);
    // The same recommendation as status already shows: no new Event.
    let said = ScalingPolicyStatus {
        desired_replicas: Some(5),
        ..Default::default()
    };
    let again = act(&ctx, &read(&p, Some(said)), &decided(5, Limit::None)).await;
    assert!(again.is_ok());
    assert_eq!(asked(&log).len(), first.len());
}

#[tokio::test]
async fn act_leaves_a_target_at_zero_alone() {
    let (client, log) = recording();
    let ctx = context(client);
    let p = policy("Enforce");
    let acted = act(&ctx, &read(&p, None), &decided(0, Limit::ScalingDisabled)).await;
    assert!(acted.is_ok_and(|a| a.scaled_at.is_none()));
    assert!(asked(&log).is_empty());
}

#[tokio::test]
async fn publish_writes_status_and_warns_of_a_database_hold() {
    let (client, log) = recording();
    let ctx = context(client);
    let p = policy("Enforce");
    let mut ev = decided(3, Limit::DatabaseBound);
    ev.findings = vec![Finding {
        reason: "DatabaseBound",
        active: true,
        message: "database CPU regularly over 70 %".into(),
    }];
    let r = read(&p, None);
    let done = publish(&ctx, &r, ev, Acted { scaled_at: None }).await;
    assert!(done.is_ok());
    let asked = asked(&log);
    assert!(
        asked.contains(
            &"PATCH /apis/headroom.dev/v1alpha1/namespaces/shop/scalingpolicies/web/status".into()
        ),
        "{asked:?}"
    );
    assert!(asked.iter().any(|a| a.contains("events")), "{asked:?}");
    // What was written is what the next evaluation compares with.
    let written = ctx
        .state
        .written_status("shop/web", None, std::time::Instant::now());
    assert!(written.is_some_and(|s| s.limited_by.as_deref() == Some("DatabaseBound")));
}

#[tokio::test]
async fn observe_turns_an_unreachable_prometheus_into_an_error_per_reading() {
    let (client, _log) = recording();
    let ctx = context(client);
    let p = policy("Enforce");
    let r = read(&p, None);
    let observation = super::observe::observe(&ctx, &r).await;
    for q in r.plan.queries() {
        let value = observation.value(&q.key);
        assert!(
            matches!(value, Err(QueryError::Unreachable(_))),
            "{}: {value:?}",
            q.key
        );
    }
}

#[tokio::test]
async fn decide_remembers_what_it_decided_and_never_scales_down_on_missing_data() {
    let (client, _log) = recording();
    let ctx = context(client);
    let p = policy("Enforce");
    let r = read(&p, None);
    let observation = super::observe::observe(&ctx, &r).await;
    let ev = super::decide::decide(&ctx, &r, &observation).await;
    assert!(ev.decision.desired_replicas >= 3, "{:?}", ev.decision);
    assert_eq!(ev.decision.limited_by, Limit::MetricsUnavailable);
    assert_eq!(ctx.state.len(), 1);
}

#[tokio::test]
async fn publish_drops_an_estimate_in_status_that_this_process_did_not_make() {
    let (client, _log) = recording();
    let ctx = context(client);
    let p = policy("Enforce");
    let forged = ScalingPolicyStatus {
        headroom: Some(HeadroomStatus {
            factor: Some(50.0),
            summary: "50x".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = read(&p, Some(forged));
    let written = |ctx: &Context| {
        ctx.state
            .written_status("shop/web", None, std::time::Instant::now())
    };
    let done = publish(&ctx, &r, decided(3, Limit::None), Acted { scaled_at: None }).await;
    assert!(done.is_ok());
    let s = written(&ctx);
    assert!(s.as_ref().is_some_and(|s| s.headroom.is_none()), "{s:?}");
    // Its own estimate is written, whatever status said before.
    let own = HeadroomStatus {
        factor: Some(1.8),
        summary: "1.8x database-cpu".into(),
        ..Default::default()
    };
    let now = std::time::Instant::now();
    assert!(
        ctx.state
            .calibration_due("shop/web", now, Duration::from_secs(60))
    );
    ctx.state.calibrated("shop/web", Some(own.clone()));
    let done = publish(&ctx, &r, decided(3, Limit::None), Acted { scaled_at: None }).await;
    assert!(done.is_ok());
    assert_eq!(written(&ctx).and_then(|s| s.headroom), Some(own));
}
