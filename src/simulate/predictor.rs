//! Predictive scaling in the simulator: the policy's load history read from the simulated
//! Prometheus, learned again as the operator does off the evaluation path, and the rise it
//! predicts handed to the evaluation.

use crate::decision::guardrails::PredictedPeak;
use crate::plan::{PredictedLoad, PredictivePlan};
use crate::predict::{Histories, Learned, SHORT_SPAN_SECONDS, SHORT_STEP_SECONDS, learn_all};

use super::observe::Observer;

/// Learned again this often when nothing is learned yet, seconds; with a period, four times
/// a period (so a changed pattern is seen within one), at most this often.
const RELEARN_SECONDS: usize = 1800;

pub struct Predictor {
    plan: PredictivePlan,
    learned: Option<Learned>,
    next: usize,
}

impl Predictor {
    pub fn new(plan: PredictivePlan) -> Self {
        Predictor {
            plan,
            learned: None,
            next: 0,
        }
    }

    /// What was learned last.
    pub fn learned(&self) -> Option<&Learned> {
        self.learned.as_ref()
    }

    /// The peak ahead at `now` (Unix `clock + now`), learning again when due.
    pub fn peak(&mut self, now: usize, clock: i64, obs: &Observer) -> Option<PredictedPeak> {
        if now >= self.next {
            let step = self.plan.step_seconds as usize;
            let mut h = Histories::new(self.plan.step_seconds, self.plan.points());
            let jobs = self.plan.load == PredictedLoad::Arrivals;
            for (t, v) in obs.rates(0, now, step, jobs) {
                h.long.record(clock + t as i64, v);
            }
            let short = SHORT_STEP_SECONDS as usize;
            let from = now.saturating_sub(SHORT_SPAN_SECONDS);
            for (t, v) in obs.rates(from, now, short, jobs) {
                h.short.record(clock + t as i64, v);
            }
            let l = learn_all(&h, &self.plan.settings);
            let every = l.period_seconds.map_or(RELEARN_SECONDS, |p| {
                (p as usize / 4).clamp(step, RELEARN_SECONDS)
            });
            self.next = now + every;
            self.learned = Some(l);
        }
        let l = self.learned.as_ref().filter(|l| l.trusted)?;
        let o = l.at(clock + now as i64)?;
        Some(PredictedPeak {
            peak: o.peak,
            level: o.level,
            horizon_seconds: self.plan.settings.horizon_seconds,
            pattern: o.period().unwrap_or_default(),
            min_rise: o.min_rise,
            enforce: self.plan.enforce,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::simulate::{Kind, Outcome, Trace, examples, run, setup};

    /// A day of history, then three hours played: 40 requests/s with a 4x batch of five
    /// minutes at 20 past every hour (or none), and a little noise.
    fn trace(batches: bool) -> Trace {
        let seconds = 86_400 + 3 * 3600;
        let requests: Vec<f64> = (0..seconds)
            .map(|t| {
                let batch = batches && (1200..1500).contains(&(t % 3600));
                let noise = 1.0 + 0.05 * ((t / 10) as f64 * 0.7).sin();
                40.0 * if batch { 4.0 } else { 1.0 } * noise
            })
            .collect();
        Trace {
            name: "hourly".into(),
            jobs: requests.iter().map(|r| r * 0.25).collect(),
            requests,
            warmup: 86_400,
            ..Trace::default()
        }
    }

    fn headroom(t: &Trace, predictive: bool) -> Outcome {
        let (web, worker) = examples();
        let off = |p: crate::simulate::Policy| {
            p.edit(|s| {
                if !predictive {
                    s.predictive = None;
                }
            })
            .expect("valid")
        };
        let s = setup("hourly", off(web), off(worker));
        run(Kind::Headroom, t, &s, &mut |_| {})
    }

    #[test]
    fn hourly_batches_are_learned_and_met_with_capacity_ready() {
        let t = trace(true);
        let (on, off) = (headroom(&t, true), headroom(&t, false));
        assert!(
            on.learned
                .iter()
                .all(|l| l.contains("1h period") && l.contains("acting")),
            "{:?}",
            on.learned
        );
        // Raised ahead of each of the three batches, and each raise before its batch.
        let ahead: Vec<usize> = on
            .predicted_at
            .iter()
            .map(|t| (t % 3600 + 3600 - 1200) % 3600)
            .collect();
        assert!(on.predicted_at.len() >= 3, "{:?}", on.predicted_at);
        assert!(ahead.iter().any(|a| *a >= 3600 - 600), "{ahead:?}");
        assert!(
            on.slo_violation_minutes < off.slo_violation_minutes,
            "{} vs {}",
            on.slo_violation_minutes,
            off.slo_violation_minutes
        );
    }

    #[test]
    fn without_a_pattern_it_stays_out() {
        let t = trace(false);
        let (on, off) = (headroom(&t, true), headroom(&t, false));
        assert!(on.predicted_at.is_empty(), "{:?}", on.predicted_at);
        assert!(
            on.learned.iter().all(|l| !l.contains("acting")),
            "{:?}",
            on.learned
        );
        assert_eq!(
            (
                on.replica_minutes,
                on.scale_events,
                on.slo_violation_minutes
            ),
            (
                off.replica_minutes,
                off.scale_events,
                off.slo_violation_minutes
            )
        );
    }

    /// Short recurring bursts (every 5-60 minutes) with two days of them as history: the
    /// forecast learns them from the 30 s history and Headroom meets them where the HPA,
    /// with the same signals, does not. The first six cases of the family, as drawn.
    #[test]
    fn short_recurring_bursts_are_met_with_capacity_ready() {
        let (web, worker) = examples();
        let ratios: Vec<f64> = (0..6)
            .map(|i| {
                let c = crate::simulate::family::case("bursts", 1, i).expect("bursts");
                let mut s = setup("bursts", web.clone(), worker.clone());
                s.params = c.params.clone();
                s.scrape_seconds = c.scrape_seconds;
                let h = run(Kind::Headroom, &c.trace, &s, &mut |_| {});
                let hpa = run(Kind::Hpa, &c.trace, &s, &mut |_| {});
                assert!(
                    h.slo_violation_minutes <= hpa.slo_violation_minutes,
                    "{}: {} vs hpa {}; {:?}",
                    c.about,
                    h.slo_violation_minutes,
                    hpa.slo_violation_minutes,
                    h.learned
                );
                (h.slo_violation_minutes + 0.1) / (hpa.slo_violation_minutes + 0.1)
            })
            .collect();
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(sorted[2] <= 0.5, "{ratios:?}");
    }
}
