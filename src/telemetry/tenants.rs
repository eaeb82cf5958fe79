//! Query time and refusals per namespace, exposed for the few namespaces that use the most:
//! a namespace label on every series would grow without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

/// Namespaces shown per series family.
pub const TOP: usize = 10;
/// Namespaces tracked at all; past it, new ones are not counted until the operator restarts.
const TRACKED_AT_MOST: usize = 10_000;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub seconds: f64,
    pub queries: u64,
    pub refusals: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Tenants {
    usage: Arc<Mutex<HashMap<String, Usage>>>,
}

impl Tenants {
    fn with(&self, namespace: &str, f: impl FnOnce(&mut Usage)) {
        let mut all = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(u) = all.get_mut(namespace) {
            f(u);
        } else if all.len() < TRACKED_AT_MOST {
            f(all.entry(namespace.to_string()).or_default());
        }
    }

    pub fn queried(&self, namespace: &str, seconds: f64) {
        self.with(namespace, |u| {
            u.seconds += seconds.max(0.0);
            u.queries += 1;
        });
    }

    pub fn refused(&self, namespace: &str) {
        self.with(namespace, |u| u.refusals += 1);
    }

    /// The `TOP` namespaces by `key`, largest first, leaving out those at zero.
    pub fn top(&self, key: impl Fn(&Usage) -> f64) -> Vec<(String, Usage)> {
        let all = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<(String, Usage)> = all
            .iter()
            .filter(|(_, u)| key(u) > 0.0)
            .map(|(n, u)| (n.clone(), *u))
            .collect();
        v.sort_by(|a, b| key(&b.1).total_cmp(&key(&a.1)).then(a.0.cmp(&b.0)));
        v.truncate(TOP);
        v
    }
}

impl Collector for Tenants {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Pick = fn(&Usage) -> f64;
        let families: [(&str, &str, Pick); 3] = [
            (
                "namespace_query_seconds",
                "Time Prometheus took on a namespace's own queries (the 10 namespaces using most)",
                |u| u.seconds,
            ),
            (
                "namespace_queries",
                "Queries sent for a namespace's own raw PromQL (the 10 namespaces sending most)",
                |u| u.queries as f64,
            ),
            (
                "namespace_query_refusals",
                "A namespace's queries refused by the operator's limits (the 10 namespaces refused most)",
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
}
