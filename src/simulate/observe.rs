//! What an autoscaler sees: samples taken at a scrape interval, averaged over a rate window,
//! as Prometheus' `rate()` and `histogram_quantile()` would report them. Never the truth.

use std::collections::VecDeque;

use super::model::{LATENCY_BUCKETS, Snapshot};

/// Seconds per bin of the long history: the short forecast's step.
const BIN: usize = 30;

#[derive(Clone, Debug)]
pub struct Observer {
    scrape: usize,
    window: usize,
    /// (second, snapshot) at each scrape, newest last.
    samples: VecDeque<(usize, Snapshot)>,
    keep: usize,
    /// Requests and jobs summed per `BIN` seconds since second 0, warm-up included: the long
    /// history Prometheus keeps of the request and arrival rates.
    bins: Vec<[f64; 2]>,
    /// cAdvisor's age at a scrape; 0: CPU is read as the scrape second's gauge.
    cadvisor_lag: usize,
    /// Each recent second's CPU and throttled share, for cAdvisor's counters.
    seconds: VecDeque<(f64, f64)>,
}

impl Observer {
    pub fn new(scrape_seconds: usize, window_seconds: usize, keep_seconds: usize) -> Self {
        Self {
            scrape: scrape_seconds.max(1),
            window: window_seconds.max(1),
            samples: VecDeque::new(),
            keep: keep_seconds,
            bins: vec![],
            cadvisor_lag: 0,
            seconds: VecDeque::new(),
        }
    }

    /// Reads CPU as the kubelet's cAdvisor serves it: counters refreshed `lag` seconds before
    /// the scrape, so each scrape holds the mean of the interval that ended then.
    pub fn with_cadvisor_lag(mut self, lag: usize) -> Self {
        self.cadvisor_lag = lag;
        self
    }

    /// `s` with its CPU figures as cAdvisor's counters give them at this scrape.
    fn as_cadvisor(&self, s: &Snapshot) -> Snapshot {
        let interval: Vec<&(f64, f64)> = self
            .seconds
            .iter()
            .rev()
            .skip(self.cadvisor_lag)
            .take(self.scrape)
            .collect();
        let n = interval.len().max(1) as f64;
        Snapshot {
            cpu: interval.iter().map(|x| x.0).sum::<f64>() / n,
            throttled: interval.iter().map(|x| x.1).sum::<f64>() / n,
            ..*s
        }
    }

    /// Adds one second of requests and jobs to the long history.
    pub fn count(&mut self, now: usize, requests: f64, jobs: f64) {
        let bin = now / BIN;
        if self.bins.len() <= bin {
            self.bins.resize(bin + 1, [0.0; 2]);
        }
        if let Some(m) = self.bins.get_mut(bin) {
            m[0] += requests;
            m[1] += jobs;
        }
    }

    /// The mean rate per second of each whole `step` from `from` to `now` (oldest first, with
    /// its first second), of requests or of jobs: a range query of the rate at that step. A step
    /// under a minute reads the minute before it, as `rate(...[1m])` read at that step does.
    pub fn rates(&self, from: usize, now: usize, step: usize, jobs: bool) -> Vec<(usize, f64)> {
        let per = (step / BIN).max(1);
        let whole = (now / BIN) / per;
        let span = per.max(60 / BIN);
        (from.div_ceil(per * BIN)..whole)
            .filter_map(|i| {
                let (start, end) = if per * BIN >= 60 {
                    (i * per, (i + 1) * per)
                } else {
                    ((i * per).checked_sub(span)?, i * per)
                };
                let m = self.bins.get(start..end)?;
                let sum: f64 = m.iter().map(|x| x[usize::from(jobs)]).sum();
                Some((i * per * BIN, sum / (span * BIN) as f64))
            })
            .collect()
    }

    pub fn record(&mut self, now: usize, s: &Snapshot) {
        self.count(now, s.requests, s.jobs);
        if self.cadvisor_lag > 0 {
            self.seconds.push_back((s.cpu, s.throttled));
            while self.seconds.len() > self.cadvisor_lag + self.scrape {
                self.seconds.pop_front();
            }
        }
        if now.is_multiple_of(self.scrape) {
            let s = if self.cadvisor_lag > 0 {
                self.as_cadvisor(s)
            } else {
                *s
            };
            self.samples.push_back((now, s));
            while self
                .samples
                .front()
                .is_some_and(|(t, _)| now.saturating_sub(*t) > self.keep)
            {
                self.samples.pop_front();
            }
        }
    }

    fn within(&self, now: usize, window: usize) -> impl Iterator<Item = &Snapshot> {
        self.samples
            .iter()
            .filter(move |(t, _)| now.saturating_sub(*t) < window.max(self.scrape))
            .map(|(_, s)| s)
    }

    /// The `q` quantile over the rate window, as `histogram_quantile(q, sum(rate(…_bucket[w])) by
    /// (le))` computes it: from the window's bucket counts, linear within a bucket. A surge's
    /// slow requests move it once they are more than 1 − q of the window, not in proportion.
    pub fn quantile(&self, now: usize, window: Option<usize>, q: f64) -> Option<f64> {
        let mut counts = [0.0; LATENCY_BUCKETS.len()];
        let mut total = 0.0;
        for s in self.within(now, window.unwrap_or(self.window)) {
            for (c, share) in counts.iter_mut().zip(s.within) {
                *c += s.requests * share;
            }
            total += s.requests;
        }
        if total <= 0.0 {
            // No requests, no rate: Prometheus answers NaN.
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let i = counts.iter().position(|&c| c >= rank)?;
        let (lower, below) = match i {
            0 => (0.0, 0.0),
            _ => (LATENCY_BUCKETS[i - 1], counts[i - 1]),
        };
        let span = counts[i] - below;
        let share = if span > 0.0 {
            (rank - below) / span
        } else {
            1.0
        };
        Some(lower + (LATENCY_BUCKETS[i] - lower) * share)
    }

    pub fn mean(
        &self,
        now: usize,
        window: Option<usize>,
        f: impl Fn(&Snapshot) -> f64,
    ) -> Option<f64> {
        let v: Vec<f64> = self
            .within(now, window.unwrap_or(self.window))
            .map(f)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// A gauge: its last scraped value.
    pub fn last(&self, f: impl Fn(&Snapshot) -> f64) -> Option<f64> {
        self.samples.back().map(|(_, s)| f(s))
    }

    /// Fraction of the scrapes in `window` where `f` held.
    pub fn fraction(
        &self,
        now: usize,
        window: usize,
        f: impl Fn(&Snapshot) -> bool,
    ) -> Option<f64> {
        let v: Vec<bool> = self.within(now, window).map(f).collect();
        (!v.is_empty()).then(|| v.iter().filter(|b| **b).count() as f64 / v.len() as f64)
    }

    /// (seconds, value) of each scrape in `window`.
    pub fn series(
        &self,
        now: usize,
        window: usize,
        f: impl Fn(&Snapshot) -> f64,
    ) -> Vec<(f64, f64)> {
        self.samples
            .iter()
            .filter(|(t, _)| now.saturating_sub(*t) < window)
            .map(|(t, s)| (*t as f64, f(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::model::all_within;

    /// A second of `requests` requests, all answered in `latency` seconds.
    fn second(requests: f64, latency: f64) -> Snapshot {
        Snapshot {
            requests,
            p95: latency,
            within: all_within(latency),
            ..Default::default()
        }
    }

    #[test]
    fn cadvisor_counters_are_read_late_and_over_the_interval_before() {
        let mut o = Observer::new(15, 15, 3600).with_cadvisor_lag(10);
        let cpu = |t: usize| Snapshot {
            cpu: if t < 60 { 0.2 } else { 1.0 },
            throttled: f64::NAN,
            ..Default::default()
        };
        let mut seen = vec![];
        for t in 0..=90 {
            o.record(t, &cpu(t));
            if t.is_multiple_of(15) {
                seen.push(o.last(|s| s.cpu).unwrap_or_default());
            }
        }
        // A rise at 60 s: unseen at the scrape at 60, 6 of 15 s at 75 (51-65 s), whole at 90.
        let want = [0.2, (9.0 * 0.2 + 6.0) / 15.0, 1.0];
        assert!(
            seen[4..]
                .iter()
                .zip(want)
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{seen:?}"
        );
        // Pods without a limit stay without a throttling series.
        assert!(o.last(|s| s.throttled).is_some_and(f64::is_nan));
    }

    #[test]
    fn the_autoscaler_sees_the_window_as_histogram_quantile_does() {
        let mut o = Observer::new(15, 60, 3600);
        for t in 0..=120 {
            o.record(t, &second(10.0, if t < 100 { 0.08 } else { 1.0 }));
        }
        // At 120s the 60s window holds scrapes at 75, 90, 105, 120: half of its requests
        // are slow, so the 95th percentile lies in the slow ones' bucket, (0.75, 1.0]:
        // 0.75 + 0.25 × (0.95 × 40 − 20) / 20.
        let seen = o.quantile(120, None, 0.95).unwrap();
        assert!((seen - 0.975).abs() < 1e-9, "{seen}");
        // The median is still among the fast ones, in (0.05, 0.1].
        let median = o.quantile(120, None, 0.5).unwrap();
        assert!((median - 0.1).abs() < 1e-9, "{median}");
        assert_eq!(o.last(|s| s.p95), Some(1.0));
    }

    #[test]
    fn a_few_slow_requests_move_the_p95_and_no_requests_leave_it_unread() {
        let mut o = Observer::new(1, 60, 3600);
        for t in 0..60 {
            o.record(t, &second(100.0, if t < 56 { 0.08 } else { 2.0 }));
        }
        // 4 of 60 seconds slow: 6.7 % of the requests, over the 5 % a p95 tolerates.
        let seen = o.quantile(59, None, 0.95).unwrap();
        assert!(seen > 1.5, "{seen}");
        let mut idle = Observer::new(1, 60, 3600);
        idle.record(0, &second(0.0, 0.08));
        assert_eq!(idle.quantile(0, None, 0.95), None);
    }
}
