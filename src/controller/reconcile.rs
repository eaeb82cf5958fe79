//! One evaluation of one policy: plan → read target → observe → evaluate → scale → status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::Context;
use super::evaluation::{budget_pool, step};
use super::history;
use super::status::{self, Outcome};
use super::target::TargetState;
use crate::api::{DecodeError, Mode, ScalingPolicy, ScalingPolicySpec, StoredPolicy};
use crate::decision::guardrails::{Claim, Finding};
use crate::decision::{Limit, Moment};
use crate::error::{Error, Result};
use crate::metrics::{self, Source, promql::Scope};
use crate::plan::{Measure, Observation, Plan, QueryError};

const FIELD_MANAGER: &str = "headroom";

#[tracing::instrument(skip_all, fields(policy = %key(stored.as_ref())))]
pub async fn reconcile(stored: Arc<StoredPolicy>, ctx: Arc<Context>) -> Result<Action> {
    if let Some(shard) = ctx.settings.shard
        && !shard.owns(stored.metadata.namespace.as_deref().unwrap_or_default())
    {
        // Another shard's: its replica evaluates it, and nothing here changes that.
        return Ok(Action::await_change());
    }
    let start = Instant::now();
    let pkey = key(stored.as_ref());
    if let Some(lag) = ctx.state.lag(&pkey, start) {
        ctx.metrics.evaluation_lag(lag.as_secs_f64());
    }
    let result = match &stored.policy {
        Ok(policy) => evaluate(policy, &ctx).await,
        Err(e) => undecodable(&stored, e, &ctx).await,
    };
    ctx.metrics
        .reconciled(result.is_ok(), start.elapsed().as_secs_f64());
    let next = result?;
    ctx.succeeded(&pkey);
    // Spread over ±5 % of the interval, so policies created together do not stay in waves.
    let delay = until_next(jittered(next, &pkey), start.elapsed());
    ctx.state.due_at(&pkey, Instant::now() + delay);
    Ok(Action::requeue(delay))
}

/// How long to wait after an evaluation that took `took`, for the next one to start `period`
/// after this one started: the time spent querying and writing does not stretch the interval
/// (and the reaction to a spike). One that overran still waits half a period, so a slow
/// Prometheus or API server is never asked again at once.
fn until_next(period: Duration, took: Duration) -> Duration {
    period.saturating_sub(took).max(period / 2)
}

/// `d` scaled by a random factor in [0.95, 1.05): on average exactly `d`.
fn jittered(d: Duration, key: &str) -> Duration {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(key);
    let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(0.95 + 0.1 * unit)
}

pub fn error_policy(stored: Arc<StoredPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(error.metric_label());
    // Back off, but never past the policy's own interval: once the API server or Prometheus
    // is back, evaluations resume within one interval.
    let interval = stored.policy.as_ref().map_or(UNDECODABLE_RETRY, |p| {
        interval_of(&p.spec, ctx.settings.min_interval)
    });
    let delay = ctx.backoff(&key(stored.as_ref())).min(interval);
    tracing::warn!(policy = %key(stored.as_ref()), %error, retry_in = ?delay, "evaluation failed");
    Action::requeue(delay)
}

/// A target's key for the operator's own writes: `namespace/kind/name`.
/// What the targets of deleted policies in `pool` run now: their replicas keep their
/// connections whether a policy scales them or not, until the target is gone or at zero.
async fn count_orphans(ctx: &Context, ns: &str, pool: &str) {
    for (key, target) in ctx.state.orphans_in(pool) {
        match ctx.resolver.read(&ctx.client, ns, &target).await {
            Ok(t) => ctx.state.orphan_runs(&key, Some(t.current_replicas)),
            // Gone (or no longer readable): nothing is known to hold connections.
            Err(Error::Target { .. }) => ctx.state.orphan_runs(&key, None),
            Err(e) => tracing::debug!(error = %e, orphan = %key, "orphan's target unread"),
        }
    }
}

/// Reports a conflict (an Event when it begins) and stands aside.
async fn conflict(
    policy: &ScalingPolicy,
    prev: Option<&crate::api::ScalingPolicyStatus>,
    ctx: &Context,
    ns: &str,
    message: String,
) -> Result<()> {
    let was_conflict = prev
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.reason == "Conflict");
    if !was_conflict {
        publish(
            ctx,
            policy,
            EventType::Warning,
            "Conflict",
            "Scale",
            message.clone(),
        )
        .await;
    }
    write_status(policy, prev, ctx, ns, &Outcome::Conflict { message }, None).await
}

pub(crate) fn target_key(ns: &str, kind: &str, name: &str) -> String {
    format!("{ns}/{kind}/{name}")
}

/// How often an object the types cannot hold is reported again.
const UNDECODABLE_RETRY: Duration = Duration::from_secs(300);

pub(crate) fn key<K: Resource>(p: &K) -> String {
    format!(
        "{}/{}",
        p.meta().namespace.as_deref().unwrap_or_default(),
        p.meta().name.as_deref().unwrap_or_default()
    )
}

/// How often a policy is evaluated: its spec.interval, but never more often than the
/// operator's floor.
fn interval_of(spec: &ScalingPolicySpec, floor: Duration) -> Duration {
    spec.interval.as_duration().max(floor).clamp(
        Duration::from_secs(1),
        Duration::from_secs(crate::plan::MAX_INTERVAL_SECONDS),
    )
}

/// What status says when the floor applies.
fn raised_interval(spec: &ScalingPolicySpec, floor: Duration) -> Option<String> {
    let asked = spec.interval.as_duration();
    (floor > asked).then(|| {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        format!(
            "{}: the operator's minimum (--min-interval); spec.interval asks {}",
            crate::api::PromDuration::from_millis(ms(floor)),
            spec.interval
        )
    })
}

/// A stored object the types cannot hold: reported with its field, never evaluated, and
/// never in the way of the others.
async fn undecodable(stored: &StoredPolicy, e: &DecodeError, ctx: &Context) -> Result<Duration> {
    let message = format!(
        "the stored object cannot be read ({e}); it was written under an older schema or around the API server: fix or recreate it"
    );
    tracing::warn!(policy = %key(stored), %message, "undecodable policy");
    ctx.metrics.error("decode");
    publish(
        ctx,
        stored,
        EventType::Warning,
        "InvalidSpec",
        "Decode",
        message.clone(),
    )
    .await;
    if let Some(ns) = stored.metadata.namespace.as_deref()
        && let Err(err) =
            write_status(stored, None, ctx, ns, &Outcome::Invalid { message }, None).await
    {
        tracing::warn!(policy = %key(stored), error = %err, "could not report on the undecodable policy");
    }
    Ok(UNDECODABLE_RETRY)
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Evaluates one policy; returns when it is next due.
async fn evaluate(policy: &ScalingPolicy, ctx: &Arc<Context>) -> Result<Duration> {
    let ns = policy
        .namespace()
        .ok_or_else(|| Error::InvalidPolicy("ScalingPolicy must be namespaced".into()))?;
    let spec = &policy.spec;
    let interval = interval_of(spec, ctx.settings.min_interval);
    // What this process last wrote is newer than the watch cache's copy, which can lag.
    let written = ctx
        .state
        .written_status(&key(policy), policy.status.as_ref(), Instant::now());
    let prev = written.as_ref().or(policy.status.as_ref());

    let plan = match Plan::resolve(spec) {
        Ok(p) => p
            .with_downscale_stabilization(ctx.settings.downscale_stabilization_seconds)
            .for_scrape_interval(ctx.scrape_interval()),
        Err(errors) => {
            let message = errors.to_string();
            if was_ready(prev) {
                publish(
                    ctx,
                    policy,
                    EventType::Warning,
                    "InvalidSpec",
                    "Validate",
                    message.clone(),
                )
                .await;
            }
            write_status(policy, prev, ctx, &ns, &Outcome::Invalid { message }, None).await?;
            return Ok(interval);
        }
    };
    if plan.mode == Mode::Paused {
        write_status(policy, prev, ctx, &ns, &Outcome::Paused, None).await?;
        return Ok(interval);
    }
    // Only the policies on the same target can conflict with this one.
    let policies: Vec<Arc<StoredPolicy>> = match ctx.policies.get() {
        Some(store) => ctx
            .state
            .scalers(&target_key(
                &ns,
                &spec.target_ref.kind,
                &spec.target_ref.name,
            ))
            .iter()
            .filter_map(|k| stored(store, &ns, k))
            .collect(),
        None => vec![],
    };
    let hpas = ctx.hpas.get().map(|s| s.state()).unwrap_or_default();
    if let Some(message) = super::conflict::owner(
        policy,
        policies.iter().map(AsRef::as_ref),
        hpas.iter().map(AsRef::as_ref),
    ) {
        conflict(policy, prev, ctx, &ns, message).await?;
        return Ok(interval);
    }

    let target = match ctx.resolver.read(&ctx.client, &ns, &spec.target_ref).await {
        Ok(t) => t,
        Err(e @ Error::Target { .. }) => {
            let message = e.to_string();
            if was_ready(prev) {
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
                prev,
                ctx,
                &ns,
                &Outcome::TargetUnavailable { message },
                None,
            )
            .await?;
            return Ok(interval);
        }
        Err(e) => return Err(e),
    };
    // A Deployment's ReplicaSet (or any target another controller owns) has its replicas
    // set by that controller: scaling it would fight the owner, silently.
    if let Some(owner) = &target.controller {
        let t = &spec.target_ref;
        let message = format!(
            "{}/{} is controlled by {owner}, which sets its replicas: target {owner} instead",
            t.kind, t.name
        );
        conflict(policy, prev, ctx, &ns, message).await?;
        return Ok(interval);
    }

    super::headroom::refresh(ctx, policy, &ns, &plan);
    super::predictive::refresh(ctx, policy, &ns, &plan);
    let observation = observe(policy, ctx, &ns, &plan, &target).await;
    let pkey = key(policy);
    let pool = budget_pool(&ns, &plan);
    if let Some(pool) = &pool {
        count_orphans(ctx, &ns, pool).await;
    }
    let from_status = match &pool {
        Some(_) => claims_from_status(ctx, policy, &ns, &plan).await,
        None => vec![],
    };
    let ev = step(
        &ctx.state,
        &pkey,
        pool.as_deref(),
        &plan,
        &observation,
        Instant::now(),
        Moment {
            unix: Some(jiff::Timestamp::now().as_second()),
            current_replicas: target.current_replicas,
            ready_replicas: target.ready_replicas,
        },
        from_status,
    );
    for r in ev.readings.iter().filter(|r| r.value.is_err()) {
        ctx.metrics.signal_error(r.kind);
    }
    let d = ev.decision.clone();
    ctx.metrics.decision(d.limited_by.as_str());
    publish_findings(ctx, policy, &ev.findings, &d.reason).await;

    let current = target.current_replicas;
    let metrics_were_ok = prev
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "MetricsAvailable"))
        .is_none_or(|c| c.status == crate::api::ConditionStatus::True);
    let failed: Vec<String> = ev
        .readings
        .iter()
        .filter_map(|r| r.value.as_ref().err().map(|e| format!("{}: {e}", r.name)))
        .collect();
    if metrics_were_ok && !failed.is_empty() {
        publish(
            ctx,
            policy,
            EventType::Warning,
            "MetricsUnavailable",
            "ReadSignals",
            failed.join("; "),
        )
        .await;
    }

    let mut last_scale_time = None;
    let wants_change = d.desired_replicas != current && d.limited_by != Limit::ScalingDisabled;
    if plan.mode == Mode::Enforce && wants_change {
        let t = &spec.target_ref;
        // Noted before the write: its watch event can arrive before the write returns.
        ctx.state.wrote(
            &pkey,
            &target_key(&ns, &t.kind, &t.name),
            d.desired_replicas,
        );
        if let Err(e) = ctx
            .resolver
            .scale(&ctx.client, &ns, t, d.desired_replicas)
            .await
        {
            ctx.metrics.scale_failed();
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
        let at = now_rfc3339();
        ctx.state.record_scale(
            &pkey,
            Instant::now(),
            d.desired_replicas - current,
            at.clone(),
        );
        last_scale_time = Some(at);
        ctx.metrics.scaled(d.desired_replicas > current);
        let note = format!(
            "{}/{} scaled from {current} to {}: {}",
            t.kind, t.name, d.desired_replicas, d.reason
        );
        tracing::info!(policy = %pkey, from = current, to = d.desired_replicas, reason = %d.reason, "scaled");
        // Scale to zero and back have their own reasons, as `kubectl get events` shows them.
        let reason = match d.limited_by {
            Limit::Activated | Limit::Idle => d.limited_by.as_str(),
            _ => "Scaled",
        };
        publish(ctx, policy, EventType::Normal, reason, "Scale", note).await;
    } else if plan.mode == Mode::Recommend
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
        last_scale_time = ctx.state.last_scale_time(&pkey);
    }
    let outcome = Outcome::Decided {
        mode: plan.mode,
        current,
        evaluation: Box::new(ev),
        interval: raised_interval(spec, ctx.settings.min_interval),
    };
    write_status(policy, prev, ctx, &ns, &outcome, last_scale_time).await?;
    Ok(interval)
}

fn was_ready(prev: Option<&crate::api::ScalingPolicyStatus>) -> bool {
    prev.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .is_none_or(|c| c.status != crate::api::ConditionStatus::False)
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
            // What to change is in the message, whatever the decision was.
            "CpuSaturated" | "HeldAtZero" => (EventType::Warning, f.message.clone()),
            _ => (EventType::Normal, format!("{}: {}", f.message, reason)),
        };
        publish(ctx, policy, kind, f.reason, "Guardrail", note).await;
    }
}

/// Runs the plan's queries; the pods (for CPU) and the Prometheus client are read once.
async fn observe(
    policy: &ScalingPolicy,
    ctx: &Context,
    ns: &str,
    plan: &Plan,
    target: &TargetState,
) -> Observation {
    let needs_pods = plan
        .queries()
        .iter()
        .any(|q| matches!(q.measure, Measure::CpuUtilization { .. }));
    let pods: Result<Vec<String>, QueryError> = match (&target.selector, needs_pods) {
        (_, false) => Ok(vec![]),
        (None, true) => Err(QueryError::Unavailable(
            "the target's scale status has no selector, so its pods cannot be found".into(),
        )),
        (Some(sel), true) => ctx
            .resolver
            .pods(&ctx.client, ns, sel)
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string())),
    };
    let prometheus = prometheus_for(&policy.spec, ctx, ns).await;
    let scope = Scope {
        namespace: ns,
        pods: pods.as_deref().map_err(Clone::clone),
        cross_namespace: ctx.settings.allow_cross_namespace_queries,
        limits: ctx.settings.limits,
    };
    // Trends and "regularly" come from this policy's own recent readings.
    let pkey = key(policy);
    let mut rings = ctx.state.take_rings(&pkey);
    let queries = history::queries(plan.queries(), &rings);
    let raw = metrics::observe(&ctx.batcher, &prometheus, &queries, &scope).await;
    let observation = history::fold(plan.queries(), raw, &mut rings, Instant::now());
    ctx.state.put_rings(&pkey, rings);
    observation
}

/// The stored policy `namespace/name` in `ns`, from the watch cache.
fn stored(
    store: &kube::runtime::reflector::Store<StoredPolicy>,
    ns: &str,
    key: &str,
) -> Option<Arc<StoredPolicy>> {
    store.get(&ObjectRef::new(key.rsplit('/').next()?).within(ns))
}

/// The connection budget a stored policy shares, as `namespace/database`.
pub(crate) fn shared_budget(p: &StoredPolicy) -> Option<String> {
    let policy = p.policy.as_ref().ok()?;
    let b = policy
        .spec
        .guardrails
        .as_ref()?
        .connection_budget
        .as_ref()?;
    Some(format!(
        "{}/{}",
        policy.metadata.namespace.as_deref().unwrap_or_default(),
        b.database
    ))
}

/// The target a stored policy scales, as `namespace/kind/name`.
pub(crate) fn scaled_target(p: &StoredPolicy) -> Option<String> {
    let policy = p.policy.as_ref().ok()?;
    let t = &policy.spec.target_ref;
    Some(target_key(
        policy.metadata.namespace.as_deref().unwrap_or_default(),
        &t.kind,
        &t.name,
    ))
}

/// Claims of the other policies sharing `me`'s database, from their last status (after a
/// restart, before the ledger knows them, or while they are paused). What they hold is
/// counted high: the most of their status and of what their targets run now, so a status
/// written by hand cannot hide replicas that hold connections.
async fn claims_from_status(
    ctx: &Context,
    me: &ScalingPolicy,
    ns: &str,
    plan: &Plan,
) -> Vec<Claim> {
    let (Some(store), Some(pool)) = (ctx.policies.get(), budget_pool(ns, plan)) else {
        return vec![];
    };
    let mut claims = vec![];
    for k in ctx.state.unledgered_sharers(&pool, &key(me)) {
        let Some(stored) = stored(store, ns, &k) else {
            continue;
        };
        let Ok(p) = stored.policy.as_ref() else {
            continue;
        };
        let Some(b) = p
            .spec
            .guardrails
            .as_ref()
            .and_then(|g| g.connection_budget.as_ref())
        else {
            continue;
        };
        let status = p.status.as_ref();
        let current = status.and_then(|s| s.current_replicas).unwrap_or(0);
        let desired = status.and_then(|s| s.desired_replicas);
        let running = ctx
            .resolver
            .read(&ctx.client, ns, &p.spec.target_ref)
            .await
            .map_or(0, |t| t.current_replicas);
        claims.push(Claim {
            name: k.clone(),
            pool_size: b.pool_size_per_replica,
            held: current.max(desired.unwrap_or(current)).max(running),
            // One that has not decided yet may need up to its maximum: the first to
            // decide must not take the whole budget before the others have asked.
            need: desired.unwrap_or(p.spec.max_replicas),
        });
    }
    claims
}

pub(crate) async fn prometheus_for(
    spec: &ScalingPolicySpec,
    ctx: &Context,
    ns: &str,
) -> Result<(Source, crate::metrics::Prometheus), QueryError> {
    let source = spec.prometheus.as_ref();
    let address = source
        .and_then(|p| p.address.clone())
        .unwrap_or_else(|| ctx.settings.prometheus_url.clone());
    // Checked before anything is sent, so a policy cannot probe other endpoints.
    let address = ctx
        .settings
        .allows(&address)
        .map_err(|e| QueryError::Unavailable(format!("spec.prometheus.address: {e}")))?;
    let token = match source.and_then(|p| p.bearer_token_secret_ref.as_ref()) {
        None => None,
        Some(r) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
            let secret = secrets.get(&r.name).await.map_err(|e| {
                QueryError::Unavailable(format!(
                    "spec.prometheus.bearerTokenSecretRef: cannot read Secret {}: {e}",
                    r.name
                ))
            })?;
            let bytes = secret
                .data
                .and_then(|d| d.get(&r.key).cloned())
                .ok_or_else(|| {
                    QueryError::Unavailable(format!(
                        "spec.prometheus.bearerTokenSecretRef: Secret {} has no key {}",
                        r.name, r.key
                    ))
                })?;
            Some(String::from_utf8_lossy(&bytes.0).into_owned())
        }
    };
    // A policy's own Prometheus or token is shared with no other namespace.
    let tenant = source
        .is_some_and(|p| p.address.is_some() || p.bearer_token_secret_ref.is_some())
        .then(|| ns.to_string());
    let client = ctx.prometheus(&address, token.clone())?;
    Ok((
        Source {
            address,
            token,
            tenant,
        },
        client,
    ))
}

async fn write_status(
    object: &impl Resource<DynamicType = ()>,
    prev: Option<&crate::api::ScalingPolicyStatus>,
    ctx: &Context,
    ns: &str,
    outcome: &Outcome,
    last_scale_time: Option<String>,
) -> Result<()> {
    // The estimate outlives a passing conflict or unreadable target.
    let headroom = ctx
        .state
        .headroom(&key(object))
        .or_else(|| prev.and_then(|p| p.headroom.clone()));
    let predicted = match outcome {
        Outcome::Decided { evaluation, .. } => evaluation.predicted,
        _ => None,
    };
    let predictive =
        ctx.state
            .prediction_status(&key(object), jiff::Timestamp::now().as_second(), predicted);
    // Nothing new at display precision: no etcd write, no watch event.
    let Some(status) = status::to_write(
        prev,
        object.meta().generation,
        outcome,
        &now_rfc3339(),
        last_scale_time,
        headroom,
        predictive,
    ) else {
        return Ok(());
    };
    let api: Api<StoredPolicy> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({
        "apiVersion": "headroom.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "status": status,
    });
    let written = api
        .patch_status(
            object.meta().name.as_deref().unwrap_or_default(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await;
    match written {
        Ok(_) => {
            ctx.state.wrote_status(&key(object), status, Instant::now());
            Ok(())
        }
        // Refused for what it holds (too large, invalid): the same write would be refused
        // every interval, so it is reported once, and the evaluation itself stands.
        Err(kube::Error::Api(e)) if refused_for_good(e.code) => {
            let why = format!("status not written: {}", e.message);
            if ctx.state.status_refused(&key(object), &why) {
                publish(
                    ctx,
                    object,
                    EventType::Warning,
                    "StatusNotWritten",
                    "Status",
                    why,
                )
                .await;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A 4xx other than a conflict, a rate limit or a missing object: retrying will not help.
fn refused_for_good(code: u16) -> bool {
    (400..500).contains(&code) && !matches!(code, 404 | 408 | 409 | 429)
}

async fn publish(
    ctx: &Context,
    policy: &impl Resource<DynamicType = ()>,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let mut note = note;
    status::clip(&mut note, 1000);
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    // Events are best effort: a failure to publish must not fail the evaluation.
    if let Err(e) = ctx.events.publish(&ev, &policy.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_a_retry_cannot_mend_stop_the_retries() {
        for code in [400, 413, 422] {
            assert!(refused_for_good(code), "{code}");
        }
        for code in [404, 408, 409, 429, 500, 503] {
            assert!(!refused_for_good(code), "{code}");
        }
    }

    #[test]
    fn the_next_evaluation_starts_one_period_after_this_one_started() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(until_next(s(5), ms(400)), ms(4600));
        assert_eq!(until_next(s(5), s(0)), s(5));
        // An evaluation that overran its period still leaves half a period to the next.
        assert_eq!(until_next(s(5), s(4)), ms(2500));
        assert_eq!(until_next(s(5), s(9)), ms(2500));
    }

    #[test]
    fn jitter_stays_within_five_percent_and_averages_the_interval() {
        let d = Duration::from_secs(15);
        let all: Vec<f64> = (0..2000)
            .map(|i| jittered(d, &format!("ns/p{i}")).as_secs_f64())
            .collect();
        assert!(all.iter().all(|s| (14.25..15.75).contains(s)), "{all:?}");
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        assert!((mean - 15.0).abs() < 0.1, "{mean}");
        let spread = all.iter().cloned().fold(f64::MIN, f64::max)
            - all.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 1.0, "{spread}");
    }

    #[test]
    fn the_admin_floor_raises_short_intervals_and_says_so() {
        let policy: crate::api::ScalingPolicy =
            match serde_yaml::from_str(include_str!("../../deploy/examples/worker.yaml")) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
        let mut spec = policy.spec;
        spec.interval = crate::api::PromDuration::from_secs(1);
        let floor = Duration::from_secs(10);
        assert_eq!(interval_of(&spec, floor), floor);
        let said = raised_interval(&spec, floor).unwrap_or_default();
        assert!(
            said.starts_with("10s: ")
                && said.contains("--min-interval")
                && said.contains("asks 1s"),
            "{said}"
        );
        spec.interval = crate::api::PromDuration::from_secs(30);
        assert_eq!(interval_of(&spec, floor), Duration::from_secs(30));
        assert_eq!(raised_interval(&spec, floor), None);
    }
}
