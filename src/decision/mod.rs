//! The decision engine: pure and deterministic. No I/O, no clock; time enters as ages.
//!
//! Semantics follow the Kubernetes HPA controller (autoscaling/v2): a ratio per signal
//! with tolerance, the max across signals, no scale-down on missing data, stabilization
//! windows over recommendation history, Pods/Percent rate policies over scale events, and
//! the min/max clamp. Where the HPA's docs and its controller disagree, the controller wins.

mod audit;
mod evaluate;
pub mod guardrails;
mod idle;
mod input;
mod normalize;
mod proposal;
mod reading;
mod rules;
pub mod saturation;

#[cfg(test)]
mod idle_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use audit::{Audit, IndicatorReadings, audit};
pub use evaluate::{Evaluation, Memory, Moment, evaluate};
pub use input::{
    DEFAULT_DOWNSCALE_STABILIZATION_SECONDS, History, Input, Recommendation, ScaleEvent,
    SignalValue, Tolerance, capacity_age,
};
pub use proposal::{Combined, Proposal, Unavailable};
pub use reading::SignalReading;
pub use rules::{ResolvedBehavior, Rules, longest_window_seconds, resolve};

use serde::Serialize;

/// What limited a decision. Stable names: they appear in status, Events and `decide` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Limit {
    None,
    MinReplicas,
    MaxReplicas,
    ScaleUpPolicy,
    ScaleDownPolicy,
    Stabilization,
    MetricsUnavailable,
    ScalingDisabled,
    Panic,
    Forecast,
    Predicted,
    CreepingLatency,
    ScheduledFloor,
    DatabaseBound,
    ConnectionBudget,
    CostCeiling,
    /// minReplicas 0: no demand for the idle cooldown, or none yet at zero.
    Idle,
    /// minReplicas 0: demand seen at zero; started in one step.
    Activated,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::None => "None",
            Limit::MinReplicas => "MinReplicas",
            Limit::MaxReplicas => "MaxReplicas",
            Limit::ScaleUpPolicy => "ScaleUpPolicy",
            Limit::ScaleDownPolicy => "ScaleDownPolicy",
            Limit::Stabilization => "Stabilization",
            Limit::MetricsUnavailable => "MetricsUnavailable",
            Limit::ScalingDisabled => "ScalingDisabled",
            Limit::Panic => "Panic",
            Limit::Forecast => "Forecast",
            Limit::Predicted => "Predicted",
            Limit::CreepingLatency => "CreepingLatency",
            Limit::ScheduledFloor => "ScheduledFloor",
            Limit::DatabaseBound => "DatabaseBound",
            Limit::ConnectionBudget => "ConnectionBudget",
            Limit::CostCeiling => "CostCeiling",
            Limit::Idle => "Idle",
            Limit::Activated => "Activated",
        }
    }
}

/// The engine's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub desired_replicas: i32,
    pub reason: String,
    pub limited_by: Limit,
    pub proposals: Vec<Proposal>,
    /// The recommendation to remember for later stabilization (the HPA stores the
    /// proposal before stabilization and rate limits); None when no recommendation was made.
    pub recommendation: Option<i32>,
}

/// Decide the replica count for one evaluation.
pub fn decide(input: &Input) -> Decision {
    let current = input.current_replicas;
    let (min, max) = (input.min_replicas, input.max_replicas);
    let proposals: Vec<Proposal> = input
        .signals
        .iter()
        .map(|s| {
            proposal::propose(
                s,
                current,
                input.ready_replicas,
                input.tolerance,
                input
                    .history
                    .fleet_in_reading(s.lookback_seconds, current, input.ready_replicas),
            )
        })
        .collect();
    let done = |desired: i32, limit: Limit, reason: String, recommendation: Option<i32>| Decision {
        desired_replicas: desired,
        reason,
        limited_by: limit,
        proposals: proposals.clone(),
        recommendation,
    };

    if current == 0 && min != 0 {
        return done(
            0,
            Limit::ScalingDisabled,
            "scaling is disabled since the replica count of the target is zero".into(),
            None,
        );
    }
    if current > max {
        return done(
            max,
            Limit::MaxReplicas,
            format!("current replicas {current} are above maxReplicas {max}"),
            None,
        );
    }
    if current < min {
        return done(
            min,
            Limit::MinReplicas,
            format!("current replicas {current} are below minReplicas {min}"),
            None,
        );
    }

    let combined = match proposal::combine(&proposals, current) {
        Ok(c) => c,
        Err(Unavailable::AllMissing) => {
            // A signal can be read yet unusable: a Value target with no ready pod to scale from.
            let no_ready: Vec<&str> = proposals
                .iter()
                .filter(|p| p.ratio.is_some() && p.replicas.is_none())
                .map(|p| p.name.as_str())
                .collect();
            let why = if no_ready.is_empty() {
                "no signal could be read".to_string()
            } else {
                format!("no ready replicas to scale {} from", no_ready.join(", "))
            };
            return done(
                current,
                Limit::MetricsUnavailable,
                format!("{why}; holding {current} replicas"),
                None,
            );
        }
        Err(Unavailable::PartialWouldScaleDown { missing }) => {
            return done(
                current,
                Limit::MetricsUnavailable,
                format!(
                    "signal(s) {} could not be read and the others would scale down; holding {current} replicas",
                    missing.join(", ")
                ),
                None,
            );
        }
    };
    let prenormalized = combined.replicas.max(0);
    let n = match &input.behavior {
        None => normalize::legacy(
            &input.history,
            input.downscale_stabilization_seconds,
            current,
            prenormalized,
            min,
            max,
        ),
        Some(b) => normalize::with_behavior(
            &resolve(b, input.tolerance, input.downscale_stabilization_seconds),
            &input.history,
            current,
            prenormalized,
            min,
            max,
        ),
    };
    let reason = explain(current, &combined, prenormalized, &n);
    done(n.desired, n.limit, reason, Some(prenormalized))
}

/// What each signal asks for.
pub(crate) fn proposals(input: &Input) -> Vec<Proposal> {
    let (current, ready) = (input.current_replicas, input.ready_replicas);
    input
        .signals
        .iter()
        .map(|s| {
            proposal::propose(
                s,
                current,
                ready,
                input.tolerance,
                input
                    .history
                    .fleet_in_reading(s.lookback_seconds, current, ready),
            )
        })
        .collect()
}

fn explain(current: i32, c: &Combined, prenormalized: i32, n: &normalize::Normalized) -> String {
    let action = match n.desired.cmp(&current) {
        std::cmp::Ordering::Greater => format!("scaling up from {current} to {}", n.desired),
        std::cmp::Ordering::Less => format!("scaling down from {current} to {}", n.desired),
        std::cmp::Ordering::Equal => format!("keeping {current}"),
    };
    let why = match n.limit {
        Limit::None => String::new(),
        Limit::Stabilization => format!(
            " (stabilized at {}: recent recommendations were {})",
            n.stabilized,
            if n.stabilized > prenormalized {
                "higher"
            } else {
                "lower"
            }
        ),
        Limit::MinReplicas => " (held at minReplicas)".into(),
        Limit::MaxReplicas => " (capped at maxReplicas)".into(),
        Limit::ScaleUpPolicy => " (limited by the scale-up rate policy)".into(),
        Limit::ScaleDownPolicy => " (limited by the scale-down rate policy)".into(),
        _ => String::new(),
    };
    let missing = if c.missing.is_empty() {
        String::new()
    } else {
        format!("; unreadable: {}", c.missing.join(", "))
    };
    format!(
        "signal {} proposes {prenormalized} replicas; {action}{why}{missing}",
        c.signal
    )
}
