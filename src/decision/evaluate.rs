//! One evaluation: a plan and what was observed in, the whole decision out (the HPA core,
//! the guardrails and the audit). Pure: the operator, `simulate` and `decide` all call this.

use super::audit::{IndicatorReadings, audit};
use super::guardrails::{
    self, AppCpu, Band, Budget, Claim, CreepingInput, DatabaseEvidence, Finding, ForecastInput,
    ForecastSeries, GuardrailInput, PanicInput, PredictedPeak, PredictedRise, ShortReading,
    Verdict, latency_trend, trend, usable,
};
use super::saturation::{self, Stall};
use super::{Decision, History, Input, Limit, SignalReading, SignalValue, idle};
use crate::api::IndicatorStatus;
use crate::plan::{MaxConnections, Observation, Plan, QueryError, defaults};

/// The target as it is now, and the calendar time if there is one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moment {
    /// Unix seconds; schedules apply only with a calendar.
    pub unix: Option<i64>,
    pub current_replicas: i32,
    pub ready_replicas: i32,
}

/// What the caller remembers of this policy between evaluations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    pub history: History,
    /// Seconds since panic mode last saw a spike.
    pub last_spike_age: Option<f64>,
    /// This policy's name in the connection-budget ledger, and the others' claims there.
    pub budget_name: String,
    pub neighbours: Vec<Claim>,
    /// The learned pattern's peak ahead, when predictive scaling is on and trusts it.
    pub predicted: Option<PredictedPeak>,
    /// minReplicas 0: seconds the evaluations before this one have been idle without a break.
    pub idle_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub decision: Decision,
    pub readings: Vec<SignalReading>,
    pub findings: Vec<Finding>,
    pub indicators: Vec<IndicatorStatus>,
    pub verdict: Option<Verdict>,
    /// Guardrail and indicator inputs that could not be read, each naming its field.
    pub errors: Vec<String>,
    pub hourly_cost: Option<f64>,
    /// A spike was seen now (remember when).
    pub spike_now: bool,
    /// What to record in the connection-budget ledger.
    pub budget_claim: Option<Claim>,
    /// The replicas the predicted rise asks for, set or (in Observe) only reported.
    pub predicted: Option<i32>,
    /// minReplicas 0: this evaluation saw no demand on valid readings (remember since when).
    pub idle: bool,
}

impl Evaluation {
    /// A decision and its readings, with nothing found yet.
    pub fn new(decision: Decision, readings: Vec<SignalReading>) -> Self {
        Evaluation {
            decision,
            readings,
            findings: vec![],
            indicators: vec![],
            verdict: None,
            errors: vec![],
            hourly_cost: None,
            spike_now: false,
            budget_claim: None,
            predicted: None,
            idle: false,
        }
    }
}

/// A sizing reading: negative values are invalid, never a reason to scale down.
fn reading(obs: &Observation, key: &str) -> Result<f64, QueryError> {
    match obs.value(key) {
        Ok(v) if v < 0.0 => Err(QueryError::Negative(v)),
        other => other,
    }
}

fn optional(obs: &Observation, key: &str, field: &str, errors: &mut Vec<String>) -> Option<f64> {
    reading(obs, key)
        .map_err(|e| errors.push(format!("{field}: {e}")))
        .ok()
}

fn field_of<'a>(plan: &'a Plan, key: &'a str) -> &'a str {
    plan.queries()
        .iter()
        .find(|q| q.key == key)
        .map_or(key, |q| q.field.as_str())
}

/// What each CPU signal's pods read of throttling and pressure (None for other signals).
fn stalls(plan: &Plan, obs: &Observation) -> Vec<Option<Stall>> {
    plan.signals
        .iter()
        .map(|s| {
            s.saturation.as_ref().map(|p| Stall {
                throttled: obs.value(&p.throttled_key).ok(),
                pressure: obs.value(&p.pressure_key).ok(),
            })
        })
        .collect()
}

/// Each signal's reading; a saturated CPU signal's raised to what its stall says.
fn signal_readings(plan: &Plan, obs: &Observation, stalls: &[Option<Stall>]) -> Vec<SignalReading> {
    plan.signals
        .iter()
        .zip(stalls)
        .map(|(s, stall)| {
            let stalled = s
                .saturation
                .as_ref()
                .zip(stall.as_ref())
                .and_then(|(p, st)| st.stalled(p));
            SignalReading {
                name: s.name.clone(),
                kind: s.kind,
                target: s.target,
                value: saturation::cpu_reading(reading(obs, &s.key), s.target, stalled),
            }
        })
        .collect()
}

/// The audit's rows for saturated pods, and a finding for each saturated signal.
fn saturation_audit(
    plan: &Plan,
    obs: &Observation,
    stalls: &[Option<Stall>],
) -> (Vec<IndicatorStatus>, Vec<Finding>) {
    let (mut rows, mut findings) = (vec![], vec![]);
    for (s, stall) in plan.signals.iter().zip(stalls) {
        let (Some(p), Some(stall)) = (&s.saturation, stall) else {
            continue;
        };
        let utilization = reading(obs, &s.key).ok();
        rows.extend(saturation::row(&s.name, stall, p, utilization));
        if let Some(sat) = stall.saturated(p) {
            findings.push(Finding {
                reason: "CpuSaturated",
                active: true,
                message: format!("{}: {}", s.name, saturation::message(&sat, utilization)),
            });
        }
    }
    (rows, findings)
}

pub fn evaluate(plan: &Plan, obs: &Observation, memory: &Memory, at: &Moment) -> Evaluation {
    let stalls = stalls(plan, obs);
    let readings = signal_readings(plan, obs, &stalls);
    let input = Input {
        min_replicas: plan.min_replicas,
        max_replicas: plan.max_replicas,
        behavior: plan.behavior.clone(),
        tolerance: super::Tolerance::uniform(plan.tolerance).with_down_margin(
            plan.guardrails
                .as_ref()
                .map_or(0.0, |g| g.scale_down_margin),
        ),
        current_replicas: at.current_replicas,
        ready_replicas: at.ready_replicas,
        signals: plan
            .signals
            .iter()
            .zip(&readings)
            .map(|(s, r)| SignalValue {
                name: s.name.clone(),
                target_type: s.target_type,
                target: s.target,
                value: r.value.as_ref().ok().copied(),
                up_only: s.up_only,
                lookback_seconds: s.lookback_seconds,
            })
            .collect(),
        history: memory.history.clone(),
        downscale_stabilization_seconds: plan.downscale_stabilization_seconds,
    };
    let (mut decision, idle_now) = decide(plan, &input, &readings, memory);
    // Through an outage the window keeps the count that is running, so the first readings
    // after it cannot scale down at once.
    if decision.limited_by == Limit::MetricsUnavailable && decision.recommendation.is_none() {
        decision.recommendation = Some(at.current_replicas);
    }
    let mut errors = vec![];

    // The audit.
    let ind = &plan.indicators;
    let opt = |key: &Option<String>, errors: &mut Vec<String>| {
        key.as_ref()
            .map(|k| optional(obs, k, field_of(plan, k), errors))
    };
    let mut r = IndicatorReadings {
        p95: ind.p95_key.as_ref().map(|k| {
            readings
                .iter()
                .find(|r| &r.name == k)
                .and_then(|r| r.value.as_ref().ok().copied())
        }),
        slow_query: opt(&ind.slow_query, &mut errors),
        error_rate: opt(&ind.error_rate, &mut errors),
        connections: opt(&ind.connections, &mut errors),
        pool_wait: opt(&ind.pool_wait, &mut errors),
        queue_age: opt(&ind.queue_age, &mut errors),
        ..Default::default()
    };
    if let Some(db) = &ind.database_cpu {
        r.database_cpu = Some(optional(obs, &db.key, field_of(plan, &db.key), &mut errors));
        r.database_cpu_over_act = Some(optional(
            obs,
            &db.regularly_key,
            field_of(plan, &db.regularly_key),
            &mut errors,
        ));
    }
    let mut audit = audit(ind.config.as_ref(), &r);

    let mut out = Evaluation::new(decision.clone(), readings);
    out.idle = idle_now;
    if plan.guardrails.is_some() || memory.predicted.is_some() {
        let mut g = guardrail_input(plan, obs, memory, at, audit.database.clone(), &mut errors);
        g.predicted = predicted_rise(plan, obs, memory, &mut errors);
        if let Some(c) = &g.creeping {
            let (band, hint) = latency_trend(c);
            audit.rows.push(IndicatorStatus {
                name: "latencyTrend".into(),
                value: trend(&c.latency).map(|t| t.slope * 60.0),
                band: band.as_str().into(),
                hint,
            });
            audit.verdict = Some(Verdict::of(audit.rows.iter().map(|r| band_of(&r.band))));
        }
        let guarded = guardrails::apply(&decision, &input, &g);
        // A raise is this evaluation's recommendation: remembered for stabilization, so the
        // next evaluation does not undo it at once.
        if guarded.desired > decision.desired_replicas {
            decision.recommendation = decision.recommendation.map(|r| r.max(guarded.desired));
        }
        decision.desired_replicas = guarded.desired;
        decision.limited_by = guarded.limited_by;
        decision.reason = guarded.reason;
        out.findings = guarded.findings;
        out.hourly_cost = guarded.hourly_cost;
        out.spike_now = guarded.spike_now;
        out.budget_claim = guarded.budget_claim;
        out.predicted = guarded.predicted;
    }
    out.decision = safe(decision, &input, &out.readings);
    let (rows, findings) = saturation_audit(plan, obs, &stalls);
    if !rows.is_empty() {
        audit.rows.extend(rows);
        audit.verdict = Some(Verdict::of(audit.rows.iter().map(|r| band_of(&r.band))));
    }
    out.findings.extend(findings);
    out.indicators = audit.rows;
    out.verdict = audit.verdict;
    out.errors = errors;
    out
}

/// The HPA's decision, or with minReplicas 0, the start from zero and the return to it (the
/// HPA's decision over one replica and more in between). Also whether this evaluation is idle.
fn decide(
    plan: &Plan,
    input: &Input,
    readings: &[SignalReading],
    memory: &Memory,
) -> (Decision, bool) {
    let Some(idle_plan) = plan.idle else {
        return (super::decide(input), false);
    };
    let demand = idle::demand(&plan.signals, readings);
    if input.current_replicas == 0 {
        let proposals = super::proposals(input);
        return (
            idle::from_zero(&demand, proposals, input.max_replicas),
            demand == idle::Demand::None,
        );
    }
    let mut decision = super::decide(&Input {
        min_replicas: input.min_replicas.max(1),
        ..input.clone()
    });
    let idle_now = idle::is_idle(&demand, readings, &decision.proposals);
    idle::deactivate(&mut decision, idle_plan, idle_now, memory.idle_seconds);
    (decision, idle_now)
}

/// The invariants every rule answers to: within [min, max] unless scaling is disabled, and
/// never below the current count while a reading is missing.
fn safe(mut d: Decision, input: &Input, readings: &[SignalReading]) -> Decision {
    if d.limited_by == Limit::ScalingDisabled {
        return d;
    }
    let current = input.current_replicas;
    if readings.iter().any(|r| r.value.is_err()) && d.desired_replicas < current {
        d.desired_replicas = current.min(input.max_replicas);
        d.limited_by = Limit::MetricsUnavailable;
        d.reason = format!("a signal could not be read; holding {current} replicas");
    }
    d.desired_replicas = d
        .desired_replicas
        .clamp(input.min_replicas, input.max_replicas);
    d
}

fn guardrail_input(
    plan: &Plan,
    obs: &Observation,
    memory: &Memory,
    at: &Moment,
    database: Option<DatabaseEvidence>,
    errors: &mut Vec<String>,
) -> GuardrailInput {
    let Some(rules) = &plan.guardrails else {
        return GuardrailInput::default();
    };
    let mut g = GuardrailInput {
        now_unix: at.unix.unwrap_or_default(),
        database,
        database_hold: rules.database_hold,
        app_cpu: plan.signals.iter().find(|s| s.kind == "cpu").and_then(|s| {
            Some(AppCpu {
                percent: reading(obs, &s.key).ok()?,
                target: s.target,
            })
        }),
        ..Default::default()
    };
    if let Some(p) = &rules.panic {
        let short = plan
            .signals
            .iter()
            .filter_map(|s| {
                let key = s.short_key.as_ref()?;
                let value = if *key == s.key {
                    reading(obs, key).ok()
                } else {
                    optional(obs, key, field_of(plan, key), errors)
                };
                Some(ShortReading {
                    name: s.name.clone(),
                    target_type: s.target_type,
                    target: s.target,
                    value,
                    up_only: s.up_only,
                })
            })
            .collect();
        g.panic = Some(PanicInput {
            threshold: p.threshold,
            stable_window_seconds: p.stable_window_seconds,
            short,
            last_spike_age: memory.last_spike_age,
        });
    }
    if let Some(c) = &rules.creeping {
        match (obs.series(&c.latency_key), obs.series(&c.requests_key)) {
            (Ok(latency), Ok(requests)) => {
                g.creeping = Some(CreepingInput {
                    signal: c.signal.clone(),
                    target: c.target,
                    startup_seconds: c.startup_seconds,
                    min_t: defaults::TREND_MIN_T,
                    flat_load: defaults::FLAT_LOAD,
                    latency,
                    requests,
                });
            }
            (Err(e), _) => errors.push(format!("{}: {e}", field_of(plan, &c.latency_key))),
            (_, Err(e)) => errors.push(format!("{}: {e}", field_of(plan, &c.requests_key))),
        }
    }
    if let Some(horizon) = rules.forecast_horizon_seconds {
        let series = plan
            .signals
            .iter()
            .filter_map(|s| {
                let key = s.forecast_key.as_ref()?;
                obs.series(key)
                    .map_err(|e| errors.push(format!("{}: {e}", field_of(plan, key))))
                    .ok()
                    .map(|samples| ForecastSeries {
                        name: s.name.clone(),
                        target_type: s.target_type,
                        target: s.target,
                        samples,
                    })
            })
            .collect();
        g.forecast = Some(ForecastInput {
            horizon_seconds: horizon,
            min_t: defaults::TREND_MIN_T,
            series,
        });
    }
    if let Some(now) = at.unix {
        g.schedule = rules
            .schedule
            .iter()
            .flat_map(|w| w.windows_at(now))
            .collect();
    }
    g.cost = rules.cost;
    if let Some(b) = &rules.budget {
        let max = match &b.max_connections {
            MaxConnections::Fixed(n) => Some(*n),
            MaxConnections::Query(key) => optional(obs, key, field_of(plan, key), errors),
        };
        // Unread, the budget holds growth: it may already be used up.
        g.budget = Some(Budget {
            usable: max.map(|m| usable(m, b.reserve)),
            name: memory.budget_name.clone(),
            pool_size: b.pool_size,
            others: memory.neighbours.clone(),
        });
    }
    g
}

/// The predicted peak over the load read now; nothing when the load cannot be read.
fn predicted_rise(
    plan: &Plan,
    obs: &Observation,
    memory: &Memory,
    errors: &mut Vec<String>,
) -> Option<PredictedRise> {
    let (p, settings) = (memory.predicted.as_ref()?, plan.predictive.as_ref()?);
    let key = crate::plan::predictive::LOAD_KEY;
    let now = optional(obs, key, field_of(plan, key), errors).filter(|v| v.is_finite())?;
    let rise = if now > 0.0 {
        p.peak / now
    } else if p.peak > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let pattern_rise = if p.level > 0.0 { p.peak / p.level } else { 1.0 };
    Some(PredictedRise {
        rise: rise.min(settings.settings.max_rise),
        pattern_rise,
        horizon_seconds: p.horizon_seconds,
        pattern: p.pattern.clone(),
        min_rise: p.min_rise,
        tolerance: plan.tolerance,
        enforce: p.enforce,
    })
}

fn band_of(s: &str) -> Band {
    match s {
        "Healthy" => Band::Healthy,
        "Watch" => Band::Watch,
        "Act" => Band::Act,
        _ => Band::Unknown,
    }
}
