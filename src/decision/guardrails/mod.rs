//! Guardrails: the field guidance for growing web apps, applied on top of the HPA-compatible
//! decision. Pure, like the rest of the engine: the controller supplies readings and "now".
//!
//! Order, and so who wins: panic, the forecast and creeping latency raise the proposal, the
//! scheduled floor raises it further; then the database hold stops any scale-up, and the connection budget,
//! the cost ceiling and maxReplicas cap what is left. A hold or a cap always beats a boost.

mod bands;
mod budget;
mod schedule;
mod trend;

pub use bands::{Band, Verdict};
pub use budget::{Budget, Claim, allocate, cap, usable};
pub use schedule::{Window, floor_at};
pub use trend::{Trend, trend};

use crate::api::TargetType;

use super::{Decision, Input, Limit};

/// Database saturation, the first thing that breaks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatabaseEvidence {
    /// Fraction of the recent window DB CPU spent above its Act threshold.
    pub cpu_over_act_fraction: Option<f64>,
    /// How much of the window counts as "regularly" (default 0.5).
    pub regularly: f64,
    pub cpu: Option<f64>,
    /// The Act threshold of database CPU and the window "regularly" is judged over.
    pub cpu_act: f64,
    pub window_seconds: f64,
    /// p95 of the slowest common query, seconds, and its Act threshold (default 0.5s).
    pub query_p95: Option<f64>,
    pub query_act: f64,
}

impl DatabaseEvidence {
    pub fn bound(&self) -> bool {
        self.cpu_over_act_fraction
            .is_some_and(|f| f >= self.regularly)
            || self.query_p95.is_some_and(|q| q > self.query_act)
    }

    /// The evidence, e.g. `databaseCpu regularly over 0.7 (0.82 for 64% of 30m)`.
    fn describe(&self) -> String {
        let mut parts = vec![];
        if let Some(f) = self.cpu_over_act_fraction {
            let now = self.cpu.map(|c| format!("{c:.2} ")).unwrap_or_default();
            let window = crate::api::PromDuration::from_millis(
                (self.window_seconds.max(0.0) * 1000.0).min(1e15) as u64,
            );
            let verb = if f >= self.regularly {
                "regularly over"
            } else {
                "over"
            };
            parts.push(format!(
                "databaseCpu {verb} {} ({now}for {:.0}% of {window})",
                self.cpu_act,
                f * 100.0
            ));
        } else if let Some(c) = self.cpu {
            parts.push(format!("databaseCpu {c:.2}"));
        }
        if let Some(q) = self.query_p95.filter(|q| *q > self.query_act) {
            parts.push(format!(
                "slowQuery p95 {:.0}ms over {:.0}ms",
                q * 1000.0,
                self.query_act * 1000.0
            ));
        }
        parts.join(", ")
    }
}

/// A signal read over the short (panic) window.
#[derive(Clone, Debug, PartialEq)]
pub struct ShortReading {
    pub name: String,
    pub target_type: TargetType,
    pub target: f64,
    pub value: Option<f64>,
    /// Latency beside a sizing signal: a spike doubles at most (see SignalValue::up_only).
    pub up_only: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PanicInput {
    /// Ratio to target that starts a panic (default 2).
    pub threshold: f64,
    /// How long the spike must be gone before scale-down resumes.
    pub stable_window_seconds: f64,
    pub short: Vec<ShortReading>,
    /// Seconds since the last spike, if one is remembered.
    pub last_spike_age: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreepingInput {
    pub signal: String,
    /// The latency target, seconds.
    pub target: f64,
    /// Pod start-up time: how far ahead a breach is predicted (default 60s).
    pub startup_seconds: f64,
    /// Minimum t statistic for the trend to count as real, not noise (default 3).
    pub min_t: f64,
    /// Relative change of the request rate over the window still called "flat" (default 0.1).
    pub flat_load: f64,
    /// (seconds, p95) and (seconds, requests/s) over the window (default 30m).
    pub latency: Vec<(f64, f64)>,
    pub requests: Vec<(f64, f64)>,
}

/// A sizing signal's recent history, for sizing ahead of a rising load.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastSeries {
    pub name: String,
    pub target_type: TargetType,
    pub target: f64,
    /// (seconds, value) over the forecast window.
    pub samples: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ForecastInput {
    /// How far ahead to size: pod start-up plus the metrics' lag (default 90s).
    pub horizon_seconds: f64,
    /// Minimum t statistic of the rise (default 3).
    pub min_t: f64,
    pub series: Vec<ForecastSeries>,
}

impl CreepingInput {
    /// The guidance's defaults: a trend must reach t = 3, and load within 10% counts as flat.
    pub fn new(
        signal: String,
        target: f64,
        startup_seconds: f64,
        latency: Vec<(f64, f64)>,
        requests: Vec<(f64, f64)>,
    ) -> Self {
        Self {
            signal,
            target,
            startup_seconds,
            min_t: 3.0,
            flat_load: 0.1,
            latency,
            requests,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    pub per_replica_hour: f64,
    pub max_hourly: Option<f64>,
}

/// Everything the guardrails look at in one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GuardrailInput {
    pub now_unix: i64,
    pub database: Option<DatabaseEvidence>,
    /// The database hold is on unless the policy opts out.
    pub database_hold: bool,
    pub panic: Option<PanicInput>,
    pub creeping: Option<CreepingInput>,
    pub forecast: Option<ForecastInput>,
    pub schedule: Vec<Window>,
    /// The shared connection budget and what the others sharing it hold.
    pub budget: Option<Budget>,
    pub cost: Option<Cost>,
}

/// A guardrail that is (or is not) in force, with stable reasons for conditions and Events.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub reason: &'static str,
    pub active: bool,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Guarded {
    pub desired: i32,
    pub limited_by: Limit,
    pub reason: String,
    pub findings: Vec<Finding>,
    /// A spike was seen in this evaluation (the controller remembers when).
    pub spike_now: bool,
    pub hourly_cost: Option<f64>,
    /// What this workload claims on its shared connection budget after this decision.
    pub budget_claim: Option<Claim>,
}

/// Rounds down into [0, i32::MAX]; NaN is 0.
fn floor_i32(x: f64) -> i32 {
    let f = x.floor();
    if f >= f64::from(i32::MAX) {
        i32::MAX
    } else if f > 0.0 {
        f as i32
    } else {
        0
    }
}

fn ceil_i32(x: f64) -> i32 {
    let c = (x - 1e-9).ceil();
    if c >= f64::from(i32::MAX) {
        i32::MAX
    } else if c <= 0.0 {
        0
    } else {
        c as i32
    }
}

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
    Some((
        ratio,
        if s.up_only {
            need.min(2 * ready.max(1))
        } else {
            need
        },
    ))
}

/// Applies the guardrails to the HPA-compatible decision.
pub fn apply(base: &Decision, input: &Input, g: &GuardrailInput) -> Guarded {
    let current = input.current_replicas;
    let max = input.max_replicas;
    let mut desired = base.desired_replicas;
    let mut limited_by = base.limited_by;
    let mut reason = base.reason.clone();
    let mut findings = vec![];
    let mut spike_now = false;
    // Guardrails only act on a real decision: not when scaling is disabled or out of range.
    let decided = base.recommendation.is_some() || base.limited_by == Limit::MetricsUnavailable;

    if let (Some(p), true) = (&g.panic, decided) {
        let spikes: Vec<(String, f64, i32)> = p
            .short
            .iter()
            .filter_map(|s| {
                short_proposal(s, input.ready_replicas).map(|(r, n)| (s.name.clone(), r, n))
            })
            .filter(|(_, r, _)| *r > p.threshold)
            .collect();
        spike_now = !spikes.is_empty();
        let in_panic = spike_now
            || p.last_spike_age
                .is_some_and(|a| a < p.stable_window_seconds);
        if let Some((name, ratio, need)) = spikes.iter().max_by_key(|s| s.2).cloned() {
            let target = need.min(max);
            if target > desired {
                desired = target;
                limited_by = Limit::Panic;
                reason = format!(
                    "panic: {name} is {ratio:.1}x its target over the short window; scaling to {target} in one step"
                );
            }
        }
        if in_panic && desired < current {
            desired = current;
            limited_by = Limit::Panic;
            reason = "panic: no scale-down until the spike has been gone for a full stable window"
                .into();
        }
        findings.push(Finding {
            reason: "Panic",
            active: in_panic,
            message: if spike_now {
                format!("short-window signal over {}x its target", p.threshold)
            } else if in_panic {
                "spike recently seen; scale-down held for the stable window".into()
            } else {
                "no spike".into()
            },
        });
    }

    if let (Some(c), true) = (&g.creeping, decided) {
        let fired = creeping(c);
        // One step, then give the new pod its start-up time before judging the trend again.
        let recent_up = input
            .history
            .scale_events
            .iter()
            .any(|e| e.replica_change > 0 && e.age_seconds < c.startup_seconds);
        if let Some(msg) = &fired
            && desired <= current
            && current < max
            && !recent_up
        {
            desired = current + 1;
            limited_by = Limit::CreepingLatency;
            reason =
                format!("creeping latency: {msg}; adding one replica before the SLO is breached");
        }
        findings.push(Finding {
            reason: "CreepingLatency",
            active: fired.is_some(),
            message: fired.unwrap_or_else(|| "no significant rise in p95 under flat load".into()),
        });
    }

    if let (Some(f), true) = (&g.forecast, decided) {
        let ahead = f
            .series
            .iter()
            .filter_map(|s| {
                let t = trend(&s.samples)?;
                (t.slope > 0.0 && t.t_stat >= f.min_t).then_some(())?;
                let projected = t.last + t.slope * f.horizon_seconds;
                let need = match s.target_type {
                    TargetType::Value => {
                        ceil_i32(projected / s.target * f64::from(input.ready_replicas.max(1)))
                    }
                    TargetType::AverageValue => ceil_i32(projected / s.target),
                };
                Some((s.name.clone(), projected, need))
            })
            .max_by_key(|x| x.2);
        let active = ahead.as_ref().is_some_and(|a| a.2 > desired);
        if let Some((name, projected, need)) = &ahead
            && *need > desired
        {
            desired = (*need).min(max);
            limited_by = Limit::Forecast;
            reason = format!(
                "forecast: {name} rising, {projected:.1} expected in {:.0}s; sizing for it now ({desired} replicas)",
                f.horizon_seconds
            );
        }
        findings.push(Finding {
            reason: "Forecast",
            active,
            message: match ahead {
                Some((name, projected, need)) => format!(
                    "{name} projected at {projected:.1} in {:.0}s: {need} replicas",
                    f.horizon_seconds
                ),
                None => "no significant rise".into(),
            },
        });
    }

    if let Some(floor) = floor_at(&g.schedule, g.now_unix) {
        let floor = floor.min(max);
        if desired < floor {
            desired = floor;
            limited_by = Limit::ScheduledFloor;
            reason = format!("scheduled headroom: floor of {floor} replicas");
        }
        findings.push(Finding {
            reason: "ScheduledFloor",
            active: true,
            message: format!("a scheduled window holds at least {floor} replicas"),
        });
    }

    if let Some(db) = &g.database {
        let bound = db.bound();
        let holding = bound && g.database_hold && desired > current;
        if holding {
            desired = current;
            limited_by = Limit::DatabaseBound;
            reason = format!(
                "database-bound ({}): holding {current} replicas; more app servers would only add load and connections. Cache hot reads, add indexes, or add a read replica",
                db.describe()
            );
        }
        findings.push(Finding {
            reason: "DatabaseBound",
            active: bound,
            message: if bound {
                db.describe()
            } else {
                "database is not the bottleneck".into()
            },
        });
    }

    // A cap lowers the proposal and takes over the explanation.
    let mut cap_at = |cap: i32, limit: Limit, why: String, desired: &mut i32| {
        if *desired > cap {
            *desired = cap;
            limited_by = limit;
            reason = why;
        }
    };

    let cost_cap = g.cost.and_then(|c| {
        let ceiling = c.max_hourly?;
        Some((
            ceiling,
            c.per_replica_hour,
            floor_i32(ceiling / c.per_replica_hour + 1e-9),
        ))
    });
    let mut budget_claim = None;
    if let Some(b) = &g.budget {
        // What it would run without the budget, for a fair share among those sharing it.
        let need = cost_cap.map_or(desired, |c| desired.min(c.2)).min(max);
        let me = Claim {
            name: b.name.clone(),
            pool_size: b.pool_size,
            held: current,
            need,
        };
        // The budget stops growth; it never takes replicas a workload already runs.
        let cap = cap(b.usable, &me, &b.others).max(current.min(desired));
        cap_at(
            cap,
            Limit::ConnectionBudget,
            format!("connection budget allows {cap} replicas"),
            &mut desired,
        );
        findings.push(Finding {
            reason: "ConnectionBudget",
            active: desired >= cap,
            message: format!("the shared connection budget allows {cap} replicas"),
        });
        budget_claim = Some(Claim {
            held: current.max(desired.min(max)),
            ..me
        });
    }

    let mut hourly_cost = None;
    if let Some(c) = g.cost {
        hourly_cost = Some(f64::from(current) * c.per_replica_hour);
    }
    if let Some((ceiling, per_replica_hour, cap)) = cost_cap {
        cap_at(
            cap,
            Limit::CostCeiling,
            format!("cost ceiling {ceiling:.2}/h allows {cap} replicas"),
            &mut desired,
        );
        findings.push(Finding {
            reason: "CostCeiling",
            active: desired >= cap,
            message: format!(
                "{ceiling:.2}/h at {per_replica_hour:.2} per replica-hour allows {cap} replicas"
            ),
        });
    }

    Guarded {
        desired: desired.min(max),
        limited_by,
        reason,
        findings,
        spike_now,
        hourly_cost,
        budget_claim,
    }
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

#[cfg(test)]
mod tests;
