//! Spaces background work evenly: at most `rate` starts per second across the operator, so
//! a thousand policies due at once never become a thousand queries at once. A caller that
//! finds no free turn does not wait (nothing queues up in memory); it asks again later.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
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
            next: Mutex::new(None),
        }
    }

    /// Takes the turn at `now` if one is free: the first at once, each next one `spacing`
    /// after the one before.
    pub fn try_turn(&self, now: Instant) -> bool {
        let mut next = match self.next.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if next.is_some_and(|n| now < n) {
            return false;
        }
        *next = Some(now + self.spacing);
        true
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
        assert!(pacer.try_turn(t0));
        assert!(!pacer.try_turn(at(100)));
        assert!(!pacer.try_turn(at(249)));
        assert!(pacer.try_turn(at(250)));
        // After a quiet second, one turn at once, not a burst of the ones missed.
        assert!(pacer.try_turn(at(1500)));
        assert!(!pacer.try_turn(at(1600)));
        assert!(pacer.try_turn(at(1750)));
        // A rate that is no rate means one a second.
        let slow = Pacer::new(0.0);
        assert!(slow.try_turn(t0) && !slow.try_turn(at(999)) && slow.try_turn(at(1000)));
    }
}
