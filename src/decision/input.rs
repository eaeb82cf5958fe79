//! What the decision engine is given: everything it needs, nothing it has to fetch.

use crate::api::{Behavior, TargetType};

/// One decision's inputs. Time enters only as the ages in `history`.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// None: the HPA's legacy path for an HPA without `spec.behavior`.
    pub behavior: Option<Behavior>,
    pub tolerance: Tolerance,
    pub current_replicas: i32,
    pub ready_replicas: i32,
    pub signals: Vec<SignalValue>,
    pub history: History,
    /// The kube-controller-manager's `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub downscale_stabilization_seconds: i32,
}

/// Default of the HPA controller flag `--horizontal-pod-autoscaler-downscale-stabilization`.
pub const DEFAULT_DOWNSCALE_STABILIZATION_SECONDS: i32 =
    crate::plan::defaults::DOWNSCALE_STABILIZATION_SECONDS;

/// Ratio deviations from 1.0 that are ignored, per direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub scale_up: f64,
    pub scale_down: f64,
    /// Hysteresis on the way down: a scale-down sizes the fleet for this fraction below
    /// target, so noise after it must exceed margin plus tolerance to scale up again.
    /// 0 is the HPA.
    pub down_margin: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::uniform(0.1)
    }
}

impl Tolerance {
    pub fn uniform(t: f64) -> Self {
        Self {
            scale_up: t,
            scale_down: t,
            down_margin: 0.0,
        }
    }

    pub fn with_down_margin(self, down_margin: f64) -> Self {
        Self {
            down_margin,
            ..self
        }
    }

    /// The target a scale-down sizes for, with the hysteresis margin.
    pub fn down_target(&self, target: f64) -> f64 {
        target * (1.0 - self.down_margin.clamp(0.0, 0.9))
    }

    /// The HPA's `Tolerances.isWithin`.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// One signal's latest reading. `value: None` means it could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalValue {
    pub name: String,
    pub target_type: TargetType,
    pub target: f64,
    pub value: Option<f64>,
    /// Latency beside a sizing signal: over its target it at most doubles the ready fleet
    /// and waits for a reading of the new one (latency explodes far past what replicas
    /// need); at and under target it sizes as the HPA's does, so the fleet is not shrunk
    /// past where latency meets its target.
    pub up_only: bool,
    /// How far back the reading looks (its rate or quantile window), when known. An up-only
    /// reading that reaches back past the newest ready capacity still describes the old fleet.
    pub lookback_seconds: Option<f64>,
}

/// Past recommendations and scale events, with their ages at decision time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub recommendations: Vec<Recommendation>,
    pub scale_events: Vec<ScaleEvent>,
    /// Seconds since the ready replicas caught up with the newest scale-up (0 while its pods
    /// are still starting); None when there was no recent scale-up.
    pub capacity_age_seconds: Option<f64>,
}

impl History {
    /// The ready replicas a reading that looks back `lookback` seconds describes while it
    /// still reaches back before the newest capacity was ready: the fleet before the scale-ups
    /// whose pods it has not seen for its whole window. None when the reading is fresh.
    pub fn fleet_in_reading(&self, lookback: Option<f64>, current: i32, ready: i32) -> Option<i32> {
        let (window, age) = (lookback?, self.capacity_age_seconds?);
        if age >= window {
            return None;
        }
        let ups = || self.scale_events.iter().filter(|e| e.replica_change > 0);
        let newest = ups().map(|e| e.age_seconds).fold(f64::INFINITY, f64::min);
        // Each scale-up's pods are taken to start as long as the newest one's did.
        let start_up = (newest - age).max(0.0);
        let unseen: i32 = ups()
            .filter(|e| e.age_seconds - start_up < window)
            .map(|e| e.replica_change)
            .sum();
        Some(current.saturating_sub(unseen).min(ready).max(1))
    }
}

/// `History::capacity_age_seconds` from scale events `(time, change)` on any one clock.
/// `caught_up` is the caller's state between evaluations: when the ready replicas first
/// reached the count of the newest scale-up; `age` turns a time into seconds before `now`.
pub fn capacity_age<T: Copy + Ord>(
    caught_up: &mut Option<T>,
    scale_events: impl IntoIterator<Item = (T, i32)>,
    now: T,
    current: i32,
    ready: i32,
    age: impl Fn(T) -> f64,
) -> Option<f64> {
    let newest_up = scale_events
        .into_iter()
        .filter(|(_, change)| *change > 0)
        .map(|(t, _)| t)
        .max()?;
    if ready < current {
        *caught_up = None;
        return Some(0.0);
    }
    let at = match *caught_up {
        Some(t) if t >= newest_up => t,
        _ => *caught_up.insert(now),
    };
    Some(age(at))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recommendation {
    pub replicas: i32,
    pub age_seconds: f64,
}

/// A change Headroom made: positive for up, negative for down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleEvent {
    pub replica_change: i32,
    pub age_seconds: f64,
}
