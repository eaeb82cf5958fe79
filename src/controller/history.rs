//! Recommendation and scale-event history per policy, kept in memory. After a restart the
//! history is rebuilt conservatively: the current replica count is taken as a fresh
//! recommendation, so a restart can never cause a scale-down before a full window passes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::decision::{History, Recommendation, ScaleEvent, capacity_age};

// Longer than any stabilization window (3600s) and any policy period (1800s).
const KEEP: Duration = Duration::from_secs(3600);

#[derive(Default, Debug)]
struct PolicyHistory {
    recommendations: Vec<(Instant, i32)>,
    scale_events: Vec<(Instant, i32)>,
    last_spike: Option<Instant>,
    /// RFC 3339 time of the last write to /scale; the cached policy's status may lag it.
    last_scale_time: Option<String>,
    /// When the ready replicas first reached the count of the newest scale-up.
    caught_up: Option<Instant>,
}

/// All policies' histories, keyed by namespace/name.
#[derive(Default, Debug)]
pub struct Histories {
    by_policy: HashMap<String, PolicyHistory>,
}

impl Histories {
    /// The history as ages at `now`; seeds it with `current` on first sight.
    pub fn view(&mut self, key: &str, now: Instant, current: i32, ready: i32) -> History {
        let h = self
            .by_policy
            .entry(key.to_string())
            .or_insert_with(|| PolicyHistory {
                recommendations: vec![(now, current)],
                scale_events: vec![],
                last_spike: None,
                last_scale_time: None,
                caught_up: None,
            });
        let fresh = |t: &Instant| now.saturating_duration_since(*t) <= KEEP;
        h.recommendations.retain(|(t, _)| fresh(t));
        h.scale_events.retain(|(t, _)| fresh(t));
        let age = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
        let capacity_age_seconds = capacity_age(
            &mut h.caught_up,
            h.scale_events.iter().copied(),
            now,
            current,
            ready,
            age,
        );
        History {
            recommendations: h
                .recommendations
                .iter()
                .map(|&(t, replicas)| Recommendation {
                    replicas,
                    age_seconds: age(t),
                })
                .collect(),
            scale_events: h
                .scale_events
                .iter()
                .map(|&(t, replica_change)| ScaleEvent {
                    replica_change,
                    age_seconds: age(t),
                })
                .collect(),
            capacity_age_seconds,
        }
    }

    pub fn record_recommendation(&mut self, key: &str, now: Instant, replicas: i32) {
        self.by_policy
            .entry(key.to_string())
            .or_default()
            .recommendations
            .push((now, replicas));
    }

    pub fn record_scale(&mut self, key: &str, now: Instant, change: i32, at: String) {
        let h = self.by_policy.entry(key.to_string()).or_default();
        h.scale_events.push((now, change));
        h.last_scale_time = Some(at);
    }

    pub fn last_scale_time(&self, key: &str) -> Option<String> {
        self.by_policy.get(key)?.last_scale_time.clone()
    }

    /// Seconds since panic mode last saw a spike for this policy.
    pub fn last_spike_age(&self, key: &str, now: Instant) -> Option<f64> {
        let t = self.by_policy.get(key)?.last_spike?;
        Some(now.saturating_duration_since(t).as_secs_f64())
    }

    pub fn record_spike(&mut self, key: &str, now: Instant) {
        self.by_policy
            .entry(key.to_string())
            .or_default()
            .last_spike = Some(now);
    }

    pub fn forget(&mut self, key: &str) {
        self.by_policy.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sight_seeds_current_replicas_so_a_restart_cannot_scale_down() {
        let mut h = Histories::default();
        let t0 = Instant::now();
        let v = h.view("ns/p", t0, 7, 7);
        assert_eq!(
            v.recommendations,
            vec![Recommendation {
                replicas: 7,
                age_seconds: 0.0
            }]
        );
        // A second look does not seed again.
        let v = h.view("ns/p", t0 + Duration::from_secs(10), 3, 3);
        assert_eq!(v.recommendations.len(), 1);
        assert_eq!(v.recommendations[0].age_seconds, 10.0);
    }

    #[test]
    fn entries_older_than_an_hour_are_dropped() {
        let mut h = Histories::default();
        let t0 = Instant::now();
        h.view("k", t0, 1, 1);
        h.record_scale("k", t0, 2, "t0".into());
        let v = h.view("k", t0 + Duration::from_secs(3601), 1, 1);
        assert!(v.recommendations.is_empty() && v.scale_events.is_empty());
    }

    #[test]
    fn capacity_age_counts_from_when_the_new_pods_were_ready() {
        let mut h = Histories::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(h.view("k", t0, 2, 2).capacity_age_seconds, None);
        h.record_scale("k", at(1), 2, "t1".into());
        assert_eq!(h.view("k", at(5), 4, 2).capacity_age_seconds, Some(0.0));
        assert_eq!(h.view("k", at(20), 4, 4).capacity_age_seconds, Some(0.0));
        assert_eq!(h.view("k", at(50), 4, 4).capacity_age_seconds, Some(30.0));
        // A newer scale-up starts the count again once its pods are ready.
        h.record_scale("k", at(60), 4, "t60".into());
        assert_eq!(h.view("k", at(70), 8, 8).capacity_age_seconds, Some(0.0));
        assert_eq!(h.view("k", at(85), 8, 8).capacity_age_seconds, Some(15.0));
        // Scale-downs do not count as new capacity.
        h.record_scale("k", at(90), -2, "t90".into());
        assert_eq!(h.view("k", at(95), 6, 6).capacity_age_seconds, Some(25.0));
    }
}
