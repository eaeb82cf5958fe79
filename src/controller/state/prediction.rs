//! A policy's load history and learned pattern (spec.predictive): kept between refreshes,
//! looked up by evaluations.

use std::time::{Duration, Instant};

use crate::api::PredictiveStatus;
use crate::plan::PredictivePlan;
use crate::predict::{Histories, Learned};

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
