//! The causal bound: not an autoscaler anyone can run, but the best a reactive one could do.
//! It knows each second's true arrivals and the time a request or job takes, with no scrape,
//! window or sync delay, and sizes at once to a utilization; like the HPA it keeps the
//! largest size of the last five minutes before scaling down. It still waits for pods to
//! start, and it cannot see the future: what SLO violation it has is start-up, not decision.
//! Run at a few utilizations it draws the frontier of SLO against replica-minutes that
//! reaction alone can reach, so a target beyond it is known to need foresight instead.
//! Two more sights draw two more frontiers. With a perfect forecast it also knows the trend
//! (the load without its noise) until a pod started now would be ready: the most any
//! forecast could add. With foresight it knows the true load that far ahead, noise and all:
//! a frontier no autoscaler can pass.

use super::model::Params;
use super::traffic::Trace;

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

/// What the bound knows of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// Each second's true load, as it comes.
    Now,
    /// That, and the trend one pod start-up ahead: a perfect forecast.
    Forecast,
    /// The true load one pod start-up ahead, noise and all.
    Foresight,
    /// Each second's true load, and the rise its recurring pattern makes one pod start-up
    /// ahead: a perfect pattern forecast, which knows the pattern but not the surprises.
    Pattern,
}

impl Sight {
    pub const ALL: [Sight; 3] = [Sight::Now, Sight::Forecast, Sight::Foresight];
    /// The sights of traces with a recurring pattern.
    pub const SEASONAL: [Sight; 2] = [Sight::Now, Sight::Pattern];

    pub fn name(self) -> &'static str {
        match self {
            Sight::Now => "bound",
            Sight::Forecast => "forecast",
            Sight::Foresight => "foresight",
            Sight::Pattern => "pattern",
        }
    }
}

/// The requests and jobs per second the bound sizes for, each second: the busiest second
/// it can see until a pod started then would be ready. A trace without known noise has no
/// trend to see. Computed once per run, so a long start-up costs nothing per second.
pub struct Seen {
    requests: Vec<f64>,
    jobs: Vec<f64>,
}

impl Seen {
    pub fn new(trace: &Trace, startup: usize, sight: Sight) -> Self {
        let known_noise = trace.noise.len() >= trace.requests.len();
        let see = |v: &[f64]| match sight {
            Sight::Foresight => busiest_ahead(v, startup),
            Sight::Forecast if known_noise => {
                let trend: Vec<f64> = v
                    .iter()
                    .zip(&trace.noise)
                    .map(|(x, n)| if *n > 0.0 { x / n } else { *x })
                    .collect();
                busiest_ahead(&trend, startup)
                    .into_iter()
                    .zip(v)
                    .map(|(ahead, now)| ahead.max(*now))
                    .collect()
            }
            Sight::Pattern if trace.pattern.len() >= v.len() => {
                let ahead = busiest_ahead(&trace.pattern, startup);
                v.iter()
                    .zip(ahead)
                    .zip(&trace.pattern)
                    .map(|((now, a), p)| {
                        if *p > 0.0 {
                            now * (a / p).max(1.0)
                        } else {
                            *now
                        }
                    })
                    .collect()
            }
            _ => v.to_vec(),
        };
        Self {
            requests: see(&trace.requests),
            jobs: see(&trace.jobs),
        }
    }

    pub fn at(&self, now: usize) -> (f64, f64) {
        let of = |v: &[f64]| v.get(now).copied().unwrap_or(0.0);
        (of(&self.requests), of(&self.jobs))
    }
}

/// For each second t, the largest of `v[t..=t + ahead]` (a sliding maximum, in one pass).
fn busiest_ahead(v: &[f64], ahead: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    let mut window = std::collections::VecDeque::<usize>::new();
    for t in (0..v.len()).rev() {
        while window.back().is_some_and(|&i| v[i] <= v[t]) {
            window.pop_back();
        }
        window.push_back(t);
        while window.front().is_some_and(|&i| i > t.saturating_add(ahead)) {
            window.pop_front();
        }
        out[t] = window.front().map_or(v[t], |&i| v[i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sight_sees_as_far_as_it_can_and_no_further() {
        // A 5x burst at second 3 that is all noise, over a trend that doubles at second 4.
        let trace = Trace {
            name: "burst".into(),
            requests: vec![10.0, 10.0, 10.0, 50.0, 20.0],
            jobs: vec![1.0, 1.0, 1.0, 5.0, 2.0],
            noise: vec![1.0, 1.0, 1.0, 5.0, 1.0],
            ..Trace::default()
        };
        let load = |t: &Trace, now, startup, sight| Seen::new(t, startup, sight).at(now);
        assert_eq!(load(&trace, 1, 2, Sight::Now), (10.0, 1.0));
        assert_eq!(load(&trace, 1, 2, Sight::Foresight), (50.0, 5.0));
        // A forecast knows the trend (10 at second 3), not the burst.
        assert_eq!(load(&trace, 1, 2, Sight::Forecast), (10.0, 1.0));
        assert_eq!(load(&trace, 2, 2, Sight::Forecast), (20.0, 2.0));
        // The burst, once it comes, is seen by all.
        assert_eq!(load(&trace, 3, 0, Sight::Forecast), (50.0, 5.0));
        assert_eq!(
            load(&trace, 4, 60, Sight::Foresight),
            (20.0, 2.0),
            "the end"
        );
        assert_eq!(
            load(&trace, 9, 2, Sight::Foresight),
            (0.0, 0.0),
            "past the end"
        );
        // A pattern that doubles at second 4 is seen coming; the burst, not being in it, is not.
        let patterned = Trace {
            pattern: vec![1.0, 1.0, 1.0, 1.0, 2.0],
            ..trace.clone()
        };
        assert_eq!(load(&patterned, 2, 2, Sight::Pattern), (20.0, 2.0));
        assert_eq!(load(&patterned, 1, 2, Sight::Pattern), (10.0, 1.0));
        assert_eq!(
            load(&trace, 1, 2, Sight::Pattern),
            (10.0, 1.0),
            "no pattern"
        );
        // Without known noise there is no trend to forecast.
        let plain = Trace {
            noise: vec![],
            ..trace
        };
        assert_eq!(load(&plain, 1, 2, Sight::Forecast), (10.0, 1.0));
    }

    #[test]
    fn the_sliding_maximum_is_the_largest_of_each_window() {
        let v = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0];
        for ahead in [0, 1, 2, 3, 20] {
            let naive: Vec<f64> = (0..v.len())
                .map(|t| {
                    v[t..=(t + ahead).min(v.len() - 1)]
                        .iter()
                        .copied()
                        .fold(f64::MIN, f64::max)
                })
                .collect();
            assert_eq!(busiest_ahead(&v, ahead), naive, "ahead {ahead}");
        }
        assert!(busiest_ahead(&[], 5).is_empty());
    }

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
