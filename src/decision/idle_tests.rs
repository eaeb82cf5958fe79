//! Scale to zero through the whole evaluation, as the operator and `simulate` run it.

use super::{Evaluation, Limit, Memory, Moment, evaluate};
use crate::api::ScalingPolicy;
use crate::plan::{Observation, Plan, QueryError, Sample};

fn plan(extra: &str) -> Plan {
    plan_with("", extra)
}

fn plan_with(queue: &str, extra: &str) -> Plan {
    let yaml = format!(
        "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: w}}\nspec:\n  \
         targetRef: {{apiVersion: apps/v1, kind: Deployment, name: w}}\n  minReplicas: 0\n  \
         maxReplicas: 20\n  signals:\n    - name: jobs\n      queue: {{query: q, targetPerReplica: 100, \
         arrivalRateQuery: r, ratePerReplica: 4{queue}}}\n{extra}"
    );
    let spec = match serde_yaml::from_str::<ScalingPolicy>(&yaml) {
        Ok(p) => p.spec,
        Err(e) => panic!("{e}"),
    };
    match Plan::resolve(&spec) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn run(
    p: &Plan,
    backlog: Result<f64, QueryError>,
    arrivals: f64,
    current: i32,
    idle: Option<f64>,
) -> Evaluation {
    let mut o = Observation::default();
    o.insert("jobs", backlog.map(Sample::Value));
    o.insert("jobs-arrivals", Ok(Sample::Value(arrivals)));
    let memory = Memory {
        idle_seconds: idle,
        ..Default::default()
    };
    let at = Moment {
        unix: Some(1_767_225_600),
        current_replicas: current,
        ready_replicas: current,
    };
    evaluate(p, &o, &memory, &at)
}

#[test]
fn the_first_message_starts_a_target_at_zero_with_what_the_signals_ask_in_one_step() {
    let p = plan("");
    let ev = run(&p, Ok(1.0), 0.0, 0, None);
    assert_eq!(
        (ev.decision.desired_replicas, ev.decision.limited_by),
        (1, Limit::Activated)
    );
    assert!(
        ev.decision.reason.contains("jobs 1 > 0"),
        "{}",
        ev.decision.reason
    );
    // A burst: 1200 messages want 12, past the HPA's 4-pods-per-15s scale-up from zero.
    let ev = run(&p, Ok(1200.0), 0.0, 0, None);
    assert_eq!(ev.decision.desired_replicas, 12);
    // Arrivals with an empty backlog are demand too.
    let ev = run(&p, Ok(0.0), 10.0, 0, None);
    assert_eq!(
        (ev.decision.desired_replicas, ev.decision.limited_by),
        (3, Limit::Activated)
    );
}

#[test]
fn at_zero_without_demand_it_stays_idle_and_missing_data_holds_zero() {
    let p = plan("");
    let ev = run(&p, Ok(0.0), 0.0, 0, None);
    assert_eq!(
        (ev.decision.desired_replicas, ev.decision.limited_by),
        (0, Limit::Idle)
    );
    let ev = run(&p, Err(QueryError::Empty), 0.0, 0, None);
    assert_eq!(
        (ev.decision.desired_replicas, ev.decision.limited_by),
        (0, Limit::MetricsUnavailable)
    );
    // Demand on a readable signal starts it even while another cannot be read.
    let ev = run(&p, Err(QueryError::Empty), 2.0, 0, None);
    assert_eq!(
        (ev.decision.desired_replicas, ev.decision.limited_by),
        (1, Limit::Activated)
    );
}

#[test]
fn a_running_target_goes_to_zero_only_after_the_whole_cooldown_of_valid_idle_readings() {
    let p = plan("  idleCooldown: 2m\n");
    // Idle now, but not yet for the cooldown: the HPA's floor of one replica.
    let ev = run(&p, Ok(0.0), 0.0, 1, Some(60.0));
    assert!(ev.idle);
    assert_eq!(ev.decision.desired_replicas, 1);
    let ev = run(&p, Ok(0.0), 0.0, 1, None);
    assert_eq!(ev.decision.desired_replicas, 1);
    // Idle for the cooldown: to zero, even from 3 (the cooldown is its own stabilization).
    for current in [1, 3] {
        let ev = run(&p, Ok(0.0), 0.0, current, Some(120.0));
        assert_eq!(
            (ev.decision.desired_replicas, ev.decision.limited_by),
            (0, Limit::Idle)
        );
        assert!(
            ev.decision.reason.contains("120s"),
            "{}",
            ev.decision.reason
        );
    }
    // A missing reading is not idle, and never takes it to zero.
    let ev = run(&p, Err(QueryError::Empty), 0.0, 1, Some(600.0));
    assert!(!ev.idle);
    assert_eq!(ev.decision.desired_replicas, 1);
    // Nor does demand, however small.
    let ev = run(&p, Ok(0.5), 0.0, 1, Some(600.0));
    assert!(!ev.idle);
    assert_eq!(ev.decision.desired_replicas, 1);
}

#[test]
fn an_activation_threshold_ignores_a_trickle_at_zero_and_while_running() {
    let p = plan_with(", activationThreshold: 10", "");
    let ev = run(&p, Ok(5.0), 0.5, 0, None);
    assert_eq!(
        (ev.decision.desired_replicas, ev.decision.limited_by),
        (0, Limit::Idle)
    );
    let ev = run(&p, Ok(11.0), 0.5, 0, None);
    assert_eq!(ev.decision.desired_replicas, 1);
    // Running, a trickle under the threshold that one replica handles is idle.
    assert!(run(&p, Ok(5.0), 0.5, 1, None).idle);
}

#[test]
fn a_schedule_floor_keeps_workers_up_and_the_hpa_plan_never_goes_to_zero() {
    let p = plan(
        "  guardrails:\n    schedule:\n      - {start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z', minReplicas: 2}\n",
    );
    let ev = run(&p, Ok(0.0), 0.0, 0, None);
    assert_eq!(
        (ev.decision.desired_replicas, ev.decision.limited_by),
        (2, Limit::ScheduledFloor)
    );
    let ev = run(&p, Ok(0.0), 0.0, 2, Some(600.0));
    assert_eq!(ev.decision.desired_replicas, 2);
    let hpa = plan("").as_hpa();
    assert_eq!(hpa.min_replicas, 1);
    assert_eq!(
        run(&hpa, Ok(0.0), 0.0, 1, Some(600.0))
            .decision
            .desired_replicas,
        1
    );
}

#[test]
fn policies_that_cannot_see_demand_without_pods_are_refused_at_zero() {
    let yaml = "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: w}\nspec:\n  \
                targetRef: {apiVersion: apps/v1, kind: Deployment, name: w}\n  minReplicas: 0\n  \
                maxReplicas: 5\n  signals:\n    - name: cpu\n      cpu: {targetUtilization: 60}\n";
    let spec = match serde_yaml::from_str::<ScalingPolicy>(yaml) {
        Ok(p) => p.spec,
        Err(e) => panic!("{e}"),
    };
    let e = Plan::resolve(&spec).map(|_| ()).map_err(|e| e.to_string());
    assert!(
        matches!(&e, Err(m) if m.contains("spec.minReplicas") && m.contains("queue or custom")),
        "{e:?}"
    );
    let mut spec = spec;
    spec.min_replicas = 1;
    spec.idle_cooldown = Some(crate::api::PromDuration::from_secs(60));
    let e = Plan::resolve(&spec).map(|_| ()).map_err(|e| e.to_string());
    assert!(
        matches!(&e, Err(m) if m.contains("spec.idleCooldown")),
        "{e:?}"
    );
}
