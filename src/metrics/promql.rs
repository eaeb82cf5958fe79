//! PromQL templates for each signal kind. Pure: a policy in, query text out.
//! Templated queries always carry the policy's own namespace, so a policy cannot read
//! another namespace's workloads through a template.

use std::fmt::Write;

use crate::api::{CpuSignal, LatencySignal, SignalKind, TargetType};

/// What a signal needs from the target to render its query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetPods<'a> {
    /// Names of the target's pods (from its `/scale` selector).
    pub pods: &'a [String],
}

/// A rendered query plus how its value maps to replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalQuery {
    pub promql: String,
    pub target: f64,
    pub target_type: TargetType,
}

/// Escapes a PromQL double-quoted string.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn matchers(namespace: &str, extra: impl IntoIterator<Item = (String, String)>) -> String {
    let mut s = format!("namespace={}", quote(namespace));
    for (k, v) in extra {
        // Infallible for String.
        let _ = write!(s, ",{k}={}", quote(&v));
    }
    s
}

pub fn latency(namespace: &str, l: &LatencySignal) -> SignalQuery {
    let sel = matchers(
        namespace,
        l.selector.iter().map(|(k, v)| (k.clone(), v.clone())),
    );
    SignalQuery {
        promql: format!(
            "histogram_quantile({}, sum by (le) (rate({}_bucket{{{sel}}}[{}])))",
            l.quantile, l.metric, l.window
        ),
        target: l.target.as_secs_f64(),
        target_type: TargetType::Value,
    }
}

/// Percent of CPU requests used by the target's pods, from cAdvisor and kube-state-metrics.
/// Pod names are DNS labels, so they are safe inside a regex alternation.
pub fn cpu(namespace: &str, c: &CpuSignal, target: &TargetPods<'_>) -> SignalQuery {
    let pods = target.pods.join("|");
    let pod_sel = format!("namespace={},pod=~{}", quote(namespace), quote(&pods));
    SignalQuery {
        promql: format!(
            "100 * sum(rate(container_cpu_usage_seconds_total{{{pod_sel},container!=\"\",container!=\"POD\"}}[{}])) \
             / sum(kube_pod_container_resource_requests{{{pod_sel},resource=\"cpu\"}})",
            c.window
        ),
        target: f64::from(c.target_utilization),
        target_type: TargetType::Value,
    }
}

/// The query for any signal kind.
pub fn render(namespace: &str, kind: SignalKind<'_>, target: &TargetPods<'_>) -> SignalQuery {
    match kind {
        SignalKind::Latency(l) => latency(namespace, l),
        SignalKind::Cpu(c) => cpu(namespace, c, target),
        SignalKind::Queue(q) => SignalQuery {
            promql: q.query.clone(),
            target: q.target_per_replica,
            target_type: TargetType::AverageValue,
        },
        SignalKind::Custom(c) => SignalQuery {
            promql: c.query.clone(),
            target: c.target,
            target_type: c.target_type,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::PromDuration;

    #[test]
    fn latency_is_a_namespaced_histogram_quantile() {
        let l = LatencySignal {
            metric: "http_request_duration_seconds".into(),
            selector: BTreeMap::from([("service".to_string(), "web".to_string())]),
            quantile: 0.95,
            window: PromDuration::from_secs(60),
            target: PromDuration::from_millis(300),
        };
        let q = latency("shop", &l);
        assert_eq!(
            q.promql,
            r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",service="web"}[1m])))"#
        );
        assert_eq!((q.target, q.target_type), (0.3, TargetType::Value));
    }

    #[test]
    fn label_values_are_escaped_so_they_cannot_break_out() {
        assert_eq!(quote(r#"a"} or vector(1) #"#), r#""a\"} or vector(1) #""#);
        assert_eq!(quote("a\\b\nc"), r#""a\\b\nc""#);
    }

    #[test]
    fn cpu_selects_the_target_pods_in_its_namespace() {
        let pods = vec!["web-1".to_string(), "web-2".to_string()];
        let c = CpuSignal {
            target_utilization: 70,
            window: PromDuration::from_secs(60),
        };
        let q = cpu("shop", &c, &TargetPods { pods: &pods });
        assert!(q.promql.contains(r#"container_cpu_usage_seconds_total{namespace="shop",pod=~"web-1|web-2",container!="",container!="POD"}[1m]"#), "{}", q.promql);
        assert!(q.promql.contains(r#"kube_pod_container_resource_requests{namespace="shop",pod=~"web-1|web-2",resource="cpu"}"#));
        assert_eq!(q.target, 70.0);
    }
}

/// The fraction of `window` that `query` spent above `act`: "regularly", not one sample.
pub fn fraction_over(query: &str, act: f64, window: crate::api::PromDuration) -> String {
    let step_ms = (window.as_duration().as_millis() / 30).max(1000);
    let step = crate::api::PromDuration::from_millis(u64::try_from(step_ms).unwrap_or(u64::MAX));
    format!("avg_over_time((({query}) > bool {act})[{window}:{step}])")
}

/// The same latency signal over a shorter rate window (panic mode's short window).
pub fn latency_over(
    namespace: &str,
    l: &LatencySignal,
    window: crate::api::PromDuration,
) -> SignalQuery {
    let mut short = l.clone();
    short.window = window;
    latency(namespace, &short)
}

#[cfg(test)]
mod guard_tests {
    use super::*;
    use crate::api::PromDuration;

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
