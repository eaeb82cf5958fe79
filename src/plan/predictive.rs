//! The predictive plan: what load is learned, over how long, at what step.

use std::collections::BTreeMap;

use crate::api::{PredictiveMode, ScalingPolicySpec, SignalKind};
use crate::predict::Settings;

use super::{FieldError, Measure};

const DAY: u64 = 86_400;
/// Steps a history holds at most: a week at five minutes (4 KB a policy).
pub const HISTORY_POINTS: u64 = 2016;
pub const DEFAULT_LOOKBACK_SECONDS: u64 = 7 * DAY;
pub const DEFAULT_HORIZON_SECONDS: u64 = 300;
pub const DEFAULT_MIN_SKILL: f64 = 0.2;

/// Which load the pattern is learned on: the one the calibration reads too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictedLoad {
    /// The request rate (a latency or concurrency histogram, or creepingLatency's query).
    Requests,
    /// A queue's arrival rate.
    Arrivals,
}

/// The query key of the load now, read on every evaluation beside the signals.
pub const LOAD_KEY: &str = "predictive/load";

#[derive(Clone, Debug, PartialEq)]
pub struct PredictivePlan {
    pub enforce: bool,
    pub load: PredictedLoad,
    /// The load as PromQL before it is confined to the namespace: read now on every
    /// evaluation (`LOAD_KEY`), and over the lookback off the evaluation path.
    pub load_query: String,
    pub lookback_seconds: u64,
    /// One reading per step: the lookback over `HISTORY_POINTS`, whole minutes.
    pub step_seconds: u32,
    pub settings: Settings,
}

impl PredictivePlan {
    /// Steps the history keeps.
    pub fn points(&self) -> usize {
        (self.lookback_seconds / u64::from(self.step_seconds.max(1))) as usize
    }
}

/// The first latency or concurrency histogram: its metric and selector.
pub fn histogram_of(spec: &ScalingPolicySpec) -> Option<(String, BTreeMap<String, String>)> {
    spec.signals.iter().find_map(|s| match s.kind() {
        Some(SignalKind::Latency(l)) => Some((l.metric.clone(), l.selector.clone())),
        Some(SignalKind::Concurrency(c)) => Some((c.metric.clone(), c.selector.clone())),
        _ => None,
    })
}

/// A policy's load, as PromQL not yet confined to its namespace: the creeping-latency
/// request rate, the request rate of the first latency or concurrency histogram, or the
/// first queue's arrival rate. The traffic headroom calibration reads the same.
pub fn load_of(spec: &ScalingPolicySpec) -> Option<(PredictedLoad, String)> {
    let creeping = spec
        .guardrails
        .as_ref()
        .and_then(|g| g.creeping_latency.as_ref())
        .map(|c| c.request_rate_query.clone());
    let histogram = histogram_of(spec);
    let arrivals = spec
        .signals
        .iter()
        .find_map(|s| s.queue.as_ref().and_then(|q| q.arrival_rate_query.clone()));
    if let Some(q) = creeping {
        Some((PredictedLoad::Requests, q))
    } else if let Some((metric, selector)) = histogram {
        let labels: Vec<String> = selector
            .iter()
            .map(|(k, v)| format!("{k}={}", super::quote(v)))
            .collect();
        Some((
            PredictedLoad::Requests,
            format!("sum(rate({metric}_count{{{}}}[1m]))", labels.join(",")),
        ))
    } else {
        arrivals.map(|q| (PredictedLoad::Arrivals, q))
    }
}

impl PredictivePlan {
    /// The load now, as the evaluation reads it.
    pub fn measure(&self) -> Measure {
        match self.load {
            PredictedLoad::Requests => Measure::RequestRate(self.load_query.clone()),
            PredictedLoad::Arrivals => Measure::ArrivalRate(self.load_query.clone()),
        }
    }
}

/// The plan, or None when predictive scaling is off; errors name their field.
pub fn resolve(spec: &ScalingPolicySpec) -> Result<Option<PredictivePlan>, Vec<FieldError>> {
    let Some(p) = spec
        .predictive
        .as_ref()
        .filter(|p| p.mode != PredictiveMode::Disabled)
    else {
        return Ok(None);
    };
    let mut errors = vec![];
    let lookback = p
        .lookback
        .map_or(DEFAULT_LOOKBACK_SECONDS, |d| d.as_duration().as_secs());
    if !(DAY..=28 * DAY).contains(&lookback) {
        errors.push(FieldError::new(
            "spec.predictive.lookback",
            format!(
                "must be 24h to 672h (1 to 28 days), got {}",
                crate::api::PromDuration::from_secs(lookback)
            ),
        ));
    }
    let horizon = p
        .horizon
        .map_or(DEFAULT_HORIZON_SECONDS, |d| d.as_duration().as_secs());
    if !(60..=3600).contains(&horizon) {
        errors.push(FieldError::new(
            "spec.predictive.horizon",
            format!(
                "must be 1m to 1h, got {}",
                crate::api::PromDuration::from_secs(horizon)
            ),
        ));
    }
    let min_skill = p.min_skill.unwrap_or(DEFAULT_MIN_SKILL);
    if !(0.0..=1.0).contains(&min_skill) {
        errors.push(FieldError::new(
            "spec.predictive.minSkill",
            format!("must be 0 to 1, got {min_skill}"),
        ));
    }
    let load = load_of(spec);
    if load.is_none() {
        errors.push(FieldError::new(
            "spec.predictive",
            "needs a load to learn: a latency or concurrency signal, \
             spec.guardrails.creepingLatency.requestRateQuery or a queue's arrivalRateQuery",
        ));
    }
    let (Some((load, load_query)), true) = (load, errors.is_empty()) else {
        return Err(errors);
    };
    let step = (lookback / HISTORY_POINTS).div_ceil(60).max(1) * 60;
    Ok(Some(PredictivePlan {
        enforce: p.mode == PredictiveMode::Enforce,
        load,
        load_query,
        lookback_seconds: lookback,
        step_seconds: u32::try_from(step).unwrap_or(u32::MAX),
        settings: Settings {
            horizon_seconds: horizon as f64,
            min_skill,
            ..Settings::default()
        },
    }))
}
