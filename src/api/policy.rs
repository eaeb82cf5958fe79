//! The ScalingPolicy spec: one per workload.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Behavior, Guardrails, Indicators, Predictive, PromDuration, ScalingPolicyStatus, Signal,
};

/// Scales one workload through its `/scale` subresource from signals read in Prometheus.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "headroom.dev",
    version = "v1alpha1",
    kind = "ScalingPolicy",
    namespaced,
    status = "ScalingPolicyStatus",
    shortname = "sp",
    category = "headroom",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.targetRef.name","description":"Workload being scaled"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicas"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicas"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.currentReplicas"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredReplicas"}"#,
    printcolumn = r#"{"name":"Limited","type":"string","jsonPath":".status.limitedBy","description":"What limited the last decision"}"#,
    printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.verdict","description":"Audit of the leading indicators"}"#,
    printcolumn = r#"{"name":"P95","type":"string","jsonPath":".status.p95"}"#,
    printcolumn = r#"{"name":"DB-CPU","type":"string","jsonPath":".status.databaseCpu"}"#,
    printcolumn = r#"{"name":"Headroom","type":"string","jsonPath":".status.headroom.summary","description":"Traffic factor at which the first resource reaches its Act threshold, and which"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("spec.minReplicas must be less than or equal to spec.maxReplicas"))]
#[x_kube(validation = Rule::new("self.signals.all(s, self.signals.filter(t, t.name == s.name).size() == 1)")
    .message("spec.signals: signal names must be unique"))]
#[x_kube(validation = Rule::new("self.minReplicas > 0 || self.signals.exists(s, has(s.queue) || has(s.custom))")
    .message("spec.minReplicas: 0 needs a queue or custom signal, which sees demand while no pod runs (cpu, latency and concurrency are measured on running pods)"))]
#[x_kube(validation = Rule::new("!has(self.idleCooldown) || self.minReplicas == 0")
    .message("spec.idleCooldown applies only with spec.minReplicas: 0"))]
pub struct ScalingPolicySpec {
    /// The workload to scale: anything with a scale subresource.
    pub target_ref: TargetRef,
    /// Fewest replicas Headroom will set (default 1).
    #[serde(default = "default_min_replicas")]
    #[x_kube(validation = Rule::new("self >= 0").message("spec.minReplicas must not be negative"))]
    #[schemars(range(min = 0, max = 1000000))]
    pub min_replicas: i32,
    /// With minReplicas 0: how long every signal must show no demand, on valid readings,
    /// before the target is scaled to zero (default 5m, KEDA's cooldownPeriod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_cooldown: Option<PromDuration>,
    /// Most replicas Headroom will set.
    #[x_kube(validation = Rule::new("self >= 1").message("spec.maxReplicas must be at least 1"))]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_replicas: i32,
    /// Enforce writes replicas; Recommend only reports; Paused does nothing.
    #[serde(default)]
    pub mode: Mode,
    /// How often the policy is evaluated (default 15s).
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// Per-policy Prometheus; the operator's --prometheus-url otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
    /// What to scale on. Missing data never scales down.
    #[schemars(length(min = 1, max = 16))]
    pub signals: Vec<Signal>,
    /// HPA-compatible rate limits and stabilization windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,
    /// Leading indicators shown in the audit (status.indicators and status.verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicators: Option<Indicators>,
    /// Rules that change decisions: database hold, connection budget, panic mode,
    /// creeping latency, scheduled floors, cost ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<Guardrails>,
    /// Predictive scaling: capacity ready ahead of the load's recurring rises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive: Option<Predictive>,
    /// How the traffic headroom estimate (status.headroom) is calibrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<HeadroomSpec>,
    /// Ratio deviation from 1.0 that is ignored (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0.0").message("spec.tolerance must not be negative"))]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub tolerance: Option<f64>,
}

/// The traffic headroom estimate's calibration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadroomSpec {
    /// How much history the fit reads (default 3h; 1m to 7d). It is recalibrated every
    /// sixth of this window (at least every 30s, at most every hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_window: Option<PromDuration>,
}

/// A resource with a scale subresource, in the policy's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// e.g. apps/v1
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
    )]
    pub api_version: String,
    /// e.g. Deployment
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Z][A-Za-z0-9]*$"))]
    pub kind: String,
    /// The target's name: a DNS subdomain, as Kubernetes names its objects.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// Compute, report and write replicas.
    #[default]
    Enforce,
    /// Compute and report; never touch the target.
    Recommend,
    /// Report that the policy is paused; compute nothing.
    Paused,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "Enforce",
            Mode::Recommend => "Recommend",
            Mode::Paused => "Paused",
        }
    }
}

/// Where to query Prometheus for this policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// Base URL, e.g. http://prometheus.monitoring:9090 (no query string, fragment or
    /// credentials: a token comes from bearerTokenSecretRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^https?://[^/?#@\s]+(/[^?#\s]*)?$")
    )]
    pub address: Option<String>,
    /// Bearer token from a Secret in the policy's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

fn default_min_replicas() -> i32 {
    1
}

fn default_interval() -> PromDuration {
    PromDuration::from_secs(15)
}
