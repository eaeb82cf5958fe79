//! Signals: what Headroom reads from Prometheus to decide. Each signal is a union of kinds,
//! the way Kubernetes volume sources are: exactly one kind field is set.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PromDuration;

/// One input to the decision. Exactly one of `latency`, `cpu`, `queue` or `custom` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "[has(self.latency), has(self.cpu), has(self.queue), has(self.custom), has(self.concurrency)].filter(x, x).size() == 1"
).message("exactly one of latency, cpu, queue, custom or concurrency must be set"))]
pub struct Signal {
    /// Unique name of this signal within the policy (shown in status and Events).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuSignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomSignal>,
    /// Requests in flight, from a latency histogram by Little's law, per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencySignal>,
}

/// The one kind a signal has, once validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SignalKind<'a> {
    Latency(&'a LatencySignal),
    Cpu(&'a CpuSignal),
    Queue(&'a QueueSignal),
    Custom(&'a CustomSignal),
    Concurrency(&'a ConcurrencySignal),
}

impl Signal {
    /// The signal's kind, or None when zero or several kinds are set (the CRD's CEL rule
    /// rejects that, so this only happens with a CRD installed without validation).
    pub fn kind(&self) -> Option<SignalKind<'_>> {
        let kinds: Vec<SignalKind<'_>> = [
            self.latency.as_ref().map(SignalKind::Latency),
            self.cpu.as_ref().map(SignalKind::Cpu),
            self.queue.as_ref().map(SignalKind::Queue),
            self.custom.as_ref().map(SignalKind::Custom),
            self.concurrency.as_ref().map(SignalKind::Concurrency),
        ]
        .into_iter()
        .flatten()
        .collect();
        match kinds.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// Request latency from a Prometheus histogram, e.g. p95 of `http_request_duration_seconds`.
/// Latency is not proportional to replicas, so it is treated like a utilization: the ratio
/// value/target scales the ready replicas, exactly as the HPA treats an object metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.quantile > 0.0 && self.quantile < 1.0").message("quantile must be between 0 and 1, e.g. 0.95"))]
pub struct LatencySignal {
    /// Histogram base name, without `_bucket`.
    #[schemars(regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"))]
    pub metric: String,
    /// Exact label matches added to the query; `namespace` is always the policy's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("!('namespace' in self)")
        .message("selector must not set namespace: Headroom always uses the policy's own"))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$'))")
        .message("selector keys must be Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*)"))]
    #[schemars(extend("maxProperties" = 16))]
    pub selector: BTreeMap<String, String>,
    /// Quantile to compute (default 0.95).
    #[serde(default = "default_quantile")]
    pub quantile: f64,
    /// Rate window (default 1m).
    #[serde(default = "default_window")]
    pub window: PromDuration,
    /// Latency the workload should stay under, e.g. 300ms.
    pub target: PromDuration,
}

/// CPU utilization of the target's pods, as a percent of their CPU requests
/// (cAdvisor usage over kube-state-metrics requests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuSignal {
    /// Target average utilization, percent of requests.
    #[schemars(range(min = 1, max = 1000))]
    pub target_utilization: i32,
    /// Rate window (default 1m).
    #[serde(default = "default_window")]
    pub window: PromDuration,
    /// Saturation under a CPU limit: throttled pods read at least their target (on by
    /// default; pods without a limit export no throttling and read as utilization alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation: Option<CpuSaturation>,
}

/// When the pods count as saturated, whatever their utilization: past a threshold the CPU
/// signal reads at least its target times how far past it they are (at most twice the
/// target a reading); half way to it, at least its target (the fleet holds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuSaturation {
    /// false: read utilization alone (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Percent of CFS periods throttled at which the pods are saturated (default 10: the
    /// example app was throttled in 17-21 % of periods at a p95 of 0.9 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub throttled_percent: Option<i32>,
    /// Percent of time some task waits for CPU (the kubelet's PSI,
    /// `container_pressure_cpu_waiting_seconds_total`) at which the pods are saturated
    /// (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub pressure_percent: Option<i32>,
}

/// A backlog, e.g. `sum(rabbitmq_queue_messages_ready{queue="emails"})`;
/// desired replicas = ceil(backlog / targetPerReplica).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.targetPerReplica > 0.0").message("targetPerReplica must be greater than 0"))]
#[x_kube(validation = Rule::new("has(self.arrivalRateQuery) == has(self.ratePerReplica)")
    .message("arrivalRateQuery and ratePerReplica go together"))]
#[x_kube(validation = Rule::new("!has(self.ratePerReplica) || self.ratePerReplica > 0.0")
    .message("ratePerReplica must be greater than 0"))]
pub struct QueueSignal {
    /// PromQL returning the backlog as one number.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    /// Backlog each replica should hold.
    #[schemars(range(min = 0.0, max = 1000000000000.0))]
    pub target_per_replica: f64,
    /// PromQL returning jobs arriving per second. With ratePerReplica it sizes the fleet to
    /// keep up with arrivals, so an empty backlog is not taken as a reason to shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub arrival_rate_query: Option<String>,
    /// Jobs per second one replica should handle (leave headroom: e.g. 80% of its maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000000000.0))]
    pub rate_per_replica: Option<f64>,
    /// With minReplicas 0: the backlog over which a target at zero is started, and at or
    /// under which it counts as idle (default 0: any message; then any arrival too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000000000.0))]
    pub activation_threshold: Option<f64>,
}

/// Any PromQL query with HPA object (`Value`) or external per-pod (`AverageValue`) semantics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.target > 0.0").message("target must be greater than 0"))]
pub struct CustomSignal {
    /// PromQL returning one number.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    #[schemars(range(min = 0.0, max = 1000000000000.0))]
    pub target: f64,
    /// Value: desired = ceil(value/target × ready replicas). AverageValue: desired = ceil(value/target).
    pub target_type: TargetType,
    /// With minReplicas 0: the value over which a target at zero is started, and at or under
    /// which it counts as idle (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000000000.0))]
    pub activation_threshold: Option<f64>,
}

/// How a signal's value maps to replicas (HPA semantics).
/// Requests in flight per replica, read from a latency histogram: `rate(<metric>_sum)` is the
/// mean number of requests in flight (Little's law), the quantity Knative sizes on. Unlike
/// CPU it counts the time requests wait on the database, and it does not stop at 100 %.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.targetPerReplica > 0.0").message("targetPerReplica must be greater than 0"))]
pub struct ConcurrencySignal {
    /// Histogram base name (without `_sum`), e.g. http_request_duration_seconds.
    #[schemars(regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"))]
    pub metric: String,
    /// Exact label matches added to the query; `namespace` is always the policy's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("!('namespace' in self)")
        .message("selector must not set namespace: Headroom always uses the policy's own"))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$'))")
        .message("selector keys must be Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*)"))]
    #[schemars(extend("maxProperties" = 16))]
    pub selector: BTreeMap<String, String>,
    /// Rate window (default 1m).
    #[serde(default = "default_window")]
    pub window: PromDuration,
    /// Requests in flight one replica should carry: about 70 % of what it serves at once
    /// (worker threads or processes), as Knative's containerConcurrency target.
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub target_per_replica: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetType {
    /// The ratio value/target scales the ready replicas (HPA object metric).
    Value,
    /// The value is a total; each replica should carry `target` of it (HPA external per-pod metric).
    AverageValue,
}

fn default_quantile() -> f64 {
    0.95
}

fn default_window() -> PromDuration {
    PromDuration::from_secs(60)
}
