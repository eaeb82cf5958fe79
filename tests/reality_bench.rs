//! The simulator against reality, in a closed loop (scripts/reality-bench.sh, issue #14).
//! Two traffic traces (a surge, a ramp) are played in real time by the demo app, whose
//! model (the one `headroom simulate` runs) serves a web tier's latency histogram and a
//! queue's backlog from the Deployments' real replica counts. The real HPA (through
//! prometheus-adapter), real KEDA and the Headroom operator each scale their own copy of the
//! app from what the test Prometheus scraped; the same traces and policies then run through
//! `simulate`'s `hpa`, `keda` and `headroom` in-process. All runs go at once, each in its
//! own namespace. Writes target/bench/reality.md, reality.json and one SVG per trace and
//! autoscaler (real beside simulated). Needs a cluster started with HEADROOM_PEERS=1.

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use headroom::simulate::{self, Kind, Outcome, Params, Setup};
use support::*;

/// A traffic trace: seconds, requests/s, jobs/s; linear between rows. Each ends long enough
/// after the load falls for a 300 s stabilization window.
struct Case {
    name: &'static str,
    what: &'static str,
    csv: &'static str,
}

const TRACES: [Case; 2] = [
    Case {
        name: "surge",
        what: "100 req/s, a 6x surge over 2 minutes, 5 minutes at 600 req/s, back to 100 in one; jobs 1/s, 15/s during the surge",
        csv: "seconds,requests_per_second,jobs_per_second
0,100,1
180,100,1
300,600,15
600,600,15
660,100,1
1259,100,1
",
    },
    Case {
        name: "ramp",
        what: "100 req/s rising steadily to 350 over 9 minutes, 2 minutes there, back to 100 in one; jobs 1/s rising to 8/s",
        csv: "seconds,requests_per_second,jobs_per_second
0,100,1
60,100,1
600,350,8
720,350,8
780,100,1
1259,100,1
",
    },
];
const P95_TARGET: f64 = 0.3;
const WEB_MIN: i32 = 2;
const WORKERS_PER_MESSAGES: f64 = 20.0;
const AUTOSCALERS: [(&str, Kind); 3] = [
    ("hpa", Kind::Hpa),
    ("keda", Kind::Keda),
    ("headroom", Kind::Headroom),
];

fn p95_query(ns: &str) -> String {
    format!(
        r#"histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket{{namespace="{ns}",service="web"}}[1m])) by (le))"#
    )
}

fn backlog(ns: &str) -> String {
    format!(r#"sum(rabbitmq_queue_messages_ready{{namespace="{ns}",queue="jobs"}})"#)
}

/// The policies `simulate` runs, and the Headroom operator runs live.
fn policies(ns: &str) -> (String, String) {
    let web = format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: web, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: {WEB_MIN}
  maxReplicas: 20
  interval: 15s
  signals:
    - name: p95
      latency: {{metric: http_request_duration_seconds, selector: {{service: web}}, quantile: 0.95, window: 1m, target: 300ms}}
"#
    );
    let worker = format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: worker, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: worker}}
  minReplicas: 1
  maxReplicas: 20
  interval: 15s
  signals:
    - name: backlog
      queue: {{query: '{q}', targetPerReplica: {WORKERS_PER_MESSAGES}}}
"#,
        q = backlog(ns)
    );
    (web, worker)
}

/// What a user would write for the real HPA: the same targets, as External metrics.
fn hpas(ns: &str) -> String {
    format!(
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: {WEB_MIN}
  maxReplicas: 20
  metrics:
    - type: External
      external:
        metric: {{name: http_request_duration_seconds_p95, selector: {{matchLabels: {{service: web}}}}}}
        target: {{type: Value, value: "{P95_TARGET}"}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: worker, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: worker}}
  minReplicas: 1
  maxReplicas: 20
  metrics:
    - type: External
      external:
        metric: {{name: rabbitmq_queue_messages_ready, selector: {{matchLabels: {{queue: jobs}}}}}}
        target: {{type: AverageValue, averageValue: "{WORKERS_PER_MESSAGES}"}}
"#
    )
}

fn scaled_objects(ns: &str, prometheus: &str) -> String {
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: web, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: web}}
  minReplicaCount: {WEB_MIN}
  maxReplicaCount: 20
  triggers:
    - type: prometheus
      metricType: Value
      metadata: {{serverAddress: "{prometheus}", query: '{p95}', threshold: "{P95_TARGET}"}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: worker, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: worker}}
  minReplicaCount: 1
  maxReplicaCount: 20
  triggers:
    - type: prometheus
      metadata: {{serverAddress: "{prometheus}", query: '{q}', threshold: "{WORKERS_PER_MESSAGES}"}}
"#,
        p95 = p95_query(ns),
        q = backlog(ns)
    )
}

/// Pods Ready 60 s after they start: the model's start-up delay, so the real and the
/// simulated fleets gain capacity at the same pace.
fn slow_deployment(name: &str, ns: &str, replicas: i32) -> String {
    deployment(name, ns, replicas).replace(&kwok_timing("1s"), &kwok_timing("60s"))
}

/// One second of a live run, from the demo app's timeline.csv.
#[derive(Clone, Copy, Default)]
struct Second {
    requests: f64,
    web: i32,
    workers: i32,
    p95: f64,
}

fn read_timeline(path: &Path) -> Vec<Second> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some(Second {
                requests: f.get(1)?.parse().ok()?,
                web: f.get(2)?.parse().ok()?,
                workers: f.get(4)?.parse().ok()?,
                p95: f.get(5)?.parse().ok()?,
            })
        })
        .collect()
}

/// The figures compared, for one run (real or simulated).
#[derive(Default)]
struct Figures {
    slo_violation_minutes: f64,
    replica_minutes: f64,
    peak_web: i32,
    peak_workers: i32,
    first_web_change: Option<usize>,
    /// The last second the web tier's count changed (its way back down).
    last_web_change: Option<usize>,
}

fn figures(run: &[Second]) -> Figures {
    let mut f = Figures::default();
    for (t, s) in run.iter().enumerate() {
        if s.p95 > P95_TARGET {
            f.slo_violation_minutes += 1.0 / 60.0;
        }
        f.replica_minutes += f64::from(s.web + s.workers) / 60.0;
        f.peak_web = f.peak_web.max(s.web);
        f.peak_workers = f.peak_workers.max(s.workers);
        if t > 0 && s.web != run[t - 1].web {
            f.first_web_change.get_or_insert(t);
            f.last_web_change = Some(t);
        }
    }
    f
}

fn simulated(case: &Case, kind: Kind, setup: &Setup) -> Vec<Second> {
    let trace = simulate::from_csv(case.name, case.csv).expect("the bench's trace");
    let mut out = vec![];
    simulate::run_probed(kind, &trace, setup, &mut |_| {}, &mut |_, snap, app| {
        out.push(Second {
            requests: snap.requests,
            web: app.web.replicas(),
            workers: app.workers.replicas(),
            p95: snap.p95,
        })
    });
    out
}

/// Mean |real − simulated| over the seconds both have.
fn mean_gap(real: &[Second], sim: &[Second], f: fn(&Second) -> i32) -> f64 {
    let n = real.len().min(sim.len()).max(1);
    real.iter()
        .zip(sim)
        .map(|(a, b)| f64::from((f(a) - f(b)).abs()))
        .sum::<f64>()
        / n as f64
}

fn as_outcome(name: &str, run: &[Second]) -> Outcome {
    let mut o = Outcome::empty(name);
    o.timeline = run
        .iter()
        .enumerate()
        .map(|(t, s)| simulate::report::point(t, s.requests, s.web, s.p95))
        .collect();
    o
}

struct DemoApp {
    child: Child,
    out: PathBuf,
    target_file: PathBuf,
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.target_file);
    }
}

/// Starts the demo app on the trace for `ns`, scraped by the test Prometheus.
fn start_demo_app(ns: &str, trace: &Path) -> DemoApp {
    let c = cluster();
    let out = repo().join("target/bench/reality").join(ns);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("demo app output directory");
    let log = out.join("demo-app.log");
    let child = Command::new(env!("CARGO_BIN_EXE_headroom-demo-app"))
        .args(["--namespace", ns, "--speed", "1", "--target"])
        .arg(P95_TARGET.to_string())
        .arg("--trace")
        .arg(trace)
        .arg("--out")
        .arg(&out)
        .env("KUBECONFIG", &c.kubeconfig)
        .stdout(std::fs::File::create(&log).expect("demo app log"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start headroom-demo-app");
    let addr = wait_until(
        &format!("{ns}: the demo app's address"),
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_string))
        },
    );
    let target_file = c.targets_dir.join(format!("{ns}.json"));
    write_targets(
        &target_file,
        &format!(r#"[{{"targets": ["{addr}"], "labels": {{"job": "reality"}}}}]"#),
    )
    .expect("write Prometheus target");
    DemoApp {
        child,
        out,
        target_file,
    }
}

/// The app's Deployments; their first pods take the start-up delay to be Ready.
fn create_app(ns: &str) {
    apply(&slow_deployment("web", ns, WEB_MIN)).expect("web Deployment");
    apply(&slow_deployment("worker", ns, 1)).expect("worker Deployment");
}

/// Once the first pods are Ready, the autoscaler's objects.
fn set_up(name: &str, ns: &str, prometheus: &str) {
    wait_until(
        &format!("{ns}: the first pods Ready"),
        Duration::from_secs(180),
        || {
            let ready = kubectl_ok(&[
                "get",
                "deploy",
                "-n",
                ns,
                "-o",
                "jsonpath={.items[*].status.readyReplicas}",
            ]);
            (ready.split_whitespace().collect::<Vec<_>>() == [WEB_MIN.to_string(), "1".into()])
                .then_some(())
        },
    );
    let (web, worker) = policies(ns);
    let objects = match name {
        "hpa" => hpas(ns),
        "keda" => scaled_objects(ns, prometheus),
        _ => format!("{web}---\n{worker}"),
    };
    apply(&objects).expect("the autoscaler's objects");
}

/// One autoscaler on one trace: its namespace, and the Headroom operator for it.
struct Run<'a> {
    case: &'a Case,
    name: &'static str,
    kind: Kind,
    ns: Namespace,
    _operator: Option<Operator>,
}

#[test]
fn reality_bench() {
    let cluster = cluster_with_peers();
    let dir = repo().join("target/bench");
    std::fs::create_dir_all(dir.join("reality")).expect("target/bench/reality");
    let runs: Vec<Run> = TRACES
        .iter()
        .flat_map(|case| AUTOSCALERS.iter().map(move |a| (case, a)))
        .map(|(case, &(name, kind))| {
            let ns = Namespace::new(&format!("reality-{}-{name}", case.name));
            let operator = (kind == Kind::Headroom).then(|| Operator::start(&ns.0));
            Run {
                case,
                name,
                kind,
                ns,
                _operator: operator,
            }
        })
        .collect();
    for r in &runs {
        create_app(&r.ns.0);
    }
    for r in &runs {
        set_up(r.name, &r.ns.0, &cluster.prometheus_url);
    }
    let mut seconds = 0;
    let started = Instant::now();
    let mut apps: Vec<DemoApp> = runs
        .iter()
        .map(|r| {
            let path = dir.join(format!("reality/{}.csv", r.case.name));
            std::fs::write(&path, r.case.csv).expect("write the trace");
            let n = simulate::from_csv(r.case.name, r.case.csv)
                .expect("the bench's trace")
                .seconds();
            seconds = seconds.max(n);
            start_demo_app(&r.ns.0, &path)
        })
        .collect();
    for app in &mut apps {
        let deadline = Duration::from_secs(seconds as u64 + 120);
        wait_until("the demo app's run", deadline, || {
            app.child.try_wait().ok().flatten().map(|_| ())
        });
    }

    let (web, worker) = policies("reality");
    let setup = Setup {
        web: simulate::parse_policy(&web, "web").expect("web policy"),
        worker: simulate::parse_policy(&worker, "worker").expect("worker policy"),
        params: Params::default(),
        // What the test Prometheus and prometheus-adapter's rule use.
        scrape_seconds: 1,
        window_seconds: 60,
        cadvisor_lag_seconds: 0,
        start_unix: None,
    };
    let mut md = format!(
        "# The simulator against reality\n\nEach trace is played in real time by the demo app. Its model serves the \
         web tier's latency histogram and the queue's backlog from the Deployments' real replica counts (pods \
         Ready 60 s after they start, the model's start-up delay); each autoscaler scales its own copy from what \
         the test Prometheus (1 s scrape) saw. Then the same trace and policies through `headroom simulate`'s \
         baselines at a 1 s scrape. Web: p95 against {:.0} ms, {WEB_MIN}–20 replicas; workers: \
         {WORKERS_PER_MESSAGES} messages per replica, 1–20. All runs at once, {:.0} minutes in all.\n",
        P95_TARGET * 1000.0,
        started.elapsed().as_secs_f64() / 60.0
    );
    let mut json = serde_json::Map::new();
    let mut played = vec![];
    for case in &TRACES {
        let _ = write!(
            md,
            "\n## {}: {}\n\n| autoscaler | run | SLO-violation minutes | replica-minutes | peak web | peak workers | first web change (s) | last web change (s) |\n\
             |---|---|---|---|---|---|---|---|\n",
            case.name, case.what
        );
        let mut gaps = String::from(
            "\n| autoscaler | mean web replica gap | mean worker replica gap | SLO-violation minutes, real − simulated | replica-minutes, real / simulated |\n|---|---|---|---|---|\n",
        );
        let mut per = serde_json::Map::new();
        for (r, app) in runs
            .iter()
            .zip(&apps)
            .filter(|(r, _)| r.case.name == case.name)
        {
            let name = r.name;
            let real = read_timeline(&app.out.join("timeline.csv"));
            let sim = simulated(case, r.kind, &setup);
            let (fr, fs) = (figures(&real), figures(&sim));
            for (label, f) in [("real", &fr), ("simulated", &fs)] {
                let _ = writeln!(
                    md,
                    "| {name} | {label} | {:.1} | {:.0} | {} | {} | {} | {} |",
                    f.slo_violation_minutes,
                    f.replica_minutes,
                    f.peak_web,
                    f.peak_workers,
                    f.first_web_change.map_or("-".into(), |t| t.to_string()),
                    f.last_web_change.map_or("-".into(), |t| t.to_string()),
                );
            }
            let web_gap = mean_gap(&real, &sim, |s| s.web);
            let worker_gap = mean_gap(&real, &sim, |s| s.workers);
            let _ = writeln!(
                gaps,
                "| {name} | {web_gap:.2} | {worker_gap:.2} | {:+.1} | {:.2} |",
                fr.slo_violation_minutes - fs.slo_violation_minutes,
                fr.replica_minutes / fs.replica_minutes.max(1e-9)
            );
            let fig = |f: &Figures| {
                serde_json::json!({
                    "sloViolationMinutes": f.slo_violation_minutes,
                    "replicaMinutes": f.replica_minutes,
                    "peakWeb": f.peak_web,
                    "peakWorkers": f.peak_workers,
                    "firstWebChangeSeconds": f.first_web_change,
                    "lastWebChangeSeconds": f.last_web_change,
                })
            };
            let both = |f: fn(&Second) -> f64| {
                serde_json::json!({
                    "real": real.iter().map(f).collect::<Vec<_>>(),
                    "simulated": sim.iter().map(f).collect::<Vec<_>>(),
                })
            };
            per.insert(
                name.to_string(),
                serde_json::json!({
                    "real": fig(&fr),
                    "simulated": fig(&fs),
                    "meanWebReplicaGap": web_gap,
                    "meanWorkerReplicaGap": worker_gap,
                    "realSeconds": real.len(),
                    "web": both(|s| f64::from(s.web)),
                    "workers": both(|s| f64::from(s.workers)),
                    "p95": both(|s| s.p95),
                }),
            );
            let plot = simulate::svg(
                &format!(
                    "reality check: {} under {name}, real and simulated",
                    case.name
                ),
                &[
                    as_outcome(&format!("{name} (real)"), &real),
                    as_outcome(&format!("{name} (simulated)"), &sim),
                ],
                P95_TARGET,
            );
            let file = format!("reality-{}-{name}.svg", case.name);
            std::fs::write(dir.join(&file), plot).expect("write the plot");
            played.push((case.name, name, fr.peak_web, real.len(), sim.len()));
        }
        md.push_str(&gaps);
        for (name, _) in AUTOSCALERS {
            let _ = writeln!(md, "\n![{name}](reality-{}-{name}.svg)", case.name);
        }
        json.insert(case.name.to_string(), serde_json::Value::Object(per));
    }
    std::fs::write(dir.join("reality.md"), &md).expect("write reality.md");
    std::fs::write(
        dir.join("reality.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .expect("write reality.json");
    println!("{md}");
    // A comparison with autoscalers that did not run, or an app that did not play the
    // trace, compares nothing.
    for (case, name, peak, len, expected) in played {
        assert!(
            len + 5 >= expected,
            "{case}/{name}: the demo app played {len} of {expected} seconds"
        );
        assert!(
            peak > WEB_MIN,
            "{case}/{name}: the real autoscaler never scaled the web tier"
        );
    }
}
