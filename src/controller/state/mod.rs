//! What the operator keeps per policy between evaluations, by concern: the decision memory
//! (`decisions`), the connection-budget ledger (`ledger`), what the background learners
//! learned (`learners`) and the status last written (`written`). Each is its own type behind
//! its own lock, and everything of a policy is dropped when it leaves the store.
//!
//! After a restart the history is rebuilt conservatively: the current replica count is taken
//! as a fresh recommendation, so a restart can never cause a scale-down before a full window.

mod decisions;
mod learners;
mod ledger;
mod prediction;
mod written;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::api::{HeadroomStatus, PredictiveStatus, ScalingPolicyStatus, TargetRef};
use crate::decision::guardrails::{Claim, PredictedPeak};
use crate::decision::{Evaluation, Memory};
use crate::plan::PredictivePlan;
use crate::predict::{Histories as LoadHistory, Learned};
use decisions::Decisions;
#[cfg(test)]
use decisions::KEEP;
use learners::Learners;
use ledger::Ledger;
use written::Written;

use super::history::Rings;

/// All policies' memory, keyed by namespace/name. Where two concerns change together (a
/// decision and its budget claim, a delete), the decisions' lock is taken first.
#[derive(Default, Debug)]
pub struct State {
    decisions: Mutex<Decisions>,
    ledger: Mutex<Ledger>,
    learners: Mutex<Learners>,
    written: Mutex<Written>,
    /// Held from recall to remember by policies with a connection budget, so two policies
    /// sharing one never decide on the same free connections.
    turn: Mutex<()>,
}

/// A lock. A panic while it was held cannot have left half-written data (every update is one
/// push or insert), so the data is kept, never replaced by an empty one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => {
            tracing::error!("policy memory lock was poisoned by a panic; keeping its data");
            m.clear_poison();
            poisoned.into_inner()
        }
    }
}

impl State {
    /// One budget decision at a time.
    pub fn budget_turn(&self) -> MutexGuard<'_, ()> {
        lock(&self.turn)
    }

    /// The memory of `key` at `now`, seeded with `current` on first sight. `pool` names its
    /// budget ledger; `from_status` are claims of sharing policies the ledger does not know
    /// yet (after a restart), counted from their status.
    pub fn memory(
        &self,
        key: &str,
        pool: Option<&str>,
        now: Instant,
        current: i32,
        ready: i32,
        from_status: Vec<Claim>,
    ) -> Memory {
        let recalled = lock(&self.decisions).recall(key, now, current, ready);
        Memory {
            history: recalled.history,
            last_spike_age: recalled.last_spike_age,
            budget_name: key.to_string(),
            neighbours: lock(&self.ledger).neighbours(pool, key, from_status),
            predicted: None,
            idle_seconds: recalled.idle_seconds,
        }
    }

    /// Remembers what an evaluation of `key` decided at `now`; its recommendations only as far
    /// back as `window`, the policy's longest stabilization window.
    pub fn record(
        &self,
        key: &str,
        pool: Option<&str>,
        now: Instant,
        ev: &Evaluation,
        window: Duration,
    ) {
        let mut decisions = lock(&self.decisions);
        if decisions.is_gone(key) {
            return;
        }
        let old = decisions.remember(key, pool, now, ev, window);
        // Under the decisions' lock: a delete in between cannot bring the claim back.
        lock(&self.ledger).claim(key, old, pool, ev.budget_claim.as_ref());
    }

    pub fn record_scale(&self, key: &str, now: Instant, change: i32, at: String) {
        lock(&self.decisions).record_scale(key, now, change, at);
    }

    /// Remembers that policy `key` set `target` to `replicas`.
    pub fn wrote(&self, key: &str, target: &str, replicas: i32) {
        lock(&self.decisions).wrote(key, target, replicas);
    }

    /// Whether `target` at `replicas` is what this operator wrote last (a watch event of
    /// its own making, not a change to react to).
    pub fn is_own_write(&self, target: &str, replicas: Option<i32>) -> bool {
        replicas.is_some_and(|r| lock(&self.decisions).is_own_write(target, r))
    }

    pub fn last_scale_time(&self, key: &str) -> Option<String> {
        lock(&self.decisions).last_scale_time(key)
    }

    /// Drops everything remembered of `key`. Its budget claim goes too, unless its `target`
    /// is given: then the claim stays, needing nothing, as long as the target runs what it
    /// held (`orphans_in`), since those replicas keep their connections.
    pub fn forget(&self, key: &str, target: Option<&TargetRef>) {
        let mut decisions = lock(&self.decisions);
        let pool = decisions.forget(key, Instant::now());
        lock(&self.ledger).forget(key, pool, target);
        drop(decisions);
        lock(&self.learners).forget(key);
        lock(&self.written).forget(key);
    }

    /// The orphans of `pool` with their claims, for status.
    pub fn orphan_claims(&self, pool: &str) -> Vec<(String, TargetRef, Claim)> {
        lock(&self.ledger).orphan_claims(pool)
    }

    /// Counts an orphan a sharer's status lists, unless the ledger knows its key.
    pub fn adopt_orphan(&self, key: &str, pool: &str, target: TargetRef, claim: Claim) {
        lock(&self.ledger).adopt(key, pool, target, claim);
    }

    /// Deleted policies' claims in `pool`: their keys and targets.
    pub fn orphans_in(&self, pool: &str) -> Vec<(String, TargetRef)> {
        lock(&self.ledger).orphans_in(pool)
    }

    /// A deleted policy's target runs `replicas` now (None: it is gone): its claim holds
    /// that many, or leaves at zero.
    pub fn orphan_runs(&self, key: &str, replicas: Option<i32>) {
        lock(&self.ledger).orphan_runs(key, replicas);
    }

    /// Notes which budget `key` shares and which target it scales, as its spec says.
    pub fn spec_names(&self, key: &str, pool: Option<String>, target: Option<String>) {
        let mut decisions = lock(&self.decisions);
        decisions.returned(key, target);
        lock(&self.ledger).sharers.set(key, pool);
    }

    /// The policies sharing `pool`, by key, that have no claim in its ledger yet (after a
    /// restart, until they are evaluated here): only these are read from their status.
    pub fn unledgered_sharers(&self, pool: &str, me: &str) -> Vec<String> {
        lock(&self.ledger).unledgered(pool, me)
    }

    /// The policies scaling `target` (`namespace/kind/name`), by key.
    pub fn scalers(&self, target: &str) -> Vec<String> {
        lock(&self.decisions)
            .scalers
            .members(target)
            .cloned()
            .collect()
    }

    /// The policy's reading history, taken out for one evaluation (evaluations of one policy
    /// never overlap) and put back with `put_rings`.
    pub fn take_rings(&self, key: &str) -> Rings {
        lock(&self.decisions).take_rings(key)
    }

    pub fn put_rings(&self, key: &str, rings: Rings) {
        lock(&self.decisions).put_rings(key, rings);
    }

    /// Whether `key`'s headroom is due for calibration at `now`; if so, it is marked running
    /// and next due `every` later. Never twice at once.
    pub fn calibration_due(&self, key: &str, now: Instant, every: Duration) -> bool {
        lock(&self.learners).calibration_due(key, now, every)
    }

    /// The status last written for `key` while the watch cache's copy (`cached`) has not
    /// caught up with it. Once it has, the copy here is dropped (and the estimate too, once
    /// the cache carries it): at steady state the cache is the only copy.
    pub fn written_status(
        &self,
        key: &str,
        cached: Option<&ScalingPolicyStatus>,
        now: Instant,
    ) -> Option<ScalingPolicyStatus> {
        lock(&self.learners).seen_in_cache(key, cached.and_then(|c| c.headroom.as_ref()));
        lock(&self.written).newer_than(key, cached, now)
    }

    /// Notes a status the API server accepted for `key` at `now`.
    pub fn wrote_status(&self, key: &str, status: ScalingPolicyStatus, now: Instant) {
        lock(&self.written).wrote(key, status, now);
    }

    /// Notes that the API server refused `key`'s status for `why`; whether that is news
    /// (the first refusal, or another reason than the last).
    pub fn status_refused(&self, key: &str, why: &str) -> bool {
        lock(&self.written).refused(key, why)
    }

    /// Whether `key` would be due at `now` (nothing is marked).
    pub fn calibration_wanted(&self, key: &str, now: Instant) -> bool {
        lock(&self.learners).calibration_wanted(key, now)
    }

    /// Keeps a calibration's result, unless the policy was forgotten meanwhile.
    pub fn calibrated(&self, key: &str, status: Option<HeadroomStatus>) {
        lock(&self.learners).calibrated(key, status);
    }

    /// Whether `key`'s forecast would be due at `now` (nothing is marked).
    pub fn prediction_wanted(&self, key: &str, plan: &PredictivePlan, now: Instant) -> bool {
        lock(&self.learners).prediction_wanted(key, plan, now)
    }

    /// Marks `key`'s forecast refresh running and gives the history to add to.
    pub fn start_prediction(
        &self,
        key: &str,
        plan: &PredictivePlan,
        now: Instant,
    ) -> Option<LoadHistory> {
        lock(&self.learners).start_prediction(key, plan, now)
    }

    /// Keeps a refresh's result, unless the policy was forgotten meanwhile.
    pub fn finish_prediction(
        &self,
        key: &str,
        result: Result<(LoadHistory, Learned), String>,
        now: Instant,
    ) {
        lock(&self.learners).finish_prediction(key, result, now);
    }

    /// Drops `key`'s forecast (its spec turned it off).
    pub fn forget_prediction(&self, key: &str) {
        lock(&self.learners).forget_prediction(key);
    }

    /// What `key`'s learned pattern expects at `unix`, when it is trusted.
    pub fn predicted(&self, key: &str, unix: i64, plan: &PredictivePlan) -> Option<PredictedPeak> {
        lock(&self.learners).predicted(key, unix, plan)
    }

    /// `key`'s predictive status at `unix`: None when predictive scaling is off.
    pub fn prediction_status(
        &self,
        key: &str,
        unix: i64,
        predicted_replicas: Option<i32>,
    ) -> Option<PredictiveStatus> {
        lock(&self.learners).prediction_status(key, unix, predicted_replicas)
    }

    /// The last headroom estimate this process made for `key`: its own copy, or the watch
    /// cache's (`cached`) when that is the one it made.
    pub fn headroom(&self, key: &str, cached: Option<&HeadroomStatus>) -> Option<HeadroomStatus> {
        lock(&self.learners).headroom(key, cached)
    }

    /// Notes when `key` is due next.
    pub fn due_at(&self, key: &str, at: Instant) {
        lock(&self.decisions).due_at(key, at);
    }

    /// How late an evaluation starting at `now` is; None when it was not due (a watch event
    /// brought it forward) or nothing was scheduled.
    pub fn lag(&self, key: &str, now: Instant) -> Option<Duration> {
        lock(&self.decisions).lag(key, now)
    }

    /// Keeps only the policies for which `keep` holds (after a relist).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut gone: Vec<String> = lock(&self.decisions)
            .keys()
            .filter(|k| !keep(k))
            .cloned()
            .collect();
        gone.extend(
            lock(&self.ledger)
                .sharers
                .keys()
                .filter(|k| !keep(k))
                .cloned(),
        );
        gone.extend(lock(&self.learners).keys().filter(|k| !keep(k)).cloned());
        gone.extend(lock(&self.written).keys().filter(|k| !keep(k)).cloned());
        gone.sort();
        gone.dedup();
        for k in gone {
            self.forget(&k, None);
        }
    }

    /// How many policies are remembered.
    pub fn len(&self) -> usize {
        lock(&self.decisions).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Recommendation;

    #[test]
    fn a_refused_status_is_news_once_until_a_write_succeeds() {
        let s = State::default();
        assert!(s.status_refused("ns/web", "status not written: too large"));
        assert!(!s.status_refused("ns/web", "status not written: too large"));
        assert!(s.status_refused("ns/web", "status not written: invalid"));
        s.wrote_status("ns/web", ScalingPolicyStatus::default(), Instant::now());
        assert!(s.status_refused("ns/web", "status not written: invalid"));
        s.forget("ns/web", None);
        assert!(s.status_refused("ns/web", "status not written: invalid"));
    }

    #[test]
    fn groups_leave_with_the_policy() {
        let h = State::default();
        h.spec_names(
            "ns/a",
            Some("ns/orders".into()),
            Some("ns/Deployment/web".into()),
        );
        h.spec_names("ns/b", None, Some("ns/Deployment/web".into()));
        assert_eq!(h.unledgered_sharers("ns/orders", "ns/b"), ["ns/a"]);
        assert!(h.unledgered_sharers("ns/orders", "ns/a").is_empty());
        // Once a sharer has claimed in the ledger here, its status is not read again.
        let mut ev = Evaluation::new(
            crate::decision::Decision {
                desired_replicas: 2,
                reason: String::new(),
                limited_by: crate::decision::Limit::None,
                proposals: vec![],
                recommendation: Some(2),
            },
            vec![],
        );
        ev.budget_claim = Some(Claim {
            name: "ns/a".into(),
            pool_size: 10,
            held: 2,
            need: 2,
        });
        h.record("ns/a", Some("ns/orders"), Instant::now(), &ev, KEEP);
        assert!(h.unledgered_sharers("ns/orders", "ns/b").is_empty());
        assert_eq!(h.scalers("ns/Deployment/web"), ["ns/a", "ns/b"]);
        h.forget("ns/a", None);
        assert!(h.unledgered_sharers("ns/orders", "ns/b").is_empty());
        h.retain(|k| k != "ns/b");
        assert!(h.scalers("ns/Deployment/web").is_empty());
    }

    #[test]
    fn lag_is_measured_once_from_the_due_time_and_dropped_with_the_policy() {
        let h = State::default();
        let t0 = Instant::now();
        h.due_at("ns/p", t0);
        assert_eq!(
            h.lag("ns/p", t0 + Duration::from_millis(300)),
            Some(Duration::from_millis(300))
        );
        // A watch event brought the next one forward: not due, no lag.
        assert_eq!(h.lag("ns/p", t0 + Duration::from_secs(1)), None);
        h.due_at("ns/p", t0 + Duration::from_secs(5));
        assert_eq!(h.lag("ns/p", t0 + Duration::from_secs(1)), None);
        h.due_at("ns/q", t0);
        h.retain(|k| k != "ns/q");
        assert_eq!(h.lag("ns/q", t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn a_calibration_runs_once_at_a_time_every_period_and_its_result_leaves_with_the_policy() {
        let h = State::default();
        let t0 = Instant::now();
        let every = Duration::from_secs(60);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(h.calibration_wanted("ns/p", t0));
        assert!(h.calibration_due("ns/p", t0, every));
        assert!(!h.calibration_wanted("ns/p", at(61)));
        // Still running past its period: not started twice.
        assert!(!h.calibration_due("ns/p", at(61), every));
        let estimate = HeadroomStatus {
            summary: "2.0x database-cpu".into(),
            ..Default::default()
        };
        h.calibrated("ns/p", Some(estimate.clone()));
        assert_eq!(h.headroom("ns/p", None), Some(estimate.clone()));
        assert!(h.calibration_due("ns/p", at(61), every));
        assert!(!h.calibration_due("ns/p", at(62), every));
        // A failed calibration keeps the last estimate.
        h.calibrated("ns/p", None);
        assert_eq!(h.headroom("ns/p", None), Some(estimate));
        h.retain(|k| k != "ns/p");
        assert_eq!(h.headroom("ns/p", None), None);
        // A result arriving after the policy left is dropped, not kept for a stranger.
        assert!(h.calibration_due("ns/q", t0, every));
        h.forget("ns/q", None);
        h.calibrated("ns/q", Some(HeadroomStatus::default()));
        assert_eq!(h.headroom("ns/q", None), None);
    }

    #[test]
    fn the_last_written_status_is_kept_until_the_cache_has_it_or_the_policy_leaves() {
        let h = State::default();
        let t0 = Instant::now();
        let s = ScalingPolicyStatus {
            desired_replicas: Some(3),
            ..Default::default()
        };
        h.wrote_status("ns/p", s.clone(), t0);
        // The cache still shows an older status: the one written here stands.
        let older = ScalingPolicyStatus::default();
        assert_eq!(h.written_status("ns/p", Some(&older), t0), Some(s.clone()));
        assert_eq!(h.written_status("ns/p", None, t0), Some(s.clone()));
        h.forget("ns/p", None);
        assert_eq!(h.written_status("ns/p", Some(&older), t0), None);
        // Once the cache has caught up, no copy is kept here.
        h.wrote_status("ns/p", s.clone(), t0);
        assert_eq!(h.written_status("ns/p", Some(&s), t0), None);
        assert_eq!(h.written_status("ns/p", Some(&older), t0), None);
        // Nor of the estimate, once the cache carries it.
        let estimate = HeadroomStatus {
            summary: "3.0x app".into(),
            ..Default::default()
        };
        assert!(h.calibration_due("ns/p", Instant::now(), Duration::from_secs(60)));
        h.calibrated("ns/p", Some(estimate.clone()));
        h.written_status("ns/p", Some(&older), t0);
        assert_eq!(h.headroom("ns/p", None), Some(estimate.clone()));
        let carried = ScalingPolicyStatus {
            headroom: Some(estimate),
            ..Default::default()
        };
        h.written_status("ns/p", Some(&carried), t0);
        assert_eq!(h.headroom("ns/p", None), None);
    }

    #[test]
    fn a_status_another_writer_changed_is_compared_again_once_the_cache_cannot_be_lagging() {
        let h = State::default();
        let t0 = Instant::now();
        let own = ScalingPolicyStatus {
            desired_replicas: Some(3),
            ..Default::default()
        };
        let forged = ScalingPolicyStatus {
            desired_replicas: Some(40),
            ..Default::default()
        };
        h.wrote_status("ns/p", own.clone(), t0);
        // Moments later the cache may just lag: the own copy stands.
        assert_eq!(
            h.written_status("ns/p", Some(&forged), t0 + Duration::from_secs(2)),
            Some(own.clone())
        );
        // Long after, the cache's copy is what is stored: it is what the next write replaces.
        assert_eq!(
            h.written_status("ns/p", Some(&forged), t0 + Duration::from_secs(31)),
            None
        );
    }

    #[test]
    fn first_sight_seeds_current_replicas_so_a_restart_cannot_scale_down() {
        let h = State::default();
        let t0 = Instant::now();
        let v = h.memory("ns/p", None, t0, 7, 7, vec![]).history;
        assert_eq!(
            v.recommendations,
            vec![Recommendation {
                replicas: 7,
                age_seconds: 0.0
            }]
        );
        // A second look does not seed again.
        let v = h
            .memory("ns/p", None, t0 + Duration::from_secs(10), 3, 3, vec![])
            .history;
        assert_eq!(v.recommendations.len(), 1);
        assert_eq!(v.recommendations[0].age_seconds, 10.0);
    }

    fn recommending(replicas: i32) -> Evaluation {
        Evaluation::new(
            crate::decision::Decision {
                desired_replicas: replicas,
                reason: String::new(),
                limited_by: crate::decision::Limit::None,
                proposals: vec![],
                recommendation: Some(replicas),
            },
            vec![],
        )
    }

    /// A steady policy holds one recommendation, not one per evaluation for an hour, and
    /// none older than its window; the window's highest and lowest stay what they were.
    #[test]
    fn recommendations_are_kept_as_runs_and_only_as_long_as_the_window() {
        let h = State::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let window = Duration::from_secs(300);
        h.memory("k", None, t0, 5, 5, vec![]);
        for (s, r) in [
            (15, 5),
            (30, 5),
            (45, 8),
            (60, 8),
            (75, 6),
            (90, 6),
            (105, 6),
        ] {
            h.record("k", None, at(s), &recommending(r), window);
        }
        let kept = |s: u64| {
            h.memory("k", None, at(s), 6, 6, vec![])
                .history
                .recommendations
                .iter()
                .map(|r| (r.replicas, r.age_seconds))
                .collect::<Vec<_>>()
        };
        // Each run as its newest: 5 at 30 s, 8 at 60 s, 6 at 105 s.
        assert_eq!(kept(105), [(5, 75.0), (8, 45.0), (6, 0.0)]);
        // Past the window only the newest run is left, and it still counts.
        h.record("k", None, at(395), &recommending(6), window);
        assert_eq!(kept(395), [(6, 0.0)]);
        h.record("k", None, at(1000), &recommending(4), window);
        assert_eq!(kept(1000), [(4, 0.0)]);
    }

    #[test]
    fn its_own_write_is_recognised_until_the_policy_is_forgotten() {
        let h = State::default();
        h.wrote("shop/web", "shop/Deployment/web", 4);
        assert!(h.is_own_write("shop/Deployment/web", Some(4)));
        // Someone else set another count: that is a change to react to.
        assert!(!h.is_own_write("shop/Deployment/web", Some(5)));
        assert!(!h.is_own_write("shop/Deployment/api", Some(4)));
        h.forget("shop/web", None);
        assert!(!h.is_own_write("shop/Deployment/web", Some(4)));
    }

    #[test]
    fn entries_older_than_an_hour_are_dropped() {
        let h = State::default();
        let t0 = Instant::now();
        h.memory("k", None, t0, 1, 1, vec![]);
        h.record_scale("k", t0, 2, "t0".into());
        let v = h
            .memory("k", None, t0 + Duration::from_secs(3601), 1, 1, vec![])
            .history;
        assert!(v.recommendations.is_empty() && v.scale_events.is_empty());
    }

    #[test]
    fn capacity_age_counts_from_when_the_new_pods_were_ready() {
        let h = State::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            h.memory("k", None, t0, 2, 2, vec![])
                .history
                .capacity_age_seconds,
            None
        );
        h.record_scale("k", at(1), 2, "t1".into());
        assert_eq!(
            h.memory("k", None, at(5), 4, 2, vec![])
                .history
                .capacity_age_seconds,
            Some(0.0)
        );
        assert_eq!(
            h.memory("k", None, at(20), 4, 4, vec![])
                .history
                .capacity_age_seconds,
            Some(0.0)
        );
        assert_eq!(
            h.memory("k", None, at(50), 4, 4, vec![])
                .history
                .capacity_age_seconds,
            Some(30.0)
        );
        // A newer scale-up starts the count again once its pods are ready.
        h.record_scale("k", at(60), 4, "t60".into());
        assert_eq!(
            h.memory("k", None, at(70), 8, 8, vec![])
                .history
                .capacity_age_seconds,
            Some(0.0)
        );
        assert_eq!(
            h.memory("k", None, at(85), 8, 8, vec![])
                .history
                .capacity_age_seconds,
            Some(15.0)
        );
        // Scale-downs do not count as new capacity.
        h.record_scale("k", at(90), -2, "t90".into());
        assert_eq!(
            h.memory("k", None, at(95), 6, 6, vec![])
                .history
                .capacity_age_seconds,
            Some(25.0)
        );
    }
}
