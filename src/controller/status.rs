//! Builds the policy's status from one evaluation. Pure, so every condition is unit-tested.

use crate::api::{
    BudgetOrphanStatus, Condition, ConditionStatus, HeadroomStatus, IndicatorStatus, Mode,
    PredictiveStatus, ScalingPolicyStatus, SignalStatus,
};
use crate::decision::{Decision, Evaluation, Limit, SignalReading};

/// What happened in one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Paused,
    /// The spec cannot be acted on; the message names every field.
    Invalid {
        message: String,
    },
    /// Another policy or an HPA already scales the same target.
    Conflict {
        message: String,
    },
    /// The target could not be read (missing, forbidden, no scale subresource).
    TargetUnavailable {
        message: String,
    },
    Decided {
        mode: Mode,
        current: i32,
        evaluation: Box<Evaluation>,
        /// Set when the operator's floor (--min-interval) raised spec.interval: what it runs at.
        interval: Option<String>,
        /// Deleted sharers of its connection budget whose targets still run.
        orphans: Vec<BudgetOrphanStatus>,
    },
}

fn condition(type_: &str, ok: bool, reason: &str, message: impl Into<String>) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
        observed_generation: None,
    }
}

/// A reading at display precision (3 significant digits): a value that jitters in its fourth
/// digit (49.98 → 50.02 stays 50.0) is not a change worth an etcd write.
pub fn display(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    // A slope or rate that is zero but for float noise (1e-33) is zero: shown otherwise, it
    // flips between 0 and noise and each flip is a write.
    if v.abs() < NOISE {
        return 0.0;
    }
    let digits = 3 - 1 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// Below this a reading is float noise around zero.
const NOISE: f64 = 1e-9;

/// A reading as shown: the previous one while the new one is within 5 % of it (a rate read
/// from Prometheus wanders by a few percent from one evaluation to the next, and any fixed
/// rounding has edges it crosses), otherwise the new one at display precision. Decisions use
/// the exact reading; this is only what status says.
const SHOWN_WITHIN: f64 = 0.05;

fn shown(prev: Option<f64>, new: f64) -> f64 {
    match prev {
        Some(p) if (new - p).abs() <= SHOWN_WITHIN * p.abs().max(new.abs()) => p,
        _ => display(new),
    }
}

/// The status to write after `outcome`, with the traffic headroom estimate (an invalid or
/// paused policy has none); None when it would say nothing `prev` does not at display
/// precision, numbers in messages aside.
pub fn to_write(
    prev: Option<&ScalingPolicyStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: &str,
    last_scale_time: Option<String>,
    headroom: Option<HeadroomStatus>,
    predictive: Option<PredictiveStatus>,
) -> Option<ScalingPolicyStatus> {
    let mut next = build(prev, generation, outcome, now, last_scale_time);
    if !matches!(outcome, Outcome::Invalid { .. } | Outcome::Paused) {
        next.headroom = headroom;
        next.predictive = predictive;
    }
    super::bounded::bound(&mut next);
    let unchanged = !changed(prev, &next) || prev.is_some_and(|p| same_but_numbers(p, &next));
    (!unchanged).then_some(next)
}

/// Whether `next` says anything `prev` does not: only then is it written.
pub fn changed(prev: Option<&ScalingPolicyStatus>, next: &ScalingPolicyStatus) -> bool {
    prev != Some(next)
}

/// The next status. `now` is RFC 3339; conditions keep their transition time while unchanged.
pub fn build(
    prev: Option<&ScalingPolicyStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: &str,
    last_scale_time: Option<String>,
) -> ScalingPolicyStatus {
    let mut s = ScalingPolicyStatus {
        observed_generation: generation,
        last_scale_time: last_scale_time.or_else(|| prev.and_then(|p| p.last_scale_time.clone())),
        ..Default::default()
    };
    let conditions = match outcome {
        Outcome::Paused => {
            s.current_replicas = prev.and_then(|p| p.current_replicas);
            s.limited_by = Some("Paused".into());
            s.reason = Some("policy is paused; nothing is evaluated".into());
            vec![
                condition("Ready", true, "Paused", "policy is paused"),
                condition("ScalingActive", false, "Paused", "spec.mode is Paused"),
            ]
        }
        Outcome::Invalid { message } | Outcome::Conflict { message } => {
            let reason = match outcome {
                Outcome::Conflict { .. } => "Conflict",
                _ => "InvalidSpec",
            };
            s.current_replicas = prev.and_then(|p| p.current_replicas);
            s.limited_by = Some(reason.into());
            s.reason = Some(message.clone());
            vec![
                condition("Ready", false, reason, message.clone()),
                condition("ScalingActive", false, reason, message.clone()),
            ]
        }
        Outcome::TargetUnavailable { message } => {
            s.limited_by = Some("TargetUnavailable".into());
            s.reason = Some(message.clone());
            vec![
                condition("Ready", false, "TargetUnavailable", message.clone()),
                condition("ScalingActive", false, "TargetUnavailable", message.clone()),
            ]
        }
        Outcome::Decided {
            mode,
            current,
            evaluation: ev,
            interval,
            orphans,
        } => {
            s.budget_orphans = orphans.clone();
            decided(&mut s, prev, *mode, *current, ev, interval)
        }
    };
    s.conditions = stamped(conditions, prev, generation, now);
    match prev {
        Some(p) if *p == s || !same_but_numbers(p, &s) => s,
        // Only numbers in messages moved: the previous status stands.
        Some(p) => p.clone(),
        None => s,
    }
}

/// Conditions with the generation they describe; each keeps its transition time while its
/// status is unchanged.
fn stamped(
    conditions: Vec<Condition>,
    prev: Option<&ScalingPolicyStatus>,
    generation: Option<i64>,
    now: &str,
) -> Vec<Condition> {
    conditions
        .into_iter()
        .map(|mut c| {
            c.observed_generation = generation;
            let same = prev
                .and_then(|p| p.conditions.iter().find(|o| o.type_ == c.type_))
                .filter(|o| o.status == c.status);
            c.last_transition_time = Some(
                same.and_then(|o| o.last_transition_time.clone())
                    .unwrap_or_else(|| now.to_string()),
            );
            c
        })
        .collect()
}

/// Status of an evaluation that decided: its readings, indicators and conditions.
fn decided(
    s: &mut ScalingPolicyStatus,
    prev: Option<&ScalingPolicyStatus>,
    mode: Mode,
    current: i32,
    ev: &Evaluation,
    interval: &Option<String>,
) -> Vec<Condition> {
    s.interval = interval.clone();
    let (readings, decision) = (&ev.readings, &ev.decision);
    s.current_replicas = Some(current);
    s.desired_replicas = Some(decision.desired_replicas);
    s.limited_by = Some(decision.limited_by.as_str().into());
    s.reason = Some(decision.reason.clone());
    s.signals = readings
        .iter()
        .map(|r| SignalStatus {
            name: r.name.clone(),
            value: r.value.as_ref().ok().copied().map(|v| {
                let before = prev
                    .and_then(|p| p.signals.iter().find(|x| x.name == r.name))
                    .and_then(|x| x.value);
                shown(before, v)
            }),
            target: r.target,
            proposed_replicas: decision
                .proposals
                .iter()
                .find(|p| p.name == r.name)
                .and_then(|p| p.replicas),
            error: r.value.as_ref().err().map(ToString::to_string),
        })
        .collect();
    s.indicators = ev
        .indicators
        .iter()
        .map(|i| IndicatorStatus {
            value: i.value.map(|v| {
                let before = prev
                    .and_then(|p| p.indicators.iter().find(|x| x.name == i.name))
                    .and_then(|x| x.value);
                shown(before, v)
            }),
            ..i.clone()
        })
        .collect();
    s.verdict = ev.verdict.map(|v| v.as_str().to_string());
    s.hourly_cost = ev
        .hourly_cost
        .map(|v| shown(prev.and_then(|p| p.hourly_cost), v));
    let value = |name: &str| {
        s.indicators
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| i.value)
    };
    s.p95 = value("p95").map(|v| format!("{:.0}ms", v * 1000.0));
    s.database_cpu = value("databaseCpu").map(|v| format!("{:.0}%", v * 100.0));
    let mut c = decided_conditions(mode, readings, decision);
    for f in &ev.findings {
        let reason = if f.active { f.reason } else { "Inactive" };
        c.push(condition(f.reason, f.active, reason, f.message.clone()));
    }
    if !ev.errors.is_empty() {
        c.push(condition(
            "GuardrailInputsAvailable",
            false,
            "GuardrailInputsUnavailable",
            ev.errors.join("; "),
        ));
    }
    c
}

/// Whether `next` differs from `prev` only in the numbers of its messages. Messages quote
/// measurements (a projection, a slope, a share of a window) that move a little on every
/// evaluation; rewriting the status for them would be an etcd write and a watch event per
/// policy per interval. When anything else changes (a count, a reading past its 5 %, a
/// condition, the generation) the status is written, and every message in it is fresh.
fn same_but_numbers(prev: &ScalingPolicyStatus, next: &ScalingPolicyStatus) -> bool {
    let worded = |a: &str, b: &str| without_numbers(a) == without_numbers(b);
    let mut kept = next.clone();
    if let (Some(a), Some(b)) = (&prev.reason, &next.reason)
        && worded(a, b)
    {
        kept.reason = prev.reason.clone();
    }
    for c in &mut kept.conditions {
        if let Some(o) = prev.conditions.iter().find(|o| o.type_ == c.type_)
            && worded(&o.message, &c.message)
        {
            c.message = o.message.clone();
        }
    }
    // The audit's hints quote numbers too ("p95 flat (+0.0ms/min)" one time, "-0.0" the next).
    for i in &mut kept.indicators {
        if let Some(o) = prev.indicators.iter().find(|o| o.name == i.name)
            && worded(&o.hint, &i.hint)
        {
            i.hint = o.hint.clone();
        }
    }
    kept == *prev
}

/// The text with each number that stands alone replaced by `#`; digits inside a name
/// (`p95`, `w82`, `db-2`) are kept.
fn without_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let in_name = |i: usize| {
        let before = |k: usize| i.checked_sub(k).and_then(|j| chars.get(j)).copied();
        match before(1) {
            Some(p) if p.is_alphanumeric() || p == '_' => true,
            Some('-') => before(2).is_some_and(char::is_alphanumeric),
            _ => false,
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_number && (c.is_ascii_digit() || c == '.') {
            continue;
        }
        in_number = c.is_ascii_digit() && !in_name(i);
        if in_number {
            if out.ends_with('+') || out.ends_with('-') {
                out.pop();
            }
            out.push('#');
        } else {
            out.push(c);
        }
    }
    out
}

fn decided_conditions(mode: Mode, readings: &[SignalReading], d: &Decision) -> Vec<Condition> {
    let failed: Vec<String> = readings
        .iter()
        .filter_map(|r| r.value.as_ref().err().map(|e| format!("{}: {e}", r.name)))
        .collect();
    let metrics = if failed.is_empty() {
        condition(
            "MetricsAvailable",
            true,
            "AllSignalsRead",
            format!("{} signal(s) read", readings.len()),
        )
    } else {
        condition(
            "MetricsAvailable",
            false,
            "SignalsUnavailable",
            failed.join("; "),
        )
    };
    let active = match d.limited_by {
        Limit::MetricsUnavailable => condition(
            "ScalingActive",
            false,
            "MetricsUnavailable",
            d.reason.clone(),
        ),
        Limit::ScalingDisabled => {
            condition("ScalingActive", false, "ScalingDisabled", d.reason.clone())
        }
        Limit::Idle if d.desired_replicas == 0 => {
            condition("ScalingActive", true, "Idle", d.reason.clone())
        }
        _ if mode == Mode::Recommend => condition(
            "ScalingActive",
            true,
            "Recommending",
            "Recommend mode: desired replicas are reported, never written",
        ),
        _ => condition("ScalingActive", true, "ValidSignals", d.reason.clone()),
    };
    let limited = match d.limited_by {
        Limit::None | Limit::MetricsUnavailable | Limit::ScalingDisabled => condition(
            "ScalingLimited",
            false,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        ),
        l => condition("ScalingLimited", true, l.as_str(), d.reason.clone()),
    };
    vec![
        condition("Ready", true, "Evaluated", d.reason.clone()),
        active,
        limited,
        metrics,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::guardrails::Finding;
    use crate::plan::QueryError;

    fn decision(desired: i32, limit: Limit) -> Decision {
        Decision {
            desired_replicas: desired,
            reason: "because".into(),
            limited_by: limit,
            proposals: vec![crate::decision::Proposal {
                name: "p95".into(),
                replicas: Some(desired),
                ratio: Some(1.5),
                scales_with_load: true,
            }],
            recommendation: Some(desired),
        }
    }

    fn evaluation(readings: Vec<SignalReading>, decision: Decision) -> Evaluation {
        Evaluation::new(decision, readings)
    }

    fn reading(value: Result<f64, QueryError>) -> SignalReading {
        SignalReading {
            name: "p95".into(),
            kind: "latency",
            target: 0.3,
            value,
        }
    }

    fn find<'a>(s: &'a ScalingPolicyStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn decided_status_reports_signals_and_conditions() {
        let o = Outcome::Decided {
            mode: Mode::Enforce,
            current: 2,
            interval: None,
            orphans: vec![],
            evaluation: Box::new(evaluation(
                vec![reading(Ok(0.45))],
                decision(3, Limit::None),
            )),
        };
        let s = build(None, Some(4), &o, "2026-01-01T00:00:00Z", None);
        assert_eq!((s.current_replicas, s.desired_replicas), (Some(2), Some(3)));
        assert_eq!(s.signals[0].value, Some(0.45));
        assert_eq!(s.signals[0].proposed_replicas, Some(3));
        assert_eq!(find(&s, "ScalingActive").status, ConditionStatus::True);
        assert_eq!(find(&s, "ScalingLimited").status, ConditionStatus::False);
        assert_eq!(find(&s, "MetricsAvailable").reason, "AllSignalsRead");
        assert_eq!(find(&s, "Ready").observed_generation, Some(4));
    }

    #[test]
    fn missing_metrics_surface_with_the_underlying_error() {
        let o = Outcome::Decided {
            mode: Mode::Enforce,
            current: 2,
            interval: None,
            orphans: vec![],
            evaluation: Box::new(evaluation(
                vec![reading(Err(QueryError::Unreachable(
                    "connection refused".into(),
                )))],
                decision(2, Limit::MetricsUnavailable),
            )),
        };
        let s = build(None, None, &o, "t", None);
        let m = find(&s, "MetricsAvailable");
        assert_eq!(
            (m.status, m.reason.as_str()),
            (ConditionStatus::False, "SignalsUnavailable")
        );
        assert!(m.message.contains("connection refused"));
        assert_eq!(find(&s, "ScalingActive").reason, "MetricsUnavailable");
        assert_eq!(
            s.signals[0].error.as_deref(),
            Some("Prometheus unreachable: connection refused")
        );
    }

    #[test]
    fn limits_and_transition_times() {
        let o = Outcome::Decided {
            mode: Mode::Enforce,
            current: 10,
            interval: None,
            orphans: vec![],
            evaluation: Box::new(evaluation(vec![], decision(10, Limit::MaxReplicas))),
        };
        let first = build(None, None, &o, "t1", None);
        assert_eq!(find(&first, "ScalingLimited").reason, "MaxReplicas");
        assert_eq!(first.limited_by.as_deref(), Some("MaxReplicas"));
        // Unchanged conditions keep their transition time; changed ones get a new one.
        let second = build(Some(&first), None, &o, "t2", None);
        assert_eq!(
            find(&second, "ScalingLimited")
                .last_transition_time
                .as_deref(),
            Some("t1")
        );
        let paused = build(Some(&second), None, &Outcome::Paused, "t3", None);
        assert_eq!(
            find(&paused, "ScalingActive")
                .last_transition_time
                .as_deref(),
            Some("t3")
        );
        assert_eq!(
            find(&paused, "Ready").last_transition_time.as_deref(),
            Some("t1")
        );
    }

    #[test]
    fn jitter_below_display_precision_is_not_a_change() {
        let o = |v: f64| Outcome::Decided {
            mode: Mode::Enforce,
            current: 2,
            interval: None,
            orphans: vec![],
            evaluation: Box::new(evaluation(vec![reading(Ok(v))], decision(2, Limit::None))),
        };
        let first = build(None, Some(1), &o(49.98), "t1", None);
        let again = build(Some(&first), Some(1), &o(50.02), "t2", None);
        assert_eq!(first.signals[0].value, Some(50.0));
        assert!(!changed(Some(&first), &again), "{first:?}\n{again:?}");
        // Across a rounding edge, still within 5 % (a rate's wander between reads): no write.
        let edge = build(Some(&first), Some(1), &o(50.06), "t2", None);
        assert!(!changed(Some(&first), &edge), "{edge:?}");
        let wander = build(Some(&first), Some(1), &o(48.2), "t2", None);
        assert!(!changed(Some(&first), &wander), "{wander:?}");
        let moved = build(Some(&first), Some(1), &o(53.0), "t3", None);
        assert!(changed(Some(&first), &moved));
        assert_eq!(display(0.012345), 0.0123);
        assert_eq!(display(1234.5), 1230.0);
    }

    /// A decided outcome whose p95 trend reads `value`, said as `hint`.
    fn trend(value: f64, hint: &str) -> Outcome {
        let mut ev = evaluation(vec![], decision(2, Limit::None));
        ev.indicators = vec![IndicatorStatus {
            name: "latencyTrend".into(),
            value: Some(value),
            band: "Healthy".into(),
            hint: hint.into(),
        }];
        Outcome::Decided {
            mode: Mode::Enforce,
            current: 2,
            interval: None,
            orphans: vec![],
            evaluation: Box::new(ev),
        }
    }

    #[test]
    fn a_flat_trend_that_flips_between_zero_and_float_noise_is_not_a_change() {
        // Seen at fleet scale: every flat p95 trend wrote its policy's status about once a
        // minute, flipping between 0 and 1.11e-33 and between "+0.0" and "-0.0".
        let o = trend;
        let first = build(
            None,
            Some(1),
            &o(0.0, "p95 flat (+0.0ms/min, not significant)"),
            "t1",
            None,
        );
        let again = build(
            Some(&first),
            Some(1),
            &o(1.11e-33, "p95 flat (-0.0ms/min, not significant)"),
            "t2",
            None,
        );
        assert!(!changed(Some(&first), &again), "{first:?}\n{again:?}");
        let rising = build(
            Some(&first),
            Some(1),
            &o(0.004, "p95 rising 4.0ms/min with the load"),
            "t3",
            None,
        );
        assert!(changed(Some(&first), &rising));
        assert_eq!(display(-3e-12), 0.0);
    }

    #[test]
    fn a_flat_trend_beside_an_unchanged_estimate_is_not_a_change() {
        let o = trend;
        // With the headroom estimate, which joins the status after it is built: still only
        // numbers moved, so nothing to write; a new estimate is written.
        let estimate = HeadroomStatus {
            summary: "2.0x database-cpu".into(),
            ..Default::default()
        };
        let Some(written) = to_write(
            None,
            Some(1),
            &o(0.0, "p95 flat (+0.0ms/min, not significant)"),
            "t1",
            None,
            Some(estimate.clone()),
            None,
        ) else {
            panic!("a first status is written")
        };
        let flipped = o(1e-33, "p95 flat (-0.0ms/min, not significant)");
        let next = |h: Option<HeadroomStatus>| {
            to_write(Some(&written), Some(1), &flipped, "t2", None, h, None)
        };
        assert_eq!(next(Some(estimate.clone())), None);
        let moved = HeadroomStatus {
            summary: "1.2x database-cpu".into(),
            ..estimate
        };
        assert!(next(Some(moved)).is_some_and(|s| s.headroom.is_some()));
        // An invalid policy has no estimate.
        let invalid = Outcome::Invalid {
            message: "spec.maxReplicas: must be at least 1".into(),
        };
        let s = to_write(
            Some(&written),
            Some(2),
            &invalid,
            "t3",
            None,
            written.headroom.clone(),
            None,
        );
        assert!(s.is_some_and(|s| s.headroom.is_none()));
    }

    #[test]
    fn a_message_whose_numbers_alone_moved_is_not_a_change() {
        let o = |forecast: &str, reason: &str, active: bool| {
            let mut d = decision(2, Limit::None);
            d.reason = reason.into();
            let mut ev = evaluation(vec![reading(Ok(50.0))], d);
            ev.findings = vec![Finding {
                reason: "Forecast",
                active,
                message: forecast.into(),
            }];
            Outcome::Decided {
                mode: Mode::Enforce,
                current: 2,
                interval: None,
                orphans: vec![],
                evaluation: Box::new(ev),
            }
        };
        const AT_3_1: &str = "inflight projected at 3.1 in 90s: 2 replicas";
        const AT_2_9: &str = "inflight projected at 2.9 in 90s: 2 replicas";
        const AT_9_5: &str = "inflight projected at 9.5 in 90s: 4 replicas";
        let first = build(
            None,
            Some(1),
            &o(AT_3_1, "p95 flat (+0.3ms/min)", false),
            "t1",
            None,
        );
        let next = |generation: i64, forecast: &str, reason: &str, active: bool| {
            build(
                Some(&first),
                Some(generation),
                &o(forecast, reason, active),
                "t2",
                None,
            )
        };
        let again = next(1, AT_2_9, "p95 flat (-0.2ms/min)", false);
        assert!(!changed(Some(&first), &again), "{first:?}\n{again:?}");
        assert_eq!(find(&again, "Forecast").message, AT_3_1);
        // Written for another reason (a new generation): every message is fresh.
        let respec = next(2, AT_2_9, "p95 flat (-0.2ms/min)", false);
        assert!(changed(Some(&first), &respec));
        assert_eq!(find(&respec, "Forecast").message, AT_2_9);
        assert_eq!(respec.reason.as_deref(), Some("p95 flat (-0.2ms/min)"));
        // New wording, a condition that turns, or another field that moves: written, fresh.
        let worded = next(1, "no significant rise", "p95 flat (+0.3ms/min)", false);
        assert!(changed(Some(&first), &worded));
        let turned = next(1, AT_9_5, "p95 flat (+0.3ms/min)", true);
        assert!(changed(Some(&first), &turned));
        assert_eq!(find(&turned, "Forecast").message, AT_9_5);
        assert_eq!(
            without_numbers("p95 at -0.2ms in db-2, +3 w82 1.5x"),
            "p95 at #ms in db-2, # w82 #x"
        );
    }

    #[test]
    fn missing_target_is_not_ready() {
        let s = build(
            None,
            None,
            &Outcome::TargetUnavailable {
                message: "target Deployment/web: not found".into(),
            },
            "t",
            None,
        );
        assert_eq!(find(&s, "Ready").status, ConditionStatus::False);
        assert!(find(&s, "ScalingActive").message.contains("not found"));
    }

    #[test]
    fn guardrail_findings_become_conditions_and_the_audit_fills_columns() {
        let mut ev = evaluation(vec![], decision(4, Limit::DatabaseBound));
        ev.findings = vec![
            Finding {
                reason: "DatabaseBound",
                active: true,
                message: "database CPU 85%".into(),
            },
            Finding {
                reason: "Panic",
                active: false,
                message: "no spike".into(),
            },
        ];
        ev.indicators = vec![
            IndicatorStatus {
                name: "p95".into(),
                value: Some(0.45),
                band: "Healthy".into(),
                hint: "h".into(),
            },
            IndicatorStatus {
                name: "databaseCpu".into(),
                value: Some(0.85),
                band: "Act".into(),
                hint: "h".into(),
            },
        ];
        ev.verdict = Some(crate::decision::guardrails::Verdict::NeedsAttention);
        ev.hourly_cost = Some(2.5);
        ev.errors = vec!["spec.indicators.slowQuery.query: query returned no data".into()];
        let o = Outcome::Decided {
            mode: Mode::Enforce,
            current: 4,
            interval: None,
            orphans: vec![],
            evaluation: Box::new(ev),
        };
        let s = build(None, None, &o, "t", None);
        assert_eq!(
            (s.p95.as_deref(), s.database_cpu.as_deref()),
            (Some("450ms"), Some("85%"))
        );
        assert_eq!(s.verdict.as_deref(), Some("NeedsAttention"));
        assert_eq!(s.hourly_cost, Some(2.5));
        let db = find(&s, "DatabaseBound");
        assert_eq!(
            (db.status, db.reason.as_str()),
            (ConditionStatus::True, "DatabaseBound")
        );
        let p = find(&s, "Panic");
        assert_eq!(
            (p.status, p.reason.as_str()),
            (ConditionStatus::False, "Inactive")
        );
        assert!(
            find(&s, "GuardrailInputsAvailable")
                .message
                .contains("spec.indicators.slowQuery.query")
        );
        assert_eq!(find(&s, "ScalingLimited").reason, "DatabaseBound");
    }
}
