//! What the background learners keep per policy: the traffic headroom estimate with when it
//! is calibrated next, and the load history with its learned pattern (spec.predictive).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::prediction::Prediction;
use crate::api::{HeadroomStatus, PredictiveStatus};
use crate::decision::guardrails::PredictedPeak;
use crate::plan::PredictivePlan;
use crate::predict::{Histories, Learned};

#[derive(Default, Debug)]
struct Headroom {
    next: Option<Instant>,
    running: bool,
    last: Option<HeadroomStatus>,
    /// A fingerprint of the last estimate made here: once `last` is dropped for the cache's
    /// copy, it tells that copy from one another writer put in status.
    made: Option<u64>,
}

/// A fingerprint of an estimate (its JSON, hashed as it is written): 8 bytes kept instead of
/// the estimate. Asked on every evaluation once the cache holds the estimate, so it writes
/// no string.
fn fingerprint(h: &HeadroomStatus) -> Option<u64> {
    use std::hash::Hasher;
    struct Hashing(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(std::collections::hash_map::DefaultHasher::new());
    serde_json::to_writer(&mut hashing, h).ok()?;
    Some(hashing.0.finish())
}

#[derive(Default, Debug)]
pub(super) struct Learners {
    headroom: HashMap<String, Headroom>,
    predictions: HashMap<String, Prediction>,
}

impl Learners {
    /// Whether `key` is due for calibration at `now`; if so it is marked running and next due
    /// `every` later. Never twice at once.
    pub fn calibration_due(&mut self, key: &str, now: Instant, every: Duration) -> bool {
        let h = self.headroom.entry(key.to_string()).or_default();
        if h.running || h.next.is_some_and(|n| now < n) {
            return false;
        }
        h.running = true;
        h.next = Some(now + every);
        true
    }

    pub fn calibration_wanted(&self, key: &str, now: Instant) -> bool {
        self.headroom
            .get(key)
            .is_none_or(|h| !h.running && h.next.is_none_or(|n| now >= n))
    }

    /// Keeps a calibration's result, unless the policy was forgotten meanwhile.
    pub fn calibrated(&mut self, key: &str, status: Option<HeadroomStatus>) {
        if let Some(h) = self.headroom.get_mut(key) {
            h.running = false;
            if status.is_some() {
                h.made = status.as_ref().and_then(fingerprint);
                h.last = status;
            }
        }
    }

    /// The last estimate made here: kept here, or the cache's copy (`cached`) when it is
    /// the one made here. An estimate this process did not make is never returned; when it
    /// has none of its own to put back, it calibrates again at the next chance.
    pub fn headroom(
        &mut self,
        key: &str,
        cached: Option<&HeadroomStatus>,
    ) -> Option<HeadroomStatus> {
        let h = self.headroom.get_mut(key)?;
        if let Some(last) = &h.last {
            return Some(last.clone());
        }
        let c = cached?;
        if h.made.is_some() && fingerprint(c) == h.made {
            return Some(c.clone());
        }
        if !h.running {
            h.next = None;
        }
        None
    }

    /// The watch cache carries `cached` as `key`'s estimate: once it is the one kept here,
    /// the copy here is dropped, and the cache is the only one.
    pub fn seen_in_cache(&mut self, key: &str, cached: Option<&HeadroomStatus>) {
        if let Some(h) = self.headroom.get_mut(key)
            && h.last.is_some()
            && h.last.as_ref() == cached
        {
            h.last = None;
        }
    }

    pub fn prediction_wanted(&self, key: &str, plan: &PredictivePlan, now: Instant) -> bool {
        self.predictions.get(key).is_none_or(|p| p.due(plan, now))
    }

    pub fn start_prediction(
        &mut self,
        key: &str,
        plan: &PredictivePlan,
        now: Instant,
    ) -> Option<Histories> {
        self.predictions
            .entry(key.to_string())
            .or_insert_with(|| Prediction::new(plan))
            .start(plan, now)
    }

    pub fn finish_prediction(
        &mut self,
        key: &str,
        result: Result<(Histories, Learned), String>,
        now: Instant,
    ) {
        if let Some(p) = self.predictions.get_mut(key) {
            p.finish(result, now);
        }
    }

    pub fn forget_prediction(&mut self, key: &str) {
        self.predictions.remove(key);
    }

    /// What `key`'s learned pattern expects at `unix`, when it is trusted.
    pub fn predicted(&self, key: &str, unix: i64, plan: &PredictivePlan) -> Option<PredictedPeak> {
        let l = self.predictions.get(key)?.learned()?;
        let o = l.at(unix).filter(|_| l.trusted)?;
        Some(PredictedPeak {
            peak: o.peak,
            level: o.level,
            horizon_seconds: plan.settings.horizon_seconds,
            pattern: o.period().unwrap_or_default(),
            min_rise: o.min_rise,
            enforce: plan.enforce,
        })
    }

    pub fn prediction_status(
        &self,
        key: &str,
        unix: i64,
        replicas: Option<i32>,
    ) -> Option<PredictiveStatus> {
        Some(self.predictions.get(key)?.status(unix, replicas))
    }

    pub fn forget(&mut self, key: &str) {
        self.headroom.remove(key);
        self.predictions.remove(key);
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.headroom.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_dropped_here_once_the_cache_carries_it() {
        let mut l = Learners::default();
        let now = Instant::now();
        assert!(l.calibration_due("ns/a", now, Duration::from_secs(60)));
        let estimate = HeadroomStatus {
            summary: "2.0x app".into(),
            ..Default::default()
        };
        l.calibrated("ns/a", Some(estimate.clone()));
        l.seen_in_cache("ns/a", None);
        assert_eq!(l.headroom("ns/a", None), Some(estimate.clone()));
        l.seen_in_cache("ns/a", Some(&estimate));
        assert_eq!(l.headroom("ns/a", None), None);
        // The cache's copy stands for it, but not another writer's estimate.
        assert_eq!(l.headroom("ns/a", Some(&estimate)), Some(estimate.clone()));
        let forged = HeadroomStatus {
            factor: Some(50.0),
            ..estimate.clone()
        };
        assert_eq!(l.headroom("ns/a", Some(&forged)), None);
        // And it is calibrated again at once, to put its own back.
        assert!(l.calibration_wanted("ns/a", now));
        l.forget("ns/a");
        assert!(l.calibration_wanted("ns/a", now));
    }
}
