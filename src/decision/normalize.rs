//! Stabilization and rate limits: the HPA controller's `normalizeDesiredReplicas` (no
//! behavior) and `normalizeDesiredReplicasWithBehaviors`.

use crate::api::{RatePolicyKind, SelectPolicy};

use super::{History, Limit, ResolvedBehavior, Rules};

/// The outcome of normalizing a proposal.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    pub stabilized: i32,
    pub desired: i32,
    pub limit: Limit,
}

fn limit_after_stabilization(
    prenormalized: i32,
    stabilized: i32,
    desired: i32,
    rate_limit: Limit,
) -> Limit {
    if desired != stabilized {
        rate_limit
    } else if stabilized != prenormalized {
        Limit::Stabilization
    } else {
        Limit::None
    }
}

/// The HPA's path for an HPA without `spec.behavior`: the highest recommendation of the
/// downscale window, then at most max(2×current, 4) on the way up, then min/max.
pub fn legacy(
    history: &History,
    window_seconds: i32,
    current: i32,
    prenormalized: i32,
    min: i32,
    max: i32,
) -> Normalized {
    let window = f64::from(window_seconds);
    // Upstream keeps samples not Before(now - window): ages up to and including the window.
    let stabilized = history
        .recommendations
        .iter()
        .filter(|r| r.age_seconds <= window)
        .map(|r| r.replicas)
        .fold(prenormalized, i32::max);

    let scale_up_limit = (current.saturating_mul(2)).max(4);
    let (max_allowed, over_limit) = if max > scale_up_limit {
        (scale_up_limit, Limit::ScaleUpPolicy)
    } else {
        (max, Limit::MaxReplicas)
    };
    let (desired, rate_limit) = if stabilized < min {
        (min, Limit::MinReplicas)
    } else if stabilized > max_allowed {
        (max_allowed, over_limit)
    } else {
        (stabilized, Limit::None)
    };
    Normalized {
        stabilized,
        desired,
        limit: limit_after_stabilization(prenormalized, stabilized, desired, rate_limit),
    }
}

/// The HPA's path with behavior: per-direction stabilization windows, then rate policies.
pub fn with_behavior(
    rules: &ResolvedBehavior,
    history: &History,
    current: i32,
    prenormalized: i32,
    min: i32,
    max: i32,
) -> Normalized {
    let up_window = f64::from(rules.scale_up.stabilization_window_seconds);
    let down_window = f64::from(rules.scale_down.stabilization_window_seconds);
    let mut up_rec = prenormalized;
    let mut down_rec = prenormalized;
    // Upstream keeps samples After(now - window): ages strictly inside the window.
    for r in &history.recommendations {
        if r.age_seconds < up_window {
            up_rec = up_rec.min(r.replicas);
        }
        if r.age_seconds < down_window {
            down_rec = down_rec.max(r.replicas);
        }
    }
    let stabilized = current.max(up_rec).min(down_rec);

    let (desired, rate_limit) = if stabilized > current {
        let limit = scale_up_limit(current, history, &rules.scale_up).max(current);
        let (max_allowed, reason) = if max > limit {
            (limit, Limit::ScaleUpPolicy)
        } else {
            (max, Limit::MaxReplicas)
        };
        if stabilized > max_allowed {
            (max_allowed, reason)
        } else {
            (stabilized, Limit::None)
        }
    } else if stabilized < current {
        let limit = scale_down_limit(current, history, &rules.scale_down).min(current);
        let (min_allowed, reason) = if min < limit {
            (limit, Limit::ScaleDownPolicy)
        } else {
            (min, Limit::MinReplicas)
        };
        if stabilized < min_allowed {
            (min_allowed, reason)
        } else {
            (stabilized, Limit::None)
        }
    } else {
        (stabilized, Limit::None)
    };
    Normalized {
        stabilized,
        desired,
        limit: limit_after_stabilization(prenormalized, stabilized, desired, rate_limit),
    }
}

/// Replicas added (`up`) or removed within the last `period` seconds.
fn changes_within(history: &History, period_seconds: i32, up: bool) -> i32 {
    let period = f64::from(period_seconds);
    history
        .scale_events
        .iter()
        .filter(|e| e.age_seconds < period && (e.replica_change > 0) == up)
        .map(|e| e.replica_change.abs())
        .sum()
}

fn period_start(current: i32, history: &History, period_seconds: i32) -> i32 {
    current - changes_within(history, period_seconds, true)
        + changes_within(history, period_seconds, false)
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(current: i32, history: &History, rules: &Rules) -> i32 {
    let proposals = rules.policies.iter().map(|p| {
        let start = period_start(current, history, p.period_seconds);
        match p.kind {
            RatePolicyKind::Pods => start.saturating_add(p.value),
            // Rounded up so a small target can always grow.
            RatePolicyKind::Percent => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0))
                .ceil()
                .min(f64::from(i32::MAX)) as i32,
        }
    });
    match rules.select_policy {
        SelectPolicy::Disabled => current,
        SelectPolicy::Min => proposals.fold(i32::MAX, i32::min),
        SelectPolicy::Max => proposals.fold(i32::MIN, i32::max),
    }
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(current: i32, history: &History, rules: &Rules) -> i32 {
    let proposals = rules.policies.iter().map(|p| {
        let start = period_start(current, history, p.period_seconds);
        match p.kind {
            RatePolicyKind::Pods => start - p.value,
            // Truncated, as upstream's int32 conversion does.
            RatePolicyKind::Percent => {
                (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32
            }
        }
    });
    match rules.select_policy {
        SelectPolicy::Disabled => current,
        // For scaling down the smallest change is the largest count.
        SelectPolicy::Min => proposals.fold(i32::MIN, i32::max),
        SelectPolicy::Max => proposals.fold(i32::MAX, i32::min),
    }
}
