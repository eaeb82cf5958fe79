//! The simulator's `hpa` and `keda` baselines against the real ones. The trajectories below
//! were measured by scripts/peers-bench.sh on the test cluster (kube-controller-manager
//! v1.34's HPA through prometheus-adapter v0.12.0, and KEDA v2.21.0, 1-10 replicas, 10
//! messages per replica; issue #14). Each is replayed here through the same backlog, with
//! the baseline's 15 s sync at the phase the real run had, so the replica counts must match
//! exactly and every change must come within a few seconds of the real one.

use super::autoscaler::{Kind, Neighbours, Scaler};
use super::model::Snapshot;
use super::observe::Observer;
use super::parse_policy;
use crate::plan::Plan;

/// The HPA's own defaults, written out as a user would copy them.
const DEFAULT_BEHAVIOR: &str = r#"
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      selectPolicy: Max
      policies: [{type: Percent, value: 100, periodSeconds: 15}, {type: Pods, value: 4, periodSeconds: 15}]
    scaleDown:
      stabilizationWindowSeconds: 300
      policies: [{type: Percent, value: 100, periodSeconds: 15}]"#;

fn plan(behavior: &str) -> Plan {
    let yaml = format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: worker, namespace: bench}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: worker}}
  minReplicas: 1
  maxReplicas: 10
  interval: 15s
  signals:
    - name: backlog
      queue: {{query: 'sum(rabbitmq_queue_messages_ready{{queue="q"}})', targetPerReplica: 10}}{behavior}
"#
    );
    match parse_policy(&yaml, "reality") {
        Ok(p) => p.plan,
        Err(e) => panic!("{e}"),
    }
}

fn step(t: f64) -> f64 {
    if (0.0..120.0).contains(&t) {
        100.0
    } else {
        5.0
    }
}

fn spike(t: f64) -> f64 {
    if (0.0..20.0).contains(&t) { 100.0 } else { 5.0 }
}

fn decay(t: f64) -> f64 {
    match t {
        t if t < 0.0 => 5.0,
        t if t < 60.0 => 100.0,
        t => (100.0 * (-(t - 60.0) / 60.0).exp()).max(5.0),
    }
}

/// Replays `backlog` (seconds from the step) through a baseline whose sync lands `phase`
/// seconds after the step, scraping every second as the test cluster does. Returns the
/// changes as (seconds from the step, replicas).
fn replay(kind: Kind, plan: &Plan, backlog: fn(f64) -> f64, phase: usize) -> Vec<(f64, i32)> {
    let start = 150 - phase;
    let n = Neighbours::default();
    let mut observer = Observer::new(1, 60, 3600);
    let mut scaler = Scaler::new(kind, plan, 0, 1);
    let mut replicas = 1;
    let mut changes = vec![];
    for now in 0..start + 720 {
        let t = now as f64 - start as f64;
        observer.record(
            now,
            &Snapshot {
                backlog: backlog(t),
                ..Snapshot::default()
            },
        );
        if let Some(r) = scaler.step(now, &observer, replicas, replicas, &n) {
            replicas = r;
            changes.push((t, r));
        }
    }
    changes
}

/// The counts must be the real ones, each change within `slack` seconds of the real time.
fn assert_matches(what: &str, simulated: &[(f64, i32)], real: &[(f64, i32)], slack: f64) {
    let counts = |v: &[(f64, i32)]| v.iter().map(|c| c.1).collect::<Vec<_>>();
    assert_eq!(
        counts(simulated),
        counts(real),
        "{what}: simulated {simulated:?}, real {real:?}"
    );
    for (s, r) in simulated.iter().zip(real) {
        assert!(
            (s.0 - r.0).abs() <= slack,
            "{what}: to {} at {:.1} s simulated, {:.1} s real ({simulated:?})",
            r.1,
            s.0,
            r.0
        );
    }
}

#[test]
fn the_hpa_baseline_scales_a_backlog_step_as_the_real_hpa_did() {
    // Real HPA, no behavior: its legacy limit (max(2x, 4) per sync) paces 1 -> 4 -> 8 -> 10;
    // back to 1 after the 300 s stabilization. KEDA's HPA took the same steps at the same
    // seconds.
    let real = [(6.6, 4), (21.7, 8), (36.7, 10), (412.0, 1)];
    for kind in [Kind::Hpa, Kind::Keda] {
        let sim = replay(kind, &plan(""), step, 7);
        assert_matches(kind.name(), &sim, &real, 1.5);
    }
    // With its default behavior written out the HPA takes the Pods policy: 1 -> 5 -> 10.
    let real = [(6.6, 5), (21.7, 10), (412.0, 1)];
    let sim = replay(Kind::Hpa, &plan(DEFAULT_BEHAVIOR), step, 7);
    assert_matches("hpa with behavior", &sim, &real, 1.5);
}

#[test]
fn the_hpa_baseline_holds_a_short_spike_as_the_real_hpa_did() {
    // A 20 s spike: without behavior the HPA keeps climbing to the largest recommendation of
    // the last 300 s after the load has gone; with behavior it stays where it was.
    let real = [(7.8, 4), (22.8, 8), (37.7, 10), (308.1, 1)];
    for kind in [Kind::Hpa, Kind::Keda] {
        let sim = replay(kind, &plan(""), spike, 8);
        assert_matches(kind.name(), &sim, &real, 1.5);
    }
    let real = [(7.8, 5), (308.1, 1)];
    let sim = replay(Kind::Hpa, &plan(DEFAULT_BEHAVIOR), spike, 8);
    assert_matches("hpa with behavior", &sim, &real, 1.5);
}

#[test]
fn the_hpa_baseline_follows_a_decay_down_as_the_real_hpa_did() {
    let real = [
        (3.2, 4),
        (18.2, 8),
        (33.0, 10),
        (363.7, 8),
        (378.5, 6),
        (393.6, 5),
        (408.7, 4),
        (423.8, 3),
        (453.6, 2),
        (499.0, 1),
    ];
    for kind in [Kind::Hpa, Kind::Keda] {
        let sim = replay(kind, &plan(""), decay, 3);
        assert_matches(kind.name(), &sim, &real, 1.5);
    }
}
