//! Property tests of the safety invariants, over many random policies, readings (missing,
//! NaN, negative, huge) and histories. Every rule answers to them.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::guardrails::{Claim, PredictedPeak};
use super::{Evaluation, History, Limit, Memory, Moment, Recommendation, ScaleEvent, evaluate};
use crate::api::ScalingPolicySpec;
use crate::plan::{Observation, Plan, QueryError, Sample, Shape};

/// Cases per property; docs/src/testing.md reports the total.
pub const CASES: u32 = 2000;

fn signal(kind: u8, i: usize) -> Value {
    let name = format!("s{i}");
    match kind % 4 {
        0 => json!({"name": name, "latency": {"metric": "m", "target": "300ms"}}),
        1 => json!({"name": name, "cpu": {"targetUtilization": 70}}),
        2 => json!({"name": name, "queue": {"query": "q", "targetPerReplica": 10,
                     "arrivalRateQuery": "r", "ratePerReplica": 4}}),
        _ => json!({"name": name, "custom": {"query": "c", "target": 5, "targetType":
                     if i.is_multiple_of(2) { "Value" } else { "AverageValue" }}}),
    }
}

prop_compose! {
    fn spec()(
        kinds in prop::collection::vec(any::<u8>(), 1..4),
        min in 0i32..5,
        extra in 0i32..40,
        behavior in any::<bool>(),
        guardrails in any::<bool>(),
        budget in 1i64..400,
        cost_cap in prop::option::of(0.0f64..3.0),
        floor in 0i32..50,
        predictive in any::<bool>(),
    ) -> ScalingPolicySpec {
        // Scale to zero needs a signal that sees demand without pods.
        let min = if kinds.iter().any(|k| k % 4 >= 2) { min } else { min.max(1) };
        let mut spec = json!({
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"},
            "minReplicas": min,
            "maxReplicas": (min + extra).max(1),
            "signals": kinds.iter().enumerate().map(|(i, k)| signal(*k, i)).collect::<Vec<_>>(),
            "indicators": {"databaseCpu": {"query": "db"}, "slowQuery": {"query": "sq"}},
        });
        if behavior {
            spec["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 0}});
        }
        if guardrails {
            spec["guardrails"] = json!({
                "forecast": {},
                "creepingLatency": {"requestRateQuery": "rr"},
                "connectionBudget": {"database": "d", "poolSizePerReplica": 10,
                                     "maxConnections": budget},
                "cost": {"costPerReplicaHour": 0.1, "maxHourlyCost": cost_cap},
                "schedule": [{"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z",
                              "minReplicas": floor}],
            });
            if !kinds.iter().any(|k| k % 4 == 0) {
                spec["guardrails"]["creepingLatency"] = Value::Null;
            }
        }
        // Predictive scaling needs a load: a latency histogram or a queue's arrival rate.
        if predictive && kinds.iter().any(|k| k % 4 == 0 || k % 4 == 2) {
            spec["predictive"] = json!({"mode": "Enforce"});
        }
        match serde_json::from_value(spec) {
            Ok(s) => s,
            Err(e) => panic!("generated spec: {e}"),
        }
    }
}

/// Any reading: good, missing, NaN, infinite, negative, huge.
fn reading() -> impl Strategy<Value = Result<f64, QueryError>> {
    prop_oneof![
        6 => (0.0f64..2000.0).prop_map(Ok),
        1 => Just(Err(QueryError::Empty)),
        1 => Just(Ok(f64::NAN)),
        1 => Just(Ok(f64::INFINITY)),
        1 => (-1e6f64..-1e-9).prop_map(Ok),
        1 => (1e9f64..1e300).prop_map(Ok),
    ]
}

fn observe(plan: &Plan, values: &[Result<f64, QueryError>]) -> Observation {
    let mut o = Observation::default();
    for q in plan.queries() {
        // By key, not position: the plan and its HPA core (fewer queries) read the same
        // value for the same query.
        let i = q.key.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        let v = values[i % values.len()].clone();
        let sample = match q.shape {
            Shape::Instant => v.map(Sample::Value),
            Shape::Range { .. } => v.map(|x| {
                Sample::Series(
                    (0..30)
                        .map(|t| (f64::from(t) * 10.0, x * (1.0 + f64::from(t) / 30.0)))
                        .collect(),
                )
            }),
        };
        o.insert(q.key.clone(), sample);
    }
    o
}

prop_compose! {
    fn memory()(
        recs in prop::collection::vec((0i32..60, 0.0f64..4000.0), 0..6),
        events in prop::collection::vec((-20i32..20, 0.0f64..4000.0), 0..4),
        spike in prop::option::of(0.0f64..200.0),
        others in prop::collection::vec((1i32..20, 0i32..30, 0i32..30), 0..3),
        peak in prop::option::of(0.0f64..100_000.0),
        idle in prop::option::of(0.0f64..1000.0),
    ) -> Memory {
        Memory {
            history: History {
                recommendations: recs.into_iter().map(|(replicas, age_seconds)| Recommendation { replicas, age_seconds }).collect(),
                scale_events: events.into_iter().map(|(replica_change, age_seconds)| ScaleEvent { replica_change, age_seconds }).collect(),
                capacity_age_seconds: None,
        },
            last_spike_age: spike,
            budget_name: "me".into(),
            neighbours: others.into_iter().enumerate().map(|(i, (pool_size, held, need))| Claim { name: format!("o{i}"), pool_size, held, need }).collect(),
            predicted: peak.map(|peak| PredictedPeak { peak, level: 100.0, horizon_seconds: 300.0, pattern: "24h".into(), min_rise: 1.1, enforce: true }),
            idle_seconds: idle,
        }
    }
}

/// One random evaluation's inputs.
#[derive(Clone, Debug)]
struct Situation {
    spec: ScalingPolicySpec,
    values: Vec<Result<f64, QueryError>>,
    memory: Memory,
    current: i32,
    ready: i32,
    in_window: bool,
}

prop_compose! {
    fn situation(least_current: i32)(
        spec in spec(),
        values in prop::collection::vec(reading(), 1..8),
        memory in memory(),
        current in least_current..80,
        ready in 0i32..80,
        in_window in any::<bool>(),
    ) -> Situation {
        Situation { spec, values, memory, current, ready, in_window }
    }
}

fn run(x: &Situation) -> Option<(Plan, Evaluation, Moment)> {
    let Situation {
        spec,
        values,
        memory,
        current,
        ready,
        in_window,
    } = x;
    let (current, ready, in_window) = (*current, *ready, *in_window);
    // Every generated spec is valid: a refusal here is a bug in the plan or the generator.
    let plan = match Plan::resolve(spec) {
        Ok(p) => p,
        Err(e) => panic!("generated spec refused: {e}"),
    };
    let obs = observe(&plan, values);
    let at = Moment {
        unix: Some(if in_window {
            1_767_226_000
        } else {
            1_767_300_000
        }),
        current_replicas: current,
        ready_replicas: ready.min(current),
    };
    let ev = evaluate(&plan, &obs, memory, &at);
    Some((plan, ev, at))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn desired_stays_within_min_and_max(x in situation(0)) {
        let Some((plan, ev, _)) = run(&x) else {
            return Ok(());
        };
        let d = &ev.decision;
        if d.limited_by == Limit::ScalingDisabled {
            prop_assert_eq!((x.current, d.desired_replicas), (0, 0));
        } else {
            prop_assert!(
                (plan.min_replicas..=plan.max_replicas).contains(&d.desired_replicas),
                "{} outside [{}, {}]: {}", d.desired_replicas, plan.min_replicas, plan.max_replicas, d.reason
            );
        }
    }

    #[test]
    fn missing_or_invalid_readings_never_scale_below_current(x in situation(1)) {
        let Some((plan, ev, _)) = run(&x) else {
            return Ok(());
        };
        if ev.readings.iter().any(|r| r.value.is_err()) {
            let floor = x.current.clamp(plan.min_replicas, plan.max_replicas);
            prop_assert!(
                ev.decision.desired_replicas >= floor,
                "{} < {floor} with a reading missing: {}", ev.decision.desired_replicas, ev.decision.reason
            );
        }
    }

    #[test]
    fn no_guardrail_lowers_below_current_unless_the_core_did_or_a_cost_ceiling_is_set(
        x in situation(1),
    ) {
        let Some((plan, ev, at)) = run(&x) else {
            return Ok(());
        };
        let core = evaluate(&plan.as_hpa(), &observe(&plan.as_hpa(), &x.values), &x.memory, &at);
        let floor = x.current.min(plan.max_replicas);
        if ev.decision.desired_replicas < floor && core.decision.desired_replicas >= floor {
            // Or minReplicas 0 after an idle cooldown, which needs every reading valid.
            prop_assert!(
                matches!(ev.decision.limited_by, Limit::CostCeiling | Limit::Idle),
                "{:?}: {}", ev.decision.limited_by, ev.decision.reason
            );
        }
    }

    #[test]
    fn evaluation_is_deterministic(x in situation(0)) {
        // Debug text, since a NaN reading is never equal to itself.
        let a = run(&x).map(|r| format!("{:?}", r.1));
        let b = run(&x).map(|r| format!("{:?}", r.1));
        prop_assert_eq!(a, b);
    }
}
