//! The traffic headroom estimate as status shows it. Pure. A recalibration that moved
//! nothing by 5 % or more keeps the previous block, so a steady estimate costs no write.

use crate::api::{FitStatus, HeadroomStatus, PromDuration, ResourceHeadroomStatus};
use crate::calibration::{Calibration, CalibrationError};
use crate::capacity::Headline;

use super::bounded::clip;
use super::status::display;

/// Relative change below which an estimate is the same one.
const SAME_WITHIN: f64 = 0.05;

const NOTHING: &str = "the policy names nothing that breaks with load: a cpu or concurrency \
     signal, spec.indicators.databaseCpu or a queue's ratePerReplica is needed";

/// The status for a policy whose spec gives the estimate nothing to work on.
pub fn nothing_to_estimate(window: PromDuration) -> HeadroomStatus {
    unknown(window, NOTHING.into())
}

fn unknown(window: PromDuration, reason: String) -> HeadroomStatus {
    HeadroomStatus {
        summary: "Unknown".into(),
        reason: Some(reason),
        calibration_window: window.to_string(),
        ..Default::default()
    }
}

/// What status says after a calibration; `prev` while nothing moved materially.
pub fn headroom(
    prev: Option<&HeadroomStatus>,
    result: &Result<Calibration, CalibrationError>,
    window: PromDuration,
) -> HeadroomStatus {
    let next = match result {
        Err(e) => unknown(window, e.to_string()),
        Ok(c) => from_calibration(c, window),
    };
    match prev {
        Some(p) if same(p, &next) => p.clone(),
        _ => next,
    }
}

fn from_calibration(c: &Calibration, window: PromDuration) -> HeadroomStatus {
    let e = &c.estimate;
    let resources = e
        .resources
        .iter()
        .map(|r| ResourceHeadroomStatus {
            name: r.resource.as_str().into(),
            factor: r.factor.as_ref().ok().copied().flatten().map(display),
            threshold: r.threshold.clone(),
            unknown: match &r.factor {
                Ok(Some(_)) => None,
                Ok(None) => Some("does not grow with load".into()),
                Err(why) => Some(why.to_string()),
            },
            fit: r.fit.map(|f| FitStatus {
                intercept: display(f.intercept),
                slope: display(f.slope),
                r2: (f.r2 * 100.0).round() / 100.0,
                points: i32::try_from(f.points).unwrap_or(i32::MAX),
                load_spread: display(f.load_spread),
            }),
        })
        .collect();
    let headline = e.headline();
    let (factor, first, reason) = match &headline {
        Headline::Breaks { factor, resource } => {
            (Some(display(*factor)), Some(resource.as_str().into()), None)
        }
        Headline::NoLimit => (None, None, None),
        Headline::Unknown { resource, why } => {
            let mut reason = format!("{}: {why}", resource.as_str());
            if !c.errors.is_empty() {
                reason.push_str(&format!("; could not read {}", c.errors.join("; ")));
            }
            (None, None, Some(reason))
        }
        Headline::NoData(why) => (None, None, Some(why.clone())),
    };
    HeadroomStatus {
        summary: headline.short(),
        factor,
        first_to_break: first,
        reason: reason.map(|r| truncate(r, 500)),
        load: (e.load > 0.0).then(|| display(e.load)),
        load_unit: Some(c.load_unit.into()),
        calibration_window: window.to_string(),
        resources,
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if clip(&mut s, max) {
        s.push('…');
    }
    s
}

/// A reason without its figures: "12 readings" and "15 readings" say the same.
fn gist(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| {
        s.chars()
            .filter(|c| !c.is_ascii_digit() && *c != '.')
            .collect()
    })
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= SAME_WITHIN * a.abs().max(b.abs()),
        _ => false,
    }
}

/// Whether `b` says what `a` says, to within 5 % on every figure: the same first to break,
/// the same resources known and unknown, and fits as good.
fn same(a: &HeadroomStatus, b: &HeadroomStatus) -> bool {
    let resources = a.resources.len() == b.resources.len()
        && a.resources.iter().zip(&b.resources).all(|(x, y)| {
            x.name == y.name
                && x.threshold == y.threshold
                && close(x.factor, y.factor)
                && gist(&x.unknown) == gist(&y.unknown)
                && close(
                    x.fit.as_ref().map(|f| f.slope),
                    y.fit.as_ref().map(|f| f.slope),
                )
                && close(x.fit.as_ref().map(|f| f.r2), y.fit.as_ref().map(|f| f.r2))
        });
    resources
        && a.first_to_break == b.first_to_break
        && a.calibration_window == b.calibration_window
        && gist(&a.reason) == gist(&b.reason)
        && a.load_unit == b.load_unit
        && close(a.factor, b.factor)
        && close(a.load, b.load)
}

#[cfg(test)]
#[path = "headroom_status_tests.rs"]
mod tests;
