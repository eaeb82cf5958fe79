//! What one query of one policy asks Prometheus for, in a form that can be shared: an exact
//! text (shared by every policy asking the same), or a member of a grouped query (shared
//! by every policy asking a query of the same shape, whatever its namespace and labels).

use std::collections::BTreeMap;

use super::promql::{Scope, quote, render};
use crate::plan::{Measure, Query, QueryError, Shape};

/// A templated query's shape: everything but the namespace and the selector's values.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Template {
    /// `histogram_quantile` of a latency histogram, by the selector's label keys.
    Quantile {
        metric: String,
        quantile: String,
        window: String,
        keys: Vec<String>,
    },
    /// `sum(rate(…_sum))` of a histogram: requests in flight (Little's law).
    RateSum {
        metric: String,
        window: String,
        keys: Vec<String>,
    },
    /// CPU seconds per second, by pod.
    CpuUsage { window: String },
    /// CPU requests, by pod.
    CpuRequests,
    /// CFS periods throttled per second, by pod.
    CpuThrottledPeriods { window: String },
    /// CFS periods per second, by pod.
    CpuPeriods { window: String },
    /// Seconds per second some task waited for CPU, the most stalled container of each pod.
    CpuPressure { window: String },
}

/// What a CPU ask reads of the target's pods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PodReading {
    /// 100 × usage over requests.
    Utilization,
    /// Throttled periods over all periods.
    Throttled,
    /// Mean PSI waiting share.
    Pressure,
}

impl PodReading {
    /// The grouped results it combines: what it sums, and what it divides by.
    pub fn templates(self, window: &str) -> (Template, Option<Template>) {
        let window = window.to_string();
        match self {
            PodReading::Utilization => (Template::CpuUsage { window }, Some(Template::CpuRequests)),
            PodReading::Throttled => (
                Template::CpuThrottledPeriods {
                    window: window.clone(),
                },
                Some(Template::CpuPeriods { window }),
            ),
            PodReading::Pressure => (Template::CpuPressure { window }, None),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// This text, as an instant query or over a range (span, step seconds), for a policy
    /// in `namespace` (whose share of Prometheus it uses).
    Text {
        promql: String,
        range: Option<(f64, f64)>,
        namespace: String,
    },
    /// The sample of `template`'s grouped result with these label values.
    Member {
        template: Template,
        namespace: String,
        labels: BTreeMap<String, String>,
    },
    /// A reading of the target's pods from cAdvisor (and kube-state-metrics).
    Cpu {
        reading: PodReading,
        window: String,
        namespace: String,
        pods: Vec<String>,
    },
}

fn checked_keys(selector: &BTreeMap<String, String>) -> Result<Vec<String>, QueryError> {
    selector
        .keys()
        .map(|k| {
            if crate::plan::is_label_name(k) && k != "namespace" && k != "le" {
                Ok(k.clone())
            } else {
                Err(QueryError::Unavailable(format!(
                    "selector key {k:?} is not a Prometheus label name"
                )))
            }
        })
        .collect()
}

/// The ask for one query in `scope`. Range queries and raw PromQL are exact texts.
pub fn ask(q: &Query, scope: &Scope<'_>) -> Result<Ask, QueryError> {
    if let Shape::Range {
        span_seconds,
        step_seconds,
    } = q.shape
    {
        return Ok(Ask::Text {
            promql: render(&q.measure, scope)?,
            range: Some((span_seconds, step_seconds)),
            namespace: scope.namespace.to_string(),
        });
    }
    let namespace = scope.namespace.to_string();
    let pods = |reading, window: crate::api::PromDuration| -> Result<Ask, QueryError> {
        Ok(Ask::Cpu {
            reading,
            window: window.to_string(),
            namespace: namespace.clone(),
            pods: scope.pods.clone()?.to_vec(),
        })
    };
    Ok(match &q.measure {
        Measure::Latency {
            metric,
            selector,
            quantile,
            window,
        } => Ask::Member {
            template: Template::Quantile {
                metric: metric.clone(),
                quantile: quantile.to_string(),
                window: window.to_string(),
                keys: checked_keys(selector)?,
            },
            namespace,
            labels: selector.clone(),
        },
        Measure::Concurrency {
            metric,
            selector,
            window,
        } => Ask::Member {
            template: Template::RateSum {
                metric: metric.clone(),
                window: window.to_string(),
                keys: checked_keys(selector)?,
            },
            namespace,
            labels: selector.clone(),
        },
        Measure::CpuUtilization { window } => pods(PodReading::Utilization, *window)?,
        Measure::CpuThrottled { window } => pods(PodReading::Throttled, *window)?,
        Measure::CpuPressure { window } => pods(PodReading::Pressure, *window)?,
        other => Ask::Text {
            promql: render(other, scope)?,
            range: None,
            namespace,
        },
    })
}

/// Anchored RE2 alternatives of `values`, escaped.
fn alternatives<'a>(values: impl IntoIterator<Item = &'a String>) -> String {
    let mut out = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        for c in v.chars() {
            if "\\.+*?()|[]{}^$".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    quote(&out)
}

impl Template {
    /// The labels a grouped result is split by, in order.
    pub fn by(&self) -> Vec<String> {
        let mut by = vec!["namespace".to_string()];
        match self {
            Template::Quantile { keys, .. } | Template::RateSum { keys, .. } => {
                by.extend(keys.iter().cloned());
            }
            Template::CpuUsage { .. }
            | Template::CpuRequests
            | Template::CpuThrottledPeriods { .. }
            | Template::CpuPeriods { .. }
            | Template::CpuPressure { .. } => by.push("pod".into()),
        }
        by
    }

    /// One query for every namespace in `namespaces`.
    pub fn render(&self, namespaces: &[String]) -> String {
        let ns = format!("namespace=~{}", alternatives(namespaces));
        let by = self.by().join(", ");
        match self {
            Template::Quantile {
                metric,
                quantile,
                window,
                ..
            } => format!(
                "histogram_quantile({quantile}, sum by (le, {by}) (rate({metric}_bucket{{{ns}}}[{window}])))"
            ),
            Template::RateSum { metric, window, .. } => {
                format!("sum by ({by}) (rate({metric}_sum{{{ns}}}[{window}]))")
            }
            Template::CpuUsage { window } => {
                container_rate("sum", &by, "container_cpu_usage_seconds_total", &ns, window)
            }
            Template::CpuRequests => format!(
                "sum by ({by}) (kube_pod_container_resource_requests{{{ns},resource=\"cpu\"}})"
            ),
            Template::CpuThrottledPeriods { window } => container_rate(
                "sum",
                &by,
                "container_cpu_cfs_throttled_periods_total",
                &ns,
                window,
            ),
            Template::CpuPeriods { window } => {
                container_rate("sum", &by, "container_cpu_cfs_periods_total", &ns, window)
            }
            Template::CpuPressure { window } => container_rate(
                "max",
                &by,
                "container_pressure_cpu_waiting_seconds_total",
                &ns,
                window,
            ),
        }
    }
}

/// `op by (by) (rate(metric{ns, containers only}[window]))`.
fn container_rate(op: &str, by: &str, metric: &str, ns: &str, window: &str) -> String {
    format!("{op} by ({by}) (rate({metric}{{{ns},container!=\"\",container!=\"POD\"}}[{window}]))")
}

/// One grouped result: label values in `Template::by` order → value.
pub type Grouped = std::collections::HashMap<Vec<String>, f64>;

/// A member's value in a grouped result.
pub fn member(
    grouped: &Grouped,
    template: &Template,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<f64, QueryError> {
    let key: Vec<String> = template
        .by()
        .iter()
        .map(|l| {
            if l == "namespace" {
                namespace.to_string()
            } else {
                labels.get(l).cloned().unwrap_or_default()
            }
        })
        .collect();
    let v = *grouped.get(&key).ok_or(QueryError::Empty)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(QueryError::NotANumber(v))
    }
}

/// `reading` of `pods` from its grouped results, as the per-target query computes it.
pub fn pods_reading(
    reading: PodReading,
    over: &Grouped,
    under: Option<&Grouped>,
    namespace: &str,
    pods: &[String],
) -> Result<f64, QueryError> {
    let found = |g: &Grouped| -> Option<Vec<f64>> {
        let found: Vec<f64> = pods
            .iter()
            .filter_map(|p| g.get(&vec![namespace.to_string(), p.clone()]).copied())
            .collect();
        (!found.is_empty()).then_some(found)
    };
    let sum = |g: &Grouped| found(g).map(|f| f.iter().sum::<f64>());
    let v = match (reading, under) {
        (PodReading::Pressure, _) => {
            let f = found(over).ok_or(QueryError::Empty)?;
            f.iter().sum::<f64>() / f.len() as f64
        }
        (_, Some(under)) => {
            let (Some(a), Some(b)) = (sum(over), sum(under)) else {
                return Err(QueryError::Empty);
            };
            let scale = if reading == PodReading::Utilization {
                100.0
            } else {
                1.0
            };
            scale * a / b
        }
        (_, None) => return Err(QueryError::Empty),
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(QueryError::NotANumber(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PromDuration;

    fn scope(ns: &str) -> Scope<'_> {
        Scope {
            namespace: ns,
            pods: Ok(&[]),
            cross_namespace: false,
            limits: crate::metrics::Limits::default(),
        }
    }

    fn latency(service: &str) -> Query {
        Query {
            key: "p95".into(),
            field: "spec.signals[0].latency".into(),
            measure: Measure::Latency {
                metric: "http_request_duration_seconds".into(),
                selector: BTreeMap::from([("service".to_string(), service.to_string())]),
                quantile: 0.95,
                window: PromDuration::from_secs(60),
            },
            shape: Shape::Instant,
        }
    }

    #[test]
    fn two_namespaces_and_services_share_one_grouped_latency_query() {
        let (Ok(Ask::Member { template: a, .. }), Ok(Ask::Member { template: b, .. })) = (
            ask(&latency("web"), &scope("shop")),
            ask(&latency("api"), &scope("blog")),
        ) else {
            panic!("latency is a grouped member")
        };
        assert_eq!(a, b);
        assert_eq!(
            a.render(&["blog".into(), "shop".into()]),
            r#"histogram_quantile(0.95, sum by (le, namespace, service) (rate(http_request_duration_seconds_bucket{namespace=~"blog|shop"}[1m])))"#
        );
    }

    #[test]
    fn a_member_takes_only_its_own_namespace_and_labels() {
        let Ok(Ask::Member {
            template,
            namespace,
            labels,
        }) = ask(&latency("web"), &scope("shop"))
        else {
            panic!("member")
        };
        let grouped = Grouped::from([
            (vec!["shop".into(), "web".into()], 0.2),
            (vec!["blog".into(), "web".into()], 9.0),
            (vec!["shop".into(), "api".into()], 7.0),
        ]);
        assert_eq!(member(&grouped, &template, &namespace, &labels), Ok(0.2));
        assert_eq!(
            member(&grouped, &template, "other", &labels),
            Err(QueryError::Empty)
        );
    }

    #[test]
    fn selector_keys_that_could_break_out_are_refused() {
        let mut q = latency("web");
        if let Measure::Latency { selector, .. } = &mut q.measure {
            selector.insert("namespace".into(), "victim".into());
        }
        assert!(ask(&q, &scope("shop")).is_err());
    }

    #[test]
    fn namespace_alternatives_are_escaped() {
        assert_eq!(
            alternatives(&["a.b".to_string(), "c|d".to_string()]),
            r#""a\\.b|c\\|d""#
        );
    }

    #[test]
    fn cpu_sums_the_targets_pods_like_the_single_query() {
        let usage = Grouped::from([
            (vec!["shop".into(), "web-1".into()], 0.3),
            (vec!["shop".into(), "web-2".into()], 0.5),
            (vec!["shop".into(), "other".into()], 5.0),
        ]);
        let requests = Grouped::from([
            (vec!["shop".into(), "web-1".into()], 0.5),
            (vec!["shop".into(), "web-2".into()], 0.5),
        ]);
        let pods = ["web-1".to_string(), "web-2".to_string()];
        let cpu = |ns| pods_reading(PodReading::Utilization, &usage, Some(&requests), ns, &pods);
        let v = cpu("shop").unwrap_or_default();
        assert!((v - 80.0).abs() < 1e-9, "{v}");
        assert_eq!(cpu("blog"), Err(QueryError::Empty));
    }

    #[test]
    fn throttling_is_over_all_periods_and_pressure_a_mean_over_pods() {
        let g = |a: f64, b: f64| {
            Grouped::from([
                (vec!["shop".into(), "web-1".into()], a),
                (vec!["shop".into(), "web-2".into()], b),
            ])
        };
        let pods = ["web-1".to_string(), "web-2".to_string()];
        let throttled = pods_reading(
            PodReading::Throttled,
            &g(8.0, 2.0),
            Some(&g(10.0, 10.0)),
            "shop",
            &pods,
        );
        assert_eq!(throttled, Ok(0.5));
        let pressure = pods_reading(PodReading::Pressure, &g(0.6, 0.2), None, "shop", &pods);
        assert!(pressure.is_ok_and(|p| (p - 0.4).abs() < 1e-9));
        // A pod without a limit has no periods: no reading, not zero.
        let none = pods_reading(
            PodReading::Throttled,
            &Grouped::new(),
            Some(&Grouped::new()),
            "shop",
            &pods,
        );
        assert_eq!(none, Err(QueryError::Empty));
        let (over, under) = PodReading::Throttled.templates("1m");
        assert_eq!(
            over.render(&["shop".to_string()]),
            r#"sum by (namespace, pod) (rate(container_cpu_cfs_throttled_periods_total{namespace=~"shop",container!="",container!="POD"}[1m]))"#
        );
        assert!(under.is_some_and(|u| {
            u.render(&["shop".to_string()])
                .contains("container_cpu_cfs_periods_total")
        }));
    }
}
