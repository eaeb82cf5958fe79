//! Forecast: a sizing signal rising significantly is projected one start-up time ahead, and
//! the fleet is sized for the projection now.

use super::step::Step;
use super::{ForecastInput, ceil_i32, trend};
use crate::api::TargetType;
use crate::decision::Limit;

pub fn apply(s: &mut Step, f: &ForecastInput) {
    let ready = s.ready;
    let ahead = f
        .series
        .iter()
        .filter_map(|x| {
            let t = trend(&x.samples)?;
            (t.slope > 0.0 && t.t_stat >= f.min_t).then_some(())?;
            let projected = t.last + t.slope * f.horizon_seconds;
            let need = match x.target_type {
                TargetType::Value => ceil_i32(projected / x.target * f64::from(ready.max(1))),
                TargetType::AverageValue => ceil_i32(projected / x.target),
            };
            Some((x.name.clone(), projected, need))
        })
        .max_by_key(|x| x.2);
    let active = ahead.as_ref().is_some_and(|a| a.2 > s.desired);
    if let Some((name, projected, need)) = &ahead {
        s.raise_to(*need, Limit::Forecast, |n| {
            format!(
                "forecast: {name} rising, {projected:.1} expected in {:.0}s; sizing for it now ({n} replicas)",
                f.horizon_seconds
            )
        });
    }
    let message = match ahead {
        Some((name, projected, need)) => format!(
            "{name} projected at {projected:.1} in {:.0}s: {need} replicas",
            f.horizon_seconds
        ),
        None => "no significant rise".into(),
    };
    s.found("Forecast", active, message);
}
