//! Predictive scaling in the operator, off the evaluation path: when a policy's forecast is
//! due and the pacer has a turn free (shared by all policies), a background task reads the
//! load's history since the last read (the whole lookback the first time), learns again, and
//! leaves what it learned in the policy's memory. Evaluations only look it up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Context;
use super::keys::key;
use super::observe::prometheus_for;
use crate::api::ScalingPolicy;
use crate::metrics::{QueryError, scoped};
use crate::plan::{Plan, PredictivePlan};
use crate::predict::{Histories, History, Learned, SHORT_SPAN_SECONDS, learn_all};

/// Starts a refresh of `policy`'s forecast if one is due and the pacer allows. Returns at once.
pub fn refresh(ctx: &Arc<Context>, policy: &ScalingPolicy, ns: &str, plan: &Plan) {
    let Some(p) = &plan.predictive else {
        ctx.state.forget_prediction(&key(policy));
        return;
    };
    let pkey = key(policy);
    let now = Instant::now();
    // A policy with no forecast yet goes before those that have one.
    let first = policy
        .status
        .as_ref()
        .is_none_or(|s| s.predictive.is_none());
    if !ctx.state.prediction_wanted(&pkey, p, now) || !ctx.histories.try_turn(ns, first, now) {
        return;
    }
    let Some(history) = ctx.state.start_prediction(&pkey, p, now) else {
        return;
    };
    tracing::debug!(policy = %pkey, first, "forecast refresh started");
    let ctx = ctx.clone();
    let policy = policy.clone();
    let p = p.clone();
    let ns = ns.to_string();
    tokio::spawn(async move {
        let result = run(&ctx, &policy, &ns, &p, history).await;
        ctx.state.finish_prediction(&pkey, result, Instant::now());
    });
}

/// Reads what is new of both histories and learns again; Err says why Prometheus could not
/// be read (for status).
async fn run(
    ctx: &Context,
    policy: &ScalingPolicy,
    ns: &str,
    plan: &PredictivePlan,
    mut history: Histories,
) -> Result<(Histories, Learned), String> {
    let pkey = key(policy);
    let unread = |what: &str, e: String| {
        tracing::debug!(policy = %pkey, error = %e, "{what}");
        e
    };
    let (source, prometheus) = prometheus_for(&policy.spec, ctx, ns)
        .await
        .map_err(|e| unread("no Prometheus for the forecast", e.to_string()))?;
    let query = if ctx.settings.allow_cross_namespace_queries {
        plan.load_query.clone()
    } else {
        scoped(&plan.load_query, ns).map_err(|e| unread("forecast load refused", e.to_string()))?
    };
    let lookback = i64::try_from(plan.lookback_seconds).unwrap_or(i64::MAX);
    let short = i64::try_from(SHORT_SPAN_SECONDS).unwrap_or(i64::MAX);
    // Refused for its cost before it waits for a slot, so status names the cost, not the wait.
    let whole = Duration::from_secs(plan.lookback_seconds);
    if let Err(e) = prometheus.check_range(&query, whole) {
        ctx.metrics.tenants().answered(ns, 0.0, true);
        return Err(unread("forecast history refused", e.to_string()));
    }
    let asked = Instant::now();
    let mut reading = Duration::ZERO;
    for (h, span) in [(&mut history.long, lookback), (&mut history.short, short)] {
        // In the namespace's share for background reads.
        // A refusal of the share is counted there, not again here.
        let (read, took) = ctx
            .batcher
            .in_share(ns, &source, read_new(&prometheus, &query, h, span))
            .await
            .map_err(|e| unread("forecast history refused", e.to_string()))?;
        reading += took;
        let refused = matches!(read, Err(QueryError::OverLimit(_)));
        ctx.metrics
            .tenants()
            .answered(ns, took.as_secs_f64(), refused);
        read.map_err(|e| unread("forecast history unread", e.to_string()))?;
    }
    let learned = learn_all(&history, &plan.settings);
    tracing::debug!(
        policy = %pkey,
        summary = %learned.summary,
        read_seconds = reading.as_secs_f64(),
        waited_seconds = asked.elapsed().saturating_sub(reading).as_secs_f64(),
        "forecast learned"
    );
    Ok((history, learned))
}

/// Reads the steps of `history` new since its last read (the last `span` seconds the first
/// time), up to the last whole step.
async fn read_new(
    prometheus: &crate::metrics::Prometheus,
    query: &str,
    history: &mut History,
    span: i64,
) -> Result<(), QueryError> {
    let step = i64::from(history.step_seconds());
    // The last whole step; the step in progress is read next time.
    let end = jiff::Timestamp::now().as_second().div_euclid(step) * step - step;
    let start = if history.is_empty() {
        end - span
    } else {
        history.end().max(end - span)
    };
    if start > end {
        return Ok(());
    }
    // No series yet (a new workload) is no readings, not a failure: the steps are missing.
    let points = match prometheus
        .range_between(query, start, end, step as f64)
        .await
    {
        Err(QueryError::Empty) => vec![],
        other => other?,
    };
    // Times come back as seconds since `start`.
    for (t, v) in points {
        history.record(start + t.round() as i64, v);
    }
    // Steps with no reading up to the end are missing, not skipped.
    if history.end() <= end {
        history.record(end, f64::NAN);
    }
    Ok(())
}
