//! PromQL rendering of a plan's measures. Pure: a measure in, query text out. Templated
//! queries always carry the policy's own namespace, so a policy cannot read another
//! namespace's workloads through a template.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::api::PromDuration;
use crate::plan::{Measure, QueryError};

/// Where queries look: the policy's namespace and, for CPU, the target's pods.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope<'a> {
    pub namespace: &'a str,
    pub pods: Result<&'a [String], QueryError>,
    /// Raw PromQL goes out as written (single-tenant clusters, by the operator's flag);
    /// otherwise every selector in it is confined to `namespace`.
    pub cross_namespace: bool,
    /// What a raw query may cost the Prometheus it shares.
    pub limits: super::Limits,
}

/// The PromQL of one measure in `scope`.
pub fn render(measure: &Measure, scope: &Scope<'_>) -> Result<String, QueryError> {
    let ns = scope.namespace;
    let raw = |q: &str| {
        super::cost::check(q, &scope.limits)?;
        if scope.cross_namespace {
            Ok(q.to_string())
        } else {
            super::scoped(q, ns)
        }
    };
    Ok(match measure {
        Measure::Latency {
            metric,
            selector,
            quantile,
            window,
        } => latency(ns, metric, selector, *quantile, *window)?,
        Measure::CpuUtilization { window } => cpu(ns, scope.pods.clone()?, *window),
        Measure::CpuThrottled { window } => throttled(ns, scope.pods.clone()?, *window),
        Measure::CpuPressure { window } => pressure(ns, scope.pods.clone()?, *window),
        Measure::Concurrency {
            metric,
            selector,
            window,
        } => format!(
            "sum(rate({metric}_sum{{{}}}[{window}]))",
            matchers(ns, selector)?
        ),
        Measure::DatabaseCpuOverAct { query, act, window } => {
            fraction_over(&raw(query)?, *act, *window)
        }
        Measure::QueueBacklog(q)
        | Measure::ArrivalRate(q)
        | Measure::Custom(q)
        | Measure::DatabaseCpu(q)
        | Measure::SlowQuery(q)
        | Measure::ErrorRate(q)
        | Measure::Connections(q)
        | Measure::PoolWait(q)
        | Measure::QueueAge(q)
        | Measure::RequestRate(q)
        | Measure::MaxConnections(q) => raw(q)?,
    })
}

/// Escapes a PromQL double-quoted string (the plan writes label values too).
pub use crate::plan::quote;

/// Label matchers with the namespace first. Keys are written verbatim, so anything but a
/// label name could break out of the selector: it is refused here too, not only by the plan.
pub fn matchers(namespace: &str, extra: &BTreeMap<String, String>) -> Result<String, QueryError> {
    let mut s = format!("namespace={}", quote(namespace));
    for (k, v) in extra {
        if !crate::plan::is_label_name(k) || k == "namespace" {
            return Err(QueryError::Unavailable(format!(
                "selector key {k:?} is not a Prometheus label name"
            )));
        }
        // Infallible for String.
        let _ = write!(s, ",{k}={}", quote(v));
    }
    Ok(s)
}

fn latency(
    namespace: &str,
    metric: &str,
    selector: &BTreeMap<String, String>,
    quantile: f64,
    window: PromDuration,
) -> Result<String, QueryError> {
    let sel = matchers(namespace, selector)?;
    Ok(format!(
        "histogram_quantile({quantile}, sum by (le) (rate({metric}_bucket{{{sel}}}[{window}])))"
    ))
}

// Only pods with both a usage and a request count, on both sides: a new pod's request
// scraped before its usage (or the other way round) would skew the ratio, where the HPA
// leaves pods without metrics out.
fn cpu(namespace: &str, pods: &[String], window: PromDuration) -> String {
    let pod_sel = format!(
        "namespace={},pod=~{}",
        quote(namespace),
        quote(&pods.join("|"))
    );
    let usage = format!(
        "sum by (pod) (rate(container_cpu_usage_seconds_total{{{}}}[{window}]))",
        containers(namespace, pods)
    );
    let requests = format!(
        "sum by (pod) (kube_pod_container_resource_requests{{{pod_sel},resource=\"cpu\"}})"
    );
    format!("100 * sum({usage} and on (pod) {requests}) / sum({requests} and on (pod) {usage})")
}

/// The pods' containers, as cAdvisor labels them (not the pod's sandbox).
fn containers(namespace: &str, pods: &[String]) -> String {
    format!(
        "namespace={},pod=~{},container!=\"\",container!=\"POD\"",
        quote(namespace),
        quote(&pods.join("|"))
    )
}

// Throttled over all periods, summed over containers: only containers with a CPU limit run
// CFS periods, so pods without one return nothing and read as utilization alone.
fn throttled(namespace: &str, pods: &[String], window: PromDuration) -> String {
    let sel = containers(namespace, pods);
    format!(
        "sum(rate(container_cpu_cfs_throttled_periods_total{{{sel}}}[{window}])) / sum(rate(container_cpu_cfs_periods_total{{{sel}}}[{window}]))"
    )
}

// A pod stalls as much as its most stalled container; the target as its pods on average.
fn pressure(namespace: &str, pods: &[String], window: PromDuration) -> String {
    let sel = containers(namespace, pods);
    format!(
        "avg(max by (pod) (rate(container_pressure_cpu_waiting_seconds_total{{{sel}}}[{window}])))"
    )
}

/// The fraction of `window` that `query` spent above `act` ("regularly" over a threshold).
pub fn fraction_over(query: &str, act: f64, window: PromDuration) -> String {
    let step_ms = (window.as_duration().as_millis() / 30).max(1000);
    let step = PromDuration::from_millis(u64::try_from(step_ms).unwrap_or(u64::MAX));
    format!("avg_over_time((({query}) > bool {act})[{window}:{step}])")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pods: &[String]) -> Scope<'_> {
        Scope {
            namespace: "shop",
            pods: Ok(pods),
            cross_namespace: false,
            limits: crate::metrics::Limits::default(),
        }
    }

    fn latency_measure(key: &str) -> Measure {
        Measure::Latency {
            metric: "http_request_duration_seconds".into(),
            selector: BTreeMap::from([(key.to_string(), "web".to_string())]),
            quantile: 0.95,
            window: PromDuration::from_secs(60),
        }
    }

    #[test]
    fn latency_is_a_namespaced_histogram_quantile() {
        let q = render(&latency_measure("service"), &scope(&[]));
        assert_eq!(
            q.as_deref(),
            Ok(
                r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",service="web"}[1m])))"#
            )
        );
    }

    #[test]
    fn a_selector_key_that_is_not_a_label_name_is_refused() {
        let evil = r#"x="y"}[1m]))) or histogram_quantile(0.95, sum by (le) (rate(h_bucket{namespace="victim",service"#;
        assert!(render(&latency_measure(evil), &scope(&[])).is_err());
        assert!(render(&latency_measure("namespace"), &scope(&[])).is_err());
    }

    #[test]
    fn label_values_are_escaped_so_they_cannot_break_out() {
        assert_eq!(quote(r#"a"} or vector(1) #"#), r#""a\"} or vector(1) #""#);
        assert_eq!(quote("a\\b\nc"), r#""a\\b\nc""#);
    }

    #[test]
    fn cpu_selects_the_target_pods_in_its_namespace() {
        let pods = vec!["web-1".to_string(), "web-2".to_string()];
        let m = Measure::CpuUtilization {
            window: PromDuration::from_secs(60),
        };
        let q = render(&m, &scope(&pods)).unwrap_or_default();
        assert!(q.contains(r#"container_cpu_usage_seconds_total{namespace="shop",pod=~"web-1|web-2",container!="",container!="POD"}[1m]"#), "{q}");
        assert!(q.contains(
            r#"kube_pod_container_resource_requests{namespace="shop",pod=~"web-1|web-2",resource="cpu"}"#
        ));
    }

    #[test]
    fn saturation_reads_the_target_pods_throttling_and_pressure() {
        let pods = vec!["web-1".to_string(), "web-2".to_string()];
        let window = PromDuration::from_secs(60);
        let sel = r#"{namespace="shop",pod=~"web-1|web-2",container!="",container!="POD"}[1m]"#;
        assert_eq!(
            render(&Measure::CpuThrottled { window }, &scope(&pods)).as_deref(),
            Ok(format!(
                "sum(rate(container_cpu_cfs_throttled_periods_total{sel})) / sum(rate(container_cpu_cfs_periods_total{sel}))"
            )
            .as_str())
        );
        assert_eq!(
            render(&Measure::CpuPressure { window }, &scope(&pods)).as_deref(),
            Ok(format!(
                "avg(max by (pod) (rate(container_pressure_cpu_waiting_seconds_total{sel})))"
            )
            .as_str())
        );
    }

    #[test]
    fn regularly_is_a_fraction_of_a_window() {
        assert_eq!(
            fraction_over("max(pg_cpu)", 0.7, PromDuration::from_secs(1800)),
            "avg_over_time(((max(pg_cpu)) > bool 0.7)[30m:1m])"
        );
        // Steps never go below a second.
        assert!(fraction_over("x", 0.7, PromDuration::from_secs(10)).ends_with("[10s:1s])"));
    }
}
