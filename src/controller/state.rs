//! What the operator remembers per policy between evaluations: recommendations and scale
//! events (for stabilization and rate limits), panic's last spike, and connection-budget
//! claims. All of it lives here, in one lock, and is dropped when the policy leaves the store.
//!
//! After a restart the history is rebuilt conservatively: the current replica count is taken
//! as a fresh recommendation, so a restart can never cause a scale-down before a full window.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::groups::Groups;
use super::history::Rings;
use super::predictive::Prediction;
use crate::api::{HeadroomStatus, PredictiveStatus, ScalingPolicyStatus, TargetRef};
use crate::decision::guardrails::{Claim, PredictedPeak};
use crate::decision::{Evaluation, History, Memory, Recommendation, ScaleEvent, capacity_age};
use crate::plan::PredictivePlan;
use crate::predict::{Histories as LoadHistory, Learned};

// Longer than any stabilization window (3600s) and any policy period (1800s).
const KEEP: Duration = Duration::from_secs(3600);

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

#[derive(Default, Debug)]
struct Headroom {
    next: Option<Instant>,
    running: bool,
    last: Option<HeadroomStatus>,
}

/// Longer than any evaluation can be in flight (queries time out in seconds).
const GONE_FOR: Duration = Duration::from_secs(600);

#[derive(Default, Debug)]
struct Inner {
    policies: HashMap<String, PolicyMemory>,
    /// By `namespace/database`: each sharing policy's claim.
    ledgers: HashMap<String, BTreeMap<String, Claim>>,
    /// Claims of deleted policies whose targets may still run (and hold connections): by
    /// policy key, their pool and target. They keep their `held` and need nothing, until
    /// the target is gone or at zero, or a policy of that key claims again.
    orphans: HashMap<String, (String, TargetRef)>,
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
    /// Each policy's traffic headroom estimate and when it is calibrated next.
    headroom: HashMap<String, Headroom>,
    /// Each policy's load history and learned pattern (spec.predictive).
    predictions: HashMap<String, Prediction>,
    /// The status this operator last wrote for each policy: what the next one is compared
    /// with, since the watch cache can lag (far, when the API server is overloaded, and then
    /// every evaluation would write again and overload it more).
    written: HashMap<String, (ScalingPolicyStatus, Instant)>,
    /// Why the API server last refused a policy's status, until a write succeeds.
    status_refused: HashMap<String, String>,
    /// Who shares each connection budget (`namespace/database`), and who scales each target
    /// (`namespace/kind/name`), from the policy watch.
    sharers: Groups,
    scalers: Groups,
}

/// All policies' memory, keyed by namespace/name.
/// Longest the watch cache is taken to lag behind a status this process wrote.
const CACHE_LAG_LIMIT: Duration = Duration::from_secs(30);

#[derive(Default, Debug)]
pub struct State {
    inner: Mutex<Inner>,
    /// Held from recall to remember by policies with a connection budget, so two policies
    /// sharing one never decide on the same free connections.
    turn: Mutex<()>,
}

impl State {
    /// The lock. A panic while it was held cannot have left a half-written history (every
    /// update is one push or insert), so the data is kept, never replaced by an empty one.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                tracing::error!("policy memory lock was poisoned by a panic; keeping its data");
                self.inner.clear_poison();
                poisoned.into_inner()
            }
        }
    }

    /// One budget decision at a time.
    pub fn budget_turn(&self) -> MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(|poisoned| {
            self.turn.clear_poison();
            poisoned.into_inner()
        })
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
        let mut inner = self.lock();
        let h = inner
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
        let history = History {
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
        };
        let last_spike_age = h.last_spike.map(age);
        let idle_seconds = h.idle_since.map(age);
        let mut neighbours: Vec<Claim> = pool
            .and_then(|p| inner.ledgers.get(p))
            .map(|l| l.values().filter(|c| c.name != key).cloned().collect())
            .unwrap_or_default();
        if !from_status.is_empty() {
            let known: std::collections::HashSet<&str> =
                neighbours.iter().map(|c| c.name.as_str()).collect();
            let unknown: Vec<Claim> = from_status
                .into_iter()
                .filter(|c| c.name != key && !known.contains(c.name.as_str()))
                .collect();
            neighbours.extend(unknown);
        }
        Memory {
            history,
            last_spike_age,
            budget_name: key.to_string(),
            neighbours,
            predicted: None,
            idle_seconds,
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
        let mut inner = self.lock();
        if inner.gone.contains_key(key) {
            return;
        }
        let h = inner.policies.entry(key.to_string()).or_default();
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
        let old_pool = std::mem::replace(&mut h.pool, pool.map(str::to_string));
        if let Some(old) = old_pool.filter(|o| Some(o.as_str()) != pool) {
            remove_claim(&mut inner.ledgers, &old, key);
        }
        if let (Some(p), Some(claim)) = (pool, &ev.budget_claim) {
            inner.orphans.remove(key);
            inner
                .ledgers
                .entry(p.to_string())
                .or_default()
                .insert(key.to_string(), claim.clone());
        }
    }

    pub fn record_scale(&self, key: &str, now: Instant, change: i32, at: String) {
        let mut inner = self.lock();
        let h = inner.policies.entry(key.to_string()).or_default();
        h.scale_events.push((now, change));
        h.last_scale_time = Some(at);
    }

    /// Remembers that policy `key` set `target` to `replicas`.
    pub fn wrote(&self, key: &str, target: &str, replicas: i32) {
        self.lock()
            .own_writes
            .insert(target.to_string(), (key.to_string(), replicas));
    }

    /// Whether `target` at `replicas` is what this operator wrote last (a watch event of
    /// its own making, not a change to react to).
    pub fn is_own_write(&self, target: &str, replicas: Option<i32>) -> bool {
        replicas.is_some_and(|r| {
            self.lock()
                .own_writes
                .get(target)
                .is_some_and(|(_, w)| *w == r)
        })
    }

    pub fn last_scale_time(&self, key: &str) -> Option<String> {
        self.lock().policies.get(key)?.last_scale_time.clone()
    }

    /// Drops everything remembered of `key`. Its budget claim goes too, unless its `target`
    /// is given: then the claim stays, needing nothing, as long as the target runs what it
    /// held (`orphans_in`), since those replicas keep their connections.
    pub fn forget(&self, key: &str, target: Option<&TargetRef>) {
        let mut inner = self.lock();
        let now = Instant::now();
        inner
            .gone
            .retain(|_, at| now.saturating_duration_since(*at) < GONE_FOR);
        inner.gone.insert(key.to_string(), now);
        if let Some(pool) = inner.policies.remove(key).and_then(|h| h.pool) {
            let claim = inner.ledgers.get_mut(&pool).and_then(|l| l.get_mut(key));
            match (claim, target) {
                (Some(c), Some(t)) if c.held > 0 => {
                    c.need = 0;
                    inner.orphans.insert(key.to_string(), (pool, t.clone()));
                }
                _ => remove_claim(&mut inner.ledgers, &pool, key),
            }
        }
        inner.own_writes.retain(|_, (k, _)| k != key);
        inner.due.remove(key);
        inner.rings.remove(key);
        inner.headroom.remove(key);
        inner.predictions.remove(key);
        inner.written.remove(key);
        inner.status_refused.remove(key);
        inner.sharers.remove(key);
        inner.scalers.remove(key);
    }

    /// Deleted policies' claims in `pool`: their keys and targets.
    pub fn orphans_in(&self, pool: &str) -> Vec<(String, TargetRef)> {
        self.lock()
            .orphans
            .iter()
            .filter(|(_, (p, _))| p == pool)
            .map(|(k, (_, t))| (k.clone(), t.clone()))
            .collect()
    }

    /// A deleted policy's target runs `replicas` now (None: it is gone): its claim holds
    /// that many, or leaves at zero.
    pub fn orphan_runs(&self, key: &str, replicas: Option<i32>) {
        let mut inner = self.lock();
        let Some((pool, _)) = inner.orphans.get(key).cloned() else {
            return;
        };
        match replicas.filter(|n| *n > 0) {
            Some(n) => {
                if let Some(c) = inner.ledgers.get_mut(&pool).and_then(|l| l.get_mut(key)) {
                    c.held = n;
                }
            }
            None => {
                inner.orphans.remove(key);
                remove_claim(&mut inner.ledgers, &pool, key);
            }
        }
    }

    /// Notes which budget `key` shares and which target it scales, as its spec says.
    pub fn spec_names(&self, key: &str, pool: Option<String>, target: Option<String>) {
        let mut inner = self.lock();
        inner.gone.remove(key);
        inner.sharers.set(key, pool);
        inner.scalers.set(key, target);
    }

    /// The policies sharing `pool`, by key, that have no claim in its ledger yet (after a
    /// restart, until they are evaluated here): only these are read from their status.
    pub fn unledgered_sharers(&self, pool: &str, me: &str) -> Vec<String> {
        let inner = self.lock();
        let ledger = inner.ledgers.get(pool);
        inner
            .sharers
            .members(pool)
            .filter(|k| *k != me && !ledger.is_some_and(|l| l.contains_key(*k)))
            .cloned()
            .collect()
    }

    /// The policies scaling `target` (`namespace/kind/name`), by key.
    pub fn scalers(&self, target: &str) -> Vec<String> {
        self.lock().scalers.members(target).cloned().collect()
    }

    /// The policy's reading history, taken out for one evaluation (evaluations of one policy
    /// never overlap) and put back with `put_rings`.
    pub fn take_rings(&self, key: &str) -> Rings {
        self.lock().rings.remove(key).unwrap_or_default()
    }

    pub fn put_rings(&self, key: &str, rings: Rings) {
        let mut inner = self.lock();
        if !inner.gone.contains_key(key) {
            inner.rings.insert(key.to_string(), rings);
        }
    }

    /// Whether `key`'s headroom is due for calibration at `now`; if so, it is marked running
    /// and next due `every` later. Never twice at once.
    pub fn calibration_due(&self, key: &str, now: Instant, every: Duration) -> bool {
        let mut inner = self.lock();
        let h = inner.headroom.entry(key.to_string()).or_default();
        if h.running || h.next.is_some_and(|n| now < n) {
            return false;
        }
        h.running = true;
        h.next = Some(now + every);
        true
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
        let mut inner = self.lock();
        let cached_headroom = cached.and_then(|c| c.headroom.as_ref());
        if let Some(h) = inner.headroom.get_mut(key)
            && h.last.is_some()
            && h.last.as_ref() == cached_headroom
        {
            h.last = None;
        }
        match inner.written.get(key) {
            Some((w, _)) if Some(w) == cached => {
                inner.written.remove(key);
                None
            }
            // The cache lags by moments, not this long: another writer changed the status
            // (forged values), and the cache's copy is what is stored. It is compared with
            // the next evaluation, which then writes the operator's own values back.
            Some((_, at)) if now.saturating_duration_since(*at) > CACHE_LAG_LIMIT => {
                inner.written.remove(key);
                None
            }
            w => w.map(|(w, _)| w.clone()),
        }
    }

    /// Notes a status the API server accepted for `key` at `now`.
    pub fn wrote_status(&self, key: &str, status: ScalingPolicyStatus, now: Instant) {
        let mut inner = self.lock();
        inner.status_refused.remove(key);
        inner.written.insert(key.to_string(), (status, now));
    }

    /// Notes that the API server refused `key`'s status for `why`; whether that is news
    /// (the first refusal, or another reason than the last).
    pub fn status_refused(&self, key: &str, why: &str) -> bool {
        let mut inner = self.lock();
        inner
            .status_refused
            .insert(key.to_string(), why.to_string())
            != Some(why.to_string())
    }

    /// Whether `key` would be due at `now` (nothing is marked).
    pub fn calibration_wanted(&self, key: &str, now: Instant) -> bool {
        self.lock()
            .headroom
            .get(key)
            .is_none_or(|h| !h.running && h.next.is_none_or(|n| now >= n))
    }

    /// Keeps a calibration's result, unless the policy was forgotten meanwhile.
    pub fn calibrated(&self, key: &str, status: Option<HeadroomStatus>) {
        if let Some(h) = self.lock().headroom.get_mut(key) {
            h.running = false;
            if status.is_some() {
                h.last = status;
            }
        }
    }

    /// Whether `key`'s forecast would be due at `now` (nothing is marked).
    pub fn prediction_wanted(&self, key: &str, plan: &PredictivePlan, now: Instant) -> bool {
        self.lock()
            .predictions
            .get(key)
            .is_none_or(|p| p.due(plan, now))
    }

    /// Marks `key`'s forecast refresh running and gives the history to add to.
    pub fn start_prediction(
        &self,
        key: &str,
        plan: &PredictivePlan,
        now: Instant,
    ) -> Option<LoadHistory> {
        self.lock()
            .predictions
            .entry(key.to_string())
            .or_insert_with(|| Prediction::new(plan))
            .start(plan, now)
    }

    /// Keeps a refresh's result, unless the policy was forgotten meanwhile.
    pub fn finish_prediction(
        &self,
        key: &str,
        result: Option<(LoadHistory, Learned)>,
        now: Instant,
    ) {
        if let Some(p) = self.lock().predictions.get_mut(key) {
            p.finish(result, now);
        }
    }

    /// Drops `key`'s forecast (its spec turned it off).
    pub fn forget_prediction(&self, key: &str) {
        self.lock().predictions.remove(key);
    }

    /// What `key`'s learned pattern expects at `unix`, when it is trusted.
    pub fn predicted(&self, key: &str, unix: i64, plan: &PredictivePlan) -> Option<PredictedPeak> {
        let inner = self.lock();
        let l = inner.predictions.get(key)?.learned()?;
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

    /// `key`'s predictive status at `unix`: None when predictive scaling is off.
    pub fn prediction_status(
        &self,
        key: &str,
        unix: i64,
        predicted_replicas: Option<i32>,
    ) -> Option<PredictiveStatus> {
        Some(
            self.lock()
                .predictions
                .get(key)?
                .status(unix, predicted_replicas),
        )
    }

    /// The last headroom estimate of `key`.
    pub fn headroom(&self, key: &str) -> Option<HeadroomStatus> {
        self.lock().headroom.get(key)?.last.clone()
    }

    /// Notes when `key` is due next.
    pub fn due_at(&self, key: &str, at: Instant) {
        self.lock().due.insert(key.to_string(), at);
    }

    /// How late an evaluation starting at `now` is; None when it was not due (a watch event
    /// brought it forward) or nothing was scheduled.
    pub fn lag(&self, key: &str, now: Instant) -> Option<Duration> {
        let due = self.lock().due.remove(key)?;
        now.checked_duration_since(due)
    }

    /// Keeps only the policies for which `keep` holds (after a relist).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = {
            let inner = self.lock();
            inner
                .policies
                .keys()
                .chain(inner.due.keys())
                .chain(inner.rings.keys())
                .chain(inner.headroom.keys())
                .chain(inner.written.keys())
                .chain(inner.sharers.keys())
                .chain(inner.scalers.keys())
                .filter(|k| !keep(k))
                .cloned()
                .collect()
        };
        for k in gone {
            self.forget(&k, None);
        }
    }

    /// How many policies are remembered.
    pub fn len(&self) -> usize {
        self.lock().policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn remove_claim(ledgers: &mut HashMap<String, BTreeMap<String, Claim>>, pool: &str, key: &str) {
    if let Some(l) = ledgers.get_mut(pool) {
        l.remove(key);
        if l.is_empty() {
            ledgers.remove(pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(h.headroom("ns/p"), Some(estimate.clone()));
        assert!(h.calibration_due("ns/p", at(61), every));
        assert!(!h.calibration_due("ns/p", at(62), every));
        // A failed calibration keeps the last estimate.
        h.calibrated("ns/p", None);
        assert_eq!(h.headroom("ns/p"), Some(estimate));
        h.retain(|k| k != "ns/p");
        assert_eq!(h.headroom("ns/p"), None);
        // A result arriving after the policy left is dropped, not kept for a stranger.
        assert!(h.calibration_due("ns/q", t0, every));
        h.forget("ns/q", None);
        h.calibrated("ns/q", Some(HeadroomStatus::default()));
        assert_eq!(h.headroom("ns/q"), None);
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
        assert_eq!(h.headroom("ns/p"), Some(estimate.clone()));
        let carried = ScalingPolicyStatus {
            headroom: Some(estimate),
            ..Default::default()
        };
        h.written_status("ns/p", Some(&carried), t0);
        assert_eq!(h.headroom("ns/p"), None);
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
