//! The plan: a ScalingPolicy spec with every default resolved once and everything the CRD
//! schema cannot check validated once. The operator, `simulate` and `decide` all start here:
//! spec → plan → queries → observation → evaluation.

mod build;
mod cron;
pub mod defaults;
mod observation;
pub mod predictive;
mod queries;
pub(crate) mod schedule;
mod validate;

use std::fmt;

pub use cron::Cron;
pub use observation::{Observation, QueryError, Sample};
pub use predictive::{PredictedLoad, PredictivePlan};
pub use queries::{Measure, Query, Shape};
pub use schedule::{ScheduleEntry, Window, parse_time};
pub use validate::{MAX_INTERVAL_SECONDS, is_label_name, quote, rules_errors};

use crate::api::{Behavior, Indicators, Mode, PromDuration, ScalingPolicySpec, TargetType};

/// A spec field that is not what Headroom can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Several field errors, shown together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for FieldErrors {}

/// One signal as the engine sizes on it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedSignal {
    pub name: String,
    /// Query key of its reading.
    pub key: String,
    pub kind: &'static str,
    pub target_type: TargetType,
    pub target: f64,
    /// Latency beside a sizing signal: its way up is bounded (see `SignalValue::up_only`).
    pub up_only: bool,
    /// How far back its reading looks, when it is a window.
    pub lookback_seconds: Option<f64>,
    /// Query key of its short-window reading, for panic.
    pub short_key: Option<String>,
    /// Query key of its recent history, for the forecast.
    pub forecast_key: Option<String>,
    /// A reading that sees demand while no pod runs: over this value a target at zero is
    /// started; at or under it the signal is idle. None for readings taken on the pods.
    pub activation: Option<f64>,
    /// CPU only: the readings that say its pods are saturated under a limit.
    pub saturation: Option<SaturationPlan>,
}

/// Keys and thresholds of a CPU signal's saturation readings (fractions, 0-1).
#[derive(Clone, Debug, PartialEq)]
pub struct SaturationPlan {
    pub throttled_key: String,
    pub pressure_key: String,
    pub throttled: f64,
    pub pressure: f64,
}

/// Scale to zero (`minReplicas: 0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdlePlan {
    /// How long every signal must show no demand before the target goes to zero.
    pub cooldown_seconds: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseCpuPlan {
    pub key: String,
    pub regularly_key: String,
    pub act: f64,
    pub regularly: f64,
    pub window: PromDuration,
}

/// Keys of the audit's readings; the thresholds stay with `config`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndicatorPlan {
    pub config: Option<Indicators>,
    /// The first latency signal's key: its reading is the p95 row.
    pub p95_key: Option<String>,
    pub database_cpu: Option<DatabaseCpuPlan>,
    pub slow_query: Option<String>,
    pub error_rate: Option<String>,
    pub connections: Option<String>,
    pub pool_wait: Option<String>,
    pub queue_age: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PanicPlan {
    pub threshold: f64,
    pub stable_window_seconds: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreepingPlan {
    pub signal: String,
    pub target: f64,
    pub startup_seconds: f64,
    pub latency_key: String,
    pub requests_key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MaxConnections {
    Fixed(f64),
    /// Read from this query key.
    Query(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct BudgetPlan {
    pub database: String,
    pub pool_size: i32,
    pub max_connections: MaxConnections,
    pub reserve: f64,
}

/// The cost guardrail: what a replica-hour costs, and the hourly ceiling if any.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    pub per_replica_hour: f64,
    pub max_hourly: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GuardrailPlan {
    pub database_hold: bool,
    /// Hysteresis on the way down (see `Tolerance::down_margin`).
    pub scale_down_margin: f64,
    pub panic: Option<PanicPlan>,
    pub creeping: Option<CreepingPlan>,
    /// Horizon in seconds; the series are the signals' `forecast_key`s.
    pub forecast_horizon_seconds: Option<f64>,
    pub schedule: Vec<ScheduleEntry>,
    pub budget: Option<BudgetPlan>,
    pub cost: Option<Cost>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub mode: Mode,
    pub interval: PromDuration,
    /// The HPA's tolerance, both directions.
    pub tolerance: f64,
    pub behavior: Option<Behavior>,
    pub downscale_stabilization_seconds: i32,
    pub signals: Vec<PlannedSignal>,
    pub indicators: IndicatorPlan,
    /// None: exactly the HPA's decision.
    pub guardrails: Option<GuardrailPlan>,
    /// History the headroom estimate fits.
    pub calibration_window: PromDuration,
    /// Predictive scaling, when it is not off.
    pub predictive: Option<PredictivePlan>,
    /// Scale to zero, when minReplicas is 0.
    pub idle: Option<IdlePlan>,
    queries: Vec<Query>,
}

impl Plan {
    /// Resolves defaults and validates; every problem is listed with its field.
    pub fn resolve(spec: &ScalingPolicySpec) -> Result<Plan, FieldErrors> {
        let mut errors = validate::spec(spec);
        let schedule: Vec<ScheduleEntry> = spec
            .guardrails
            .iter()
            .flat_map(|g| g.schedule.iter())
            .enumerate()
            .filter_map(|(i, w)| {
                ScheduleEntry::resolve(w, i)
                    .map_err(|e| errors.extend(e))
                    .ok()
            })
            .collect();
        let predictive = predictive::resolve(spec)
            .map_err(|e| errors.extend(e))
            .ok()
            .flatten();
        if !errors.is_empty() {
            return Err(FieldErrors(errors));
        }
        let mut plan = build::build(spec, schedule);
        if let Some(p) = &predictive {
            plan.queries.push(Query {
                key: predictive::LOAD_KEY.into(),
                field: "spec.predictive (the load now)".into(),
                measure: p.measure(),
                shape: Shape::Instant,
            });
        }
        plan.predictive = predictive;
        Ok(plan)
    }

    /// The operator's `--horizontal-pod-autoscaler-downscale-stabilization` equivalent.
    pub fn with_downscale_stabilization(mut self, seconds: i32) -> Plan {
        self.downscale_stabilization_seconds = seconds;
        self
    }

    /// Windows that hold at least two samples at `scrape` (a `rate()` needs two): panic's
    /// short window is widened to twice the scrape interval where it is shorter. At the 15-30 s
    /// that real installs scrape, 10 % of a 60 s stable window (6 s) holds none.
    pub fn for_scrape_interval(mut self, scrape: std::time::Duration) -> Plan {
        let least = PromDuration::from_millis(
            u64::try_from(scrape.saturating_mul(2).as_millis()).unwrap_or(u64::MAX),
        );
        let shorts: Vec<String> = self
            .signals
            .iter()
            .filter_map(|s| s.short_key.clone().filter(|k| *k != s.key))
            .collect();
        for q in &mut self.queries {
            let window = match &q.measure {
                Measure::Latency { window, .. }
                | Measure::CpuUtilization { window }
                | Measure::Concurrency { window, .. } => Some(*window),
                _ => None,
            };
            if let Some(w) = window
                && shorts.contains(&q.key)
                && w < least
            {
                q.measure = q.measure.over(least);
            }
        }
        self
    }

    /// Every reading an evaluation needs.
    pub fn queries(&self) -> &[Query] {
        &self.queries
    }

    /// The same targets and behavior as the HPA would run them: no guardrails, and latency
    /// sized like any other utilization.
    pub fn as_hpa(&self) -> Plan {
        let mut p = self.clone();
        p.guardrails = None;
        p.predictive = None;
        // The HPA refuses minReplicas 0 without its alpha gate.
        p.min_replicas = p.min_replicas.max(1);
        p.idle = None;
        p.indicators = IndicatorPlan::default();
        for s in &mut p.signals {
            s.up_only = false;
            s.short_key = None;
            s.forecast_key = None;
            // The HPA acts on every reading, stale or not.
            s.lookback_seconds = None;
            // The HPA reads utilization alone (kubernetes #72811).
            s.saturation = None;
        }
        let keys: Vec<&str> = p.signals.iter().map(|s| s.key.as_str()).collect();
        p.queries = self
            .queries
            .iter()
            .filter(|q| keys.contains(&q.key.as_str()))
            .cloned()
            .collect();
        p
    }

    /// The same plan with every signal's target times `factor`: a tighter target runs more
    /// replicas for the same load.
    pub fn targets_at(mut self, factor: f64) -> Plan {
        for s in &mut self.signals {
            s.target *= factor;
        }
        self
    }
}

/// Panic's short window for `measure`: CPU is never read over less than cAdvisor can fill,
/// nor over more than its own window.
fn short_window(measure: &Measure, short: PromDuration) -> PromDuration {
    match measure {
        Measure::CpuUtilization { window } => {
            let floor = PromDuration::from_secs(defaults::CPU_MIN_WINDOW_SECONDS);
            short.max(floor).min(*window)
        }
        _ => short,
    }
}

#[cfg(test)]
mod tests;
