//! The CPU signal under a limit in the simulator (#40): the real bench's app and step, with
//! and without the saturation reading, and the same policy on pods without a limit.

use super::*;

const POLICY: &str = "apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: app, namespace: bench}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  minReplicas: 1
  maxReplicas: 6
  interval: 15s
  signals:
    - name: load
      cpu: {targetUtilization: 60}
";

/// 2 requests/s for 5 minutes, then 12/s for 10, as the real bench steps its app.
fn step() -> Trace {
    let requests: Vec<f64> = (0..900).map(|t| if t < 300 { 2.0 } else { 12.0 }).collect();
    Trace {
        name: "step".into(),
        jobs: vec![0.0; requests.len()],
        requests,
        ..Trace::default()
    }
}

/// The real app as the bench measured it: about 9 ms of CPU a request under a 100m limit.
fn run_with(saturation: bool, cpu_limit: bool) -> Outcome {
    let web = parse_policy(POLICY, "web").expect("policy");
    let web = web
        .edit(|s| {
            if !saturation {
                for sig in &mut s.signals {
                    if let Some(c) = &mut sig.cpu {
                        c.saturation = Some(crate::api::CpuSaturation {
                            enabled: Some(false),
                            ..Default::default()
                        });
                    }
                }
            }
        })
        .expect("edit");
    let worker = web.clone();
    let s = Setup {
        params: Params {
            service_time: 0.09,
            concurrency: 1,
            startup_seconds: 3,
            queries_per_request: 0.0,
            cpu_limit,
            ..Params::default()
        },
        ..setup("step", web, worker)
    };
    run(Kind::Headroom, &step(), &s, &mut |_| {})
}

#[test]
fn throttled_pods_get_the_replicas_their_utilization_hides() {
    let (read, blind) = (run_with(true, true), run_with(false, true));
    // At 2 pods the app reads 54 % of its request, under the 60 % target, and is throttled in
    // a quarter of its periods: utilization alone stays there, saturation goes on.
    assert!(
        read.peak_replicas > blind.peak_replicas,
        "{} vs {}",
        read.peak_replicas,
        blind.peak_replicas
    );
    assert!(
        read.slo_violation_minutes < blind.slo_violation_minutes,
        "{} vs {}",
        read.slo_violation_minutes,
        blind.slo_violation_minutes
    );
}

#[test]
fn pods_without_a_limit_read_as_utilization_alone() {
    let (read, blind) = (run_with(true, false), run_with(false, false));
    assert_eq!(
        (read.replica_minutes, read.slo_violation_minutes),
        (blind.replica_minutes, blind.slo_violation_minutes)
    );
}
