//! One evaluation through the operator's memory: recall → evaluate → remember. No I/O, so
//! the controller's whole decision path is tested with a fake observation, the way the HPA
//! controller is tested with its fake metrics client.

use std::time::Instant;

use super::state::State;
use crate::decision::guardrails::Claim;
use crate::decision::{self, Evaluation, Moment};
use crate::plan::{Observation, Plan};

/// The ledger a policy's connection budget is kept in: per namespace and database.
pub fn budget_pool(namespace: &str, plan: &Plan) -> Option<String> {
    let b = plan.guardrails.as_ref()?.budget.as_ref()?;
    Some(format!("{namespace}/{}", b.database))
}

/// Evaluates `plan` for the policy `key` and remembers what it decided. The lock is held
/// from recall to remember, so two policies sharing a budget decide one after the other.
#[allow(clippy::too_many_arguments)]
pub fn step(
    state: &State,
    key: &str,
    pool: Option<&str>,
    plan: &Plan,
    observation: &Observation,
    now: Instant,
    at: Moment,
    from_status: Vec<Claim>,
) -> Evaluation {
    let _one_at_a_time = pool.map(|_| state.budget_turn());
    let mut memory = state.memory(
        key,
        pool,
        now,
        at.current_replicas,
        at.ready_replicas,
        from_status,
    );
    if let (Some(p), Some(unix)) = (&plan.predictive, at.unix) {
        memory.predicted = state.predicted(key, unix, p);
    }
    let ev = decision::evaluate(plan, observation, &memory, &at);
    let window = decision::longest_window_seconds(
        plan.behavior.as_ref(),
        plan.downscale_stabilization_seconds,
    );
    let window = std::time::Duration::from_secs(u64::try_from(window).unwrap_or(0));
    state.record(key, pool, now, &ev, window);
    ev
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::ScalingPolicy;
    use crate::decision::{Evaluation, Limit};
    use crate::plan::Sample;

    fn plan(yaml: &str) -> Plan {
        let p: ScalingPolicy = match serde_yaml::from_str(yaml) {
            Ok(p) => p,
            Err(e) => panic!("test policy: {e}"),
        };
        match Plan::resolve(&p.spec) {
            Ok(p) => p,
            Err(e) => panic!("test policy: {e}"),
        }
    }

    const BUDGET: &str = r#"
apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: p}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: p}
  minReplicas: 1
  maxReplicas: 20
  behavior:
    scaleUp: {stabilizationWindowSeconds: 0, policies: [{type: Pods, value: 20, periodSeconds: 15}]}
  signals:
    - name: backlog
      queue: {query: q, targetPerReplica: 10}
  guardrails:
    panic: {enabled: false}
    connectionBudget: {database: orders, poolSizePerReplica: 10, maxConnections: 100, reserve: 0.1}
"#;

    fn backlog(v: f64) -> Observation {
        let mut o = Observation::default();
        o.insert("backlog", Ok(Sample::Value(v)));
        o
    }

    fn at(current: i32) -> Moment {
        Moment {
            unix: None,
            current_replicas: current,
            ready_replicas: current,
        }
    }

    /// `key` evaluates the budget policy with a backlog of 150 at 1 replica.
    fn busy(state: &State, key: &str, p: &Plan, pool: Option<&str>, now: Instant) -> Evaluation {
        step(state, key, pool, p, &backlog(150.0), now, at(1), vec![])
    }

    #[test]
    fn a_deleted_policy_frees_its_budget_share_at_once() {
        let state = State::default();
        let p = plan(BUDGET);
        let pool = budget_pool("shop", &p);
        let t0 = Instant::now();
        // a scales first and takes the whole budget of 9 replicas x 10 connections.
        let a = busy(&state, "shop/a", &p, pool.as_deref(), t0);
        assert_eq!(a.decision.desired_replicas, 9);
        // b, sharing the database, cannot scale into connections a holds.
        let b = busy(&state, "shop/b", &p, pool.as_deref(), t0);
        assert_eq!(
            (b.decision.desired_replicas, b.decision.limited_by),
            (1, Limit::ConnectionBudget)
        );
        state.forget("shop/a", None);
        let later = t0 + Duration::from_secs(15);
        let b = busy(&state, "shop/b", &p, pool.as_deref(), later);
        assert_eq!(b.decision.desired_replicas, 9, "{}", b.decision.reason);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn a_deleted_policy_whose_target_still_runs_keeps_holding_its_connections() {
        let state = State::default();
        let p = plan(BUDGET);
        let pool = budget_pool("shop", &p);
        let pool = pool.as_deref();
        let t0 = Instant::now();
        let later = |s| t0 + Duration::from_secs(s);
        assert_eq!(
            busy(&state, "shop/a", &p, pool, t0)
                .decision
                .desired_replicas,
            9
        );
        // a's policy is deleted (or deleted and re-created) while its Deployment runs 9.
        let target = crate::api::TargetRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "a".into(),
        };
        state.forget("shop/a", Some(&target));
        assert_eq!(
            state.orphans_in("shop/orders"),
            [("shop/a".to_string(), target.clone())]
        );
        let b = busy(&state, "shop/b", &p, pool, later(15));
        assert_eq!(
            (b.decision.desired_replicas, b.decision.limited_by),
            (1, Limit::ConnectionBudget),
            "b scaled into the connections a's replicas still hold"
        );
        // The Deployment shrinks to 4 by hand: 5 are free.
        state.orphan_runs("shop/a", Some(4));
        let b = busy(&state, "shop/b", &p, pool, later(30));
        assert_eq!(b.decision.desired_replicas, 5, "{}", b.decision.reason);
        // A policy of the same name appears (the watch says so) and claims again: it is no
        // orphan any more.
        state.spec_names("shop/a", pool.map(str::to_string), None);
        busy(&state, "shop/a", &p, pool, later(45));
        assert!(state.orphans_in("shop/orders").is_empty());
        // Gone: its share is free at once.
        state.forget("shop/a", Some(&target));
        state.orphan_runs("shop/a", None);
        // An evaluation of a that was in flight at the delete ends now: it brings nothing back.
        busy(&state, "shop/a", &p, pool, later(50));
        let b = busy(&state, "shop/b", &p, pool, later(60));
        assert_eq!(b.decision.desired_replicas, 9, "{}", b.decision.reason);
    }

    #[test]
    fn a_database_hold_goes_through_the_controller_path() {
        let state = State::default();
        let p = plan(
            r#"
apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 20
  signals:
    - name: cpu
      cpu: {targetUtilization: 50}
  indicators:
    databaseCpu: {query: db_cpu}
  guardrails: {}
"#,
        );
        let mut o = Observation::default();
        // Over target, yet short of saturation: the app waits on its database.
        o.insert("cpu", Ok(Sample::Value(80.0)));
        o.insert("cpu@short", Ok(Sample::Value(80.0)));
        o.insert("databaseCpu", Ok(Sample::Value(0.82)));
        o.insert("databaseCpu/regularly", Ok(Sample::Value(0.64)));
        let ev = step(
            &state,
            "shop/web",
            None,
            &p,
            &o,
            Instant::now(),
            at(6),
            vec![],
        );
        assert_eq!(
            (ev.decision.desired_replicas, ev.decision.limited_by),
            (6, Limit::DatabaseBound)
        );
        assert!(
            ev.decision
                .reason
                .contains("databaseCpu regularly over 0.7 (0.82 for 64% of 30m)"),
            "{}",
            ev.decision.reason
        );
    }

    #[test]
    fn missing_readings_never_let_the_budget_scale_below_current_or_min() {
        let state = State::default();
        let p = plan(BUDGET);
        let pool = budget_pool("shop", &p);
        let others = vec![Claim {
            name: "shop/big".into(),
            pool_size: 10,
            held: 9,
            need: 9,
        }];
        let ev = step(
            &state,
            "shop/a",
            pool.as_deref(),
            &p,
            &Observation::default(),
            Instant::now(),
            at(6),
            others,
        );
        assert_eq!(ev.decision.desired_replicas, 6, "{}", ev.decision.reason);
    }
}
