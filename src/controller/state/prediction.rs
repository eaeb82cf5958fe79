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
    /// Why the last refreshes could not read the load's history, and how many failed in a
    /// row: each waits twice as long as the one before.
    unread: Option<String>,
    failures: u32,
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
            unread: None,
            failures: 0,
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
        let unread = self
            .unread
            .as_ref()
            .map(|e| format!("cannot read the load's history: {e}"));
        let Some(l) = &self.learned else {
            return PredictiveStatus {
                mode: mode.into(),
                summary: unread.unwrap_or_else(|| "reading the load's history".into()),
                ..Default::default()
            };
        };
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let peak = l.at(unix).and_then(|o| o.next_peak);
        PredictiveStatus {
            mode: mode.into(),
            acting: l.trusted,
            summary: match unread {
                Some(u) => format!("{}; {u}", l.summary),
                None => l.summary.clone(),
            },
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

    /// Keeps a refresh's result (Err: Prometheus could not be read; ask again later, a
    /// minute after the first failure, up to half an hour after many).
    pub fn finish(&mut self, result: Result<(Histories, Learned), String>, now: Instant) {
        self.running = false;
        let every = match result {
            Ok((history, learned)) => {
                let every = refresh_every(&learned, self.for_plan.step_seconds);
                self.history = history;
                self.learned = Some(learned);
                self.unread = None;
                self.failures = 0;
                every
            }
            Err(why) => {
                self.unread = Some(why);
                self.failures = self.failures.saturating_add(1);
                retry_after(self.failures)
            }
        };
        self.next = Some(now + every);
    }
}

/// After `failures` unread refreshes in a row: 1, 2, 4, ... minutes, at most 30.
fn retry_after(failures: u32) -> Duration {
    let minutes = 1u64 << failures.saturating_sub(1).min(5);
    Duration::from_secs(60 * minutes.min(30))
}

/// Learned again four times a period (a changed pattern is seen within one), at least every
/// step and at most every 30 minutes.
fn refresh_every(l: &Learned, step: u32) -> Duration {
    let quarter = l.period_seconds.map_or(1800.0, |p| p / 4.0);
    Duration::from_secs_f64(quarter.clamp(f64::from(step), 1800.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PredictedLoad;
    use crate::predict::Settings;

    fn plan() -> PredictivePlan {
        PredictivePlan {
            enforce: true,
            load: PredictedLoad::Requests,
            load_query: "sum(rate(x[1m]))".into(),
            lookback_seconds: 86_400,
            step_seconds: 300,
            settings: Settings::default(),
        }
    }

    #[test]
    fn an_unreadable_history_says_why_in_status_and_backs_off() {
        let mut p = Prediction::new(&plan());
        let t0 = Instant::now();
        let refused = "the query's subqueries evaluate 104400 steps over a 1d read; the limit is 20000 (--max-subquery-points)";
        let mut at = t0;
        let mut waits = vec![];
        for _ in 0..7 {
            assert!(p.start(&plan(), at).is_some());
            p.finish(Err(refused.into()), at);
            let next = p.next.unwrap_or(at);
            waits.push(next.duration_since(at).as_secs() / 60);
            at = next;
        }
        // A minute, then twice as long each time, at most half an hour.
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
        assert!(!p.due(&plan(), at - Duration::from_secs(1)));
        let s = p.status(0, None);
        assert!(
            s.summary.starts_with("cannot read the load's history")
                && s.summary.contains("--max-subquery-points"),
            "{}",
            s.summary
        );
        assert!(!s.acting);
        // A read that succeeds clears it and the next refresh is as usual.
        let learned = Learned::nothing("no recurring pattern yet");
        assert!(p.start(&plan(), at).is_some());
        p.finish(Ok((p.history.clone(), learned)), at);
        assert_eq!(p.failures, 0);
        assert_eq!(p.status(0, None).summary, "no recurring pattern yet");
    }
}
