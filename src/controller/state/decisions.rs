//! Decision memory: each policy's recommendations and scale events (for stabilization and
//! rate limits), panic's last spike, its idle run, its recent readings, when it is due, and
//! the replicas this operator last wrote to each target.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::super::groups::Groups;
use super::super::history::Rings;
use crate::decision::{Evaluation, History, Recommendation, ScaleEvent, capacity_age};

/// Longer than any stabilization window (3600s) and any policy period (1800s).
pub(super) const KEEP: Duration = Duration::from_secs(3600);

/// Longer than any evaluation can be in flight (queries time out in seconds).
const GONE_FOR: Duration = Duration::from_secs(600);

#[derive(Default, Debug)]
struct PolicyMemory {
    recommendations: Vec<(Instant, i32)>,
    scale_events: Vec<(Instant, i32)>,
    last_spike: Option<Instant>,
    /// RFC 3339 time of the last write to /scale; the cached policy's status may lag it.
    last_scale_time: Option<String>,
    /// When the ready replicas first reached the count of the newest scale-up.
    caught_up: Option<Instant>,
    /// The connection-budget ledger it claims in, if any.
    pool: Option<String>,
    /// minReplicas 0: since when its evaluations have seen no demand.
    idle_since: Option<Instant>,
}

/// What an evaluation recalls of its policy.
pub(super) struct Recalled {
    pub history: History,
    pub last_spike_age: Option<f64>,
    pub idle_seconds: Option<f64>,
}

#[derive(Default, Debug)]
pub(super) struct Decisions {
    policies: HashMap<String, PolicyMemory>,
    /// Policies deleted lately, and when: an evaluation still in flight at the delete must
    /// not bring back the memory (and the budget claim) the delete dropped. Cleared when a
    /// policy of the same key appears again.
    gone: HashMap<String, Instant>,
    /// By target (`namespace/kind/name`): the replica count this operator last wrote, and
    /// for which policy, so that its own write does not trigger another evaluation.
    own_writes: HashMap<String, (String, i32)>,
    /// When each policy's next evaluation is due, for the lag at which it starts.
    due: HashMap<String, Instant>,
    /// Each policy's recent readings for trends and "regularly" (see `history`).
    rings: HashMap<String, Rings>,
    /// Who scales each target (`namespace/kind/name`), from the policy watch.
    pub scalers: Groups,
}

impl Decisions {
    /// The history of `key` at `now`, seeded with `current` on first sight: after a restart
    /// the count it runs is a fresh recommendation, so a restart never scales down early.
    pub fn recall(&mut self, key: &str, now: Instant, current: i32, ready: i32) -> Recalled {
        let h = self
            .policies
            .entry(key.to_string())
            .or_insert_with(|| PolicyMemory {
                recommendations: vec![(now, current)],
                ..Default::default()
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
        let recommendations = h
            .recommendations
            .iter()
            .map(|&(t, replicas)| Recommendation {
                replicas,
                age_seconds: age(t),
            })
            .collect();
        let scale_events = h
            .scale_events
            .iter()
            .map(|&(t, replica_change)| ScaleEvent {
                replica_change,
                age_seconds: age(t),
            })
            .collect();
        Recalled {
            history: History {
                recommendations,
                scale_events,
                capacity_age_seconds,
            },
            last_spike_age: h.last_spike.map(age),
            idle_seconds: h.idle_since.map(age),
        }
    }

    pub fn is_gone(&self, key: &str) -> bool {
        self.gone.contains_key(key)
    }

    /// Remembers what an evaluation decided at `now`, recommendations only as far back as
    /// `window`; returns the ledger the policy claimed in before, where it claims in `pool`.
    pub fn remember(
        &mut self,
        key: &str,
        pool: Option<&str>,
        now: Instant,
        ev: &Evaluation,
        window: Duration,
    ) -> Option<String> {
        let h = self.policies.entry(key.to_string()).or_default();
        if let Some(r) = ev.decision.recommendation {
            // A window keeps the highest (or lowest) recommendation younger than itself, and
            // of a run of equal ones the newest is the youngest: it alone decides the same.
            // So a steady policy holds one entry, not one per evaluation for an hour.
            match h.recommendations.last_mut() {
                Some(last) if last.1 == r => last.0 = now,
                _ => h.recommendations.push((now, r)),
            }
        }
        let window = window.min(KEEP);
        h.recommendations
            .retain(|(t, _)| now.saturating_duration_since(*t) <= window);
        if h.recommendations.capacity() > 2 * h.recommendations.len().max(4) {
            h.recommendations.shrink_to_fit();
        }
        if ev.spike_now {
            h.last_spike = Some(now);
        }
        h.idle_since = ev.idle.then(|| h.idle_since.unwrap_or(now));
        std::mem::replace(&mut h.pool, pool.map(str::to_string))
    }

    pub fn record_scale(&mut self, key: &str, now: Instant, change: i32, at: String) {
        let h = self.policies.entry(key.to_string()).or_default();
        h.scale_events.push((now, change));
        h.last_scale_time = Some(at);
    }

    pub fn wrote(&mut self, key: &str, target: &str, replicas: i32) {
        self.own_writes
            .insert(target.to_string(), (key.to_string(), replicas));
    }

    pub fn is_own_write(&self, target: &str, replicas: i32) -> bool {
        self.own_writes
            .get(target)
            .is_some_and(|(_, w)| *w == replicas)
    }

    pub fn last_scale_time(&self, key: &str) -> Option<String> {
        self.policies.get(key)?.last_scale_time.clone()
    }

    /// Drops what is kept of `key`, marks it gone, and returns the ledger it claimed in.
    pub fn forget(&mut self, key: &str, now: Instant) -> Option<String> {
        self.gone
            .retain(|_, at| now.saturating_duration_since(*at) < GONE_FOR);
        self.gone.insert(key.to_string(), now);
        self.own_writes.retain(|_, (k, _)| k != key);
        self.due.remove(key);
        self.rings.remove(key);
        self.scalers.remove(key);
        self.policies.remove(key).and_then(|h| h.pool)
    }

    /// A policy of `key` is in the spec again.
    pub fn returned(&mut self, key: &str, target: Option<String>) {
        self.gone.remove(key);
        self.scalers.set(key, target);
    }

    pub fn take_rings(&mut self, key: &str) -> Rings {
        self.rings.remove(key).unwrap_or_default()
    }

    pub fn put_rings(&mut self, key: &str, rings: Rings) {
        if !self.is_gone(key) {
            self.rings.insert(key.to_string(), rings);
        }
    }

    pub fn due_at(&mut self, key: &str, at: Instant) {
        self.due.insert(key.to_string(), at);
    }

    pub fn lag(&mut self, key: &str, now: Instant) -> Option<Duration> {
        now.checked_duration_since(self.due.remove(key)?)
    }

    /// Every policy key kept here.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.policies
            .keys()
            .chain(self.due.keys())
            .chain(self.rings.keys())
            .chain(self.scalers.keys())
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_policy_leaves_nothing_and_its_readings_are_not_put_back() {
        let mut d = Decisions::default();
        let now = Instant::now();
        let _ = d.recall("ns/a", now, 3, 3);
        d.wrote("ns/a", "ns/Deployment/a", 4);
        d.due_at("ns/a", now);
        let rings = d.take_rings("ns/a");
        assert_eq!(d.forget("ns/a", now), None);
        d.put_rings("ns/a", rings);
        assert_eq!(d.keys().count(), 0);
        assert!(!d.is_own_write("ns/Deployment/a", 4));
        d.returned("ns/a", None);
        assert!(!d.is_gone("ns/a"));
    }
}
