//! The peers benchmark (scripts/peers-bench.sh): the same queue backlog, from the same series,
//! scaled by the real HPA through prometheus-adapter (without and with its default behavior
//! written out), by real KEDA, and by Headroom at 5 s and 15 s, through a step, a short spike
//! and a decay. Each scenario runs in its own namespace, all five autoscalers side by side;
//! every repetition starts after a random pause so the step does not lock to any loop's phase.
//! Writes target/bench/peers.md, peers.json and one SVG of the trajectories per scenario.
//! Run with `cargo test --release --test peers_bench -- --nocapture` on a cluster started with
//! HEADROOM_PEERS=1; PEERS_BENCH_REPS sets the repetitions (default 5).

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use support::*;

const AUTOSCALERS: [&str; 5] = ["hpa", "hpa-behavior", "keda", "headroom-5s", "headroom-15s"];
const MESSAGES_PER_REPLICA: f64 = 10.0;

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    what: &'static str,
    /// When the load starts falling, seconds after the start.
    falls_at: f64,
    /// A repetition ends when every autoscaler is back at 1, or at this many seconds.
    max_seconds: f64,
}

impl Scenario {
    /// Messages ready at `t` seconds after the start.
    fn backlog(&self, t: f64) -> f64 {
        match self.name {
            "decay" if t >= self.falls_at => (100.0 * (-(t - self.falls_at) / 60.0).exp()).max(5.0),
            _ if t < self.falls_at => 100.0,
            _ => 5.0,
        }
    }
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "step",
        what: "5 -> 100 messages for 120 s, then 5",
        falls_at: 120.0,
        max_seconds: 600.0,
    },
    Scenario {
        name: "spike",
        what: "5 -> 100 messages for 20 s, then 5",
        falls_at: 20.0,
        max_seconds: 540.0,
    },
    Scenario {
        name: "decay",
        what: "5 -> 100 messages for 60 s, then decaying to 5 with a 60 s time constant",
        falls_at: 60.0,
        max_seconds: 780.0,
    },
];

/// One autoscaler's replicas over one repetition: (seconds since the start, count) at changes.
type Trajectory = Vec<(f64, i64)>;

#[derive(Default)]
struct Run {
    first_change: Option<f64>,
    peak: i64,
    /// When the peak count was first reached.
    to_peak: Option<f64>,
    /// From the load's fall to being back at 1.
    scale_down: Option<f64>,
}

fn measure(t: &Trajectory, falls_at: f64) -> Run {
    let mut r = Run {
        peak: 1,
        ..Run::default()
    };
    for &(s, n) in t {
        if n != 1 && r.first_change.is_none() {
            r.first_change = Some(s);
        }
        if n > r.peak {
            r.peak = n;
            r.to_peak = Some(s);
        }
    }
    if r.peak > 1
        && let Some(&(s, 1)) = t.last()
    {
        r.scale_down = Some((s - falls_at).max(0.0));
    }
    r
}

fn hpa(ns: &str, name: &str, behavior: bool) -> String {
    let behavior = if behavior {
        // The HPA's defaults, written out.
        r#"
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      selectPolicy: Max
      policies: [{type: Percent, value: 100, periodSeconds: 15}, {type: Pods, value: 4, periodSeconds: 15}]
    scaleDown:
      stabilizationWindowSeconds: 300
      policies: [{type: Percent, value: 100, periodSeconds: 15}]"#
    } else {
        ""
    };
    format!(
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: {name}, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric: {{name: rabbitmq_queue_messages_ready, selector: {{matchLabels: {{queue: q}}}}}}
        target: {{type: AverageValue, averageValue: "{MESSAGES_PER_REPLICA}"}}{behavior}
"#
    )
}

fn keda(ns: &str, name: &str, prometheus: &str) -> String {
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: {name}, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: {name}}}
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
    - type: prometheus
      metadata: {{serverAddress: "{prometheus}", query: '{q}', threshold: "{MESSAGES_PER_REPLICA}"}}
"#,
        q = backlog_query(ns, "q")
    )
}

fn headroom(ns: &str, name: &str, interval: &str) -> String {
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  minReplicas: 1
  maxReplicas: 10
  interval: {interval}
  signals:
    - name: backlog
      queue: {{query: '{q}', targetPerReplica: {MESSAGES_PER_REPLICA}}}
"#,
        q = backlog_query(ns, "q")
    )
}

/// Every Deployment's spec.replicas in `ns`, in one call.
fn replicas(ns: &str) -> BTreeMap<String, i64> {
    let out = kubectl(&[
        "get",
        "deploy",
        "-n",
        ns,
        "--no-headers",
        "-o",
        "custom-columns=N:.metadata.name,R:.spec.replicas",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

/// A pause in [0, 15) s drawn from the clock: 15 s is the HPA's sync and the longest loop.
fn random_pause() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let x = (u64::from(nanos).wrapping_mul(6364136223846793005) >> 33) % 15_000;
    Duration::from_millis(x)
}

fn set_up(ns: &str, prometheus: &str) {
    set_backlog(ns, "q", 5.0);
    for a in AUTOSCALERS {
        apply(&deployment(a, ns, 1)).expect("Deployment");
    }
    apply(&hpa(ns, "hpa", false)).expect("HPA");
    apply(&hpa(ns, "hpa-behavior", true)).expect("HPA with behavior");
    apply(&keda(ns, "keda", prometheus)).expect("ScaledObject");
    apply(&headroom(ns, "headroom-5s", "5s")).expect("policy 5s");
    apply(&headroom(ns, "headroom-15s", "15s")).expect("policy 15s");
    for h in ["hpa", "hpa-behavior", "keda-hpa-keda"] {
        wait_until(
            &format!("{ns}/{h} reading the backlog"),
            Duration::from_secs(120),
            || hpa_external_reading(ns, h),
        );
    }
    for p in ["headroom-5s", "headroom-15s"] {
        wait_until(
            &format!("{ns}/{p}'s first decision"),
            Duration::from_secs(60),
            || policy(ns, p)["status"]["desiredReplicas"].as_i64(),
        );
    }
}

/// One repetition: drives the backlog and records every Deployment's replicas.
fn repetition(ns: &str, s: &Scenario) -> BTreeMap<String, Trajectory> {
    wait_until(
        &format!("{ns}: every autoscaler at 1"),
        Duration::from_secs(600),
        || replicas(ns).values().all(|&n| n == 1).then_some(()),
    );
    std::thread::sleep(random_pause());
    let start = Instant::now();
    let mut trajectories: BTreeMap<String, Trajectory> = AUTOSCALERS
        .iter()
        .map(|a| (a.to_string(), vec![(0.0, 1)]))
        .collect();
    let mut last_backlog = f64::NAN;
    loop {
        let t = start.elapsed().as_secs_f64();
        let b = s.backlog(t);
        if (b - last_backlog).abs() >= 0.5 || last_backlog.is_nan() {
            set_backlog(ns, "q", b);
            last_backlog = b;
        }
        let now = replicas(ns);
        let t = start.elapsed().as_secs_f64();
        for (name, traj) in trajectories.iter_mut() {
            if let Some(&n) = now.get(name)
                && traj.last().map(|l| l.1) != Some(n)
            {
                traj.push((t, n));
            }
        }
        let settled = t > s.falls_at && now.values().all(|&n| n == 1);
        if settled || t > s.max_seconds {
            return trajectories;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn stats(v: &mut [f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[0], v[v.len() / 2], v[v.len() - 1]))
}

fn stats_json(v: &[Option<f64>]) -> serde_json::Value {
    let mut got: Vec<f64> = v.iter().flatten().copied().collect();
    match stats(&mut got) {
        Some((min, median, max)) => serde_json::json!({
            "min": min, "median": median, "max": max, "runs": got.len(), "missing": v.len() - got.len()
        }),
        None => serde_json::json!({"runs": 0, "missing": v.len()}),
    }
}

fn cell(v: &[Option<f64>]) -> String {
    let mut got: Vec<f64> = v.iter().flatten().copied().collect();
    let missing = v.len() - got.len();
    let s = match stats(&mut got) {
        Some((a, b, c)) => format!("{a:.1} / {b:.1} / {c:.1}"),
        None => "–".to_string(),
    };
    if missing > 0 {
        format!("{s} ({missing} never)")
    } else {
        s
    }
}

/// The replicas of every autoscaler over each repetition, one panel per repetition.
fn svg(s: &Scenario, reps: &[BTreeMap<String, Trajectory>]) -> String {
    let colors = ["#1f77b4", "#9467bd", "#2ca02c", "#d62728", "#ff7f0e"];
    let (w, panel_h, left) = (760.0, 150.0, 40.0);
    let h = 40.0 + panel_h * reps.len() as f64 + 30.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{left}" y="18" font-size="14">peers bench, {}: {}</text>"#,
        s.name, s.what
    );
    for (i, a) in AUTOSCALERS.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{}" y="34" fill="{}">{a}</text>"#,
            left + 120.0 * i as f64,
            colors[i]
        );
    }
    let x = |t: f64| left + (t / s.max_seconds).min(1.0) * (w - left - 10.0);
    for (r, rep) in reps.iter().enumerate() {
        let top = 45.0 + panel_h * r as f64;
        let y = |n: i64| top + panel_h - 15.0 - (n as f64 / 10.0) * (panel_h - 25.0);
        let _ = write!(
            out,
            r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="silver"/><text x="2" y="{}">10</text><text x="2" y="{}">1</text><line x1="{}" y1="{top}" x2="{}" y2="{}" stroke="silver" stroke-dasharray="3"/>"#,
            y(0),
            w - 10.0,
            y(0),
            y(10) + 4.0,
            y(1) + 4.0,
            x(s.falls_at),
            x(s.falls_at),
            top + panel_h - 15.0
        );
        for (i, a) in AUTOSCALERS.iter().enumerate() {
            let Some(traj) = rep.get(*a) else { continue };
            let mut pts = String::new();
            let mut prev: Option<i64> = None;
            for &(t, n) in traj {
                if let Some(p) = prev {
                    let _ = write!(pts, "{:.1},{:.1} ", x(t), y(p));
                }
                let _ = write!(pts, "{:.1},{:.1} ", x(t), y(n));
                prev = Some(n);
            }
            if let Some(p) = prev {
                let _ = write!(pts, "{:.1},{:.1}", x(s.max_seconds), y(p));
            }
            let _ = write!(
                out,
                r#"<polyline points="{pts}" fill="none" stroke="{}" stroke-width="1.5" transform="translate(0,{})"/>"#,
                colors[i],
                i as f64 * 0.8
            );
        }
    }
    let _ = write!(
        out,
        r#"<text x="{left}" y="{}">0 s</text><text x="{}" y="{}" text-anchor="end">{} s</text></svg>"#,
        h - 8.0,
        w - 10.0,
        h - 8.0,
        s.max_seconds
    );
    out
}

#[test]
fn peers_bench() {
    let cluster = cluster_with_peers();
    let reps: usize = std::env::var("PEERS_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let namespaces: Vec<Namespace> = SCENARIOS
        .iter()
        .map(|s| Namespace::new(&format!("peers-bench-{}", s.name)))
        .collect();
    let _operators: Vec<Operator> = namespaces.iter().map(|n| Operator::start(&n.0)).collect();
    for n in &namespaces {
        set_up(&n.0, &cluster.prometheus_url);
    }
    let started = Instant::now();
    let results: Vec<Vec<BTreeMap<String, Trajectory>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = SCENARIOS
            .iter()
            .zip(&namespaces)
            .map(|(s, n)| {
                sc.spawn(move || {
                    (0..reps)
                        .map(|r| {
                            let t = repetition(&n.0, s);
                            println!("{} repetition {} done", s.name, r + 1);
                            t
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });

    let mut md = format!(
        "# Peers benchmark\n\nThe real HPA (kube-controller-manager v1.34, 15 s sync) through prometheus-adapter v0.12.0, \
         real KEDA v2.21.0 (pollingInterval 30, minReplicaCount 1) and Headroom, side by side on the \
         test cluster, each scaling its own Deployment (1–10 replicas, pods Ready 1 s after start) \
         from the same backlog series, {MESSAGES_PER_REPLICA} messages per replica. {reps} repetitions \
         per scenario, each after a random pause in [0, 15) s; {:.0} minutes in all.\n\n\
         Seconds as min / median / max. *First change*: from the step to the first replica change. \
         *To final count*: from the step to the highest count reached. *Scale down*: from the load's \
         fall to being back at 1.\n",
        started.elapsed().as_secs_f64() / 60.0
    );
    let mut json = serde_json::Map::new();
    for (s, reps_of) in SCENARIOS.iter().zip(&results) {
        let _ = write!(
            md,
            "\n## {}: {}\n\n| autoscaler | first change | to final count | final count | scale down |\n|---|---|---|---|---|\n",
            s.name, s.what
        );
        let mut per = serde_json::Map::new();
        for a in AUTOSCALERS {
            let runs: Vec<Run> = reps_of
                .iter()
                .filter_map(|r| r.get(a))
                .map(|t| measure(t, s.falls_at))
                .collect();
            let first: Vec<_> = runs.iter().map(|r| r.first_change).collect();
            let final_: Vec<_> = runs.iter().map(|r| r.to_peak).collect();
            let down: Vec<_> = runs.iter().map(|r| r.scale_down).collect();
            let peaks: Vec<_> = runs.iter().map(|r| Some(r.peak as f64)).collect();
            let _ = writeln!(
                md,
                "| {a} | {} | {} | {} | {} |",
                cell(&first),
                cell(&final_),
                cell(&peaks),
                cell(&down)
            );
            per.insert(
                a.to_string(),
                serde_json::json!({
                    "firstChangeSeconds": stats_json(&first),
                    "finalSeconds": stats_json(&final_),
                    "finalReplicas": stats_json(&peaks),
                    "scaleDownSeconds": stats_json(&down),
                    "trajectories": reps_of.iter().map(|r| r.get(a).cloned().unwrap_or_default()).collect::<Vec<_>>(),
                }),
            );
        }
        let _ = writeln!(md, "\n![{}](peers-{}.svg)", s.name, s.name);
        json.insert(s.name.to_string(), serde_json::Value::Object(per));
    }
    let dir = repo().join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    for (s, reps_of) in SCENARIOS.iter().zip(&results) {
        std::fs::write(dir.join(format!("peers-{}.svg", s.name)), svg(s, reps_of))
            .expect("write the plot");
    }
    std::fs::write(dir.join("peers.md"), &md).expect("write peers.md");
    std::fs::write(
        dir.join("peers.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .expect("write peers.json");
    println!("{md}");
    // Every autoscaler must have scaled in every repetition of the step: a benchmark of
    // autoscalers that did not run is no benchmark.
    for a in AUTOSCALERS {
        let moved = results[0]
            .iter()
            .all(|r| r.get(a).is_some_and(|t| t.iter().any(|&(_, n)| n > 1)));
        assert!(moved, "{a} did not scale in every repetition of the step");
    }
}
