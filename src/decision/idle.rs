//! Scale to zero (`minReplicas: 0`). A target at zero starts, in one step, on the first
//! reading that sees demand; a running one goes to zero only once every signal has shown no
//! demand, on valid readings, for the whole cooldown. Missing data never takes it to zero.

use super::reading::SignalReading;
use super::{Decision, Limit, Proposal};
use crate::plan::{IdlePlan, PlannedSignal};

/// What the readings that see demand without pods say.
#[derive(Clone, Debug, PartialEq)]
pub enum Demand {
    /// These signals are over their activation thresholds, e.g. "jobs 12 > 0".
    Seen(Vec<String>),
    /// Every such signal read, and none over its threshold.
    None,
    /// None over its threshold, but these could not be read.
    Unknown(Vec<String>),
}

pub fn demand(signals: &[PlannedSignal], readings: &[SignalReading]) -> Demand {
    let (mut seen, mut missing) = (vec![], vec![]);
    for (s, r) in signals.iter().zip(readings) {
        let Some(threshold) = s.activation else {
            continue;
        };
        match &r.value {
            Ok(v) if *v > threshold => seen.push(format!("{} {} > {threshold}", s.name, round(*v))),
            Ok(_) => {}
            Err(_) => missing.push(s.name.clone()),
        }
    }
    if !seen.is_empty() {
        Demand::Seen(seen)
    } else if missing.is_empty() {
        Demand::None
    } else {
        Demand::Unknown(missing)
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The decision for a target at zero: start on demand with what the signals ask (at least
/// one), all in one step; otherwise stay at zero.
pub fn from_zero(demand: &Demand, proposals: Vec<Proposal>, max: i32) -> Decision {
    let (desired, limited_by, reason) = match demand {
        Demand::Seen(over) => {
            let n = proposals
                .iter()
                .filter_map(|p| p.replicas)
                .max()
                .unwrap_or(1)
                .clamp(1, max.max(1));
            (
                n,
                Limit::Activated,
                format!(
                    "demand at zero ({}); starting {n} replicas",
                    over.join(", ")
                ),
            )
        }
        Demand::None => (
            0,
            Limit::Idle,
            "no demand on any signal; idle at zero".to_string(),
        ),
        Demand::Unknown(missing) => (
            0,
            Limit::MetricsUnavailable,
            format!(
                "signal(s) {} could not be read; holding 0 replicas",
                missing.join(", ")
            ),
        ),
    };
    Decision {
        desired_replicas: desired,
        reason,
        limited_by,
        proposals,
        recommendation: Some(desired),
    }
}

/// Whether this evaluation of a running target is idle: every signal read, none over its
/// activation threshold, and the others ask for at most one replica.
pub fn is_idle(demand: &Demand, readings: &[SignalReading], proposals: &[Proposal]) -> bool {
    *demand == Demand::None
        && readings.iter().all(|r| r.value.is_ok())
        && proposals.iter().all(|p| p.replicas.is_some_and(|n| n <= 1))
}

/// A running target idle for the whole cooldown goes to zero. `idle_seconds`: how long the
/// previous evaluations have been idle without a break.
pub fn deactivate(d: &mut Decision, plan: IdlePlan, idle_now: bool, idle_seconds: Option<f64>) {
    if !idle_now || idle_seconds.is_none_or(|s| s < plan.cooldown_seconds) {
        return;
    }
    d.desired_replicas = 0;
    d.limited_by = Limit::Idle;
    d.reason = format!(
        "no demand on any signal for {}s; scaling to zero",
        plan.cooldown_seconds.round()
    );
    d.recommendation = Some(0);
}
