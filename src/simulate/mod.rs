//! `headroom simulate`: replays traffic through the same decision engine against a model of
//! the app, side by side with the autoscalers users would otherwise pick. Deterministic for
//! a seed; one step is one second.

mod autoscaler;
mod bound;
pub mod breaking;
mod bursts;
mod command;
mod draws;
mod equal_cost;
pub mod family;
mod generalize;
mod idle;
mod keda;
mod kpa;
mod model;
mod observe;
mod predictor;
mod queueing;
#[cfg(test)]
mod reality_tests;
pub mod report;
/// The deterministic generator, shared with the predictor's tests.
pub(crate) use crate::rng;
#[cfg(test)]
mod saturation_tests;
mod seasonal;
mod traffic;

pub use autoscaler::Kind;
pub use command::{Options, command};
pub use model::{App, LATENCY_BUCKETS, Params, Pods, Snapshot};
pub use report::svg;
pub use traffic::{LAUNCH_STEP_SECONDS, SCENARIOS, Trace, from_csv, read_trace, scenario};

use crate::api::{ScalingPolicy, ScalingPolicySpec, SignalKind};
use crate::decision::guardrails::Claim;
use crate::plan::Plan;
use autoscaler::{Neighbours, Scaler};
use observe::Observer;

/// The example policies from deploy/examples, used when no `--policy` is given.
pub const EXAMPLE_WEB: &str = include_str!("../../deploy/examples/web.yaml");
pub const EXAMPLE_WORKER: &str = include_str!("../../deploy/examples/worker.yaml");
pub const EXAMPLE_WORKER_IDLE: &str = include_str!("../../deploy/examples/worker-idle.yaml");

/// A policy as written and as planned.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub spec: ScalingPolicySpec,
    pub plan: Plan,
}

impl Policy {
    /// The same policy with its spec changed, planned again.
    pub fn edit(&self, change: impl FnOnce(&mut ScalingPolicySpec)) -> Result<Policy, String> {
        let mut spec = self.spec.clone();
        change(&mut spec);
        let plan = Plan::resolve(&spec).map_err(|e| e.to_string())?;
        Ok(Policy { spec, plan })
    }
}

/// Parses a ScalingPolicy manifest and validates it as the operator does, naming what is
/// wrong.
pub fn parse_policy(yaml: &str, origin: &str) -> Result<Policy, String> {
    let de = serde_yaml::Deserializer::from_str(yaml);
    let p: ScalingPolicy = serde_path_to_error::deserialize(de)
        .map_err(|e| format!("{origin}: not a ScalingPolicy: {}: {}", e.path(), e.inner()))?;
    let plan = Plan::resolve(&p.spec).map_err(|e| format!("{origin}: {e}"))?;
    Ok(Policy { spec: p.spec, plan })
}

/// One autoscaler's results, with the keys of `--json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub autoscaler: String,
    pub slo_violation_minutes: f64,
    pub error_minutes: f64,
    pub replica_minutes: f64,
    /// The worker tier's share of `replica_minutes`.
    pub worker_replica_minutes: f64,
    pub peak_replicas: i32,
    pub scale_events: u32,
    pub reversals: u32,
    pub max_queue_age_seconds: f64,
    pub connection_overflow_minutes: f64,
    #[serde(skip)]
    pub first_slo_violation: Option<usize>,
    #[serde(skip)]
    pub creeping_at: Option<usize>,
    /// When a predicted rise raised either tier.
    #[serde(skip)]
    pub predicted_at: Vec<usize>,
    /// What predictive scaling last learned, per tier (web, workers), where it is on.
    #[serde(skip)]
    pub learned: Vec<String>,
    #[serde(skip)]
    pub cpu_seconds: f64,
    #[serde(skip)]
    pub timeline: Vec<Point>,
}

impl Outcome {
    /// Nothing measured yet.
    pub fn empty(autoscaler: &str) -> Self {
        Outcome {
            autoscaler: autoscaler.into(),
            slo_violation_minutes: 0.0,
            error_minutes: 0.0,
            replica_minutes: 0.0,
            worker_replica_minutes: 0.0,
            peak_replicas: 0,
            scale_events: 0,
            reversals: 0,
            max_queue_age_seconds: 0.0,
            connection_overflow_minutes: 0.0,
            first_slo_violation: None,
            creeping_at: None,
            predicted_at: vec![],
            learned: vec![],
            cpu_seconds: 0.0,
            timeline: vec![],
        }
    }
}

/// A sample for the plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub second: usize,
    pub requests: f64,
    pub replicas: i32,
    pub p95: f64,
}

pub struct Setup {
    pub web: Policy,
    pub worker: Policy,
    pub params: Params,
    /// Prometheus scrape interval and rate window as the autoscalers see them.
    pub scrape_seconds: usize,
    pub window_seconds: usize,
    /// How old the kubelet's cAdvisor figures are when scraped (its housekeeping runs every
    /// 10-15 s); 0 reads CPU as a gauge of the scrape's second. Over 0, CPU and throttling
    /// are read as counters are: each scrape the mean of the interval before, that long ago.
    pub cadvisor_lag_seconds: usize,
    /// The calendar time (Unix seconds) of the scenario's first second: schedule windows of
    /// the Headroom policies apply only when it is set.
    pub start_unix: Option<i64>,
}

pub fn latency_target(spec: &ScalingPolicySpec) -> f64 {
    spec.signals
        .iter()
        .find_map(|s| match s.kind() {
            Some(SignalKind::Latency(l)) => Some(l.target.as_secs_f64()),
            _ => None,
        })
        .unwrap_or(0.5)
}

/// Replicas a static deployment would be given: enough for the average load at 70%.
fn static_replicas(trace: &Trace, p: &Params, web: &Plan, worker: &Plan) -> (i32, i32) {
    let n = trace.seconds().max(1) as f64;
    let mean_req = trace.requests.iter().sum::<f64>() / n;
    let mean_jobs = trace.jobs.iter().sum::<f64>() / n;
    let w = (mean_req * p.service_time / (f64::from(p.concurrency) * 0.7)).ceil() as i32;
    let k = (mean_jobs / (p.worker_rate * 0.7)).ceil() as i32;
    (
        w.clamp(web.min_replicas, web.max_replicas),
        k.clamp(worker.min_replicas, worker.max_replicas),
    )
}

/// Runs one autoscaler through the trace. `progress` is called with the fraction done.
pub fn run(kind: Kind, trace: &Trace, setup: &Setup, progress: &mut dyn FnMut(f64)) -> Outcome {
    run_probed(kind, trace, setup, progress, &mut |_, _, _| {})
}

/// `run`, showing `probe` every second's truth and the pods after that second's decisions.
pub fn run_probed(
    kind: Kind,
    trace: &Trace,
    setup: &Setup,
    progress: &mut dyn FnMut(f64),
    probe: &mut dyn FnMut(usize, &Snapshot, &App),
) -> Outcome {
    let started = cpu_time();
    let p = &setup.params;
    let (fixed_web, fixed_workers) = static_replicas(trace, p, &setup.web.plan, &setup.worker.plan);
    let slots = p.concurrency;
    // As the operator does with --scrape-interval.
    let scrape = std::time::Duration::from_secs(setup.scrape_seconds as u64);
    let web_plan = setup.web.plan.clone().for_scrape_interval(scrape);
    let worker_plan = setup.worker.plan.clone().for_scrape_interval(scrape);
    let mut web = Scaler::new(kind, &web_plan, fixed_web, slots).starting_at(setup.start_unix);
    let mut workers =
        Scaler::new(kind, &worker_plan, fixed_workers, slots).starting_at(setup.start_unix);
    let start = |s: &Scaler, plan: &Plan| {
        if s.starts_at_zero(plan) {
            0
        } else {
            plan.min_replicas.max(1)
        }
    };
    let (web0, workers0) = if kind == Kind::Static {
        (fixed_web, fixed_workers)
    } else {
        (start(&web, &web_plan), start(&workers, &worker_plan))
    };
    let mut app = App::new(p.clone(), web0, workers0);
    let mut obs = Observer::new(setup.scrape_seconds, setup.window_seconds, 3600)
        .with_cadvisor_lag(setup.cadvisor_lag_seconds);
    let target = latency_target(&setup.web.spec);

    let mut out = Outcome::empty(kind.name());
    if let Kind::HpaAt { percent } = kind {
        out.autoscaler = format!("hpa {percent}%");
    }
    let mut bound = match kind {
        Kind::Bound {
            utilization: u,
            sight,
        } => {
            let (w, k) = (&setup.web.plan, &setup.worker.plan);
            out.autoscaler = format!("{} {u}%", sight.name());
            Some((
                bound::Bound::new(u, w.min_replicas, w.max_replicas),
                bound::Bound::new(u, k.min_replicas, k.max_replicas),
                bound::Seen::new(trace, p.startup_seconds, sight),
            ))
        }
        _ => None,
    };
    let mut last_change: [Option<(usize, i32)>; 2] = [None, None];
    let every = (trace.seconds() / 600).max(1);
    // The warm-up is history in Prometheus only.
    let warmup = trace.warmup.min(trace.seconds());
    for t in 0..warmup {
        obs.count(t, trace.requests[t], trace.jobs[t]);
    }
    for now in warmup..trace.seconds() {
        let snap = app.step(now, trace.requests[now], trace.jobs[now]);
        obs.record(now, &snap);
        web.record(now, &snap);
        if snap.p95 > target {
            out.slo_violation_minutes += 1.0 / 60.0;
            out.first_slo_violation.get_or_insert(now);
        }
        if snap.error_rate > 0.01 {
            out.error_minutes += 1.0 / 60.0;
        }
        if snap.connection_overflow {
            out.connection_overflow_minutes += 1.0 / 60.0;
        }
        out.replica_minutes += f64::from(app.web.replicas() + app.workers.replicas()) / 60.0;
        out.worker_replica_minutes += f64::from(app.workers.replicas()) / 60.0;
        out.peak_replicas = out.peak_replicas.max(app.web.replicas());
        out.max_queue_age_seconds = out.max_queue_age_seconds.max(snap.oldest_age);
        if now % every == 0 {
            out.timeline.push(Point {
                second: now,
                requests: snap.requests,
                replicas: app.web.replicas(),
                p95: snap.p95,
            });
        }

        let web_neighbours = Neighbours {
            claims: vec![autoscaler_claim(
                "workers",
                p.worker_pool_size,
                app.workers.replicas(),
            )],
            max_connections: f64::from(p.max_connections),
        };
        let worker_neighbours = Neighbours {
            claims: vec![autoscaler_claim("web", p.web_pool_size, app.web.replicas())],
            max_connections: f64::from(p.max_connections),
        };
        let changes = [
            web.step(
                now,
                &obs,
                app.web.replicas(),
                snap.web_ready,
                &web_neighbours,
            ),
            workers.step(
                now,
                &obs,
                app.workers.replicas(),
                snap.workers_ready,
                &worker_neighbours,
            ),
        ];
        let changes = match &mut bound {
            Some((w, k, seen)) => {
                let (requests, jobs) = seen.at(now);
                [
                    w.web(now, requests, p, app.web.replicas()),
                    k.workers(now, jobs, p, app.workers.replicas()),
                ]
            }
            None => changes,
        };
        for (i, change) in changes.into_iter().enumerate() {
            let Some(n) = change else { continue };
            let tier = if i == 0 {
                &mut app.web
            } else {
                &mut app.workers
            };
            let delta = n - tier.replicas();
            if delta == 0 {
                continue;
            }
            out.scale_events += 1;
            if let Some((t, d)) = last_change[i]
                && now - t < 600
                && d.signum() != delta.signum()
            {
                out.reversals += 1;
            }
            last_change[i] = Some((now, delta));
            tier.scale(n, now);
        }
        probe(now, &snap, &app);
        if now % 3600 == 0 {
            progress(now as f64 / trace.seconds() as f64);
        }
    }
    out.creeping_at = web.creeping_at;
    out.learned = [("web", &web), ("workers", &workers)]
        .into_iter()
        .filter_map(|(tier, s)| Some(format!("{tier}: {}", s.learned()?.summary)))
        .collect();
    out.predicted_at = web.predicted_at;
    out.predicted_at.extend(workers.predicted_at);
    out.predicted_at.sort_unstable();
    out.cpu_seconds = cpu_time() - started;
    progress(1.0);
    out
}

fn autoscaler_claim(name: &str, pool: i32, replicas: i32) -> Claim {
    Claim {
        name: name.into(),
        pool_size: pool,
        held: replicas,
        need: replicas,
    }
}

/// CPU time of this process, seconds (for the speed figure; never asserted).
pub(crate) fn cpu_time() -> f64 {
    // utime and stime in clock ticks (100 per second on Linux); 0 where /proc is absent.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The setup for a scenario: the policies, and the model the scenario is about.
pub fn setup(scenario: &str, web: Policy, worker: Policy) -> Setup {
    Setup {
        web,
        worker,
        params: Params::for_scenario(scenario),
        scrape_seconds: 15,
        window_seconds: 60,
        cadvisor_lag_seconds: 0,
        start_unix: None,
    }
}

/// The example policies, for tests.
#[cfg(test)]
pub(crate) fn examples() -> (Policy, Policy) {
    match (
        parse_policy(EXAMPLE_WEB, "web"),
        parse_policy(EXAMPLE_WORKER, "worker"),
    ) {
        (Ok(web), Ok(worker)) => (web, worker),
        (web, worker) => panic!("example policies: {web:?} {worker:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_deterministic_and_every_autoscaler_scales() {
        let (web, worker) = examples();
        let trace = scenario("launch", 3).expect("launch");
        let s = setup("launch", web, worker);
        let a = run(Kind::Hpa, &trace, &s, &mut |_| {});
        let b = run(Kind::Hpa, &trace, &s, &mut |_| {});
        assert_eq!(
            (a.replica_minutes, a.scale_events),
            (b.replica_minutes, b.scale_events)
        );
        for k in [Kind::Headroom, Kind::Hpa, Kind::Keda] {
            let o = run(k, &trace, &s, &mut |_| {});
            assert!(o.peak_replicas > 2, "{} never scaled up", o.autoscaler);
        }
        let fixed = run(Kind::Static, &trace, &s, &mut |_| {});
        assert_eq!(fixed.scale_events, 0);
        // A static fleet sized for the average drowns in the 5x step.
        assert!(fixed.slo_violation_minutes > 60.0);
    }

    #[test]
    fn latency_pushes_headroom_up_without_the_hpa_overshoot() {
        let (web, worker) = examples();
        // p95 and CPU only: the concurrency signal would size both alike.
        let web = web
            .edit(|s| s.signals.retain(|x| x.concurrency.is_none()))
            .expect("valid");
        let trace = scenario("launch", 1).expect("launch");
        let s = setup("launch", web, worker);
        let h = run(Kind::Headroom, &trace, &s, &mut |_| {});
        let hpa = run(Kind::Hpa, &trace, &s, &mut |_| {});
        assert!(
            h.peak_replicas < hpa.peak_replicas,
            "headroom {} vs hpa {}",
            h.peak_replicas,
            hpa.peak_replicas
        );
        assert!(h.replica_minutes < hpa.replica_minutes);
    }

    #[test]
    fn policies_are_checked() {
        assert!(
            parse_policy("kind: Deployment", "x.yaml")
                .unwrap_err()
                .starts_with("x.yaml: not a ScalingPolicy")
        );
        let bad = EXAMPLE_WEB.replace("timeZone: Europe/Paris", "timeZone: Mars/Olympus");
        let err = parse_policy(&bad, "web.yaml").unwrap_err();
        assert!(
            err.starts_with("web.yaml: spec.guardrails.schedule[1].timeZone"),
            "{err}"
        );
    }

    #[test]
    fn schedule_windows_apply_only_on_the_calendar() {
        let (web, worker) = examples();
        let trace = scenario("launch", 1).expect("launch");
        let unplaced = setup("launch", web.clone(), worker.clone());
        let unscheduled = web
            .edit(|s| {
                if let Some(g) = &mut s.guardrails {
                    g.schedule.clear();
                }
            })
            .expect("valid");
        let plain = run(
            Kind::Headroom,
            &trace,
            &setup("launch", unscheduled, worker.clone()),
            &mut |_| {},
        );
        let surprise = run(Kind::Headroom, &trace, &unplaced, &mut |_| {});
        let key = |o: &Outcome| (o.replica_minutes, o.scale_events, o.timeline.clone());
        assert!(key(&surprise) == key(&plain), "no clock, no schedule");

        // The example's launch window opens at 09:00+01:00; the step comes one hour in.
        let mut planned = setup("launch", web, worker);
        planned.start_unix =
            Some(crate::plan::parse_time("2026-12-01T08:00:00+01:00", "start").expect("time"));
        let h = run(Kind::Headroom, &trace, &planned, &mut |_| {});
        let before_step = h
            .timeline
            .iter()
            .rev()
            .find(|p| p.second < LAUNCH_STEP_SECONDS as usize)
            .expect("a sample before the step");
        assert!(before_step.replicas >= 4, "{before_step:?}");
        assert!(surprise.slo_violation_minutes > 0.0);
        assert_eq!(h.slo_violation_minutes, 0.0);
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    #[test]
    fn workers_sized_by_arrivals_do_not_flap_in_steady_traffic() {
        let web = parse_policy(EXAMPLE_WEB, "web").expect("web");
        let worker = parse_policy(EXAMPLE_WORKER, "worker").expect("worker");
        let trace = scenario("steady", 1).expect("steady");
        let with = run(
            Kind::Headroom,
            &trace,
            &setup("steady", web.clone(), worker.clone()),
            &mut |_| {},
        );
        assert_eq!(with.reversals, 0);
        // The same worker policy on its backlog alone flaps: the backlog drains to zero.
        let backlog_only = worker
            .edit(|spec| {
                spec.predictive = None;
                for s in &mut spec.signals {
                    if let Some(q) = &mut s.queue {
                        q.arrival_rate_query = None;
                        q.rate_per_replica = None;
                    }
                }
            })
            .expect("valid");
        let without = run(
            Kind::Headroom,
            &trace,
            &setup("steady", web, backlog_only),
            &mut |_| {},
        );
        assert!(without.reversals > 0, "{}", without.reversals);
    }
}
