//! The cost ceiling: replicas × cost per replica-hour stays within the hourly maximum.

use super::step::Step;
use super::{Cost, floor_i32};
use crate::decision::Limit;

/// Replicas the ceiling allows, if there is one.
pub fn cap(c: &Cost) -> Option<i32> {
    let ceiling = c.max_hourly?;
    Some(floor_i32(ceiling / c.per_replica_hour + 1e-9))
}

/// Applies the ceiling; returns the hourly cost of the current fleet.
pub fn apply(s: &mut Step, c: &Cost) -> f64 {
    if let (Some(ceiling), Some(cap)) = (c.max_hourly, cap(c)) {
        s.cap_at(
            cap,
            Limit::CostCeiling,
            format!("cost ceiling {ceiling:.2}/h allows {cap} replicas"),
        );
        let active = s.desired >= cap;
        s.found(
            "CostCeiling",
            active,
            format!(
                "{ceiling:.2}/h at {:.2} per replica-hour allows {cap} replicas",
                c.per_replica_hour
            ),
        );
    }
    f64::from(s.current) * c.per_replica_hour
}
