//! A noisy neighbour: one namespace's policies, every second, ask Prometheus for padded,
//! slow and far-reaching answers beside healthy namespaces' policies. The healthy ones keep
//! their schedule and keep scaling, the operator's memory stays within its limit, and the
//! noisy ones are told why in their status. Figures go to target/bench/noisy-neighbour.*.
//! For the comparison, the same run with the limits raised out of the way (it fails these
//! checks): `NOISY_OPERATOR_ARGS="--namespace-queries 64 --max-response-bytes 1GiB"
//! NOISY_FIGURES=noisy-neighbour-unlimited cargo test --test e2e_noisy`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// deploy/'s memory limit for the operator.
const MEMORY_LIMIT_BYTES: u64 = 256 << 20;
const HEALTHY: [&str; 2] = ["e2e-noisy-ok-a", "e2e-noisy-ok-b"];
const NOISY: &str = "e2e-noisy-tenant";
const SERIES: usize = 200;
/// More slow policies than the 8 queries in flight per Prometheus: without shares, they
/// would hold every slot.
const SLOW: usize = 10;

/// The 200 series, each given an 8-byte label doubled `doublings` times.
fn padding(seed: &str, doublings: usize) -> String {
    let mut q = format!(r#"label_replace(noisy_series, "pad", "{seed}", "", "")"#);
    for _ in 0..doublings {
        q = format!(r#"label_replace({q}, "pad", "$1$1", "pad", "(.*)")"#);
    }
    q
}

/// 200 series with a 64 KiB label each: a 12.5 MiB answer.
fn padded(seed: &str) -> String {
    padding(seed, 13)
}

/// Within the cost limits (5h back, 18000 steps) but slow: every step of the subquery pads
/// every series of the namespace to 32 KiB. Read in time, it reads 0: nothing to scale on.
fn slow(i: usize) -> String {
    format!(
        "sum(count_over_time(count by (id) ({})[5h:1s])) * 0",
        padding(&format!("slow{i:04}"), 12)
    )
}

/// The peak resident memory of a process, from /proc.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// When each policy's evaluations ended, from the operator's debug log.
fn evaluations(log: &str) -> BTreeMap<String, Vec<f64>> {
    let ansi = regex::Regex::new("\x1b\\[[0-9;]*m").expect("regex");
    let mut by_policy: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("evaluated")) {
        let line = ansi.replace_all(line, "");
        let Some((at, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(at) = at.parse::<jiff::Timestamp>() else {
            continue;
        };
        if let Some((_, policy)) = rest.split_once("headroom.dev/") {
            by_policy
                .entry(policy.trim().to_string())
                .or_default()
                .push(at.as_millisecond() as f64 / 1000.0);
        }
    }
    by_policy
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn counter(metrics: &str, name: &str, namespace: &str) -> f64 {
    let prefix = format!("{name}{{namespace=\"{namespace}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn e2e_a_noisy_namespace_costs_only_itself() {
    let healthy: Vec<Namespace> = HEALTHY.iter().map(|n| Namespace::new(n)).collect();
    let noisy = Namespace::new(NOISY);
    for i in 0..SERIES {
        exporter().gauge(
            "noisy_series",
            &[("namespace", NOISY), ("id", &i.to_string())],
            1.0,
        );
    }
    // One target per policy: a second policy on a target would be a Conflict, not evaluated.
    for ns in HEALTHY {
        for name in ["q1", "q2"] {
            apply(&deployment(name, ns, 1)).expect("deployment");
        }
    }
    for ns in HEALTHY {
        set_backlog(ns, "jobs", 50.0);
    }
    // Every namespace, as in a shared cluster.
    let extra = std::env::var("NOISY_OPERATOR_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let op = Operator::start_args("", &extra);
    for ns in HEALTHY {
        for name in ["q1", "q2"] {
            let p = queue_policy(ns, name, name, &backlog_query(ns, "jobs"), "")
                .replace("interval: 2s", "interval: 1s");
            apply(&p).expect("healthy policy");
        }
    }
    let mut hostile: Vec<(String, String, &[&str])> = vec![];
    // Each is refused for one of these: its own cost, or its namespace's share being full.
    for i in 0..SLOW {
        hostile.push((
            format!("slow-{i}"),
            slow(i),
            &["--namespace-queries", "timed out"],
        ));
    }
    for seed in ["aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd"] {
        hostile.push((
            format!("padded-{seed}"),
            padded(seed),
            &["--max-response-bytes", "--namespace-queries"],
        ));
    }
    hostile.push((
        "far".into(),
        r#"count_over_time({__name__=~".+"}[30d:1s])"#.into(),
        &["--max-query-lookback"],
    ));
    for (name, query, _) in &hostile {
        apply(&deployment(name, NOISY, 1)).expect("deployment");
        let p = queue_policy(NOISY, name, name, query, "").replace("interval: 2s", "interval: 1s");
        apply(&p).expect("hostile policy");
    }
    let pid = op.pid().expect("operator running");

    // Warm up, then measure a minute in which the healthy backlog grows.
    std::thread::sleep(Duration::from_secs(20));
    let from = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    for ns in HEALTHY {
        set_backlog(ns, "jobs", 350.0);
    }
    let grown = Instant::now();
    let scaled = wait_until(
        "the healthy policies to scale",
        Duration::from_secs(60),
        || {
            HEALTHY
                .iter()
                .all(|ns| {
                    ["q1", "q2"]
                        .iter()
                        .all(|n| spec_replicas(ns, "deployment", n) == 4)
                })
                .then(|| grown.elapsed())
        },
    );
    std::thread::sleep(Duration::from_secs(60).saturating_sub(started.elapsed()));
    let to = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let rss = peak_rss(pid);
    let metrics = op.metrics();

    // Lag: how much later than one interval after the previous evaluation each one ended.
    let log = std::fs::read_to_string(&op.log).unwrap_or_default();
    let ends = evaluations(&log);
    let mut lags = vec![];
    let mut counted = BTreeMap::new();
    for ns in HEALTHY {
        for name in ["q1", "q2"] {
            let at: Vec<f64> = ends
                .get(&format!("{name}.{ns}"))
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|t| (from..to).contains(t))
                        .collect()
                })
                .unwrap_or_default();
            counted.insert(format!("{ns}/{name}"), at.len());
            lags.extend(at.windows(2).map(|w| (w[1] - w[0] - 1.0).max(0.0)));
        }
    }
    lags.sort_by(f64::total_cmp);
    let (p50, p95, p99, worst) = (
        percentile(&lags, 0.5),
        percentile(&lags, 0.95),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN),
    );
    let noisy_evaluations: usize = hostile
        .iter()
        .map(|(name, _, _)| {
            ends.get(&format!("{name}.{NOISY}"))
                .map_or(0, |v| v.iter().filter(|t| (from..to).contains(t)).count())
        })
        .sum();
    let query_time = |ns: &str| {
        counter(&metrics, "headroom_namespace_query_seconds_total", ns)
            / counter(&metrics, "headroom_namespace_queries_total", ns).max(1.0)
    };
    let refusals = counter(&metrics, "headroom_namespace_query_refusals_total", NOISY);
    let figures = json!({
        "window_seconds": to - from,
        "healthy_policies": counted,
        "healthy_lag_p50_seconds": p50,
        "healthy_lag_p95_seconds": p95,
        "healthy_lag_p99_seconds": p99,
        "healthy_lag_max_seconds": worst,
        "healthy_scale_up_seconds": scaled.as_secs_f64(),
        "healthy_query_seconds_mean": HEALTHY.iter().map(|ns| query_time(ns)).sum::<f64>() / HEALTHY.len() as f64,
        "noisy_query_seconds_mean": query_time(NOISY),
        "noisy_queries": counter(&metrics, "headroom_namespace_queries_total", NOISY),
        "noisy_refusals": refusals,
        "noisy_evaluations": noisy_evaluations,
        "operator_peak_rss_mib": rss as f64 / f64::from(1 << 20),
    });
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let md = format!(
        "# Noisy neighbour\n\nOperator flags: {}.\n\n15 policies in one namespace at 1s (10 slow subqueries, 4 padded to 12.5 MiB, 1 reading 30 days) beside 4 healthy policies at 1s in 2 namespaces, over {:.0} s.\n\n| figure | value |\n|---|---|\n| healthy evaluation lag p50 / p95 / p99 / max | {p50:.3} / {p95:.3} / {p99:.3} / {worst:.3} s |\n| healthy scale-up after the backlog grew | {:.1} s |\n| healthy Prometheus query time (mean) | {:.3} s |\n| noisy Prometheus query time (mean) | {:.3} s |\n| noisy queries sent / refused | {} / {refusals} |\n| operator peak RSS | {:.0} MiB (limit 256) |\n",
        if extra.is_empty() {
            "the defaults".to_string()
        } else {
            format!("`{}`", extra.join(" "))
        },
        to - from,
        scaled.as_secs_f64(),
        figures["healthy_query_seconds_mean"]
            .as_f64()
            .unwrap_or(f64::NAN),
        query_time(NOISY),
        counter(&metrics, "headroom_namespace_queries_total", NOISY),
        rss as f64 / f64::from(1 << 20),
    );
    // NOISY_FIGURES names the files, e.g. for a run with the limits raised out of the way.
    let name = std::env::var("NOISY_FIGURES").unwrap_or_else(|_| "noisy-neighbour".into());
    let _ = std::fs::write(dir.join(format!("{name}.md")), &md);
    let _ = std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&figures).unwrap_or_default(),
    );
    println!("{md}");

    assert!(
        lags.len() >= 150,
        "too few healthy evaluations: {counted:?}"
    );
    // A few evaluations one interval late are a stall of the shared machine as likely as the
    // tenant (a bound of 1 s on the p99 failed in CI at 1.011 s with a p50 of 0.011 s). A
    // tenant whose queries go before the healthy ones makes them late all along: with the
    // limits raised out of the way, p95 0.96 s and p99 1.25 s.
    assert!(
        p95 <= 0.5,
        "healthy evaluation lag p95 {p95:.3}s (at most half an interval): {figures}"
    );
    assert!(
        p99 <= 2.0,
        "healthy evaluation lag p99 {p99:.3}s (evaluations at most one interval + 2 s apart): {figures}"
    );
    assert!(
        rss > 0 && rss <= MEMORY_LIMIT_BYTES,
        "operator peak RSS {rss} bytes: {figures}"
    );
    // Reported, not dropped: each noisy policy says why it has no reading.
    for (name, _, why) in &hostile {
        let (status, _, message) = wait_until(
            &format!("{name}'s MetricsAvailable"),
            Duration::from_secs(30),
            || condition(&policy(NOISY, name), "MetricsAvailable"),
        );
        // A slow query can finish within the timeout on a young Prometheus (little history
        // to pad): then there is nothing to report. Every other one must say why.
        if name.starts_with("slow-") && status == "True" {
            continue;
        }
        assert_eq!(status, "False", "{name}: {message}");
        assert!(why.iter().any(|w| message.contains(w)), "{name}: {message}");
    }
    assert!(refusals > 0.0, "{figures}");
    for (name, _, _) in &hostile {
        assert_eq!(
            spec_replicas(NOISY, "deployment", name),
            1,
            "{name}: nothing scales on refused readings"
        );
    }
    forecasts_of_one_tenant_do_not_keep_anothers_from_learning();
    drop(healthy);
    drop(noisy);
}

/// Forecasts: the noisy namespace's 150 predictive policies, whose history reads are all
/// refused (a `[5h:1s]` subquery priced over the lookback), and then one healthy policy:
/// its forecast reads and learns within seconds (a turn of the fair pacer: 1.1 s here),
/// where a first-come pacer gave it one chance in 151 per turn (17.8 s, with the pacer
/// made first-come again). Each refused one says why.
fn forecasts_of_one_tenant_do_not_keep_anothers_from_learning() {
    const FORECASTS: usize = 150;
    let predictive = |query: &str| {
        format!(
            "        arrivalRateQuery: '{query}'\n        ratePerReplica: 5\n  predictive: {{mode: Observe}}\n"
        )
    };
    let refused = predictive(r#"max_over_time(sum(jobs_published_rate{queue="none"})[5h:1s])"#);
    let mut yaml = vec![];
    for i in 0..FORECASTS {
        let name = format!("forecast-{i}");
        yaml.push(deployment(&name, NOISY, 1));
        let p = queue_policy(NOISY, &name, &name, &backlog_query(NOISY, "jobs"), &refused);
        yaml.push(p.replace("interval: 2s", "interval: 1s"));
    }
    apply(&yaml.join("\n---\n")).expect("the noisy forecasts");
    let summary = |ns: &str, name: &str| {
        policy(ns, name)["status"]["predictive"]["summary"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let unread = wait_until(
        "the noisy forecasts to be refused",
        Duration::from_secs(60),
        || {
            let s = summary(NOISY, "forecast-0");
            s.starts_with("cannot read the load's history").then_some(s)
        },
    );
    assert!(unread.contains("--max-subquery-points"), "{unread}");
    let ns = HEALTHY[0];
    exporter().gauge(
        "jobs_published_rate",
        &[("namespace", ns), ("queue", "h")],
        4.0,
    );
    apply(&deployment("learner", ns, 1)).expect("deployment");
    let ok = predictive(r#"sum(jobs_published_rate{queue="h"})"#);
    let p = queue_policy(ns, "learner", "learner", &backlog_query(ns, "jobs"), &ok);
    apply(&p.replace("interval: 2s", "interval: 1s")).expect("the healthy forecast");
    let applied = Instant::now();
    // Its first evaluation is measured apart: behind 165 noisy policies due every second
    // (a debug build on two cores) it has waited 18 s (an open finding, #39); the pacer's
    // turn is what the bound below is for.
    wait_until(
        "the healthy policy's first status",
        Duration::from_secs(60),
        || policy(ns, "learner")["status"]["observedGeneration"].as_i64(),
    );
    let first_status = applied.elapsed();
    let asked = Instant::now();
    let learned = wait_until(
        "the healthy forecast to learn",
        Duration::from_secs(60),
        || {
            let s = summary(ns, "learner");
            (!s.is_empty() && s != "reading the load's history").then_some(s)
        },
    );
    let took = asked.elapsed();
    let still = (0..FORECASTS)
        .filter(|i| summary(NOISY, &format!("forecast-{i}")).is_empty())
        .count();
    println!(
        "healthy policy's first status after {first_status:?}; its forecast learned {took:?} after that ({learned}); {still} noisy ones had no word yet"
    );
    assert!(!learned.starts_with("cannot read"), "{learned}");
    assert!(
        first_status <= Duration::from_secs(30),
        "the healthy policy's first status came {first_status:?} after it was applied"
    );
    assert!(
        took <= Duration::from_secs(10),
        "the healthy forecast learned after {took:?}"
    );
}
