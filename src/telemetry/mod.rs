//! The operator's own metrics. Every label has a small fixed set of values: no policy
//! names, namespaces or error texts, which would grow without bound.

mod tenants;

use std::sync::Arc;

pub use tenants::Tenants;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::{
    counter::Counter, family::Family, gauge::Gauge, histogram::Histogram,
};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciliations: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    scales: Family<Labels, Counter>,
    scale_failures: Counter,
    signal_errors: Family<Labels, Counter>,
    duration: Histogram,
    leader: Gauge,
    queries: Family<Labels, Counter>,
    query_duration: Family<Labels, Histogram, fn() -> Histogram>,
    cache: Family<Labels, Counter>,
    lag: Histogram,
    calibrations: Family<Labels, Counter>,
    tenants: Tenants,
}

fn query_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("headroom");
        let reconciliations = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        let decisions = Family::<Labels, Counter>::default();
        let scales = Family::<Labels, Counter>::default();
        let signal_errors = Family::<Labels, Counter>::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        registry.register(
            "reconciliations",
            "Policy evaluations by result",
            reconciliations.clone(),
        );
        registry.register(
            "errors",
            "Failed evaluations by error class",
            errors.clone(),
        );
        registry.register(
            "decisions",
            "Decisions by what limited them",
            decisions.clone(),
        );
        registry.register(
            "scale_operations",
            "Replica changes written, by direction",
            scales.clone(),
        );
        let scale_failures = Counter::default();
        registry.register(
            "scale_failures",
            "Replica changes the API server refused or that failed",
            scale_failures.clone(),
        );
        registry.register(
            "signal_errors",
            "Signals that could not be read, by kind",
            signal_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time to evaluate one policy",
            duration.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process holds the leader lease (or runs without election)",
            leader.clone(),
        );
        let queries = Family::<Labels, Counter>::default();
        registry.register(
            "prometheus_queries",
            "Queries sent to Prometheus, by kind (instant, range, grouped) and result",
            queries.clone(),
        );
        let query_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(query_histogram);
        registry.register(
            "prometheus_query_duration_seconds",
            "Time Prometheus took to answer, by kind",
            query_duration.clone(),
        );
        let cache = Family::<Labels, Counter>::default();
        registry.register(
            "observation_cache",
            "Readings answered from a shared recent answer (hit) or sent on (miss)",
            cache.clone(),
        );
        let lag = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register(
            "evaluation_lag_seconds",
            "From when a policy's evaluation was due to when it started",
            lag.clone(),
        );
        let calibrations = Family::<Labels, Counter>::default();
        registry.register(
            "calibrations",
            "Traffic headroom calibrations (three range queries each) by result",
            calibrations.clone(),
        );
        let tenants = Tenants::default();
        registry.register_collector(Box::new(tenants.clone()));
        Self {
            tenants,
            registry: Arc::new(registry),
            calibrations,
            queries,
            query_duration,
            cache,
            lag,
            reconciliations,
            errors,
            decisions,
            scales,
            scale_failures,
            signal_errors,
            duration,
            leader,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.reconciliations
            .get_or_create(&vec![("result", result)])
            .inc();
        self.duration.observe(seconds);
    }

    pub fn error(&self, class: &'static str) {
        self.errors.get_or_create(&vec![("class", class)]).inc();
    }

    pub fn decision(&self, limited_by: &'static str) {
        self.decisions
            .get_or_create(&vec![("limited_by", limited_by)])
            .inc();
    }

    pub fn scaled(&self, up: bool) {
        let direction = if up { "up" } else { "down" };
        self.scales
            .get_or_create(&vec![("direction", direction)])
            .inc();
    }

    pub fn scale_failed(&self) {
        self.scale_failures.inc();
    }

    pub fn signal_error(&self, kind: &'static str) {
        self.signal_errors
            .get_or_create(&vec![("kind", kind)])
            .inc();
    }

    pub fn prometheus_query(&self, kind: &'static str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.queries
            .get_or_create(&vec![("kind", kind), ("result", result)])
            .inc();
        self.query_duration
            .get_or_create(&vec![("kind", kind)])
            .observe(seconds);
    }

    /// Per-namespace accounting, shown for the top namespaces only.
    pub fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    pub fn observation_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&vec![("result", result)]).inc();
    }

    pub fn evaluation_lag(&self, seconds: f64) {
        self.lag.observe(seconds.max(0.0));
    }

    pub fn calibrated(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.calibrations
            .get_or_create(&vec![("result", result)])
            .inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_bounded_labels() {
        let m = Metrics::default();
        m.reconciled(true, 0.02);
        m.scaled(true);
        m.decision("MaxReplicas");
        let text = m.render();
        assert!(
            text.contains("headroom_reconciliations_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("headroom_scale_operations_total{direction=\"up\"} 1"));
        assert!(text.contains("headroom_decisions_total{limited_by=\"MaxReplicas\"} 1"));
        assert!(text.contains("headroom_reconcile_duration_seconds_count 1"));
        m.tenants().queried("shop", 0.5);
        m.tenants().refused("noisy");
        let text = m.render();
        assert!(
            text.contains("headroom_namespace_query_seconds_total{namespace=\"shop\"} 0.5"),
            "{text}"
        );
        assert!(text.contains("headroom_namespace_query_refusals_total{namespace=\"noisy\"} 1"));
    }
}
