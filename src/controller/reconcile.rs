//! One evaluation of one policy, as a list of stages: read (policy, plan, target) → observe
//! → decide → act (`/scale`) → publish (status, Events, metrics). Each stage is a file of
//! its own; this one runs them in order and schedules the next evaluation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::Context;
use super::keys::key;
use super::read::interval_of;
use super::report::{event, write_status};
use super::status::Outcome;
use super::{act, decide, observe, publish, read};
use crate::api::{DecodeError, ScalingPolicy, StoredPolicy};
use crate::error::{Error, Result};

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

/// How often an object the types cannot hold is reported again.
const UNDECODABLE_RETRY: Duration = Duration::from_secs(300);

/// A stored object the types cannot hold: reported with its field, never evaluated, and
/// never in the way of the others.
async fn undecodable(stored: &StoredPolicy, e: &DecodeError, ctx: &Context) -> Result<Duration> {
    let message = format!(
        "the stored object cannot be read ({e}); it was written under an older schema or around the API server: fix or recreate it"
    );
    tracing::warn!(policy = %key(stored), %message, "undecodable policy");
    ctx.metrics.error("decode");
    let note = message.clone();
    event(
        ctx,
        stored,
        EventType::Warning,
        "InvalidSpec",
        "Decode",
        note,
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

/// Evaluates one policy, stage by stage; returns when it is next due.
async fn evaluate(policy: &ScalingPolicy, ctx: &Arc<Context>) -> Result<Duration> {
    let interval = interval_of(&policy.spec, ctx.settings.min_interval);
    let Some(read) = read::read(policy, ctx).await? else {
        return Ok(interval);
    };
    // The background learners are paced across all policies; this only asks them to run.
    super::headroom::refresh(ctx, policy, &read.ns, &read.plan);
    super::predictive::refresh(ctx, policy, &read.ns, &read.plan);
    let observation = observe::observe(ctx, &read).await;
    let evaluation = decide::decide(ctx, &read, &observation).await;
    let acted = act::act(ctx, &read, &evaluation).await?;
    publish::publish(ctx, &read, evaluation, acted).await?;
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
