//! Creeping latency: p95 rising significantly under flat load is a regression, not load.
//! One replica ahead of the breach, then a start-up time before the next step.

use super::step::Step;
use super::{Band, CreepingInput, trend};
use crate::decision::{History, Limit};

pub fn apply(s: &mut Step, c: &CreepingInput, history: &History) {
    let fired = creeping(c);
    // One step, then give the new pod its start-up time before judging the trend again.
    let recent_up = history
        .scale_events
        .iter()
        .any(|e| e.replica_change > 0 && e.age_seconds < c.startup_seconds);
    if let Some(msg) = &fired
        && s.desired <= s.current
        && s.current < s.max
        && !recent_up
    {
        let n = s.current + 1;
        s.set(
            n,
            Limit::CreepingLatency,
            format!("creeping latency: {msg}; adding one replica before the SLO is breached"),
        );
    }
    let active = fired.is_some();
    s.found(
        "CreepingLatency",
        active,
        fired.unwrap_or_else(|| "no significant rise in p95 under flat load".into()),
    );
}

/// The "response time creeping under normal load" indicator: flat (Healthy), rising with
/// the load (Watch), or rising while the request rate is flat (Act).
pub fn latency_trend(c: &CreepingInput) -> (Band, String) {
    let Some(lat) = trend(&c.latency) else {
        return (Band::Unknown, "not enough p95 history for a trend".into());
    };
    let per_min = lat.slope * 60_000.0;
    if lat.slope <= 0.0 || lat.t_stat < c.min_t {
        return (
            Band::Healthy,
            format!("p95 flat ({per_min:+.1}ms/min, not significant)"),
        );
    }
    let flat = match (trend(&c.requests), c.requests.first(), c.requests.last()) {
        (Some(r), Some(a), Some(b)) if r.mean > 0.0 && b.0 > a.0 => {
            (r.slope * (b.0 - a.0)).abs() / r.mean <= c.flat_load
        }
        _ => false,
    };
    if flat {
        (
            Band::Act,
            format!(
                "p95 rising {per_min:.1}ms/min while the request rate is flat: a regression, not load"
            ),
        )
    } else {
        (
            Band::Watch,
            format!("p95 rising {per_min:.1}ms/min with the load"),
        )
    }
}

/// Some(explanation) when p95 rises significantly under flat load and would cross the
/// target within the pod start-up time.
fn creeping(c: &CreepingInput) -> Option<String> {
    let lat = trend(&c.latency)?;
    if lat.slope <= 0.0 || lat.t_stat < c.min_t || lat.last >= c.target {
        return None;
    }
    let span = match (c.requests.first(), c.requests.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => b.0 - a.0,
        _ => return None,
    };
    let req = trend(&c.requests)?;
    if req.mean <= 0.0 || (req.slope * span).abs() / req.mean > c.flat_load {
        return None;
    }
    let projected = lat.last + lat.slope * c.startup_seconds;
    (projected >= c.target).then(|| {
        format!(
            "{} p95 {:.0}ms rising {:.1}ms/min (t={:.1}) under flat load, projected {:.0}ms within {:.0}s",
            c.signal,
            lat.last * 1000.0,
            lat.slope * 60_000.0,
            lat.t_stat,
            projected * 1000.0,
            c.startup_seconds
        )
    })
}
