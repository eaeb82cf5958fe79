//! One evaluation of one policy: read target → read signals → decide → actuate → status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::Context;
use super::status::{self, Extras, Outcome, Reading};
use super::target::{TargetState, pod_names};
use crate::api::{Mode, ScalingPolicy, ScalingPolicySpec, SignalKind};
use crate::decision::guardrails::Finding;
use crate::decision::{self, Limit, SignalValue, Tolerance};
use crate::error::{Error, Result};
use crate::metrics::promql::{self, TargetPods};

const FIELD_MANAGER: &str = "headroom";

pub async fn reconcile(policy: Arc<ScalingPolicy>, ctx: Arc<Context>) -> Result<Action> {
    let start = Instant::now();
    let result = evaluate(&policy, &ctx).await;
    ctx.metrics
        .reconciled(result.is_ok(), start.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.succeeded(&key(&policy));
    }
    result
}

pub fn error_policy(policy: Arc<ScalingPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(error.metric_label());
    let delay = ctx.backoff(&key(&policy));
    tracing::warn!(policy = %key(&policy), %error, retry_in = ?delay, "evaluation failed");
    Action::requeue(delay)
}

fn key(p: &ScalingPolicy) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn evaluate(policy: &ScalingPolicy, ctx: &Context) -> Result<Action> {
    let ns = policy
        .namespace()
        .ok_or_else(|| Error::InvalidPolicy("ScalingPolicy must be namespaced".into()))?;
    let spec = &policy.spec;
    let interval = spec.interval.as_duration().max(Duration::from_secs(1));
    let prev = policy.status.as_ref();

    if spec.mode == Mode::Paused {
        write_status(policy, ctx, &ns, &Outcome::Paused, None).await?;
        return Ok(Action::requeue(interval));
    }

    let target = match ctx.resolver.read(&ctx.client, &ns, &spec.target_ref).await {
        Ok(t) => t,
        Err(e @ Error::Target { .. }) => {
            let message = e.to_string();
            let was_ready = prev
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .is_none_or(|c| c.status != crate::api::ConditionStatus::False);
            if was_ready {
                publish(
                    ctx,
                    policy,
                    EventType::Warning,
                    "TargetUnavailable",
                    "Read",
                    message.clone(),
                )
                .await;
            }
            write_status(
                policy,
                ctx,
                &ns,
                &Outcome::TargetUnavailable { message },
                None,
            )
            .await?;
            return Ok(Action::requeue(interval));
        }
        Err(e) => return Err(e),
    };

    let (readings, values, prometheus, pods) = read_signals(policy, ctx, &ns, &target).await;
    let now = Instant::now();
    let pkey = key(policy);
    let history = ctx
        .histories
        .lock()
        .map(|mut h| h.view(&pkey, now, target.current_replicas, target.ready_replicas))
        .unwrap_or_default();
    let input = decision::Input {
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        behavior: spec.behavior.clone(),
        tolerance: Tolerance::uniform(spec.tolerance.unwrap_or(0.1)),
        current_replicas: target.current_replicas,
        ready_replicas: target.ready_replicas,
        signals: values,
        history,
        downscale_stabilization_seconds: ctx.settings.downscale_stabilization_seconds,
    };
    let mut d = decision::decide(&input);
    let guard = super::guard::evaluate(
        policy,
        ctx,
        &ns,
        &pkey,
        &prometheus,
        &pods,
        &input,
        &d,
        &readings,
        now,
    )
    .await;
    let mut extras = Extras {
        indicators: guard.audit.rows,
        verdict: guard.audit.verdict.map(|v| v.as_str().to_string()),
        errors: guard.errors,
        ..Default::default()
    };
    if let Some(g) = guard.guarded {
        d.desired_replicas = g.desired;
        d.limited_by = g.limited_by;
        d.reason = g.reason;
        extras.findings = g.findings;
        extras.hourly_cost = g.hourly_cost;
    }
    ctx.metrics.decision(d.limited_by.as_str());
    publish_findings(ctx, policy, &extras.findings, &d.reason).await;
    if let (Some(r), Ok(mut h)) = (d.recommendation, ctx.histories.lock()) {
        h.record_recommendation(&pkey, now, r);
    }

    let current = target.current_replicas;
    let metrics_were_ok = prev
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "MetricsAvailable"))
        .is_none_or(|c| c.status == crate::api::ConditionStatus::True);
    let failed: Vec<&Reading> = readings.iter().filter(|r| r.value.is_err()).collect();
    if metrics_were_ok && !failed.is_empty() {
        let note = failed
            .iter()
            .map(|r| {
                format!(
                    "{}: {}",
                    r.name,
                    r.value.as_ref().err().map_or("", |e| e.as_str())
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        publish(
            ctx,
            policy,
            EventType::Warning,
            "MetricsUnavailable",
            "ReadSignals",
            note,
        )
        .await;
    }

    let mut last_scale_time = None;
    let wants_change = d.desired_replicas != current && d.limited_by != Limit::ScalingDisabled;
    if spec.mode == Mode::Enforce && wants_change {
        let t = &spec.target_ref;
        if let Err(e) = ctx
            .resolver
            .scale(&ctx.client, &ns, t, d.desired_replicas)
            .await
        {
            publish(
                ctx,
                policy,
                EventType::Warning,
                "FailedScale",
                "Scale",
                e.to_string(),
            )
            .await;
            return Err(e);
        }
        last_scale_time = Some(now_rfc3339());
        if let (Ok(mut h), Some(at)) = (ctx.histories.lock(), &last_scale_time) {
            h.record_scale(&pkey, now, d.desired_replicas - current, at.clone());
        }
        ctx.metrics.scaled(d.desired_replicas > current);
        let note = format!(
            "{}/{} scaled from {current} to {}: {}",
            t.kind, t.name, d.desired_replicas, d.reason
        );
        tracing::info!(policy = %pkey, from = current, to = d.desired_replicas, reason = %d.reason, "scaled");
        publish(ctx, policy, EventType::Normal, "Scaled", "Scale", note).await;
    } else if spec.mode == Mode::Recommend
        && wants_change
        && prev.and_then(|s| s.desired_replicas) != Some(d.desired_replicas)
    {
        let note = format!(
            "would scale from {current} to {}: {}",
            d.desired_replicas, d.reason
        );
        publish(
            ctx,
            policy,
            EventType::Normal,
            "Recommended",
            "Recommend",
            note,
        )
        .await;
    }

    if last_scale_time.is_none() {
        last_scale_time = ctx
            .histories
            .lock()
            .ok()
            .and_then(|h| h.last_scale_time(&pkey));
    }
    let outcome = Outcome::Decided {
        mode: spec.mode,
        current,
        readings,
        decision: d,
        extras,
    };
    write_status(policy, ctx, &ns, &outcome, last_scale_time).await?;
    Ok(Action::requeue(interval))
}

/// Guardrails that became active since the last evaluation get an Event; a database hold is
/// a Warning that says what to do instead of adding app servers.
async fn publish_findings(
    ctx: &Context,
    policy: &ScalingPolicy,
    findings: &[Finding],
    reason: &str,
) {
    for f in findings.iter().filter(|f| f.active) {
        let was = policy
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == f.reason))
            .is_some_and(|c| c.status == crate::api::ConditionStatus::True);
        if was {
            continue;
        }
        let (kind, note) = match f.reason {
            "DatabaseBound" => (EventType::Warning, reason.to_string()),
            _ => (EventType::Normal, format!("{}: {}", f.message, reason)),
        };
        publish(ctx, policy, kind, f.reason, "Guardrail", note).await;
    }
}

type SignalReads = (
    Vec<Reading>,
    Vec<SignalValue>,
    Result<crate::metrics::Prometheus, String>,
    Vec<String>,
);

/// Reads every signal; a failure is recorded on that signal and never aborts the others.
async fn read_signals(
    policy: &ScalingPolicy,
    ctx: &Context,
    ns: &str,
    target: &TargetState,
) -> SignalReads {
    let spec = &policy.spec;
    let needs_pods = spec.signals.iter().any(|s| s.cpu.is_some());
    let pods: Result<Vec<String>, String> = match (&target.selector, needs_pods) {
        (_, false) => Ok(vec![]),
        (None, true) => {
            Err("the target's scale status has no selector, so its pods cannot be found".into())
        }
        (Some(sel), true) => pod_names(&ctx.client, ns, sel)
            .await
            .map_err(|e| e.to_string()),
    };
    let prometheus = prometheus_for(spec, ctx, ns).await;

    let futures = spec.signals.iter().map(|s| {
        let pods = &pods;
        let prometheus = &prometheus;
        async move {
            let Some(kind) = s.kind() else {
                return (
                    s.name.clone(),
                    0.0,
                    decision_type_of(None),
                    Err("exactly one of latency, cpu, queue or custom must be set".to_string()),
                    "invalid",
                );
            };
            let label = kind_label(kind);
            let pod_list = match (kind, pods) {
                (SignalKind::Cpu(_), Err(e)) => {
                    return (
                        s.name.clone(),
                        0.0,
                        decision_type_of(Some(kind)),
                        Err(e.clone()),
                        label,
                    );
                }
                (_, Ok(p)) => p.as_slice(),
                (_, Err(_)) => &[],
            };
            let q = promql::render(ns, kind, &TargetPods { pods: pod_list });
            let value = match prometheus {
                Ok(p) => p.scalar(&q.promql).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            (s.name.clone(), q.target, q.target_type, value, label)
        }
    });
    let results = join_all(futures).await;
    // Latency leads but does not size: with a sizing signal beside it, it only pushes up.
    let has_sizing_signal = spec.signals.iter().any(|s| s.latency.is_none());
    let mut readings = Vec::with_capacity(results.len());
    let mut values = Vec::with_capacity(results.len());
    for (name, target, target_type, value, label) in results {
        if value.is_err() {
            ctx.metrics.signal_error(label);
        }
        values.push(SignalValue {
            name: name.clone(),
            target_type,
            target,
            value: value.as_ref().ok().copied(),
            up_only: label == "latency" && has_sizing_signal,
            lookback_seconds: spec
                .signals
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.latency.as_ref())
                .map(|l| l.window.as_secs_f64()),
        });
        readings.push(Reading {
            name,
            target,
            value,
        });
    }
    // Queues with an arrival rate get a second, sizing reading: replicas to keep up.
    for s in &spec.signals {
        let Some(q) = &s.queue else { continue };
        let (Some(query), Some(rate)) = (&q.arrival_rate_query, q.rate_per_replica) else {
            continue;
        };
        let value = match &prometheus {
            Ok(p) => p.scalar(query).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        if value.is_err() {
            ctx.metrics.signal_error("queue");
        }
        let name = format!("{}-arrivals", s.name);
        values.push(SignalValue {
            name: name.clone(),
            target_type: crate::api::TargetType::AverageValue,
            target: rate,
            value: value.as_ref().ok().copied(),
            up_only: false,
            lookback_seconds: None,
        });
        readings.push(Reading {
            name,
            target: rate,
            value,
        });
    }
    (readings, values, prometheus, pods.unwrap_or_default())
}

fn decision_type_of(kind: Option<SignalKind<'_>>) -> crate::api::TargetType {
    match kind {
        Some(SignalKind::Queue(_)) => crate::api::TargetType::AverageValue,
        Some(SignalKind::Custom(c)) => c.target_type,
        _ => crate::api::TargetType::Value,
    }
}

fn kind_label(kind: SignalKind<'_>) -> &'static str {
    match kind {
        SignalKind::Latency(_) => "latency",
        SignalKind::Cpu(_) => "cpu",
        SignalKind::Queue(_) => "queue",
        SignalKind::Custom(_) => "custom",
    }
}

async fn prometheus_for(
    spec: &ScalingPolicySpec,
    ctx: &Context,
    ns: &str,
) -> Result<crate::metrics::Prometheus, String> {
    let source = spec.prometheus.as_ref();
    let address = source
        .and_then(|p| p.address.clone())
        .unwrap_or_else(|| ctx.settings.prometheus_url.clone());
    let token = match source.and_then(|p| p.bearer_token_secret_ref.as_ref()) {
        None => None,
        Some(r) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
            let secret = secrets.get(&r.name).await.map_err(|e| {
                format!(
                    "spec.prometheus.bearerTokenSecretRef: cannot read Secret {}: {e}",
                    r.name
                )
            })?;
            let bytes = secret
                .data
                .and_then(|d| d.get(&r.key).cloned())
                .ok_or_else(|| {
                    format!(
                        "spec.prometheus.bearerTokenSecretRef: Secret {} has no key {}",
                        r.name, r.key
                    )
                })?;
            Some(String::from_utf8_lossy(&bytes.0).into_owned())
        }
    };
    ctx.prometheus(&address, token).map_err(|e| e.to_string())
}

async fn write_status(
    policy: &ScalingPolicy,
    ctx: &Context,
    ns: &str,
    outcome: &Outcome,
    last_scale_time: Option<String>,
) -> Result<()> {
    let status = status::build(
        policy.status.as_ref(),
        policy.meta().generation,
        outcome,
        &now_rfc3339(),
        last_scale_time,
    );
    let api: Api<ScalingPolicy> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({
        "apiVersion": "headroom.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "status": status,
    });
    api.patch_status(
        &policy.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn publish(
    ctx: &Context,
    policy: &ScalingPolicy,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let mut note = note;
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    // Events are best effort: a failure to publish must not fail the evaluation.
    if let Err(e) = ctx.recorder.publish(&ev, &policy.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}
