//! The leading indicators of the field guidance, and the guardrails that act on them.
//! Every threshold has the guidance's default and can be overridden per policy.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PromDuration;

/// PromQL-backed indicators shown in the audit (status.indicators). All are optional; a
/// latency signal always contributes the p95 indicator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Indicators {
    /// p95 bands, seconds (default: Watch from 0.5, Act above 1). Read from the first latency signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<Thresholds>,
    /// Database CPU as a fraction 0..1 (default Watch 0.6, Act 0.7), Act only when "regularly" over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_cpu: Option<DatabaseCpuIndicator>,
    /// p95 of the slowest common query, seconds (default Watch 0.1, Act 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_query: Option<QueryIndicator>,
    /// Share of 5xx responses 0..1 (default Watch 0.01, Act 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<QueryIndicator>,
    /// Database connections in use over max 0..1 (default Watch 0.7, Act 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<QueryIndicator>,
    /// Seconds a client waits for a database connection from its pool, e.g. PgBouncer's
    /// oldest waiting client (default Watch 0.1, Act 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_wait: Option<QueryIndicator>,
    /// Queue drain time or oldest-message age, seconds, against a deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_age: Option<QueueAgeIndicator>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueAgeIndicator {
    /// PromQL returning seconds: the oldest message's age, or backlog / completion rate.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    /// Jobs should be done within this (default 5m): Healthy under it, Act over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<PromDuration>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000000000.0))]
    pub watch: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000000000.0))]
    pub act: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryIndicator {
    /// PromQL returning one number.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    #[serde(default, flatten)]
    pub thresholds: Thresholds,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseCpuIndicator {
    /// PromQL returning the database's CPU utilization as a fraction 0..1.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    #[serde(default, flatten)]
    pub thresholds: Thresholds,
    /// "Regularly": the fraction of `regularlyWindow` spent above Act (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub regularly_fraction: Option<f64>,
    /// Window of "regularly" (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regularly_window: Option<PromDuration>,
}

/// Rules that change decisions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Guardrails {
    /// Hold app replicas when the database is the bottleneck (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_hold: Option<bool>,
    /// Spike (panic) mode; on unless `enabled: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic: Option<PanicRule>,
    /// Early scale-up when p95 creeps towards the target under flat load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creeping_latency: Option<CreepingLatencyRule>,
    /// Size ahead of a load that rises steadily: project the sizing signals over the pod
    /// start-up time and scale for the projection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastRule>,
    /// Replica floors for planned launches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub schedule: Vec<ScheduledWindow>,
    /// A database connection budget shared with the other policies naming the same database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_budget: Option<ConnectionBudget>,
    /// Hourly cost reporting and ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PanicRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Short-window ratio to target that starts a panic (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 1000000.0))]
    pub threshold: Option<f64>,
    /// Scale-down waits this long after the last spike (default 60s); the short window is 10% of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_window: Option<PromDuration>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForecastRule {
    /// How far ahead to size (default 90s: pod start-up plus the metrics' lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<PromDuration>,
    /// The trend window (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<PromDuration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreepingLatencyRule {
    /// PromQL of the request rate, to tell a regression from more traffic.
    #[schemars(length(min = 1, max = 4096))]
    pub request_rate_query: String,
    /// Trend window (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<PromDuration>,
    /// Pod start-up time: how far ahead a breach is predicted (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_time: Option<PromDuration>,
}

/// A planned window: absolute (`start` and `end`) or recurring (`cron` and `duration`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.start) && has(self.end) && !has(self.cron)) || (has(self.cron) && has(self.duration) && !has(self.start) && !has(self.end))")
    .message("a schedule window has either start and end, or cron and duration"))]
pub struct ScheduledWindow {
    /// RFC 3339 with offset, e.g. 2026-12-01T09:00:00+01:00.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Five-field cron of the window's start, e.g. "0 9 * * 1-5", in `timeZone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// How long a cron window lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<PromDuration>,
    /// IANA time zone of `cron`, e.g. Europe/Paris (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[schemars(range(min = 0, max = 1000000))]
    pub min_replicas: i32,
    /// How early the floor applies (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time: Option<PromDuration>,
    /// How long the floor takes to fade afterwards (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_time: Option<PromDuration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionBudget {
    /// Policies in this namespace naming the same database share one budget.
    #[schemars(length(min = 1))]
    pub database: String,
    #[schemars(range(min = 1, max = 100000))]
    pub pool_size_per_replica: i32,
    /// The database's max_connections, or a PromQL query for it (e.g. pg_settings_max_connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000000))]
    pub max_connections: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub max_connections_query: Option<String>,
    /// Fraction kept free for admins and migrations (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub reserve: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostRule {
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub cost_per_replica_hour: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000000.0))]
    pub max_hourly_cost: Option<f64>,
}
