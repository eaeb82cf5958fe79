//! Real pods beside the real HPA (scripts/real-bench.sh, issue #28). The real app runs on the
//! real node under a 100m CPU limit (its CPU per request measured each run); real load steps from 2
//! to 12 requests a second through its Service. One at a time, each in a fresh namespace:
//! Headroom and the real HPA controller on CPU (the HPA reading the resource metrics API,
//! which prometheus-adapter serves from the kubelet's cAdvisor as kube-prometheus configures
//! it), then both on p95 (the HPA on prometheus-adapter's external p95). Each run reports its
//! reaction, p95 during the step (the app's histogram and the load's own clock), replica-minutes
//! and peak; `simulate` runs the same trace and policies with the pods' measured start-up, so
//! the prediction stands beside what happened. Writes target/bench/real-hpa.md and .json.
//! Needs a cluster with the peers and the real node; REAL_BENCH_REPS repeats (default 1).

mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use headroom::simulate::{self, Kind, LATENCY_BUCKETS, Params, Setup};
use support::real::*;
use support::*;

const CALM: (f64, f64) = (2.0, 60.0);
const STEP: (f64, f64) = (12.0, 240.0);
const MAX_REPLICAS: i64 = 6;
const CPU_TARGET: f64 = 60.0;
const P95_TARGET: f64 = 0.25;
/// The app's CPU per request (its default work) where it was not measured, and its limit.
const CPU_PER_REQUEST: f64 = 0.01;
const CPU_LIMIT: f64 = 0.1;

#[derive(Clone, Copy, PartialEq)]
enum Signal {
    /// CPU as Headroom reads it by default: utilization, raised when the pods are throttled.
    Cpu,
    /// CPU utilization alone (`saturation: {enabled: false}`), as before #40; Headroom only.
    Utilization,
    P95,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Cpu => "cpu",
            Signal::Utilization => "utilization",
            Signal::P95 => "p95",
        }
    }

    fn headroom_signal(self) -> String {
        match self {
            Signal::Cpu => format!("cpu: {{targetUtilization: {CPU_TARGET}}}"),
            Signal::Utilization => {
                format!("cpu: {{targetUtilization: {CPU_TARGET}, saturation: {{enabled: false}}}}")
            }
            Signal::P95 => format!(
                "latency: {{metric: http_request_duration_seconds, window: 1m, target: {}ms}}",
                (P95_TARGET * 1000.0) as u32
            ),
        }
    }

    fn hpa_metric(self) -> String {
        match self {
            Signal::Cpu | Signal::Utilization => format!(
                "- type: Resource\n      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: {CPU_TARGET}}}}}"
            ),
            Signal::P95 => format!(
                "- type: External\n      external:\n        metric: {{name: http_request_duration_seconds_p95}}\n        target: {{type: Value, value: \"{P95_TARGET}\"}}"
            ),
        }
    }
}

/// The policy a user would write, at the examples' interval (15 s, the HPA's sync period).
fn headroom_policy(ns: &str, signal: Signal) -> String {
    app_policy(
        ns,
        MAX_REPLICAS,
        "15s",
        signal.name(),
        &signal.headroom_signal(),
    )
}

fn hpa(ns: &str, signal: Signal) -> String {
    format!(
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: app, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: app}}
  minReplicas: 1
  maxReplicas: {MAX_REPLICAS}
  metrics:
    {metric}
"#,
        metric = signal.hpa_metric()
    )
}

/// What one run measured; times are seconds from the step's start.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Figures {
    autoscaler: String,
    signal: &'static str,
    source: &'static str,
    /// The first scale-up after the step began.
    reaction_seconds: Option<f64>,
    /// When a second pod was Ready.
    capacity_seconds: Option<f64>,
    p95_seconds: Option<f64>,
    /// The load generator's own p95 of the step (queueing in the node's network included).
    client_p95_seconds: Option<f64>,
    failed: u64,
    replica_minutes: f64,
    peak_replicas: i64,
    /// Mean time from a new pod's creation to Ready.
    startup_seconds: Option<f64>,
    /// Throttled CFS periods over all periods (cAdvisor), over the calm and over the step.
    throttled_calm: Option<f64>,
    throttled_step: Option<f64>,
    /// Mean CPU utilization of the request over the step, as cAdvisor read it.
    utilization_step: Option<f64>,
    /// CPU seconds the app spent per request answered, over the calm and the step.
    cpu_per_request: Option<f64>,
}

/// One run on the real node: a fresh app, the autoscaler, the step.
fn run(autoscaler: &str, signal: Signal, rep: usize) -> Figures {
    let guard = Namespace::new(&format!("bench-real-{autoscaler}-{}-{rep}", signal.name()));
    let ns = guard.0.clone();
    apply(&app(&ns)).expect("the app");
    let _targets = PodTargets::start(&ns);
    wait_until("the app Ready", Duration::from_secs(120), || {
        (ready_replicas(&ns, "app") == 1).then_some(())
    });
    // A minute of calm traffic before any autoscaler looks, so every signal has a history.
    let warm = play(&ns, &[&format!("{}:60", CALM.0)]);
    let _ = warm.wait_with_output();
    let _op = (autoscaler == "headroom").then(|| Operator::start(&ns));
    let yaml = if autoscaler == "headroom" {
        headroom_policy(&ns, signal)
    } else {
        hpa(&ns, signal)
    };
    apply(&yaml).expect("the autoscaler");
    let load = play(
        &ns,
        &[
            &format!("{}:{}", CALM.0, CALM.1),
            &format!("{}:{}", STEP.0, STEP.1),
        ],
    );
    let started = Instant::now();
    let mut timeline: Vec<(f64, i64, i64)> = vec![];
    while started.elapsed().as_secs_f64() < CALM.1 + STEP.1 {
        let t = started.elapsed().as_secs_f64() - CALM.1;
        let out = kubectl_ok(&[
            "get",
            "deployment",
            "app",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.replicas} {.status.readyReplicas}",
        ]);
        let mut it = out
            .split_whitespace()
            .map(|x| x.parse::<i64>().unwrap_or(0));
        let (desired, ready) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        timeline.push((t, desired, ready));
        std::thread::sleep(Duration::from_secs(1));
    }
    let out = load.wait_with_output().expect("the load's result");
    let step_seconds = (started.elapsed().as_secs_f64() - CALM.1).round() as u64;
    let phases: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let step = phases.get(1).cloned().unwrap_or_default();
    let p95 = prom_query(
        &cluster().prometheus_url,
        &format!(
            r#"histogram_quantile(0.95, sum(increase(http_request_duration_seconds_bucket{{namespace="{ns}"}}[{step_seconds}s])) by (le))"#
        ),
    );
    println!(
        "{}",
        kubectl_ok(&["get", "deploy,pods,hpa,sp", "-n", &ns, "-o", "wide"])
    );
    let mut f = figures(autoscaler, signal, &timeline, p95, &step);
    let prom = |q: String| prom_query(&cluster().prometheus_url, &q);
    let sel = format!(r#"namespace="{ns}",container="app""#);
    let throttled = |span: u64, offset: u64| {
        // PromQL refuses `offset 0s`.
        let offset = if offset > 0 {
            format!(" offset {offset}s")
        } else {
            String::new()
        };
        prom(format!(
            "sum(increase(container_cpu_cfs_throttled_periods_total{{{sel}}}[{span}s]{offset})) / sum(increase(container_cpu_cfs_periods_total{{{sel}}}[{span}s]{offset}))"
        ))
    };
    f.throttled_calm = throttled(CALM.1 as u64, step_seconds);
    f.throttled_step = throttled(step_seconds, 0);
    let whole = CALM.1 as u64 + step_seconds;
    f.cpu_per_request = prom(format!(
        "sum(increase(container_cpu_usage_seconds_total{{{sel}}}[{whole}s])) / sum(increase(http_requests_total{{namespace=\"{ns}\"}}[{whole}s]))"
    ));
    f.utilization_step = prom(format!(
        "100 * sum(increase(container_cpu_usage_seconds_total{{{sel}}}[{step_seconds}s])) / ({step_seconds} * sum(avg_over_time(kube_pod_container_resource_requests{{{sel},resource=\"cpu\"}}[{step_seconds}s])))"
    ));
    f
}

fn figures(
    autoscaler: &str,
    signal: Signal,
    timeline: &[(f64, i64, i64)],
    p95: Option<f64>,
    step: &serde_json::Value,
) -> Figures {
    let after: Vec<_> = timeline.iter().filter(|s| s.0 >= 0.0).collect();
    let mut replica_minutes = 0.0;
    for w in after.windows(2) {
        replica_minutes += w[0].2 as f64 * (w[1].0 - w[0].0) / 60.0;
    }
    Figures {
        autoscaler: autoscaler.into(),
        signal: signal.name(),
        source: "real",
        reaction_seconds: after.iter().find(|s| s.1 > 1).map(|s| s.0),
        capacity_seconds: after.iter().find(|s| s.2 > 1).map(|s| s.0),
        p95_seconds: p95,
        client_p95_seconds: step["p95Seconds"].as_f64(),
        failed: step["failed"].as_u64().unwrap_or(0),
        replica_minutes,
        peak_replicas: after.iter().map(|s| s.1).max().unwrap_or(0),
        startup_seconds: startup(timeline),
        throttled_calm: None,
        throttled_step: None,
        utilization_step: None,
        cpu_per_request: None,
    }
}

/// Mean time from asking for the k-th pod to its being Ready, over the pods added.
fn startup(timeline: &[(f64, i64, i64)]) -> Option<f64> {
    let peak = timeline.iter().map(|s| s.1).max()?;
    let waits: Vec<f64> = (2..=peak)
        .filter_map(|k| {
            let asked = timeline.iter().find(|s| s.1 >= k)?.0;
            let ready = timeline.iter().find(|s| s.2 >= k)?.0;
            Some(ready - asked)
        })
        .collect();
    (!waits.is_empty()).then(|| waits.iter().sum::<f64>() / waits.len() as f64)
}

/// `simulate` on the same trace and policy: one server a pod at the app's service time under
/// its limit (its CPU per request as measured, over the limit: the quota shared by the
/// requests in it), throttled by its CFS quota, no database, the measured start-up.
fn simulated(autoscaler: &str, signal: Signal, real: &Figures) -> Figures {
    let startup_seconds = real.startup_seconds.unwrap_or(2.0);
    let cpu_per_request = real.cpu_per_request.unwrap_or(CPU_PER_REQUEST);
    let csv = format!(
        "seconds,requests_per_second,jobs_per_second\n0,{c},0\n{end_calm},{c},0\n{calm},{s},0\n{end},{s},0\n",
        c = CALM.0,
        s = STEP.0,
        calm = CALM.1,
        end_calm = CALM.1 - 1.0,
        end = CALM.1 + STEP.1 - 1.0
    );
    let trace = simulate::from_csv("step", &csv).expect("the bench's trace");
    let worker = "apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: worker, namespace: bench}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
  minReplicas: 1
  maxReplicas: 1
  signals:
    - name: backlog
      queue: {query: 'sum(queue_backlog)', targetPerReplica: 10}
";
    let setup = Setup {
        web: simulate::parse_policy(&headroom_policy("bench", signal), "web").expect("policy"),
        worker: simulate::parse_policy(worker, "worker").expect("worker policy"),
        params: Params {
            service_time: cpu_per_request / CPU_LIMIT,
            concurrency: 1,
            startup_seconds: startup_seconds.round().max(1.0) as usize,
            queries_per_request: 0.0,
            cpu_limit: true,
            ..Params::default()
        },
        // cAdvisor refreshes a container's CPU every 10-15 s; the app is scraped every second.
        scrape_seconds: if signal == Signal::P95 { 1 } else { 15 },
        window_seconds: 60,
        // The kubelet's cAdvisor housekeeping (10-15 s; see docs/src/benchmarks.md, real pods).
        cadvisor_lag_seconds: if signal == Signal::P95 { 0 } else { 10 },
        start_unix: None,
    };
    let kind = if autoscaler == "headroom" {
        Kind::Headroom
    } else {
        Kind::Hpa
    };
    let calm = CALM.1 as usize;
    let mut timeline = vec![];
    let mut within = [0.0; LATENCY_BUCKETS.len()];
    let mut requests = 0.0;
    simulate::run_probed(kind, &trace, &setup, &mut |_| {}, &mut |t, snap, app| {
        timeline.push((
            t as f64 - calm as f64,
            i64::from(app.web.replicas()),
            i64::from(snap.web_ready),
        ));
        if t >= calm {
            for (w, s) in within.iter_mut().zip(snap.within) {
                *w += s * snap.requests;
            }
            requests += snap.requests;
        }
    });
    let mut f = figures(
        autoscaler,
        signal,
        &timeline,
        quantile(&within, requests, 0.95),
        &serde_json::Value::Null,
    );
    f.source = "simulated";
    f
}

/// As `histogram_quantile` reads cumulative buckets: linear within the bucket it falls in.
fn quantile(within: &[f64], total: f64, q: f64) -> Option<f64> {
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for (le, count) in LATENCY_BUCKETS.iter().zip(within) {
        if *count >= rank {
            if !le.is_finite() {
                return Some(below.0);
            }
            let share = (rank - below.1) / (count - below.1).max(f64::EPSILON);
            return Some(below.0 + (le - below.0) * share);
        }
        below = (*le, *count);
    }
    None
}

fn cell(v: Option<f64>, unit: &str) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}{unit}"))
}

fn report(all: &[Figures], reps: usize) -> String {
    let mut md = format!(
        "# Real pods beside the real HPA\n\nThe real app on the real node (100m CPU limit; its CPU per request, measured, sets `simulated`'s service time), \
         {c} requests/s for {cs} s, then {s}/s for {ss} s through its Service; {reps} run(s) each, one at a time. Headroom at the examples' \
         15 s interval; the real HPA controller (15 s sync) on CPU through the resource metrics API (prometheus-adapter over the kubelet's \
         cAdvisor, kube-prometheus' rules) or on prometheus-adapter's external p95. Targets: CPU {CPU_TARGET} % of requests, p95 {P95_TARGET} s; \
         max {MAX_REPLICAS} replicas. `simulated` is `simulate` on the same trace and policy with the measured pod start-up. \
         Times are seconds from the step; p95 is the app's histogram over the step (the load's own clock beside it).\n\n\
         `cpu` is Headroom's CPU signal as it reads by default (utilization, raised while the pods are throttled), `utilization` the same \
         with `saturation: {{enabled: false}}`; throttled is the share of CFS periods throttled over the calm and the step, CPU the \
         step's mean usage over the request (cAdvisor).\n\n\
         | signal | autoscaler | source | reaction s | 2nd pod Ready s | p95 s (client) | failed | replica-min | peak | start-up s | throttled calm / step | CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        c = CALM.0,
        cs = CALM.1,
        s = STEP.0,
        ss = STEP.1,
    );
    for f in all {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {:.1} | {} | {} | {} / {} | {} |",
            f.signal,
            f.autoscaler,
            f.source,
            cell(f.reaction_seconds, ""),
            cell(f.capacity_seconds, ""),
            cell(f.p95_seconds, ""),
            cell(f.client_p95_seconds, ""),
            f.failed,
            f.replica_minutes,
            f.peak_replicas,
            cell(f.startup_seconds, ""),
            cell(f.throttled_calm, ""),
            cell(f.throttled_step, ""),
            cell(f.utilization_step, ""),
        );
    }
    md
}

/// #40's targets on the CPU-limited step: Headroom's CPU signal, throttling read, goes past
/// the 2 replicas the HPA stops at, with at most a third of the HPA's p95.
fn saturation_targets(all: &[Figures]) {
    let real = |autoscaler: &str, signal: &str| {
        all.iter()
            .filter(|f| f.source == "real" && f.autoscaler == autoscaler && f.signal == signal)
            .collect::<Vec<_>>()
    };
    for (ours, hpa) in real("headroom", "cpu").iter().zip(real("hpa", "cpu")) {
        println!(
            "saturation: Headroom {} replicas at p95 {:?}; HPA {} at {:?}",
            ours.peak_replicas, ours.p95_seconds, hpa.peak_replicas, hpa.p95_seconds
        );
        assert!(
            ours.peak_replicas > hpa.peak_replicas,
            "throttled pods: Headroom {} replicas, the HPA {}",
            ours.peak_replicas,
            hpa.peak_replicas
        );
        if let (Some(a), Some(b)) = (ours.p95_seconds, hpa.p95_seconds) {
            assert!(a <= b / 3.0, "p95 {a:.2} s against the HPA's {b:.2} s");
        }
    }
}

#[test]
fn real_pods_beside_the_real_hpa() {
    cluster_with_peers_and_real_node();
    app_image();
    kube_state_metrics();
    let reps: usize = std::env::var("REAL_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // REAL_BENCH_SIGNALS=cpu runs the CPU-limited step alone, `cpu/headroom,p95/hpa` those
    // runs (the default runs all).
    let only = std::env::var("REAL_BENCH_SIGNALS").unwrap_or_default();
    let mut all = vec![];
    let runs = [
        (Signal::Cpu, "headroom"),
        (Signal::Utilization, "headroom"),
        (Signal::Cpu, "hpa"),
        (Signal::P95, "headroom"),
        (Signal::P95, "hpa"),
    ];
    for rep in 0..reps {
        for (signal, autoscaler) in runs {
            let family = if signal == Signal::P95 { "p95" } else { "cpu" };
            let which = format!("{}/{autoscaler}", signal.name());
            if !only.is_empty() && !only.split(',').any(|s| s == family || s == which) {
                continue;
            }
            {
                let real = run(autoscaler, signal, rep);
                let sim = simulated(autoscaler, signal, &real);
                for f in [&real, &sim] {
                    println!("{}", serde_json::to_string(f).unwrap_or_default());
                }
                all.push(real);
                all.push(sim);
            }
        }
    }
    let dir = repo().join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let md = report(&all, reps);
    println!("{md}");
    std::fs::write(dir.join("real-hpa.md"), &md).expect("write real-hpa.md");
    std::fs::write(
        dir.join("real-hpa.json"),
        serde_json::to_string_pretty(&all).unwrap_or_default(),
    )
    .expect("write real-hpa.json");
    saturation_targets(&all);
    // The figures mean something only if each autoscaler scaled the app on the real node.
    for f in all.iter().filter(|f| f.source == "real") {
        assert!(
            f.peak_replicas >= 2,
            "{} on {}: never scaled the real app ({} replicas)",
            f.autoscaler,
            f.signal,
            f.peak_replicas
        );
    }
}
