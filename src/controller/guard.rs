//! Reads what the audit and the guardrails need, then applies them to the decision.

use std::time::Instant;

use jiff::Timestamp;

use super::Context;
use super::audit::{Audit, IndicatorReadings, audit};
use super::status::Reading;
use crate::api::{PromDuration, ScalingPolicy, SignalKind};
use crate::decision::guardrails::{
    Band, Claim, Cost, CreepingInput, ForecastInput, ForecastSeries, Guarded, GuardrailInput,
    PanicInput, ShortReading, Verdict, apply, cap, latency_trend, trend, usable, windows,
};
use crate::decision::{Decision, Input};
use crate::metrics::Prometheus;
use crate::metrics::promql::{self, TargetPods};

pub struct GuardOutcome {
    /// None when the policy has no `guardrails`: then it is exactly the HPA's decision.
    pub guarded: Option<Guarded>,
    pub audit: Audit,
    /// Inputs that could not be read or parsed, each naming its field.
    pub errors: Vec<String>,
}

async fn read(
    p: &Result<Prometheus, String>,
    q: &str,
    field: &str,
    errors: &mut Vec<String>,
) -> Option<f64> {
    let r = match p {
        Ok(p) => p.scalar(q).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    r.map_err(|e| errors.push(format!("{field}: {e}"))).ok()
}

#[allow(clippy::too_many_arguments)]
pub async fn evaluate(
    policy: &ScalingPolicy,
    ctx: &Context,
    ns: &str,
    key: &str,
    prometheus: &Result<Prometheus, String>,
    pods: &[String],
    input: &Input,
    base: &Decision,
    readings: &[Reading],
    now: Instant,
) -> GuardOutcome {
    let spec = &policy.spec;
    let mut errors = vec![];
    let latency = spec.signals.iter().find_map(|s| match s.kind() {
        Some(SignalKind::Latency(l)) => Some((s.name.clone(), l)),
        _ => None,
    });

    // The audit.
    let cfg = spec.indicators.as_ref();
    let mut r = IndicatorReadings {
        p95: latency.as_ref().map(|(name, _)| {
            readings
                .iter()
                .find(|r| &r.name == name)
                .and_then(|r| r.value.as_ref().ok().copied())
        }),
        ..Default::default()
    };
    if let Some(db) = cfg.and_then(|c| c.database_cpu.as_ref()) {
        let act = db.thresholds.act.unwrap_or(0.7);
        let window = db.regularly_window.unwrap_or(PromDuration::from_secs(1800));
        r.database_cpu = Some(
            read(
                prometheus,
                &db.query,
                "spec.indicators.databaseCpu.query",
                &mut errors,
            )
            .await,
        );
        let q = promql::fraction_over(&db.query, act, window);
        r.database_cpu_over_act = Some(
            read(
                prometheus,
                &q,
                "spec.indicators.databaseCpu (regularly)",
                &mut errors,
            )
            .await,
        );
    }
    let queries = [
        (
            cfg.and_then(|c| c.slow_query.as_ref()),
            "slowQuery",
            &mut r.slow_query,
        ),
        (
            cfg.and_then(|c| c.error_rate.as_ref()),
            "errorRate",
            &mut r.error_rate,
        ),
        (
            cfg.and_then(|c| c.connections.as_ref()),
            "connections",
            &mut r.connections,
        ),
    ];
    for (indicator, name, slot) in queries {
        if let Some(c) = indicator {
            let field = format!("spec.indicators.{name}.query");
            *slot = Some(read(prometheus, &c.query, &field, &mut errors).await);
        }
    }
    if let Some(c) = cfg.and_then(|c| c.queue_age.as_ref()) {
        r.queue_age = Some(
            read(
                prometheus,
                &c.query,
                "spec.indicators.queueAge.query",
                &mut errors,
            )
            .await,
        );
    }
    let mut audit = audit(cfg, &r);

    let Some(rules) = spec.guardrails.as_ref() else {
        return GuardOutcome {
            guarded: None,
            audit,
            errors,
        };
    };
    let mut trend_row = None;
    let mut g = GuardrailInput {
        now_unix: Timestamp::now().as_second(),
        database: audit.database.clone(),
        database_hold: rules.database_hold.unwrap_or(true),
        ..Default::default()
    };

    let panic = rules.panic.clone().unwrap_or_default();
    if panic.enabled != Some(false) {
        let stable = panic.stable_window.unwrap_or(PromDuration::from_secs(60));
        let short_window = PromDuration::from_millis(
            u64::try_from((stable.as_duration().as_millis() / 10).max(1000)).unwrap_or(1000),
        );
        let mut short = vec![];
        for (s, reading) in spec.signals.iter().zip(readings) {
            let Some(kind) = s.kind() else { continue };
            let short_query = match kind {
                SignalKind::Latency(l) => Some(promql::latency_over(ns, l, short_window)),
                SignalKind::Cpu(c) => {
                    let mut c = c.clone();
                    c.window = short_window;
                    Some(promql::cpu(ns, &c, &TargetPods { pods }))
                }
                // Backlogs and custom queries are instantaneous: the short window is the reading.
                _ => None,
            };
            let (target_type, target, value) = match short_query {
                Some(q) => {
                    let field = format!("signal {} (short window)", s.name);
                    let v = read(prometheus, &q.promql, &field, &mut errors).await;
                    (q.target_type, q.target, v)
                }
                None => {
                    let q = promql::render(ns, kind, &TargetPods { pods });
                    (
                        q.target_type,
                        q.target,
                        reading.value.as_ref().ok().copied(),
                    )
                }
            };
            let up_only = s.latency.is_some() && spec.signals.iter().any(|o| o.latency.is_none());
            short.push(ShortReading {
                name: s.name.clone(),
                target_type,
                target,
                value,
                up_only,
            });
        }
        g.panic = Some(PanicInput {
            threshold: panic.threshold.unwrap_or(2.0),
            stable_window_seconds: stable.as_secs_f64(),
            short,
            last_spike_age: ctx
                .histories
                .lock()
                .ok()
                .and_then(|h| h.last_spike_age(key, now)),
        });
    }

    if let (Some(rule), Some((name, l))) = (&rules.creeping_latency, &latency) {
        let window = rule.window.unwrap_or(PromDuration::from_secs(1800));
        let step = (window.as_secs_f64() / 30.0).max(1.0);
        let q = promql::latency(ns, l);
        let series = |p: &Result<Prometheus, String>, q: String| {
            let p = p.clone();
            async move {
                match p {
                    Ok(p) => p
                        .range(&q, window.as_secs_f64(), step)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                }
            }
        };
        let lat = series(prometheus, q.promql).await;
        let req = series(prometheus, rule.request_rate_query.clone()).await;
        match (lat, req) {
            (Ok(latency), Ok(requests)) => {
                let c = CreepingInput::new(
                    name.clone(),
                    l.target.as_secs_f64(),
                    rule.startup_time
                        .unwrap_or(PromDuration::from_secs(60))
                        .as_secs_f64(),
                    latency,
                    requests,
                );
                let (band, hint) = latency_trend(&c);
                trend_row = Some(crate::api::IndicatorStatus {
                    name: "latencyTrend".into(),
                    value: trend(&c.latency).map(|t| t.slope * 60.0),
                    band: band.as_str().into(),
                    hint,
                });
                g.creeping = Some(c);
            }
            (Err(e), _) => errors.push(format!(
                "spec.guardrails.creepingLatency ({name} trend): {e}"
            )),
            (_, Err(e)) => errors.push(format!(
                "spec.guardrails.creepingLatency.requestRateQuery: {e}"
            )),
        }
    }

    if let Some(f) = &rules.forecast {
        let window = f
            .window
            .unwrap_or(PromDuration::from_secs(300))
            .as_secs_f64();
        let mut series = vec![];
        for sig in &spec.signals {
            // Latency is not a sizing signal: it is never projected.
            let Some(kind @ (SignalKind::Cpu(_) | SignalKind::Queue(_) | SignalKind::Custom(_))) =
                sig.kind()
            else {
                continue;
            };
            let q = promql::render(ns, kind, &TargetPods { pods });
            let samples = match prometheus {
                Ok(p) => p
                    .range(&q.promql, window, (window / 30.0).max(1.0))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            match samples {
                Ok(samples) => series.push(ForecastSeries {
                    name: sig.name.clone(),
                    target_type: q.target_type,
                    target: q.target,
                    samples,
                }),
                Err(e) => errors.push(format!(
                    "spec.guardrails.forecast ({} trend): {e}",
                    sig.name
                )),
            }
        }
        g.forecast = Some(ForecastInput {
            horizon_seconds: f
                .horizon
                .unwrap_or(PromDuration::from_secs(90))
                .as_secs_f64(),
            min_t: 3.0,
            series,
        });
    }

    for (i, w) in rules.schedule.iter().enumerate() {
        g.schedule.extend(windows(w, i, g.now_unix, &mut errors));
    }

    if let Some(c) = &rules.cost {
        g.cost = Some(Cost {
            per_replica_hour: c.cost_per_replica_hour,
            max_hourly: c.max_hourly_cost,
        });
    }

    let mut guarded = apply(base, input, &g);
    if let Some(b) = &rules.connection_budget {
        let max = match (&b.max_connections, &b.max_connections_query) {
            (Some(n), _) => Some(*n as f64),
            (None, Some(q)) => {
                read(
                    prometheus,
                    q,
                    "spec.guardrails.connectionBudget.maxConnectionsQuery",
                    &mut errors,
                )
                .await
            }
            (None, None) => {
                errors.push(
                    "spec.guardrails.connectionBudget: set maxConnections or maxConnectionsQuery"
                        .into(),
                );
                None
            }
        };
        if let Some(max) = max {
            let budget = usable(max, b.reserve.unwrap_or(0.1));
            let me = Claim {
                name: key.to_string(),
                pool_size: b.pool_size_per_replica,
                held: input.current_replicas,
                need: guarded.desired,
            };
            let pool_key = format!("{ns}/{}", b.database);
            // One decision at a time per database: the ledger is what every policy sharing it
            // holds right now, fresher than their status. The lock is never held across I/O.
            if let Ok(mut ledger) = ctx.budgets.lock() {
                let entries = ledger.entry(pool_key).or_default();
                let mut others: Vec<Claim> = entries
                    .values()
                    .filter(|c| c.name != me.name)
                    .cloned()
                    .collect();
                for c in others_from_status(ctx, policy, ns, &b.database) {
                    if !others.iter().any(|o| o.name == c.name) {
                        others.push(c);
                    }
                }
                g.budget_cap = Some(cap(budget, &me, &others));
                guarded = apply(base, input, &g);
                let held = input.current_replicas.max(guarded.desired);
                entries.insert(me.name.clone(), Claim { held, ..me });
            }
        }
    }
    if guarded.spike_now
        && let Ok(mut h) = ctx.histories.lock()
    {
        h.record_spike(key, now);
    }
    if let Some(row) = trend_row {
        audit.rows.push(row);
        audit.verdict = Some(Verdict::of(audit.rows.iter().map(|r| band_of(&r.band))));
    }
    GuardOutcome {
        guarded: Some(guarded),
        audit,
        errors,
    }
}

/// Claims of the other policies in `ns` naming the same database, from their last status
/// (after a restart, before the ledger knows them). What they hold is counted high.
fn others_from_status(ctx: &Context, me: &ScalingPolicy, ns: &str, database: &str) -> Vec<Claim> {
    let Some(store) = ctx.policies.get() else {
        return vec![];
    };
    store
        .state()
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name != me.metadata.name
        })
        .filter_map(|p| {
            let b = p.spec.guardrails.as_ref()?.connection_budget.as_ref()?;
            (b.database == database).then_some(())?;
            let status = p.status.as_ref();
            let current = status.and_then(|s| s.current_replicas).unwrap_or(0);
            let desired = status.and_then(|s| s.desired_replicas).unwrap_or(current);
            Some(Claim {
                name: format!("{ns}/{}", p.metadata.name.clone().unwrap_or_default()),
                pool_size: b.pool_size_per_replica,
                held: current.max(desired),
                need: desired,
            })
        })
        .collect()
}

fn band_of(s: &str) -> Band {
    match s {
        "Healthy" => Band::Healthy,
        "Watch" => Band::Watch,
        "Act" => Band::Act,
        _ => Band::Unknown,
    }
}
