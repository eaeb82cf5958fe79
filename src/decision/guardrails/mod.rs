//! Guardrails: the field guidance for growing web apps, applied on top of the HPA-compatible
//! decision. Pure, like the rest of the engine: the controller supplies readings and "now".
//!
//! Order, and so who wins: panic, the forecast, creeping latency and the predicted rise raise the proposal, the
//! scheduled floor raises it further; then the database hold stops any scale-up, and the connection budget,
//! the cost ceiling and maxReplicas cap what is left. A hold or a cap always beats a boost.

mod bands;
mod budget;
mod cost;
mod creeping;
mod forecast;
mod hold;
mod panic;
mod predicted;
mod schedule;
mod step;
mod trend;

pub use bands::{Band, Verdict};
pub use budget::{Budget, Claim, allocate, cap, usable};
pub use creeping::latency_trend;
pub use hold::APP_SATURATED_PERCENT;
pub use schedule::floor_at;
pub use trend::{Trend, trend};

pub use crate::plan::{Cost, Window};

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

/// The app's own CPU utilization and its target, percent: tells a saturated app from one
/// that only waits on its database.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppCpu {
    pub percent: f64,
    pub target: f64,
}

impl AppCpu {
    /// The HPA's answer on CPU alone for `ready` replicas.
    fn sized(&self, ready: i32) -> i32 {
        if self.target <= 0.0 {
            return ready;
        }
        ceil_i32(f64::from(ready) * self.percent / self.target)
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

/// What the load's learned pattern expects (see `crate::predict`), when it is trusted: the
/// caller's memory, learned off the evaluation path.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictedPeak {
    /// The busiest load expected from now to the horizon, in the load's own unit.
    pub peak: f64,
    /// The load the pattern expects now: peak / level is the rise the pattern makes.
    pub level: f64,
    pub horizon_seconds: f64,
    /// The period, for the message (e.g. "24h").
    pub pattern: String,
    /// The least rise (peak over the load now) worth acting on: under it, noise.
    pub min_rise: f64,
    /// Enforce raises replicas; Observe only reports.
    pub enforce: bool,
}

/// The predicted peak against the load now.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictedRise {
    /// The load over the horizon as a ratio to the load read now: how much to add.
    pub rise: f64,
    /// The pattern's peak over its own level now: whether a rise is coming.
    pub pattern_rise: f64,
    pub horizon_seconds: f64,
    /// The period, for the message (e.g. "24h").
    pub pattern: String,
    pub min_rise: f64,
    /// The policy's tolerance: a predicted need within it of the current count is no change.
    pub tolerance: f64,
    /// Enforce raises replicas; Observe only reports.
    pub enforce: bool,
}

/// Everything the guardrails look at in one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GuardrailInput {
    pub now_unix: i64,
    pub database: Option<DatabaseEvidence>,
    /// The database hold is on unless the policy opts out.
    pub database_hold: bool,
    /// The app's CPU, when the policy scales on it.
    pub app_cpu: Option<AppCpu>,
    pub panic: Option<PanicInput>,
    pub creeping: Option<CreepingInput>,
    pub forecast: Option<ForecastInput>,
    pub predicted: Option<PredictedRise>,
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
    /// The replicas the predicted rise asks for (set or, in Observe, only reported).
    pub predicted: Option<i32>,
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

/// A target at zero that its signals would start but a guardrail keeps there: work waits,
/// and only a finding (a condition and a Warning Event) says so.
fn held_at_zero(s: &mut step::Step, base: &Decision) {
    if s.current == 0 && base.desired_replicas > 0 && s.desired == 0 {
        let message = format!(
            "work is waiting: {} replica(s) wanted from zero, held at 0 by {:?} ({})",
            base.desired_replicas, s.limited_by, s.reason
        );
        s.found("HeldAtZero", true, message);
    }
}

/// Applies the guardrails to the HPA-compatible decision, one rule at a time in the order
/// that decides who wins: raises first, then the hold, then the caps.
pub fn apply(base: &Decision, input: &Input, g: &GuardrailInput) -> Guarded {
    let mut s = step::Step {
        current: input.current_replicas,
        ready: input.ready_replicas,
        max: input.max_replicas,
        desired: base.desired_replicas,
        limited_by: base.limited_by,
        reason: base.reason.clone(),
        findings: vec![],
    };
    // Guardrails only act on a real decision: not when scaling is disabled or out of range.
    let decided = base.recommendation.is_some() || base.limited_by == Limit::MetricsUnavailable;
    let mut spike_now = false;
    let mut predicted_replicas = None;
    if decided {
        if let Some(p) = &g.panic {
            spike_now = panic::apply(&mut s, p);
        }
        if let Some(c) = &g.creeping {
            creeping::apply(&mut s, c, &input.history);
        }
        if let Some(f) = &g.forecast {
            forecast::apply(&mut s, f);
        }
        if let Some(p) = &g.predicted {
            predicted_replicas = predicted::apply(&mut s, p, &base.proposals);
        }
    }
    schedule::apply(&mut s, &g.schedule, g.now_unix);
    if let Some(db) = &g.database {
        hold::apply(&mut s, db, g.database_hold, g.app_cpu.as_ref());
    }
    let budget_claim = g.budget.as_ref().map(|b| {
        // What it would run without the budget, for a fair share among those sharing it:
        // what its signals ask, not what the rate limits let it reach this round.
        let wanted = base.recommendation.map_or(s.desired, |r| r.max(s.desired));
        let need = g
            .cost
            .as_ref()
            .and_then(cost::cap)
            .map_or(wanted, |c| wanted.min(c))
            .min(s.max);
        budget::apply(&mut s, b, need)
    });
    let hourly_cost = g.cost.as_ref().map(|c| cost::apply(&mut s, c));
    held_at_zero(&mut s, base);
    Guarded {
        desired: s.desired.min(s.max),
        limited_by: s.limited_by,
        reason: s.reason,
        findings: s.findings,
        spike_now,
        hourly_cost,
        budget_claim,
        predicted: predicted_replicas,
    }
}

#[cfg(test)]
mod tests;
