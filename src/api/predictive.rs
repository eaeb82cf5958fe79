//! Predictive scaling: capacity ready before a recurring rise of the load comes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PromDuration;

/// Learns the recurring pattern of the load the policy sizes on (its request rate, or its
/// queue's arrival rate) from Prometheus, backtests it, and raises replicas ahead of a
/// predicted rise. It never lowers replicas, and it switches itself off where there is no
/// pattern or the pattern stopped holding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Predictive {
    /// Disabled (default), Observe (status shows the forecast and what it would do; nothing is
    /// scaled on it) or Enforce (raises replicas ahead of a predicted rise).
    #[serde(default)]
    pub mode: PredictiveMode,
    /// History read from Prometheus (default 168h, a week; 24h to 672h). Periods up to half
    /// of it are found, so a weekly cycle needs 336h or more. One reading per 1/2016 of it
    /// (5m for a week), at least a minute: a period is at least four readings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<PromDuration>,
    /// How long before a rise capacity must be ready: pod start-up plus the metrics' lag
    /// (default 5m; 1m to 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<PromDuration>,
    /// Least backtest skill against the naive forecast ("the load stays as it is") for the
    /// forecast to act: 1 - its error / the naive error, on the moments that mattered
    /// (default 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_skill: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PredictiveMode {
    /// Nothing is learned. (Not `Off`: YAML 1.1, which kubectl and the API server read,
    /// takes an unquoted Off for false.)
    #[default]
    Disabled,
    /// Learn and report; never scale on it.
    Observe,
    /// Learn, report, and raise replicas ahead of a predicted rise.
    Enforce,
}

impl PredictiveMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PredictiveMode::Disabled => "Disabled",
            PredictiveMode::Observe => "Observe",
            PredictiveMode::Enforce => "Enforce",
        }
    }
}
