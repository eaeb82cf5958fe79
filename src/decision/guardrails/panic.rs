//! Panic: a short window far over target is a viral spike. Scale in one step to what the
//! short window needs, and hold scale-down until the spike has been gone a stable window.

use super::step::Step;
use super::{PanicInput, ShortReading, ceil_i32};
use crate::api::TargetType;
use crate::decision::Limit;

/// (ratio to target, replicas needed) of one short-window reading.
fn short_proposal(s: &ShortReading, ready: i32) -> Option<(f64, i32)> {
    let v = s.value.filter(|v| v.is_finite())?;
    let (ratio, need) = match s.target_type {
        TargetType::Value => (
            v / s.target,
            ceil_i32(v / s.target * f64::from(ready.max(1))),
        ),
        // A total: a spike is measured against what the ready replicas can carry.
        TargetType::AverageValue => (
            v / (s.target * f64::from(ready.max(1))),
            ceil_i32(v / s.target),
        ),
    };
    // Latency beside a sizing signal doubles at most (see SignalValue::up_only).
    let need = if s.up_only {
        need.min(ready.max(1).saturating_mul(2))
    } else {
        need
    };
    Some((ratio, need))
}

/// Returns whether a spike was seen now.
pub fn apply(s: &mut Step, p: &PanicInput) -> bool {
    let spikes: Vec<(String, f64, i32)> = p
        .short
        .iter()
        .filter_map(|r| short_proposal(r, s.ready).map(|(ratio, n)| (r.name.clone(), ratio, n)))
        .filter(|(_, ratio, _)| *ratio > p.threshold)
        .collect();
    let spike_now = !spikes.is_empty();
    let in_panic = spike_now
        || p.last_spike_age
            .is_some_and(|a| a < p.stable_window_seconds);
    if let Some((name, ratio, need)) = spikes.iter().max_by_key(|x| x.2).cloned() {
        s.raise_to(need, Limit::Panic, |n| {
            format!(
                "panic: {name} is {ratio:.1}x its target over the short window; scaling to {n} in one step"
            )
        });
    }
    if in_panic && s.desired < s.current {
        s.set(
            s.current,
            Limit::Panic,
            "panic: no scale-down until the spike has been gone for a full stable window".into(),
        );
    }
    let message = if spike_now {
        format!("short-window signal over {}x its target", p.threshold)
    } else if in_panic {
        "spike recently seen; scale-down held for the stable window".into()
    } else {
        "no spike".into()
    };
    s.found("Panic", in_panic, message);
    spike_now
}
