//! Shared state of the reconciler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::events::Events;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Client;
use kube::runtime::reflector::Store;

use super::pacer::Pacer;
use super::shard::Shard;
use super::state::State;
use super::target::Resolver;
use crate::api::StoredPolicy;
use crate::metrics::{Batcher, InFlight, Limits, Prometheus, QueryError};
use crate::telemetry::Metrics;

/// Operator-wide settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Default Prometheus for policies that do not name one.
    pub prometheus_url: String,
    pub query_timeout: Duration,
    /// Like the kube-controller-manager flag of the same meaning.
    pub downscale_stabilization_seconds: i32,
    /// Raw PromQL goes out unconfined (single-tenant clusters).
    pub allow_cross_namespace_queries: bool,
    /// Hosts (host or host:port) a policy's `prometheus.address` may name, besides the
    /// default Prometheus.
    pub allowed_prometheus_hosts: Vec<String>,
    /// How often Prometheus scrapes the series, when set: windows hold at least two samples.
    /// None: learned from Prometheus (see `Context::scrape_interval`).
    pub scrape_interval: Option<Duration>,
    /// With several shards, the one whose policies this replica evaluates.
    pub shard: Option<Shard>,
    /// Headroom calibrations started per second, at most.
    pub calibrations_per_second: f64,
    /// Forecast refreshes (one range query each) started per second, at most.
    pub forecasts_per_second: f64,
    /// What one tenant's queries may cost the operator and Prometheus.
    pub limits: Limits,
    /// Prometheus response bytes held at once, across every source and namespace.
    pub response_bytes_in_flight: usize,
    /// The shortest interval any policy is evaluated at (the admin's floor).
    pub min_interval: Duration,
}

impl Settings {
    /// Whether a policy may send its queries (and token) to `address`, and the one spelling
    /// of it that names that Prometheus: every spelling shares one set of query slots and
    /// namespace shares, so a tenant cannot multiply its share by respelling an address.
    pub fn allows(&self, address: &str) -> Result<String, String> {
        let canonical = canonical(address)?;
        let Some((host, port)) = host_port(&canonical) else {
            return Err(format!("{address:?} is not an http(s) URL"));
        };
        let default = host_port(&self.prometheus_url);
        let allowed = default
            .as_ref()
            .is_some_and(|(h, p)| *h == host && *p == port)
            || self.allowed_prometheus_hosts.iter().any(|a| {
                a.eq_ignore_ascii_case(&host) || a.eq_ignore_ascii_case(&format!("{host}:{port}"))
            });
        if allowed {
            Ok(canonical)
        } else {
            Err(format!(
                "{host}:{port} is not an allowed Prometheus; the operator's admin can allow it with --allowed-prometheus-host"
            ))
        }
    }
}

/// `scheme://host:port/path` of an http(s) URL: host in lower case, the port always written,
/// dot segments and a trailing slash dropped. A query string, a fragment or credentials in
/// the URL are refused: Prometheus' API takes none, and they would only make another source.
fn canonical(address: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(address).map_err(|e| format!("{address:?}: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{address:?} is not an http(s) URL"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{address:?}: a query string or fragment is not part of a Prometheus address"
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "{address:?}: credentials in the address are refused; use bearerTokenSecretRef"
        ));
    }
    let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default()) else {
        return Err(format!("{address:?} has no host"));
    };
    let path = u.path().trim_end_matches('/');
    Ok(format!(
        "{}://{}:{port}{path}",
        u.scheme(),
        host.to_ascii_lowercase()
    ))
}

/// (host, port) of an http(s) URL, the port defaulted by scheme.
fn host_port(url: &str) -> Option<(String, u16)> {
    let u = reqwest::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    Some((
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?,
    ))
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub resolver: Resolver,
    /// Per-policy memory: histories and connection-budget claims.
    pub state: State,
    pub events: Events,
    pub metrics: Metrics,
    /// All watched policies, for budgets shared between them. Set once the controller exists.
    pub policies: OnceLock<Store<StoredPolicy>>,
    /// HPAs in the watched namespaces, to detect a second autoscaler on a target.
    pub hpas: OnceLock<Store<HorizontalPodAutoscaler>>,
    /// Every policy's queries go through it: shared, grouped and bounded.
    pub batcher: Batcher,
    /// Paces headroom calibrations (range queries over hours) across all policies.
    pub calibrations: Pacer,
    /// Paces forecast refreshes (range queries of a policy's load) across all policies.
    pub histories: Pacer,
    /// The scrape interval in use, in milliseconds: the flag's, else the learned one.
    scrape_millis: AtomicU64,
    prometheus: Mutex<HashMap<(String, Option<String>), Prometheus>>,
    /// Shared by every Prometheus client (`settings.response_bytes_in_flight`).
    in_flight: Arc<InFlight>,
    failures: Mutex<HashMap<String, u32>>,
}

/// How long the first query of a batch waits for others due at about the same time.
const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// Answers are shared for half a scrape interval: Prometheus has no newer sample sooner.
pub fn shared_for(scrape_interval: Duration) -> Duration {
    (scrape_interval / 2).clamp(Duration::from_millis(250), Duration::from_secs(15))
}

/// Until Prometheus says otherwise: kube-prometheus-stack's default.
const ASSUMED_SCRAPE_INTERVAL: Duration = Duration::from_secs(30);

impl Context {
    pub fn new(client: Client, settings: Settings, events: Events, metrics: Metrics) -> Self {
        let scrape = settings.scrape_interval.unwrap_or(ASSUMED_SCRAPE_INTERVAL);
        let batcher = Batcher::new(BATCH_WINDOW, shared_for(scrape), metrics.clone());
        let in_flight = InFlight::new(settings.response_bytes_in_flight);
        Self {
            client,
            batcher,
            calibrations: Pacer::new(settings.calibrations_per_second),
            histories: Pacer::new(settings.forecasts_per_second),
            scrape_millis: AtomicU64::new(u64::try_from(scrape.as_millis()).unwrap_or(u64::MAX)),
            settings,
            resolver: Resolver::default(),
            state: State::default(),
            events,
            metrics,
            policies: OnceLock::new(),
            hpas: OnceLock::new(),
            prometheus: Mutex::default(),
            in_flight,
            failures: Mutex::default(),
        }
    }

    /// The scrape interval windows are sized for.
    pub fn scrape_interval(&self) -> Duration {
        Duration::from_millis(self.scrape_millis.load(Ordering::Relaxed))
    }

    /// Takes a scrape interval learned from Prometheus, unless the flag set one. Returns
    /// whether it changed.
    pub fn learned_scrape_interval(&self, learned: Duration) -> bool {
        if self.settings.scrape_interval.is_some() || learned.is_zero() {
            return false;
        }
        let millis = u64::try_from(learned.as_millis()).unwrap_or(u64::MAX);
        let before = self.scrape_millis.swap(millis, Ordering::Relaxed);
        self.batcher.share_for(shared_for(learned));
        before != millis
    }

    /// A client for `address` (with an optional bearer token), reused across evaluations.
    pub fn prometheus(
        &self,
        address: &str,
        token: Option<String>,
    ) -> Result<Prometheus, QueryError> {
        let key = (address.to_string(), token);
        if let Some(p) = self
            .prometheus
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(p);
        }
        let p = Prometheus::new(
            address,
            self.settings.query_timeout,
            key.1.as_deref(),
            self.settings.limits,
        )?
        .bounded_by(self.in_flight.clone());
        if let Ok(mut m) = self.prometheus.lock() {
            m.insert(key, p.clone());
        }
        Ok(p)
    }

    /// Exponential backoff per policy after errors: 5s, 10s, 20s ... capped at 5 minutes.
    pub fn backoff(&self, key: &str) -> Duration {
        let n = self
            .failures
            .lock()
            .map(|mut f| {
                let n = f.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        backoff_delay(n)
    }

    pub fn succeeded(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }
}

pub fn backoff_delay(failures: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << failures.saturating_sub(1).min(16));
    Duration::from_secs(secs.min(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allowed: &[&str]) -> Settings {
        Settings {
            prometheus_url: "http://prometheus.monitoring:9090".into(),
            query_timeout: Duration::from_secs(5),
            downscale_stabilization_seconds: 300,
            allow_cross_namespace_queries: false,
            allowed_prometheus_hosts: allowed.iter().map(|s| s.to_string()).collect(),
            scrape_interval: Some(Duration::from_secs(30)),
            shard: None,
            calibrations_per_second: 5.0,
            forecasts_per_second: 2.0,
            limits: Limits::default(),
            min_interval: Duration::from_secs(1),
            response_bytes_in_flight: 256 << 20,
        }
    }

    #[test]
    fn only_the_default_and_allowed_prometheus_hosts_are_reached() {
        let s = settings(&["thanos.monitoring"]);
        assert!(s.allows("http://prometheus.monitoring:9090/").is_ok());
        assert!(s.allows("http://thanos.monitoring:10902").is_ok());
        assert!(s.allows("http://prometheus.monitoring:9091").is_err());
        assert!(s.allows("http://169.254.169.254/latest/meta-data").is_err());
        assert!(s.allows("file:///etc/passwd").is_err());
        // Every spelling of one Prometheus is one source.
        for spelling in [
            "http://Prometheus.Monitoring:9090",
            "http://prometheus.monitoring:9090/",
            "http://prometheus.monitoring:9090//x/../",
        ] {
            assert_eq!(
                s.allows(spelling).as_deref(),
                Ok("http://prometheus.monitoring:9090"),
                "{spelling}"
            );
        }
        assert_eq!(
            s.allows("http://thanos.monitoring").as_deref(),
            Ok("http://thanos.monitoring:80")
        );
        for respelled in [
            "http://prometheus.monitoring:9090/?src=1",
            "http://prometheus.monitoring:9090/#2",
            "http://u:p@prometheus.monitoring:9090/",
        ] {
            assert!(s.allows(respelled).is_err(), "{respelled}");
        }
        assert!(
            settings(&[])
                .allows("http://thanos.monitoring:10902")
                .is_err()
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let d: Vec<u64> = (1..=8).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(d, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff_delay(u32::MAX).as_secs(), 300);
    }
}
