//! The causal bound: not an autoscaler anyone can run, but the best a reactive one could do.
//! It knows each second's true arrivals and the time a request or job takes, with no scrape,
//! window or sync delay, and sizes at once to a utilization; like the HPA it keeps the
//! largest size of the last five minutes before scaling down. It still waits for pods to
//! start, and it cannot see the future: what SLO violation it has is start-up, not decision.
//! Run at a few utilizations it draws the frontier of SLO against replica-minutes that
//! reaction alone can reach, so a target beyond it is known to need foresight instead.

use super::model::Params;

/// The HPA's default scale-down stabilization window.
const DOWN_WINDOW_SECONDS: usize = 300;

/// The utilizations the generalization report draws the frontier at, in percent.
pub const UTILIZATIONS: [u8; 3] = [70, 60, 50];

pub struct Bound {
    utilization: f64,
    min: i32,
    max: i32,
    wanted: Vec<(usize, i32)>,
}

impl Bound {
    pub fn new(utilization_percent: u8, min: i32, max: i32) -> Self {
        Self {
            utilization: f64::from(utilization_percent.max(1)) / 100.0,
            min,
            max: max.max(min),
            wanted: vec![],
        }
    }

    /// The web tier's size for `requests` per second, from the app's true per-request time
    /// (the database's own time at idle: a bound never waits on a slow database).
    pub fn web(&mut self, now: usize, requests: f64, p: &Params, current: i32) -> Option<i32> {
        let busy = p.service_time + p.queries_per_request * p.query_time;
        let slots = f64::from(p.concurrency.max(1)) * self.utilization;
        self.step(now, requests * busy / slots, current)
    }

    /// The workers' size for `jobs` arriving per second.
    pub fn workers(&mut self, now: usize, jobs: f64, p: &Params, current: i32) -> Option<i32> {
        self.step(now, jobs / (p.worker_rate * self.utilization), current)
    }

    fn step(&mut self, now: usize, need: f64, current: i32) -> Option<i32> {
        let need = if need.is_finite() { need.ceil() } else { 0.0 };
        let want = (need.min(f64::from(self.max)) as i32).clamp(self.min, self.max);
        self.wanted.push((now, want));
        self.wanted
            .retain(|(t, _)| now.saturating_sub(*t) <= DOWN_WINDOW_SECONDS);
        let keep = self.wanted.iter().map(|(_, w)| *w).max().unwrap_or(want);
        (keep != current).then_some(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_sizes_at_once_and_comes_down_only_after_the_window() {
        let p = Params::default();
        // 0.05 + 3 × 0.004 = 62 ms a request; 4 slots at 70 %: 2.8 busy requests a replica.
        let mut b = Bound::new(70, 2, 40);
        assert_eq!(b.web(0, 100.0, &p, 2), Some(3));
        assert_eq!(b.web(1, 1000.0, &p, 3), Some(23));
        assert_eq!(b.web(2, 10_000.0, &p, 23), Some(40), "capped at max");
        assert_eq!(b.web(200, 100.0, &p, 40), None, "held within the window");
        assert_eq!(b.web(303, 100.0, &p, 40), Some(3));
        assert_eq!(b.web(304, 0.0, &p, 3), None, "the window's largest stays");
    }

    #[test]
    fn workers_follow_arrivals_over_their_rate() {
        let p = Params::default();
        let mut b = Bound::new(50, 1, 20);
        // 5 jobs/s a worker at 50 %: 2.5 jobs/s each.
        assert_eq!(b.workers(0, 10.0, &p, 1), Some(4));
        assert_eq!(b.workers(1, f64::NAN, &p, 4), None, "no data is no change");
    }
}
