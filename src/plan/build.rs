//! A valid spec made into a plan: each part of the spec its own function, each adding the
//! queries it reads to one list, in the order the spec names them.

use super::defaults;
use super::{
    BudgetPlan, Cost, CreepingPlan, DatabaseCpuPlan, GuardrailPlan, IdlePlan, IndicatorPlan,
    MaxConnections, Measure, PanicPlan, Plan, PlannedSignal, Query, SaturationPlan, ScheduleEntry,
    Shape,
};
use crate::api::{
    CpuSignal, CreepingLatencyRule, Guardrails, Indicators, LatencySignal, PromDuration,
    ScalingPolicySpec, Signal, SignalKind, TargetType,
};

pub(super) fn or_secs(d: Option<PromDuration>, default: u64) -> PromDuration {
    d.unwrap_or(PromDuration::from_secs(default))
}

/// The plan's queries, in the order they were added; `add` returns the key.
#[derive(Default)]
struct Queries(Vec<Query>);

impl Queries {
    fn add(&mut self, key: String, field: String, measure: Measure, shape: Shape) -> String {
        self.0.push(Query {
            key: key.clone(),
            field,
            measure,
            shape,
        });
        key
    }
}

/// What every signal's planning needs to know of the guardrails.
struct Windows {
    /// Panic and its short window.
    panic: Option<(PanicPlan, PromDuration)>,
    /// The trend forecast's window and horizon (seconds).
    forecast: Option<(PromDuration, f64)>,
}

pub(super) fn build(spec: &ScalingPolicySpec, schedule: Vec<ScheduleEntry>) -> Plan {
    let mut q = Queries::default();
    let rules = spec.guardrails.as_ref();
    let windows = Windows {
        panic: rules.and_then(panic),
        forecast: rules.and_then(|g| g.forecast.as_ref()).map(|f| {
            (
                or_secs(f.window, defaults::FORECAST_WINDOW_SECONDS),
                or_secs(f.horizon, defaults::FORECAST_HORIZON_SECONDS).as_secs_f64(),
            )
        }),
    };
    let mut signals = planned_signals(spec, &windows, &mut q);
    signals.extend(arrival_signals(spec, &windows, &mut q));
    let latency = first_latency(spec);
    let indicators = indicators(spec, latency.as_ref().map(|(n, _)| n.clone()), &mut q);
    let guardrails = rules.map(|g| guardrails(g, &windows, latency, schedule, &mut q));
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
        queries: q.0,
    }
}

fn panic(g: &Guardrails) -> Option<(PanicPlan, PromDuration)> {
    let p = g.panic.clone().unwrap_or_default();
    if p.enabled == Some(false) {
        return None;
    }
    let stable = or_secs(p.stable_window, defaults::PANIC_STABLE_WINDOW_SECONDS);
    let short_ms = (stable.as_duration() / defaults::PANIC_SHORT_WINDOW_FRACTION)
        .as_millis()
        .max(1000);
    let short = PromDuration::from_millis(u64::try_from(short_ms).unwrap_or(u64::MAX));
    let plan = PanicPlan {
        threshold: p.threshold.unwrap_or(defaults::PANIC_THRESHOLD),
        stable_window_seconds: stable.as_secs_f64(),
    };
    Some((plan, short))
}

/// How a signal is read and sized: its field name, measure, target type, target and the
/// window its reading covers.
fn reading(kind: &SignalKind<'_>) -> (&'static str, Measure, TargetType, f64, Option<f64>) {
    match kind {
        SignalKind::Latency(l) => (
            "latency",
            latency_measure(l),
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
    }
}

fn latency_measure(l: &LatencySignal) -> Measure {
    Measure::Latency {
        metric: l.metric.clone(),
        selector: l.selector.clone(),
        quantile: l.quantile,
        window: l.window,
    }
}

fn planned_signals(spec: &ScalingPolicySpec, w: &Windows, q: &mut Queries) -> Vec<PlannedSignal> {
    let has_sizing = spec.signals.iter().any(|s| s.latency.is_none());
    spec.signals
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some(planned_signal(i, s, s.kind()?, has_sizing, w, q)))
        .collect()
}

fn planned_signal(
    i: usize,
    s: &Signal,
    kind: SignalKind<'_>,
    has_sizing: bool,
    w: &Windows,
    q: &mut Queries,
) -> PlannedSignal {
    let activation = match kind {
        SignalKind::Queue(q) => Some(q.activation_threshold.unwrap_or(0.0)),
        SignalKind::Custom(c) => Some(c.activation_threshold.unwrap_or(0.0)),
        _ => None,
    };
    let (field, measure, target_type, target, lookback) = reading(&kind);
    let field = format!("spec.signals[{i}].{field}");
    let is_latency = matches!(kind, SignalKind::Latency(_));
    let key = q.add(
        s.name.clone(),
        field.clone(),
        measure.clone(),
        Shape::Instant,
    );
    // Templated windows are re-read over the short window; backlogs and raw queries are
    // instantaneous, so their reading is the short one.
    let short_key = w.panic.as_ref().map(|(_, short)| match kind {
        SignalKind::Latency(_) | SignalKind::Cpu(_) | SignalKind::Concurrency(_) => q.add(
            format!("{}@short", s.name),
            format!("{field} (panic short window)"),
            measure.over(super::short_window(&measure, *short)),
            Shape::Instant,
        ),
        _ => key.clone(),
    });
    let saturation = match kind {
        SignalKind::Cpu(c) => saturation(c, &s.name, &field, q),
        _ => None,
    };
    // Latency is not a sizing signal: it is never projected.
    let forecast_key = w.forecast.filter(|_| !is_latency).map(|(window, _)| {
        q.add(
            format!("forecast/{}", s.name),
            format!("spec.guardrails.forecast ({} trend)", s.name),
            measure.clone(),
            Shape::range(window),
        )
    });
    PlannedSignal {
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
    }
}

/// A CPU signal's saturation readings, unless turned off; over the signal's own window.
fn saturation(cpu: &CpuSignal, name: &str, field: &str, q: &mut Queries) -> Option<SaturationPlan> {
    let s = cpu.saturation.clone().unwrap_or_default();
    if s.enabled == Some(false) {
        return None;
    }
    let percent = |p: Option<i32>, default: f64| p.map_or(default, |p| f64::from(p) / 100.0);
    let window = cpu.window;
    Some(SaturationPlan {
        throttled_key: q.add(
            format!("{name}/throttled"),
            format!("{field}.saturation (throttled periods)"),
            Measure::CpuThrottled { window },
            Shape::Instant,
        ),
        pressure_key: q.add(
            format!("{name}/pressure"),
            format!("{field}.saturation (CPU pressure)"),
            Measure::CpuPressure { window },
            Shape::Instant,
        ),
        throttled: percent(s.throttled_percent, defaults::THROTTLED_SATURATED),
        pressure: percent(s.pressure_percent, defaults::PRESSURE_SATURATED),
    })
}

/// Queues with an arrival rate get a second, sizing reading: replicas to keep up.
fn arrival_signals(spec: &ScalingPolicySpec, w: &Windows, q: &mut Queries) -> Vec<PlannedSignal> {
    let mut out = vec![];
    for (i, s) in spec.signals.iter().enumerate() {
        let Some(queue) = &s.queue else { continue };
        let (Some(query), Some(rate)) = (&queue.arrival_rate_query, queue.rate_per_replica) else {
            continue;
        };
        let name = format!("{}-arrivals", s.name);
        let measure = Measure::ArrivalRate(query.clone());
        let key = q.add(
            name.clone(),
            format!("spec.signals[{i}].queue.arrivalRateQuery"),
            measure.clone(),
            Shape::Instant,
        );
        let forecast_key = w.forecast.map(|(window, _)| {
            q.add(
                format!("forecast/{name}"),
                format!("spec.guardrails.forecast ({name} trend)"),
                measure,
                Shape::range(window),
            )
        });
        out.push(PlannedSignal {
            name,
            short_key: w.panic.as_ref().map(|_| key.clone()),
            key,
            kind: "queue",
            target_type: TargetType::AverageValue,
            target: rate,
            up_only: false,
            lookback_seconds: None,
            forecast_key,
            // Any arrival is demand, unless the user set the backlog that is.
            activation: queue.activation_threshold.is_none().then_some(0.0),
            saturation: None,
        });
    }
    out
}

fn first_latency(spec: &ScalingPolicySpec) -> Option<(String, &LatencySignal)> {
    spec.signals.iter().find_map(|s| match s.kind() {
        Some(SignalKind::Latency(l)) => Some((s.name.clone(), l)),
        _ => None,
    })
}

fn indicators(spec: &ScalingPolicySpec, p95: Option<String>, q: &mut Queries) -> IndicatorPlan {
    let cfg = spec.indicators.as_ref();
    let mut plan = IndicatorPlan {
        config: spec.indicators.clone(),
        p95_key: p95,
        database_cpu: cfg.and_then(|c| database_cpu(c, q)),
        ..Default::default()
    };
    // One row a reading: its name, its query, its measure and where its key goes.
    type Row<'a> = (
        &'static str,
        Option<&'a String>,
        fn(String) -> Measure,
        &'a mut Option<String>,
    );
    let simple: [Row; 5] = [
        (
            "slowQuery",
            cfg.and_then(|c| c.slow_query.as_ref()).map(|c| &c.query),
            Measure::SlowQuery,
            &mut plan.slow_query,
        ),
        (
            "errorRate",
            cfg.and_then(|c| c.error_rate.as_ref()).map(|c| &c.query),
            Measure::ErrorRate,
            &mut plan.error_rate,
        ),
        (
            "connections",
            cfg.and_then(|c| c.connections.as_ref()).map(|c| &c.query),
            Measure::Connections,
            &mut plan.connections,
        ),
        (
            "poolWait",
            cfg.and_then(|c| c.pool_wait.as_ref()).map(|c| &c.query),
            Measure::PoolWait,
            &mut plan.pool_wait,
        ),
        (
            "queueAge",
            cfg.and_then(|c| c.queue_age.as_ref()).map(|c| &c.query),
            Measure::QueueAge,
            &mut plan.queue_age,
        ),
    ];
    for (name, query, measure, key) in simple {
        let Some(query) = query else { continue };
        *key = Some(q.add(
            name.into(),
            format!("spec.indicators.{name}.query"),
            measure(query.clone()),
            Shape::Instant,
        ));
    }
    plan
}

fn database_cpu(cfg: &Indicators, q: &mut Queries) -> Option<DatabaseCpuPlan> {
    let db = cfg.database_cpu.as_ref()?;
    let act = db.thresholds.act.unwrap_or(defaults::DATABASE_CPU_ACT);
    let window = or_secs(db.regularly_window, defaults::REGULARLY_WINDOW_SECONDS);
    Some(DatabaseCpuPlan {
        key: q.add(
            "databaseCpu".into(),
            "spec.indicators.databaseCpu.query".into(),
            Measure::DatabaseCpu(db.query.clone()),
            Shape::Instant,
        ),
        regularly_key: q.add(
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
    })
}

fn guardrails(
    g: &Guardrails,
    w: &Windows,
    latency: Option<(String, &LatencySignal)>,
    schedule: Vec<ScheduleEntry>,
    q: &mut Queries,
) -> GuardrailPlan {
    let creeping = match (&g.creeping_latency, latency) {
        (Some(rule), Some((name, l))) => Some(creeping(rule, &name, l, q)),
        _ => None,
    };
    let budget = g.connection_budget.as_ref().map(|b| BudgetPlan {
        database: b.database.clone(),
        pool_size: b.pool_size_per_replica,
        max_connections: match (b.max_connections, &b.max_connections_query) {
            (Some(n), _) => MaxConnections::Fixed(n as f64),
            (None, query) => MaxConnections::Query(q.add(
                "connectionBudget/maxConnections".into(),
                "spec.guardrails.connectionBudget.maxConnectionsQuery".into(),
                Measure::MaxConnections(query.clone().unwrap_or_default()),
                Shape::Instant,
            )),
        },
        reserve: b.reserve.unwrap_or(defaults::BUDGET_RESERVE),
    });
    GuardrailPlan {
        database_hold: g.database_hold.unwrap_or(true),
        scale_down_margin: defaults::SCALE_DOWN_MARGIN,
        panic: w.panic.as_ref().map(|(p, _)| p.clone()),
        creeping,
        forecast_horizon_seconds: w.forecast.map(|(_, h)| h),
        schedule,
        budget,
        cost: g.cost.as_ref().map(|c| Cost {
            per_replica_hour: c.cost_per_replica_hour,
            max_hourly: c.max_hourly_cost,
        }),
    }
}

fn creeping(
    rule: &CreepingLatencyRule,
    name: &str,
    l: &LatencySignal,
    q: &mut Queries,
) -> CreepingPlan {
    let window = or_secs(rule.window, defaults::CREEPING_WINDOW_SECONDS);
    let latency_key = q.add(
        format!("creepingLatency/{name}"),
        format!("spec.guardrails.creepingLatency ({name} trend)"),
        latency_measure(l),
        Shape::range(window),
    );
    let requests_key = q.add(
        "creepingLatency/requests".into(),
        "spec.guardrails.creepingLatency.requestRateQuery".into(),
        Measure::RequestRate(rule.request_rate_query.clone()),
        Shape::range(window),
    );
    CreepingPlan {
        signal: name.to_string(),
        target: l.target.as_secs_f64(),
        startup_seconds: or_secs(rule.startup_time, defaults::CREEPING_STARTUP_SECONDS)
            .as_secs_f64(),
        latency_key,
        requests_key,
    }
}
