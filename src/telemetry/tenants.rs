//! Query time and refusals per namespace, exposed for the few namespaces that use the most:
//! a namespace label on every series would grow without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

/// Namespaces shown per series family.
pub const TOP: usize = 10;
/// Namespaces tracked at all; past it, those idle for a whole window make room.
const TRACKED_AT_MOST: usize = 10_000;
/// Namespaces are ranked by what they used in the current and the previous window of this
/// length: the ones costing most now are shown, not those that cost most since the start.
const WINDOW: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub seconds: f64,
    pub queries: u64,
    pub refusals: u64,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.seconds += other.seconds;
        self.queries += other.queries;
        self.refusals += other.refusals;
    }
}

/// A namespace's totals (the counters shown) and its use in the last two windows.
#[derive(Clone, Copy, Debug, Default)]
struct Tracked {
    total: Usage,
    window: u64,
    current: Usage,
    previous: Usage,
}

impl Tracked {
    /// Moves the windows on to `window`.
    fn at(&mut self, window: u64) {
        if window == self.window {
            return;
        }
        self.previous = if window == self.window + 1 {
            self.current
        } else {
            Usage::default()
        };
        self.current = Usage::default();
        self.window = window;
    }

    fn recent(&self) -> Usage {
        let mut r = self.previous;
        r.add(&self.current);
        r
    }
}

#[derive(Clone, Debug)]
pub struct Tenants {
    usage: Arc<Mutex<HashMap<String, Tracked>>>,
    started: Instant,
}

impl Default for Tenants {
    fn default() -> Self {
        Tenants {
            usage: Arc::default(),
            started: Instant::now(),
        }
    }
}

impl Tenants {
    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / WINDOW.as_secs()
    }

    fn with(&self, namespace: &str, now: Instant, f: impl Fn(&mut Usage)) {
        let window = self.window(now);
        let mut all = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        if !all.contains_key(namespace) && all.len() >= TRACKED_AT_MOST {
            all.retain(|_, t| {
                t.at(window);
                t.recent() != Usage::default()
            });
        }
        if !all.contains_key(namespace) && all.len() >= TRACKED_AT_MOST {
            return;
        }
        let t = all.entry(namespace.to_string()).or_default();
        t.at(window);
        f(&mut t.total);
        f(&mut t.current);
    }

    /// Prometheus took `seconds` on a query `namespace` caused: its own raw PromQL, its part
    /// of a split grouped query, its forecast's history or its calibration.
    pub fn queried(&self, namespace: &str, seconds: f64) {
        self.queried_at(namespace, seconds, Instant::now());
    }

    fn queried_at(&self, namespace: &str, seconds: f64, now: Instant) {
        self.with(namespace, now, |u| {
            u.seconds += seconds.max(0.0);
            u.queries += 1;
        });
    }

    pub fn refused(&self, namespace: &str) {
        self.with(namespace, Instant::now(), |u| u.refusals += 1);
    }

    /// A query `namespace` caused came back after `seconds`: refused by a limit (before it
    /// was sent, or its answer over a cap), or answered (an error of Prometheus' included).
    pub fn answered(&self, namespace: &str, seconds: f64, refused: bool) {
        if refused {
            self.with(namespace, Instant::now(), |u| {
                u.seconds += seconds.max(0.0);
                u.refusals += 1;
            });
        } else {
            self.queried(namespace, seconds);
        }
    }

    /// The `TOP` namespaces by `key` over the last two windows, largest first, leaving out
    /// those at zero; with their totals.
    pub fn top(&self, key: impl Fn(&Usage) -> f64) -> Vec<(String, Usage)> {
        self.top_at(key, Instant::now())
    }

    fn top_at(&self, key: impl Fn(&Usage) -> f64, now: Instant) -> Vec<(String, Usage)> {
        let window = self.window(now);
        let mut all = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<(String, f64, Usage)> = all
            .iter_mut()
            .filter_map(|(n, t)| {
                t.at(window);
                let recent = key(&t.recent());
                (recent > 0.0).then(|| (n.clone(), recent, t.total))
            })
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(TOP);
        v.into_iter().map(|(n, _, total)| (n, total)).collect()
    }
}

impl Collector for Tenants {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Pick = fn(&Usage) -> f64;
        let families: [(&str, &str, Pick); 3] = [
            (
                "namespace_query_seconds",
                "Time Prometheus took on the queries a namespace caused (the 10 namespaces using most in the last 5 to 10 minutes)",
                |u| u.seconds,
            ),
            (
                "namespace_queries",
                "Queries a namespace caused: its raw PromQL, its split grouped queries, forecasts and calibrations (the 10 namespaces sending most lately)",
                |u| u.queries as f64,
            ),
            (
                "namespace_query_refusals",
                "A namespace's queries refused by the operator's limits (the 10 namespaces refused most lately)",
                |u| u.refusals as f64,
            ),
        ];
        for (name, help, pick) in families {
            let top = self.top(pick);
            let counter = ConstCounter::new(0.0);
            let mut metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for (namespace, usage) in &top {
                let labels = [("namespace", namespace.as_str())];
                ConstCounter::new(pick(usage)).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_top_namespaces_are_shown() {
        let t = Tenants::default();
        for i in 0..30 {
            t.queried(&format!("ns-{i:02}"), f64::from(i));
        }
        t.refused("ns-05");
        let top = t.top(|u| u.seconds);
        assert_eq!(top.len(), TOP);
        assert_eq!(top[0].0, "ns-29");
        assert_eq!(top[9].0, "ns-20");
        let refused = t.top(|u| u.refusals as f64);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].1.refusals, 1);
    }

    #[test]
    fn a_refused_query_counts_as_a_refusal_not_a_query() {
        let t = Tenants::default();
        t.answered("noisy", 0.0, true);
        t.answered("noisy", 0.5, false);
        let top = t.top(|u| u.seconds + 1.0);
        assert_eq!((top[0].1.queries, top[0].1.refusals), (1, 1));
    }

    #[test]
    fn the_namespaces_shown_are_those_costing_most_lately() {
        let t = Tenants::default();
        let t0 = t.started;
        // Long ago, one namespace used a lot; now twelve others use a little.
        t.queried_at("old", 1000.0, t0);
        let later = t0 + WINDOW * 3;
        for i in 0..12 {
            t.queried_at(&format!("now-{i:02}"), 1.0 + f64::from(i), later);
        }
        let top = t.top_at(|u| u.seconds, later);
        assert_eq!(top.len(), TOP);
        assert!(top.iter().all(|(n, _)| n != "old"), "{top:?}");
        assert_eq!(top[0].0, "now-11");
        // Shown with their totals (counters), not the window's.
        t.queried_at("now-11", 5.0, later + WINDOW);
        let top = t.top_at(|u| u.seconds, later + WINDOW);
        assert_eq!((top[0].0.as_str(), top[0].1.seconds), ("now-11", 17.0));
        // Two windows on without use, a namespace leaves the ranking.
        assert!(t.top_at(|u| u.seconds, later + WINDOW * 3).is_empty());
    }
}
