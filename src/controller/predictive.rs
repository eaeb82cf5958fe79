//! Predictive scaling in the operator, off the evaluation path: when a policy's forecast is
//! due and the pacer has a turn free (shared by all policies), a background task reads the
//! load's history since the last read (the whole lookback the first time), learns again, and
//! leaves what it learned in the policy's memory. Evaluations only look it up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Context;
use super::keys::key;
use super::observe::prometheus_for;
use crate::api::{PredictiveStatus, ScalingPolicy};
use crate::metrics::scoped;
use crate::plan::{Plan, PredictivePlan};
use crate::predict::{Histories, History, Learned, SHORT_SPAN_SECONDS, learn_all};

/// A policy's learned pattern and the histories it came from (4 KB at a week of 5m steps,
/// 2.9 KB for the last 12 hours at 30 s).
#[derive(Debug)]
pub struct Prediction {
    history: Histories,
    learned: Option<Learned>,
    next: Option<Instant>,
    running: bool,
    /// The plan the history was kept for: another step or lookback starts again.
    for_plan: PredictivePlan,
}

impl Prediction {
    pub fn new(plan: &PredictivePlan) -> Self {
        Prediction {
            history: Histories::new(plan.step_seconds, plan.points()),
            learned: None,
            next: None,
            running: false,
            for_plan: plan.clone(),
        }
    }

    pub fn learned(&self) -> Option<&Learned> {
        self.learned.as_ref()
    }

    /// For status at `unix`.
    pub fn status(&self, unix: i64, predicted_replicas: Option<i32>) -> PredictiveStatus {
        let mode = if self.for_plan.enforce {
            "Enforce"
        } else {
            "Observe"
        };
        let Some(l) = &self.learned else {
            return PredictiveStatus {
                mode: mode.into(),
                summary: "reading the load's history".into(),
                ..Default::default()
            };
        };
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let peak = l.at(unix).and_then(|o| o.next_peak);
        PredictiveStatus {
            mode: mode.into(),
            acting: l.trusted,
            summary: l.summary.clone(),
            period: l.period(),
            strength: l.strength.map(round),
            skill: l.backtest.map(|b| round(b.skill)),
            next_peak: peak
                .and_then(|(t, _)| jiff::Timestamp::from_second(t).ok().map(|t| t.to_string())),
            next_peak_load: peak.map(|(_, load)| (load * 10.0).round() / 10.0),
            predicted_replicas: predicted_replicas.filter(|_| l.trusted),
        }
    }

    /// Whether a refresh would be due at `now` (nothing is marked).
    pub fn due(&self, plan: &PredictivePlan, now: Instant) -> bool {
        self.for_plan != *plan || (!self.running && self.next.is_none_or(|n| now >= n))
    }

    /// Whether a refresh may start at `now`; if so it is marked running.
    pub fn start(&mut self, plan: &PredictivePlan, now: Instant) -> Option<Histories> {
        if self.for_plan != *plan {
            *self = Prediction::new(plan);
        }
        if self.running || self.next.is_some_and(|n| now < n) {
            return None;
        }
        self.running = true;
        Some(self.history.clone())
    }

    /// Keeps a refresh's result (None: Prometheus could not be read; ask again later).
    pub fn finish(&mut self, result: Option<(Histories, Learned)>, now: Instant) {
        self.running = false;
        let every = match &result {
            Some((_, l)) => refresh_every(l, self.for_plan.step_seconds),
            None => Duration::from_secs(60),
        };
        self.next = Some(now + every);
        if let Some((history, learned)) = result {
            self.history = history;
            self.learned = Some(learned);
        }
    }
}

/// Learned again four times a period (a changed pattern is seen within one), at least every
/// step and at most every 30 minutes.
fn refresh_every(l: &Learned, step: u32) -> Duration {
    let quarter = l.period_seconds.map_or(1800.0, |p| p / 4.0);
    Duration::from_secs_f64(quarter.clamp(f64::from(step), 1800.0))
}

/// Starts a refresh of `policy`'s forecast if one is due and the pacer allows. Returns at once.
pub fn refresh(ctx: &Arc<Context>, policy: &ScalingPolicy, ns: &str, plan: &Plan) {
    let Some(p) = &plan.predictive else {
        ctx.state.forget_prediction(&key(policy));
        return;
    };
    let pkey = key(policy);
    let now = Instant::now();
    if !ctx.state.prediction_wanted(&pkey, p, now) || !ctx.histories.try_turn(now) {
        return;
    }
    let Some(history) = ctx.state.start_prediction(&pkey, p, now) else {
        return;
    };
    let ctx = ctx.clone();
    let policy = policy.clone();
    let p = p.clone();
    let ns = ns.to_string();
    tokio::spawn(async move {
        let result = run(&ctx, &policy, &ns, &p, history).await;
        ctx.state.finish_prediction(&pkey, result, Instant::now());
    });
}

/// Reads what is new of both histories and learns again; None when Prometheus could not be
/// read.
async fn run(
    ctx: &Context,
    policy: &ScalingPolicy,
    ns: &str,
    plan: &PredictivePlan,
    mut history: Histories,
) -> Option<(Histories, Learned)> {
    let pkey = key(policy);
    let (_, prometheus) = prometheus_for(&policy.spec, ctx, ns)
        .await
        .map_err(|e| tracing::debug!(policy = %pkey, error = %e, "no Prometheus for the forecast"))
        .ok()?;
    let query = if ctx.settings.allow_cross_namespace_queries {
        plan.load_query.clone()
    } else {
        scoped(&plan.load_query, ns)
            .map_err(|e| tracing::debug!(policy = %pkey, error = %e, "forecast load refused"))
            .ok()?
    };
    let lookback = i64::try_from(plan.lookback_seconds).unwrap_or(i64::MAX);
    let short = i64::try_from(SHORT_SPAN_SECONDS).unwrap_or(i64::MAX);
    for (h, span) in [(&mut history.long, lookback), (&mut history.short, short)] {
        read_new(&prometheus, &query, h, span)
            .await
            .map_err(|e| tracing::debug!(policy = %pkey, error = %e, "forecast history unread"))
            .ok()?;
    }
    let learned = learn_all(&history, &plan.settings);
    tracing::debug!(policy = %pkey, summary = %learned.summary, "forecast learned");
    Some((history, learned))
}

/// Reads the steps of `history` new since its last read (the last `span` seconds the first
/// time), up to the last whole step.
async fn read_new(
    prometheus: &crate::metrics::Prometheus,
    query: &str,
    history: &mut History,
    span: i64,
) -> Result<(), crate::metrics::QueryError> {
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
    let points = prometheus
        .range_between(query, start, end, step as f64)
        .await?;
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
