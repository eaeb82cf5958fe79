//! What an autoscaler sees: samples taken at a scrape interval, averaged over a rate window,
//! as Prometheus' `rate()` and `histogram_quantile()` would report them. Never the truth.

use std::collections::VecDeque;

use super::model::Snapshot;

#[derive(Clone, Debug)]
pub struct Observer {
    scrape: usize,
    window: usize,
    /// (second, snapshot) at each scrape, newest last.
    samples: VecDeque<(usize, Snapshot)>,
    keep: usize,
}

impl Observer {
    pub fn new(scrape_seconds: usize, window_seconds: usize, keep_seconds: usize) -> Self {
        Self {
            scrape: scrape_seconds.max(1),
            window: window_seconds.max(1),
            samples: VecDeque::new(),
            keep: keep_seconds,
        }
    }

    pub fn record(&mut self, now: usize, s: &Snapshot) {
        if now.is_multiple_of(self.scrape) {
            self.samples.push_back((now, *s));
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

    /// p95 over the rate window, request-weighted like a histogram's rate.
    pub fn p95(&self, now: usize, window: Option<usize>) -> Option<f64> {
        let (mut w, mut sum) = (0.0, 0.0);
        for s in self.within(now, window.unwrap_or(self.window)) {
            w += s.requests.max(1e-9);
            sum += s.requests.max(1e-9) * s.p95;
        }
        (w > 0.0).then(|| sum / w)
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

    #[test]
    fn the_autoscaler_sees_a_lagged_average() {
        let mut o = Observer::new(15, 60, 3600);
        for t in 0..=120 {
            let p95 = if t < 100 { 0.1 } else { 1.0 };
            o.record(
                t,
                &Snapshot {
                    requests: 10.0,
                    p95,
                    ..Default::default()
                },
            );
        }
        // At 120s the 60s window holds scrapes at 75, 90, 105, 120: two old, two new.
        let seen = o.p95(120, None).unwrap();
        assert!((seen - 0.55).abs() < 1e-9, "{seen}");
        assert_eq!(o.last(|s| s.p95), Some(1.0));
    }
}
