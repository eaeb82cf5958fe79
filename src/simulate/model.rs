//! The app: a web tier, the database it shares with the queue workers, and the workers.
//! One step is one second. Pods become ready after a start-up delay.

use super::queueing::{erlang_c, response_cdf, response_quantile};

/// Upper bounds (seconds) of the web tier's latency histogram: what the demo app exposes,
/// and what the simulated Prometheus computes `histogram_quantile` from (+Inf implied).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
];

/// The app's physics. Defaults describe a typical growing web app.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// App time per request, seconds (CPU and I/O outside the database).
    pub service_time: f64,
    /// Growth of the service time per 10 minutes (the creeping regression), e.g. 0.03.
    pub service_time_growth: f64,
    /// Requests a replica serves at once.
    pub concurrency: u32,
    pub startup_seconds: usize,
    pub queries_per_request: f64,
    /// Query time on an idle database, seconds.
    pub query_time: f64,
    /// Queries per second the database can serve.
    pub db_capacity_qps: f64,
    pub web_pool_size: i32,
    pub worker_pool_size: i32,
    pub max_connections: i32,
    /// Jobs per second one worker completes.
    pub worker_rate: f64,
    pub queries_per_job: f64,
    /// Each web pod runs under a CFS quota equal to its CPU request, and `service_time` is a
    /// request's wall time at that quota: throttled periods are then read from cAdvisor.
    pub cpu_limit: bool,
}

/// The CFS period (the kernel's default, which the kubelet keeps).
pub const CFS_PERIOD_SECONDS: f64 = 0.1;

/// Share of a limited server's CFS periods that are throttled at utilization `rho` with a
/// request's wall time `hold` at the quota: each busy stretch is throttled in every period
/// but its last, and Poisson arrivals start a new stretch at the rate that finds it idle.
pub fn throttled_share(rho: f64, hold: f64) -> f64 {
    let rho = rho.clamp(0.0, 1.0);
    let stretches_per_period = rho * (1.0 - rho) * CFS_PERIOD_SECONDS / hold.max(1e-9);
    (rho - stretches_per_period).clamp(0.0, 1.0)
}

impl Default for Params {
    fn default() -> Self {
        Self {
            service_time: 0.05,
            service_time_growth: 0.0,
            concurrency: 4,
            startup_seconds: 60,
            queries_per_request: 3.0,
            query_time: 0.004,
            db_capacity_qps: 20_000.0,
            web_pool_size: 5,
            worker_pool_size: 2,
            max_connections: 1000,
            worker_rate: 5.0,
            queries_per_job: 2.0,
            cpu_limit: false,
        }
    }
}

impl Params {
    /// The model each built-in scenario runs against.
    pub fn for_scenario(name: &str) -> Params {
        match name {
            "creeping" => Params {
                service_time_growth: 0.03,
                ..Params::default()
            },
            // The database runs at ~85% CPU and its queries set latency; the app tier has
            // spare slots. More app replicas only add connections.
            "database-bound" => Params {
                db_capacity_qps: 200.0,
                max_connections: 120,
                ..Params::default()
            },
            _ => Params::default(),
        }
    }
}

/// A histogram's shares when every request takes `latency`.
pub fn all_within(latency: f64) -> [f64; LATENCY_BUCKETS.len()] {
    LATENCY_BUCKETS.map(|le| f64::from(u8::from(le >= latency)))
}

/// A tier's pods: the desired count and when each started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tier {
    started_at: Vec<usize>,
}

impl Tier {
    pub fn new(replicas: i32) -> Self {
        Self {
            started_at: vec![0; replicas.max(0) as usize],
        }
    }

    pub fn replicas(&self) -> i32 {
        self.started_at.len() as i32
    }

    /// Ready at `now`: pods older than the start-up delay (the initial ones are ready).
    pub fn ready(&self, now: usize, startup: usize) -> i32 {
        self.started_at
            .iter()
            .filter(|&&s| s == 0 || now >= s + startup)
            .count() as i32
    }

    /// Scale to `n`: new pods start now; scale-down removes the youngest first.
    pub fn scale(&mut self, n: i32, now: usize) {
        let n = n.max(0) as usize;
        self.started_at.sort_unstable();
        if n < self.started_at.len() {
            self.started_at.truncate(n);
        } else {
            self.started_at.resize(n, now.max(1));
        }
    }
}

/// What the app looks like in one second (the truth, not what an autoscaler sees).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub requests: f64,
    /// Share of this second's requests answered within each of `LATENCY_BUCKETS`.
    pub within: [f64; LATENCY_BUCKETS.len()],
    /// Jobs arriving this second.
    pub jobs: f64,
    pub p95: f64,
    /// Fraction of requests failing (5xx): overload, database saturation, or no connection.
    pub error_rate: f64,
    pub cpu: f64,
    /// Throttled CFS periods over all periods; NaN without a CPU limit (no CFS series).
    pub throttled: f64,
    pub db_cpu: f64,
    pub connections: i32,
    pub connection_overflow: bool,
    pub backlog: f64,
    pub oldest_age: f64,
    pub web_ready: i32,
    pub workers_ready: i32,
    /// Requests in flight in the web tier (Little's law: arrivals × mean response time), what
    /// Knative's queue-proxy reports as concurrency.
    pub in_flight: f64,
}

/// Pods of each tier: all of them hold connections, the ready ones serve.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pods {
    pub web_ready: i32,
    pub workers_ready: i32,
    pub web: i32,
    pub workers: i32,
}

/// Latency a saturated tier reports (requests time out).
pub const TIMEOUT: f64 = 10.0;

#[derive(Clone, Debug)]
pub struct App {
    pub params: Params,
    pub web: Tier,
    pub workers: Tier,
    backlog: f64,
    oldest_age: f64,
}

impl App {
    pub fn new(params: Params, web: i32, workers: i32) -> Self {
        Self {
            params,
            web: Tier::new(web),
            workers: Tier::new(workers),
            backlog: 0.0,
            oldest_age: 0.0,
        }
    }

    pub fn step(&mut self, now: usize, requests: f64, jobs: f64) -> Snapshot {
        let pods = Pods {
            web_ready: self.web.ready(now, self.params.startup_seconds),
            workers_ready: self.workers.ready(now, self.params.startup_seconds),
            web: self.web.replicas(),
            workers: self.workers.replicas(),
        };
        self.step_with(now, requests, jobs, pods)
    }

    /// One second with pod counts from elsewhere (the live demo reads them from the cluster).
    pub fn step_with(&mut self, now: usize, requests: f64, jobs: f64, pods: Pods) -> Snapshot {
        let p = &self.params;
        let Pods {
            web_ready,
            workers_ready,
            ..
        } = pods;
        let service = p.service_time * (1.0 + p.service_time_growth).powf(now as f64 / 600.0);

        // Workers drain the backlog; their queries load the database too.
        let capacity = f64::from(workers_ready) * p.worker_rate;
        let done = (self.backlog + jobs).min(capacity);
        self.backlog = (self.backlog + jobs - done).max(0.0);
        self.oldest_age = if self.backlog < 1.0 {
            0.0
        } else if capacity > 0.0 {
            self.backlog / capacity
        } else {
            self.oldest_age + 1.0
        };

        // The database: shared, and slow for everyone when it saturates.
        let db_load = requests * p.queries_per_request + done * p.queries_per_job;
        let db_util = db_load / p.db_capacity_qps;
        let query = p.query_time / (1.0 - db_util.min(0.98));
        let db_errors = if db_util > 1.0 {
            1.0 - 1.0 / db_util
        } else {
            0.0
        };

        // Connections: every pod opens its pool as it starts.
        let connections = pods.web * p.web_pool_size + pods.workers * p.worker_pool_size;
        let overflow = connections > p.max_connections;
        let conn_errors = if overflow {
            f64::from(connections - p.max_connections) / f64::from(connections)
        } else {
            0.0
        };

        // The web tier: M/M/c with c = ready replicas × concurrency.
        let hold = service + p.queries_per_request * query;
        let servers = (web_ready.max(0) as u32) * p.concurrency;
        let (p95, overload) = match response_quantile(servers, requests, 1.0 / hold, 0.95) {
            Some(q) => (q.min(TIMEOUT), 0.0),
            None if requests <= 0.0 => (hold, 0.0),
            None => {
                let served = f64::from(servers) / hold;
                (TIMEOUT, (1.0 - served / requests).max(0.0))
            }
        };
        // The response-time distribution, as a histogram would count it. Requests slower than
        // the timeout end at it; an unstable queue answers everything at the timeout.
        let within = match response_cdf(servers, requests, 1.0 / hold, &LATENCY_BUCKETS) {
            Some(cdf) => std::array::from_fn(|i| {
                if LATENCY_BUCKETS[i] >= TIMEOUT {
                    1.0
                } else {
                    cdf[i]
                }
            }),
            None => all_within(p95),
        };
        let error_rate = 1.0 - (1.0 - overload) * (1.0 - db_errors) * (1.0 - conn_errors);
        let mu = 1.0 / hold;
        let mean_response = if servers > 0 && requests < f64::from(servers) * mu {
            hold + erlang_c(servers, requests / mu) / (f64::from(servers) * mu - requests)
        } else {
            TIMEOUT
        };
        let in_flight = requests * mean_response.min(TIMEOUT);
        let cpu = if servers > 0 {
            (requests * service / f64::from(servers)).min(1.0)
        } else {
            1.0
        };
        let throttled = if p.cpu_limit {
            throttled_share(cpu, hold)
        } else {
            f64::NAN
        };
        Snapshot {
            requests,
            within,
            jobs,
            p95,
            error_rate,
            cpu,
            throttled,
            db_cpu: db_util.min(1.0),
            connections,
            connection_overflow: overflow,
            backlog: self.backlog,
            oldest_age: self.oldest_age,
            web_ready,
            workers_ready,
            in_flight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_replicas_lower_latency_until_the_database_is_the_limit() {
        let mut few = App::new(Params::default(), 3, 1);
        let mut many = App::new(Params::default(), 6, 1);
        let a = few.step(0, 150.0, 0.0);
        let b = many.step(0, 150.0, 0.0);
        assert!(b.p95 < a.p95, "{a:?} vs {b:?}");
        let db = Params::for_scenario("database-bound");
        let mut small = App::new(db.clone(), 2, 1);
        let mut big = App::new(db, 30, 1);
        let (s, g) = (small.step(0, 48.0, 12.0), big.step(0, 48.0, 12.0));
        // A database near saturation sets latency: 15x the app servers still miss a 300ms
        // target, and their connection pools overflow max_connections.
        assert!(s.p95 > 0.3 && g.p95 > 0.3, "{s:?} vs {g:?}");
        assert!(g.connection_overflow && g.error_rate > s.error_rate);
        assert!(!s.connection_overflow);
    }

    #[test]
    fn a_limited_pod_is_throttled_in_every_period_once_saturated() {
        // The real app: 20 ms of CPU under a 100m limit, 0.2 s a request at its quota.
        let lone = throttled_share(0.05, 0.2);
        assert!((0.02..0.03).contains(&lone), "{lone}");
        assert!((0.25..0.3).contains(&throttled_share(0.4, 0.2)));
        assert_eq!(throttled_share(1.0, 0.2), 1.0);
        assert_eq!(throttled_share(2.4, 0.2), 1.0);
        // A request shorter than a period is throttled only as the queue forms.
        assert_eq!(throttled_share(0.3, 0.05), 0.0);
        let mut app = App::new(Params::default(), 2, 1);
        assert!(app.step(0, 10.0, 0.0).throttled.is_nan());
    }

    #[test]
    fn new_pods_serve_only_after_start_up() {
        let mut app = App::new(Params::default(), 2, 1);
        app.web.scale(5, 100);
        assert_eq!(app.web.ready(130, 60), 2);
        assert_eq!(app.web.ready(160, 60), 5);
        app.web.scale(3, 200);
        assert_eq!(app.web.replicas(), 3);
    }

    #[test]
    fn backlog_grows_without_workers_and_drains_with_them() {
        let mut app = App::new(Params::default(), 2, 0);
        for t in 0..10 {
            app.step(t, 0.0, 10.0);
        }
        let s = app.step(10, 0.0, 0.0);
        assert_eq!(s.backlog, 100.0);
        assert!(s.oldest_age >= 10.0);
        app.workers.scale(4, 11);
        // Not ready before their start-up time; then 4 workers drain 20 jobs a second.
        assert_eq!(app.step(12, 0.0, 0.0).backlog, 100.0);
        assert_eq!(app.step(71, 0.0, 0.0).backlog, 80.0);
    }
}
