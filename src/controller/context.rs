//! Shared state of the reconciler.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use super::state::State;
use super::target::Resolver;
use crate::api::ScalingPolicy;
use crate::metrics::{Prometheus, QueryError};
use crate::telemetry::Metrics;

/// Operator-wide settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Default Prometheus for policies that do not name one.
    pub prometheus_url: String,
    pub query_timeout: Duration,
    /// Like the kube-controller-manager flag of the same meaning.
    pub downscale_stabilization_seconds: i32,
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub resolver: Resolver,
    /// Per-policy memory: histories and connection-budget claims.
    pub state: State,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// All watched policies, for budgets shared between them. Set once the controller exists.
    pub policies: OnceLock<Store<ScalingPolicy>>,
    prometheus: Mutex<HashMap<(String, Option<String>), Prometheus>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, settings: Settings, recorder: Recorder, metrics: Metrics) -> Self {
        Self {
            client,
            settings,
            resolver: Resolver::default(),
            state: State::default(),
            recorder,
            metrics,
            policies: OnceLock::new(),
            prometheus: Mutex::default(),
            failures: Mutex::default(),
        }
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
        let p = Prometheus::new(address, self.settings.query_timeout, key.1.as_deref())?;
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

    #[test]
    fn backoff_doubles_and_caps() {
        let d: Vec<u64> = (1..=8).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(d, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff_delay(u32::MAX).as_secs(), 300);
    }
}
