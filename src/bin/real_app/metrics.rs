//! The app's own series, named as client libraries name them: the request histogram and
//! count, requests in flight, and the database client's query times, pool waits and errors.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(
        headroom::simulate::LATENCY_BUCKETS
            .iter()
            .copied()
            .filter(|b| b.is_finite()),
    )
}

pub struct Metrics {
    registry: Registry,
    pub latency: Histogram,
    pub in_flight: Gauge,
    requests: Family<Labels, Counter>,
    queries: Histograms,
    pub pool_wait: Histogram,
    db_errors: Family<Labels, Counter>,
    pub published: Counter,
    pub processed: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            latency: latency_histogram(),
            in_flight: Gauge::default(),
            requests: Family::default(),
            queries: Family::new_with_constructor(latency_histogram),
            pool_wait: latency_histogram(),
            db_errors: Family::default(),
            published: Counter::default(),
            processed: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request",
            m.latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being answered",
            m.in_flight.clone(),
        );
        registry.register("http_requests", "Requests answered", m.requests.clone());
        registry.register(
            "db_client_query_duration_seconds",
            "Time of a database query, as the app's client sees it",
            m.queries.clone(),
        );
        registry.register(
            "db_client_pool_wait_seconds",
            "Time a request waited for a connection of the app's pool",
            m.pool_wait.clone(),
        );
        registry.register(
            "db_client_errors",
            "Database errors: pool timeouts, refused connections, failed queries",
            m.db_errors.clone(),
        );
        registry.register(
            "jobs_published",
            "Jobs put on the queue",
            m.published.clone(),
        );
        registry.register(
            "jobs_processed",
            "Jobs taken off the queue and done",
            m.processed.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn answered(&self, code: &'static str) {
        self.requests.get_or_create(&vec![("code", code)]).inc();
    }

    pub fn query(&self, which: &'static str, seconds: f64) {
        self.queries
            .get_or_create(&vec![("query", which)])
            .observe(seconds);
    }

    pub fn db_error(&self, kind: &'static str) {
        self.db_errors.get_or_create(&vec![("kind", kind)]).inc();
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
