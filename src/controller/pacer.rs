//! Spaces background work evenly: at most `rate` starts per second across the operator, so
//! a thousand policies due at once never become a thousand queries at once. A caller that
//! finds no free turn does not wait (nothing queues up in memory); it asks again later.
//! Turns are fair across namespaces: each namespace that asked lately takes at most its
//! share of the rate, so one tenant's many policies cannot keep another's from learning.
//! A policy's first turn (it has no estimate yet) goes before another's next one: while
//! first turns wait, a repeat takes at most one turn in `REPEAT_SHARE`.
//! A namespace refused only because another just took the operator's turn is owed one: its
//! next ask within its share takes a turn even if the operator's is taken. Without this, a
//! namespace asking about once a second kept asking just after a busy one took each turn
//! (28 s in e2e_noisy). The shares alone keep the average to `rate`; the operator's turn
//! only spaces them, so an owed turn adds no more than one start per namespace.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A namespace that asked within this long counts as wanting turns; a first turn refused
/// within this long counts as waiting.
const ACTIVE: Duration = Duration::from_secs(30);
/// While first turns wait, repeats take at most one turn in this many.
const REPEAT_SHARE: u32 = 4;

#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    turns: Mutex<Turns>,
}

#[derive(Debug, Default)]
struct Turns {
    /// The next free turn across the operator.
    next: Option<Instant>,
    /// By namespace: when it last asked, its own next turn, and whether it is owed one.
    asked: HashMap<String, Asker>,
    pruned: Option<Instant>,
    /// When a first turn last found no free turn across the operator.
    first_waiting: Option<Instant>,
    /// When a repeat last took a turn.
    repeated: Option<Instant>,
}

#[derive(Debug)]
struct Asker {
    asked: Instant,
    next: Option<Instant>,
    /// It was refused a turn its own share allowed (the operator's was just taken): its
    /// next ask within its share takes one even so.
    owed: bool,
}

impl Pacer {
    /// `rate` starts per second; 0 or less means one a second.
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        Self {
            spacing: Duration::from_secs_f64(1.0 / rate),
            turns: Mutex::default(),
        }
    }

    /// Takes the turn at `now` for `namespace` if one is free: the first at once, each next
    /// one `spacing` after the one before; and a namespace's next one no sooner than
    /// `spacing` times the namespaces asking. `first`: the asker has no estimate yet.
    pub fn try_turn(&self, namespace: &str, first: bool, now: Instant) -> bool {
        let mut t = match self.turns.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        t.forget_quiet(now);
        let entry = t.asked.entry(namespace.to_string()).or_insert(Asker {
            asked: now,
            next: None,
            owed: false,
        });
        entry.asked = now;
        let (own, owed) = (entry.next, entry.owed);
        let free = |n: Option<Instant>| n.is_none_or(|n| now >= n);
        if first && !free(t.next) {
            t.first_waiting = Some(now);
        }
        if !free(own) {
            return false;
        }
        if !free(t.next) && !owed {
            if let Some(e) = t.asked.get_mut(namespace) {
                e.owed = true;
            }
            return false;
        }
        if !first && !t.repeat_free(now, self.spacing) {
            return false;
        }
        if !first {
            t.repeated = Some(now);
        }
        let share = u32::try_from(t.asked.len()).unwrap_or(u32::MAX);
        t.next = Some(now + self.spacing);
        if let Some(e) = t.asked.get_mut(namespace) {
            e.next = Some(now + self.spacing.saturating_mul(share));
            e.owed = false;
        }
        true
    }
}

impl Turns {
    /// Whether a repeat may take a free turn: always, unless first turns wait and a repeat
    /// took one of the last `REPEAT_SHARE` turns.
    fn repeat_free(&self, now: Instant, spacing: Duration) -> bool {
        let waiting = self
            .first_waiting
            .is_some_and(|at| now.saturating_duration_since(at) < ACTIVE);
        !waiting
            || self
                .repeated
                .is_none_or(|r| now >= r + spacing.saturating_mul(REPEAT_SHARE))
    }

    /// Namespaces that have not asked for `ACTIVE` no longer share the rate (checked at
    /// most once a second: the map is as large as the namespaces asking).
    fn forget_quiet(&mut self, now: Instant) {
        if self
            .pruned
            .is_some_and(|p| now.saturating_duration_since(p) < Duration::from_secs(1))
        {
            return;
        }
        self.pruned = Some(now);
        self.asked
            .retain(|_, a| now.saturating_duration_since(a.asked) < ACTIVE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_spaced_by_the_rate_and_a_refused_caller_leaves_nothing_behind() {
        let pacer = Pacer::new(4.0);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(pacer.try_turn("a", false, t0));
        assert!(!pacer.try_turn("a", false, at(100)));
        assert!(!pacer.try_turn("a", false, at(249)));
        assert!(pacer.try_turn("a", false, at(250)));
        // After a quiet second, one turn at once, not a burst of the ones missed.
        assert!(pacer.try_turn("a", false, at(1500)));
        assert!(!pacer.try_turn("a", false, at(1600)));
        assert!(pacer.try_turn("a", false, at(1750)));
        // A rate that is no rate means one a second.
        let slow = Pacer::new(0.0);
        assert!(slow.try_turn("a", false, t0) && !slow.try_turn("a", false, at(999)));
        assert!(slow.try_turn("a", false, at(1000)));
    }

    #[test]
    fn a_namespace_asking_for_many_turns_leaves_another_its_share() {
        let pacer = Pacer::new(10.0);
        let t0 = Instant::now();
        let (mut noisy, mut quiet) = (0, 0);
        // The noisy namespace's 200 policies ask every 10 ms; the quiet one's single policy
        // every second.
        for ms in (0..60_000u64).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            if ms % 1000 == 0 && pacer.try_turn("quiet", false, now) {
                quiet += 1;
            }
            if pacer.try_turn("noisy", false, now) {
                noisy += 1;
            }
        }
        // Half the rate each: the quiet one gets a turn every time it asks twice.
        assert!(quiet >= 29, "quiet took {quiet} turns in 60 s");
        assert!((250..=350).contains(&noisy), "noisy took {noisy}");
        // Alone, a namespace has the whole rate again once the other has been quiet a while.
        let mut alone = 0;
        for ms in (0..10_000u64).step_by(10) {
            if pacer.try_turn("noisy", false, t0 + Duration::from_millis(100_000 + ms)) {
                alone += 1;
            }
        }
        assert!(alone >= 95, "alone it took {alone} of 100");
    }

    #[test]
    fn a_namespace_refused_a_turn_it_was_due_has_the_next_one() {
        // Two turns a second. The busy namespace asks every 10 ms and takes a turn a second;
        // the other asks every 980 ms. Each of its asks comes a little earlier in the busy
        // one's second: without the debt, once it found the turn just taken it kept finding
        // it so until its asks had drifted through half a second (25 s).
        let pacer = Pacer::new(2.0);
        let t0 = Instant::now();
        let (mut busy, mut quiet) = (0, 0);
        for ms in (0..20_000u64).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            if pacer.try_turn("busy", true, now) {
                busy += 1;
            }
            if ms % 980 == 0 && pacer.try_turn("quiet", true, now) {
                quiet += 1;
            }
        }
        assert!(quiet >= 6, "the other namespace took {quiet} turns in 20 s");
        assert!(busy >= 19, "busy took {busy}: turns went unused");
    }

    #[test]
    fn first_estimates_go_before_the_next_ones_of_policies_that_have_one() {
        let pacer = Pacer::new(10.0);
        let t0 = Instant::now();
        let (mut first, mut again) = (0, 0);
        // Policies due again ask every 10 ms, new ones every 50 ms, for 10 s: 100 turns.
        for ms in (0..10_000u64).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            if pacer.try_turn("shop", false, now) {
                again += 1;
            }
            if ms % 50 == 0 && pacer.try_turn("shop", true, now) {
                first += 1;
            }
        }
        // Without the order the repeats, asking first at each tick, took every turn.
        assert!(first >= 70, "first estimates took {first} turns");
        assert!(again >= 20, "repeats took {again}: starved");
        assert!(first + again >= 98, "turns went unused: {first} + {again}");
        // Once no new policy has waited for a while, repeats have the whole rate again.
        let later = t0 + Duration::from_secs(60);
        let taken = (0..100u64)
            .filter(|i| pacer.try_turn("shop", false, later + Duration::from_millis(i * 100)))
            .count();
        assert_eq!(taken, 100);
    }
}
