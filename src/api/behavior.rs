//! HPA-compatible scaling behavior: the same fields and meaning as autoscaling/v2, so users
//! can copy an HPA's `behavior` block into a ScalingPolicy unchanged.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How fast the target may scale in each direction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    /// Rules for scaling up. Defaults: no stabilization, at most +4 pods or +100% per 15s, whichever is more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Rules for scaling down. Defaults: 300s stabilization, at most -100% per 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// Rules for one direction; unset fields take the autoscaling/v2 defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Seconds of past recommendations to consider; the most conservative one wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: Option<i32>,
    /// Which policy wins when several apply: Max (the largest change), Min, or Disabled (never scale this way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    /// Rate limits on replica changes over a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    pub policies: Option<Vec<RatePolicy>>,
    /// Ratio deviation from 1.0 ignored in this direction (default: spec.tolerance, else 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub tolerance: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

/// At most `value` pods (or percent) of change within `periodSeconds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatePolicy {
    #[serde(rename = "type")]
    pub kind: RatePolicyKind,
    #[schemars(range(min = 1, max = 1000000))]
    pub value: i32,
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RatePolicyKind {
    Pods,
    Percent,
}
