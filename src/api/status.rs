//! What Headroom reports back on each policy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state and the last decision, written by the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// When Headroom last changed the target's replicas (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    /// What limited the last decision (None, MaxReplicas, Stabilization, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<String>,
    /// One line on why the last decision was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<SignalStatus>,
    /// The audit: each leading indicator's value, band and a hint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<IndicatorStatus>,
    /// Solid (all Healthy), Mixed (some Watch), NeedsAttention (any Act or Unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// p95 latency as read, for `kubectl get` (e.g. "450ms").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<String>,
    /// Database CPU as read, for `kubectl get` (e.g. "72%").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_cpu: Option<String>,
    /// Current replicas × spec.guardrails.cost.costPerReplicaHour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_cost: Option<f64>,
    /// Predictive scaling (spec.predictive): what was learned and what it expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive: Option<PredictiveStatus>,
    /// How much more traffic before the first resource reaches its Act threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<HeadroomStatus>,
    /// Set only when the operator's admin floor (--min-interval) is longer than
    /// spec.interval: the interval evaluations actually run at, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Deleted policies sharing this policy's connection budget whose targets still run:
    /// their connections are counted until the target is gone or at zero. Kept here so an
    /// operator that restarts still counts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub budget_orphans: Vec<BudgetOrphanStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A deleted policy's target that still holds connections of the budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetOrphanStatus {
    /// The deleted policy's name.
    #[schemars(length(min = 1, max = 253))]
    pub policy: String,
    /// Its target, in this namespace.
    pub target_ref: super::TargetRef,
    /// Connections each of its replicas holds.
    #[schemars(range(min = 1, max = 100000))]
    pub pool_size_per_replica: i32,
    /// Replicas it ran when last read.
    #[schemars(range(min = 0))]
    pub replicas: i32,
}

/// What predictive scaling learned of the load's recurring pattern.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictiveStatus {
    /// Observe or Enforce.
    pub mode: String,
    /// Whether the forecast may act: a period was found and its backtest beat the naive
    /// forecast by minSkill, and the latest period that told it apart from naive was no worse.
    pub acting: bool,
    /// What was found, how well it forecast, or why it is off.
    pub summary: String,
    /// The period the load repeats at, e.g. "24h".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// The autocorrelation at that period, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<f64>,
    /// Backtest skill: 1 - forecast error / naive error on the rises of the held-back span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<f64>,
    /// When the load is expected to peak next (RFC 3339), within the forecast's reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_peak: Option<String>,
    /// The load expected then, in the load's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_peak_load: Option<f64>,
    /// The replicas the forecast asked for at the last evaluation (in Observe, what it
    /// would have set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_replicas: Option<i32>,
}

/// The traffic headroom estimate: each resource's breaking factor, smallest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadroomStatus {
    /// For `kubectl get`: "3.2x database-cpu", "no limit" or "Unknown".
    pub summary: String,
    /// The smallest factor on today's load at which a resource reaches its threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// What breaks first: app, database-cpu, connections, cost or workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_to_break: Option<String>,
    /// Why the estimate is Unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Today's load the factors multiply (mean of the newest readings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
    /// requests/s or jobs/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_unit: Option<String>,
    /// The history the fits read, e.g. "3h".
    pub calibration_window: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceHeadroomStatus>,
}

/// One resource's breaking factor and its evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceHeadroomStatus {
    pub name: String,
    /// Reaches its threshold at this factor on today's load; absent when it does not grow
    /// with load or cannot be estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// The threshold, in the resource's own terms (e.g. "70% CPU").
    pub threshold: String,
    /// Why no factor: "does not grow with load", or what the data lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// usage = intercept + slope × load, fitted over the calibration window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitStatus>,
}

/// The line a factor rests on, and how well it fits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FitStatus {
    pub intercept: f64,
    /// What one more unit of load costs now.
    pub slope: f64,
    /// Share of the usage's variance the line explains (0 to 1).
    pub r2: f64,
    pub points: i32,
    /// Highest load over lowest seen (90th over 10th percentile).
    pub load_spread: f64,
}

/// The last reading of one signal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub target: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One indicator of the audit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndicatorStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Healthy, Watch, Act or Unknown.
    pub band: String,
    pub hint: String,
}

/// A Kubernetes-style condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}
