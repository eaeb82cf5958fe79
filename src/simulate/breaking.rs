//! The headroom estimate checked against the model: calibrate on three hours of a normal day
//! at a scenario's load, predict what breaks first and at what factor, then, on the same
//! run, raise the load until a resource really crosses its threshold with Headroom scaling.

use std::f64::consts::TAU;

use crate::capacity::{AppSizing, Estimate, Headline, Limits, Reading, Resource, estimate};

use super::rng::Rng;
use super::{App, Kind, Setup, Snapshot, Trace, run_probed, scenario};

const CALIBRATION_SECONDS: usize = 3 * 3600;
/// The day's swing around the scenario's load: ±35 %.
const SWING: f64 = 0.35;
const RAMP_SECONDS: usize = 300;
const HOLD_SECONDS: usize = 900;
/// The end of the hold over which thresholds are checked.
const MEASURE_SECONDS: usize = 300;

/// One scenario's prediction and what the model did.
#[derive(Clone, Debug)]
pub struct Check {
    pub scenario: String,
    pub estimate: Estimate,
    /// The smallest factor on the estimate's load at which a resource crossed its threshold,
    /// and which one; None if none did up to 300x.
    pub simulated: Option<(f64, Resource)>,
}

impl Check {
    /// Predicted over simulated factor, minus one (None unless both name a factor).
    pub fn error(&self) -> Option<f64> {
        match (self.estimate.headline(), self.simulated) {
            (Headline::Breaks { factor, .. }, Some((real, _))) => Some(factor / real - 1.0),
            _ => None,
        }
    }

    /// Within 20 % and the same resource.
    pub fn matches(&self) -> bool {
        let same = matches!(
            (self.estimate.headline(), self.simulated),
            (Headline::Breaks { resource, .. }, Some((_, r))) if r == resource
        );
        same && self.error().is_some_and(|e| e.abs() <= 0.2)
    }
}

/// A scenario's first-hour load: its "normal".
fn normal_load(name: &str) -> Option<(f64, f64)> {
    let t = scenario(name, 1)?;
    let n = t.seconds().clamp(1, 3600);
    let mean = |v: &[f64]| v.iter().take(n).sum::<f64>() / n as f64;
    Some((mean(&t.requests), mean(&t.jobs)))
}

/// Three hours of a day at `load` with ±10 % noise that changes every 10 seconds (the same
/// for every run), then (with `factor`) a ramp to factor × load, held.
fn trace(load: (f64, f64), factor: Option<f64>) -> Trace {
    let mut rng = Rng::new(1);
    let noise: Vec<f64> = (0..CALIBRATION_SECONDS / 10 + 1)
        .map(|_| 0.1 * rng.normal().clamp(-3.0, 3.0))
        .collect();
    let day = |t: usize| 1.0 + SWING * (t as f64 / CALIBRATION_SECONDS as f64 * TAU).sin();
    let mut k: Vec<f64> = (0..CALIBRATION_SECONDS)
        .map(|t| day(t) * (1.0 + noise[t / 10]))
        .collect();
    if let Some(f) = factor {
        let from = day(CALIBRATION_SECONDS);
        k.extend((0..RAMP_SECONDS).map(|t| from + (f - from) * t as f64 / RAMP_SECONDS as f64));
        k.extend(std::iter::repeat_n(f, HOLD_SECONDS));
    }
    Trace {
        name: "headroom-check".into(),
        requests: k.iter().map(|x| x * load.0).collect(),
        jobs: k.iter().map(|x| x * load.1).collect(),
        ..Trace::default()
    }
}

fn app_usage(sizing: AppSizing, s: &Snapshot) -> f64 {
    match sizing {
        AppSizing::Cpu { .. } => s.cpu * f64::from(s.web_ready),
        AppSizing::Concurrency { .. } => s.in_flight,
    }
}

/// The policy's own readings each minute of the calibration day (minute means, as a
/// Prometheus rate over 1m would give them), estimated.
pub fn calibrate(setup: &Setup, limits: &Limits, load: (f64, f64)) -> Estimate {
    let mut readings = vec![];
    let mut minute: Vec<Snapshot> = vec![];
    let sizing = limits.app;
    run_probed(
        Kind::Headroom,
        &trace(load, None),
        setup,
        &mut |_| {},
        &mut |now, s, _| {
            minute.push(*s);
            if (now + 1) % 60 == 0 {
                let n = minute.len() as f64;
                let mean = |f: &dyn Fn(&Snapshot) -> f64| minute.iter().map(f).sum::<f64>() / n;
                readings.push(Reading {
                    at: now as f64,
                    load: mean(&|s| s.requests),
                    app: sizing.map(|z| mean(&|s| app_usage(z, s))),
                    database_cpu: Some(mean(&|s| s.db_cpu)),
                    throttled: Some(mean(&|s| s.throttled)).filter(|t| t.is_finite()),
                });
                minute.clear();
            }
        },
    );
    estimate(&readings, limits)
}

/// Which threshold, if any, the run crossed at the end of its hold, and by how much.
fn crossing(
    setup: &Setup,
    limits: &Limits,
    load: (f64, f64),
    factor: f64,
) -> Option<(f64, Resource)> {
    let total = CALIBRATION_SECONDS + RAMP_SECONDS + HOLD_SECONDS;
    let (mut app, mut db, mut jobs, mut n) = (0.0, 0.0, 0.0, 0.0);
    run_probed(
        Kind::Headroom,
        &trace(load, Some(factor)),
        setup,
        &mut |_| {},
        &mut |now, s, _: &App| {
            if now + MEASURE_SECONDS >= total {
                app += limits.app.map_or(0.0, |z| app_usage(z, s));
                db += s.db_cpu;
                jobs += s.jobs;
                n += 1.0;
            }
        },
    );
    let (app, db, jobs) = (app / n, db / n, jobs / n);
    let mut over: Vec<(f64, Resource)> = vec![];
    if let Some(z) = limits.app {
        let needed = app / z.per_replica();
        over.push((needed / f64::from(limits.max_replicas), Resource::App));
        if let Some(c) = limits.connections {
            over.push((needed / c.replicas(), Resource::Connections));
        }
        if let Some(c) = limits.cost {
            over.push((needed / c.replicas(), Resource::Cost));
        }
    }
    if let Some(act) = limits.database_cpu_act {
        over.push((db / act, Resource::DatabaseCpu));
    }
    if let Some(rate) = limits.worker_rate {
        over.push((
            jobs / (rate * f64::from(limits.max_replicas)),
            Resource::Workers,
        ));
    }
    over.into_iter()
        .filter(|(x, _)| *x >= 1.0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The smallest factor on `load` at which a threshold is crossed: a geometric scan, then
/// bisection to 1 %.
fn breaking_point(setup: &Setup, limits: &Limits, load: (f64, f64)) -> Option<(f64, Resource)> {
    let mut low = 0.0;
    let mut f = 0.25;
    let mut high = loop {
        if let Some((_, r)) = crossing(setup, limits, load, f) {
            break (f, r);
        }
        low = f;
        f *= 1.25;
        if f > 300.0 {
            return None;
        }
    };
    while high.0 - low > 0.01 * high.0 {
        let mid = (low + high.0) / 2.0;
        match crossing(setup, limits, load, mid) {
            Some((_, r)) => high = (mid, r),
            None => low = mid,
        }
    }
    Some(high)
}

/// Runs the check for one built-in scenario, with the setup's web policy.
pub fn check(name: &str, setup: &Setup) -> Option<Check> {
    let load = normal_load(name)?;
    let limits = Limits::from_plan(
        &setup.web.plan,
        Some(f64::from(setup.params.max_connections)),
    );
    let estimate = calibrate(setup, &limits, load);
    // The estimate's factors are on its own "today" (the calibration's last readings).
    let today = estimate.load / load.0;
    let simulated = breaking_point(setup, &limits, load).map(|(f, r)| (f / today, r));
    Some(Check {
        scenario: name.into(),
        estimate,
        simulated,
    })
}

/// The checks as a Markdown table.
pub fn table(checks: &[Check]) -> String {
    let mut md = String::from(
        "| scenario | load now | predicted | simulated | error | fit (R², load spread) | verdict |\n|---|---|---|---|---|---|---|\n",
    );
    for c in checks {
        let head = c.estimate.headline();
        let predicted = match &head {
            Headline::Unknown { resource, why } => {
                format!("Unknown ({}: {why})", resource.as_str())
            }
            Headline::NoData(why) => format!("Unknown ({why})"),
            h => h.short(),
        };
        let simulated = c.simulated.map_or("none up to 300x".into(), |(f, r)| {
            format!("{f:.1}x {}", r.as_str())
        });
        let fit = c
            .estimate
            .resources
            .first()
            .and_then(|r| r.fit)
            .map_or("-".into(), |f| {
                format!("{:.3}, {:.2}x", f.r2, f.load_spread)
            });
        let error = c
            .error()
            .map_or("-".into(), |e| format!("{:+.0}%", e * 100.0));
        let verdict = if c.matches() { "met" } else { "MISSED" };
        md.push_str(&format!(
            "| {} | {:.0}/s | {predicted} | {simulated} | {error} | {fit} | {verdict} |\n",
            c.scenario, c.estimate.load
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{examples, setup};

    #[test]
    fn a_database_bound_app_is_told_its_database_breaks_first_and_when() {
        let (web, worker) = examples();
        let name = "database-bound";
        let Some(c) = check(name, &setup(name, web, worker)) else {
            panic!("no check for {name}")
        };
        assert!(
            matches!(
                c.estimate.headline(),
                Headline::Breaks {
                    resource: Resource::DatabaseCpu,
                    ..
                }
            ),
            "{:?}",
            c.estimate.headline()
        );
        assert_eq!(c.simulated.map(|s| s.1), Some(Resource::DatabaseCpu));
        assert!(c.matches(), "{}", table(&[c]));
    }
}
