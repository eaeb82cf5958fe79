//! Knative's autoscaler (KPA) at its real defaults, for the web tier: a 2 s tick on
//! concurrency (requests in flight, read from every pod each second, not from Prometheus),
//! a 60 s stable window and a 6 s panic window, panic at 200 %, scale up at most 1000x and
//! down at most 2x per tick, target 70 % of the per-pod concurrency. Its own algorithm,
//! not Headroom's engine: it is a baseline.

use std::collections::VecDeque;

const TICK: usize = 2;
const STABLE_WINDOW: usize = 60;
const PANIC_WINDOW: usize = 6;
const PANIC_THRESHOLD: f64 = 2.0;
const MAX_SCALE_UP_RATE: f64 = 1000.0;
const MAX_SCALE_DOWN_RATE: f64 = 2.0;
const TARGET_UTILIZATION: f64 = 0.7;

#[derive(Clone, Debug)]
pub struct Kpa {
    /// Concurrency each pod may hold (Knative's containerConcurrency): the model's slots.
    target_per_pod: f64,
    min: i32,
    max: i32,
    /// (second, requests in flight) for the last stable window.
    seen: VecDeque<(usize, f64)>,
    next: usize,
    panic_since: Option<usize>,
    /// The panic-mode floor: panic never scales down.
    panic_floor: i32,
}

impl Kpa {
    pub fn new(container_concurrency: u32, min: i32, max: i32) -> Self {
        Self {
            target_per_pod: f64::from(container_concurrency.max(1)) * TARGET_UTILIZATION,
            min,
            max,
            seen: VecDeque::new(),
            next: 0,
            panic_since: None,
            panic_floor: 0,
        }
    }

    /// The queue-proxies' report of this second.
    pub fn record(&mut self, now: usize, in_flight: f64) {
        self.seen.push_back((now, in_flight));
        while self
            .seen
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) >= STABLE_WINDOW)
        {
            self.seen.pop_front();
        }
    }

    fn average(&self, now: usize, window: usize) -> Option<f64> {
        let v: Vec<f64> = self
            .seen
            .iter()
            .filter(|(t, _)| now.saturating_sub(*t) < window)
            .map(|(_, c)| *c)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// The replica count to set at `now`, when a tick wants a change.
    pub fn step(&mut self, now: usize, current: i32, ready: i32) -> Option<i32> {
        if now < self.next {
            return None;
        }
        self.next = now + TICK;
        let (Some(stable), Some(panic)) = (
            self.average(now, STABLE_WINDOW),
            self.average(now, PANIC_WINDOW),
        ) else {
            return None;
        };
        let want = |c: f64| (c / self.target_per_pod).ceil().max(0.0) as i32;
        let ready_f = f64::from(ready.max(1));
        let (up_to, down_to) = (
            (ready_f * MAX_SCALE_UP_RATE).ceil() as i32,
            (ready_f / MAX_SCALE_DOWN_RATE).floor() as i32,
        );
        let bounded = |n: i32| n.clamp(down_to, up_to).clamp(self.min, self.max);
        let (stable_want, panic_want) = (bounded(want(stable)), bounded(want(panic)));
        if f64::from(panic_want) / ready_f >= PANIC_THRESHOLD {
            self.panic_since = Some(now);
        } else if self
            .panic_since
            .is_some_and(|t| now.saturating_sub(t) >= STABLE_WINDOW)
        {
            self.panic_since = None;
            self.panic_floor = 0;
        }
        let desired = if self.panic_since.is_some() {
            self.panic_floor = self.panic_floor.max(panic_want).max(current);
            self.panic_floor
        } else {
            stable_want
        };
        (desired != current).then_some(desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_on_concurrency_and_panics_on_a_doubling() {
        // 4 slots per pod: a target of 2.8 in flight per pod.
        let mut k = Kpa::new(4, 1, 100);
        for t in 0..60 {
            k.record(t, 5.6);
        }
        assert_eq!(k.step(60, 1, 1), Some(2));
        // A spike to 10x in the last seconds: panic jumps at once and does not scale down.
        for t in 61..66 {
            k.record(t, 56.0);
        }
        let jumped = k.step(66, 2, 2).unwrap_or(0);
        assert!(jumped >= 10, "{jumped}");
        for t in 66..80 {
            k.record(t, 5.6);
        }
        assert_eq!(k.step(80, jumped, jumped), None, "no scale-down in panic");
    }
}
