//! The plan: a ScalingPolicy spec with every default resolved once and everything the CRD
//! schema cannot check validated once. The operator, `simulate` and `decide` all start here:
//! spec → plan → queries → observation → evaluation.

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
pub use validate::{MAX_INTERVAL_SECONDS, is_label_name, rules_errors};

use crate::api::{
    Behavior, CpuSignal, Indicators, Mode, PromDuration, ScalingPolicySpec, SignalKind, TargetType,
};

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

fn or_secs(d: Option<PromDuration>, default: u64) -> PromDuration {
    d.unwrap_or(PromDuration::from_secs(default))
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
        let mut plan = build(spec, schedule);
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

/// A CPU signal's saturation readings, unless turned off; over the signal's own window.
fn saturation(
    cpu: &CpuSignal,
    name: &str,
    field: &str,
    add: &mut impl FnMut(String, String, Measure, Shape) -> String,
) -> Option<SaturationPlan> {
    let s = cpu.saturation.clone().unwrap_or_default();
    if s.enabled == Some(false) {
        return None;
    }
    let percent = |p: Option<i32>, default: f64| p.map_or(default, |p| f64::from(p) / 100.0);
    let window = cpu.window;
    Some(SaturationPlan {
        throttled_key: add(
            format!("{name}/throttled"),
            format!("{field}.saturation (throttled periods)"),
            Measure::CpuThrottled { window },
            Shape::Instant,
        ),
        pressure_key: add(
            format!("{name}/pressure"),
            format!("{field}.saturation (CPU pressure)"),
            Measure::CpuPressure { window },
            Shape::Instant,
        ),
        throttled: percent(s.throttled_percent, defaults::THROTTLED_SATURATED),
        pressure: percent(s.pressure_percent, defaults::PRESSURE_SATURATED),
    })
}

fn build(spec: &ScalingPolicySpec, schedule: Vec<ScheduleEntry>) -> Plan {
    let mut queries: Vec<Query> = vec![];
    let mut add = |key: String, field: String, measure: Measure, shape: Shape| {
        queries.push(Query {
            key: key.clone(),
            field,
            measure,
            shape,
        });
        key
    };
    let rules = spec.guardrails.as_ref();
    let panic = rules
        .and_then(|g| {
            let p = g.panic.clone().unwrap_or_default();
            (p.enabled != Some(false)).then_some(p)
        })
        .map(|p| {
            let stable = or_secs(p.stable_window, defaults::PANIC_STABLE_WINDOW_SECONDS);
            let short_ms = (stable.as_duration() / defaults::PANIC_SHORT_WINDOW_FRACTION)
                .as_millis()
                .max(1000);
            let short = PromDuration::from_millis(u64::try_from(short_ms).unwrap_or(u64::MAX));
            (
                PanicPlan {
                    threshold: p.threshold.unwrap_or(defaults::PANIC_THRESHOLD),
                    stable_window_seconds: stable.as_secs_f64(),
                },
                short,
            )
        });
    let forecast_window = rules.and_then(|g| g.forecast.as_ref()).map(|f| {
        (
            or_secs(f.window, defaults::FORECAST_WINDOW_SECONDS),
            or_secs(f.horizon, defaults::FORECAST_HORIZON_SECONDS).as_secs_f64(),
        )
    });

    let has_sizing = spec.signals.iter().any(|s| s.latency.is_none());
    let mut signals = vec![];
    let mut arrivals = vec![];
    for (i, s) in spec.signals.iter().enumerate() {
        let Some(kind) = s.kind() else { continue };
        let activation = match kind {
            SignalKind::Queue(q) => Some(q.activation_threshold.unwrap_or(0.0)),
            SignalKind::Custom(c) => Some(c.activation_threshold.unwrap_or(0.0)),
            _ => None,
        };
        let (field, measure, target_type, target, lookback) = match kind {
            SignalKind::Latency(l) => (
                "latency",
                Measure::Latency {
                    metric: l.metric.clone(),
                    selector: l.selector.clone(),
                    quantile: l.quantile,
                    window: l.window,
                },
                TargetType::Value,
                l.target.as_secs_f64(),
                Some(l.window.as_secs_f64()),
            ),
            SignalKind::Cpu(c) => (
                "cpu",
                Measure::CpuUtilization { window: c.window },
                TargetType::Value,
                f64::from(c.target_utilization),
                Some(c.window.as_secs_f64()),
            ),
            SignalKind::Queue(q) => (
                "queue",
                Measure::QueueBacklog(q.query.clone()),
                TargetType::AverageValue,
                q.target_per_replica,
                None,
            ),
            SignalKind::Custom(c) => (
                "custom",
                Measure::Custom(c.query.clone()),
                c.target_type,
                c.target,
                None,
            ),
            SignalKind::Concurrency(c) => (
                "concurrency",
                Measure::Concurrency {
                    metric: c.metric.clone(),
                    selector: c.selector.clone(),
                    window: c.window,
                },
                TargetType::AverageValue,
                c.target_per_replica,
                None,
            ),
        };
        let field = format!("spec.signals[{i}].{field}");
        let is_latency = matches!(kind, SignalKind::Latency(_));
        let key = add(
            s.name.clone(),
            field.clone(),
            measure.clone(),
            Shape::Instant,
        );
        // Templated windows are re-read over the short window; backlogs and raw queries are
        // instantaneous, so their reading is the short one.
        let short_key = panic.as_ref().map(|(_, short)| match kind {
            SignalKind::Latency(_) | SignalKind::Cpu(_) | SignalKind::Concurrency(_) => add(
                format!("{}@short", s.name),
                format!("{field} (panic short window)"),
                measure.over(short_window(&measure, *short)),
                Shape::Instant,
            ),
            _ => key.clone(),
        });
        let saturation = match kind {
            SignalKind::Cpu(c) => saturation(c, &s.name, &field, &mut add),
            _ => None,
        };
        // Latency is not a sizing signal: it is never projected.
        let forecast_key = forecast_window.filter(|_| !is_latency).map(|(w, _)| {
            add(
                format!("forecast/{}", s.name),
                format!("spec.guardrails.forecast ({} trend)", s.name),
                measure.clone(),
                Shape::range(w),
            )
        });
        signals.push(PlannedSignal {
            name: s.name.clone(),
            key,
            kind: measure.kind(),
            target_type,
            target,
            up_only: is_latency && has_sizing,
            lookback_seconds: lookback,
            short_key,
            forecast_key,
            activation,
            saturation,
        });
        // Queues with an arrival rate get a second, sizing reading: replicas to keep up.
        if let Some(q) = &s.queue
            && let (Some(query), Some(rate)) = (&q.arrival_rate_query, q.rate_per_replica)
        {
            // Any arrival is demand, unless the user set the backlog that is.
            let activation = q.activation_threshold.is_none().then_some(0.0);
            arrivals.push((i, s.name.clone(), query.clone(), rate, activation));
        }
    }
    for (i, name, query, rate, activation) in arrivals {
        let name = format!("{name}-arrivals");
        let measure = Measure::ArrivalRate(query);
        let key = add(
            name.clone(),
            format!("spec.signals[{i}].queue.arrivalRateQuery"),
            measure.clone(),
            Shape::Instant,
        );
        let forecast_key = forecast_window.map(|(w, _)| {
            add(
                format!("forecast/{name}"),
                format!("spec.guardrails.forecast ({name} trend)"),
                measure,
                Shape::range(w),
            )
        });
        signals.push(PlannedSignal {
            name,
            short_key: panic.as_ref().map(|_| key.clone()),
            key,
            kind: "queue",
            target_type: TargetType::AverageValue,
            target: rate,
            up_only: false,
            lookback_seconds: None,
            forecast_key,
            activation,
            saturation: None,
        });
    }

    let cfg = spec.indicators.as_ref();
    let latency = spec.signals.iter().find_map(|s| match s.kind() {
        Some(SignalKind::Latency(l)) => Some((s.name.clone(), l)),
        _ => None,
    });
    let mut indicators = IndicatorPlan {
        config: spec.indicators.clone(),
        p95_key: latency.as_ref().map(|(name, _)| name.clone()),
        ..Default::default()
    };
    if let Some(db) = cfg.and_then(|c| c.database_cpu.as_ref()) {
        let act = db.thresholds.act.unwrap_or(defaults::DATABASE_CPU_ACT);
        let window = or_secs(db.regularly_window, defaults::REGULARLY_WINDOW_SECONDS);
        indicators.database_cpu = Some(DatabaseCpuPlan {
            key: add(
                "databaseCpu".into(),
                "spec.indicators.databaseCpu.query".into(),
                Measure::DatabaseCpu(db.query.clone()),
                Shape::Instant,
            ),
            regularly_key: add(
                "databaseCpu/regularly".into(),
                "spec.indicators.databaseCpu (regularly)".into(),
                Measure::DatabaseCpuOverAct {
                    query: db.query.clone(),
                    act,
                    window,
                },
                Shape::Instant,
            ),
            act,
            regularly: db
                .regularly_fraction
                .unwrap_or(defaults::REGULARLY_FRACTION),
            window,
        });
    }
    let simple = [
        (
            "slowQuery",
            cfg.and_then(|c| c.slow_query.as_ref())
                .map(|c| Measure::SlowQuery(c.query.clone())),
        ),
        (
            "errorRate",
            cfg.and_then(|c| c.error_rate.as_ref())
                .map(|c| Measure::ErrorRate(c.query.clone())),
        ),
        (
            "connections",
            cfg.and_then(|c| c.connections.as_ref())
                .map(|c| Measure::Connections(c.query.clone())),
        ),
        (
            "queueAge",
            cfg.and_then(|c| c.queue_age.as_ref())
                .map(|c| Measure::QueueAge(c.query.clone())),
        ),
    ];
    for (name, measure) in simple {
        let Some(measure) = measure else { continue };
        let key = add(
            name.into(),
            format!("spec.indicators.{name}.query"),
            measure,
            Shape::Instant,
        );
        match name {
            "slowQuery" => indicators.slow_query = Some(key),
            "errorRate" => indicators.error_rate = Some(key),
            "connections" => indicators.connections = Some(key),
            _ => indicators.queue_age = Some(key),
        }
    }

    let guardrails = rules.map(|g| {
        let creeping = match (&g.creeping_latency, &latency) {
            (Some(rule), Some((name, l))) => {
                let window = or_secs(rule.window, defaults::CREEPING_WINDOW_SECONDS);
                let latency_key = add(
                    format!("creepingLatency/{name}"),
                    format!("spec.guardrails.creepingLatency ({name} trend)"),
                    Measure::Latency {
                        metric: l.metric.clone(),
                        selector: l.selector.clone(),
                        quantile: l.quantile,
                        window: l.window,
                    },
                    Shape::range(window),
                );
                let requests_key = add(
                    "creepingLatency/requests".into(),
                    "spec.guardrails.creepingLatency.requestRateQuery".into(),
                    Measure::RequestRate(rule.request_rate_query.clone()),
                    Shape::range(window),
                );
                Some(CreepingPlan {
                    signal: name.clone(),
                    target: l.target.as_secs_f64(),
                    startup_seconds: or_secs(rule.startup_time, defaults::CREEPING_STARTUP_SECONDS)
                        .as_secs_f64(),
                    latency_key,
                    requests_key,
                })
            }
            _ => None,
        };
        let budget = g.connection_budget.as_ref().map(|b| BudgetPlan {
            database: b.database.clone(),
            pool_size: b.pool_size_per_replica,
            max_connections: match (b.max_connections, &b.max_connections_query) {
                (Some(n), _) => MaxConnections::Fixed(n as f64),
                (None, q) => MaxConnections::Query(add(
                    "connectionBudget/maxConnections".into(),
                    "spec.guardrails.connectionBudget.maxConnectionsQuery".into(),
                    Measure::MaxConnections(q.clone().unwrap_or_default()),
                    Shape::Instant,
                )),
            },
            reserve: b.reserve.unwrap_or(defaults::BUDGET_RESERVE),
        });
        GuardrailPlan {
            database_hold: g.database_hold.unwrap_or(true),
            scale_down_margin: defaults::SCALE_DOWN_MARGIN,
            panic: panic.as_ref().map(|(p, _)| p.clone()),
            creeping,
            forecast_horizon_seconds: forecast_window.map(|(_, h)| h),
            schedule: schedule.clone(),
            budget,
            cost: g.cost.as_ref().map(|c| Cost {
                per_replica_hour: c.cost_per_replica_hour,
                max_hourly: c.max_hourly_cost,
            }),
        }
    });

    Plan {
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        mode: spec.mode,
        interval: spec.interval,
        tolerance: spec.tolerance.unwrap_or(defaults::TOLERANCE),
        behavior: spec.behavior.clone(),
        downscale_stabilization_seconds: defaults::DOWNSCALE_STABILIZATION_SECONDS,
        signals,
        indicators,
        guardrails,
        calibration_window: or_secs(
            spec.headroom.as_ref().and_then(|h| h.calibration_window),
            defaults::CALIBRATION_WINDOW_SECONDS,
        ),
        predictive: None,
        idle: (spec.min_replicas == 0).then(|| IdlePlan {
            cooldown_seconds: or_secs(spec.idle_cooldown, defaults::IDLE_COOLDOWN_SECONDS)
                .as_secs_f64(),
        }),
        queries,
    }
}

#[cfg(test)]
mod tests;
