//! Predicted: the load's recurring pattern says it will rise within the horizon, so the fleet
//! is sized for the rise now, and is not scaled down while the rise is still to come. It only
//! raises or holds; in Observe it only says what it would do.
//!
//! Whether a rise is coming is the pattern's own say (its peak over its level now, the same
//! for every evaluation of a step), so noise in the load now does not switch it on and off.
//! How much to add is the peak over the load read now, so a rise that already came adds
//! nothing.

use super::step::Step;
use super::{PredictedRise, ceil_i32};
use crate::decision::{Limit, Proposal};
use crate::predict::RISE;

/// Sizes for the predicted rise from what the signals measure now (their ratio to target
/// times the replicas, not rounded up: at a few replicas, rounding twice asks for one more
/// than the rise needs); returns what it would set.
pub fn apply(s: &mut Step, p: &PredictedRise, proposals: &[Proposal]) -> Option<i32> {
    let replicas = f64::from(s.current.max(1));
    let now = proposals
        .iter()
        .filter(|x| x.scales_with_load)
        .filter_map(|x| x.ratio)
        .map(|r| r * replicas)
        .fold(f64::NAN, f64::max);
    let coming = p.pattern_rise.is_finite() && p.pattern_rise >= p.min_rise.max(1.0 + RISE);
    if !now.is_finite() || !coming {
        s.found(
            "Predicted",
            false,
            format!(
                "no rise expected within {:.0}s ({} pattern)",
                p.horizon_seconds, p.pattern
            ),
        );
        return None;
    }
    let exact = now * p.rise.max(1.0);
    // As the HPA's tolerance: a need within it of the replicas running adds none.
    let need = if exact > replicas * (1.0 + p.tolerance) {
        ceil_i32(exact).min(s.max)
    } else {
        s.current.min(s.max)
    };
    let before = s.desired;
    let why = |n: i32| {
        format!(
            "predicted: the {} pattern rises {:.1}x within {:.0}s; {n} replicas for it now",
            p.pattern, p.pattern_rise, p.horizon_seconds
        )
    };
    if p.enforce {
        s.raise_to(need, Limit::Predicted, why);
    }
    let message = if p.enforce {
        why(need)
    } else {
        format!("observing: {} (nothing is scaled on it)", why(need))
    };
    s.found("Predicted", p.enforce && need > before, message);
    Some(need)
}
