//! The leading indicators from the systems users run: the real data tier (PostgreSQL 15 with
//! pg_stat_statements, PgBouncer, Redis 7 and their exporters; tests/support/data.rs) on the
//! real node, the real app reading through PgBouncer and pushing jobs, a real worker taking
//! them. Every query of deploy/examples/ is rendered as the operator renders it and must return
//! data. Needs the real node: scripts/test.sh runs it on a cluster started with
//! HEADROOM_REAL_NODE=1 (`cargo test --test e2e_data -- --test-threads 1`).

mod support;

use std::time::{Duration, Instant};

use headroom::api::ScalingPolicy;
use headroom::metrics::Limits;
use headroom::metrics::promql::{Scope, render};
use headroom::plan::Plan;
use support::data::*;
use support::real::*;
use support::*;

/// The pods of a Deployment, by its `app` label.
fn pods_of(ns: &str, app: &str) -> Vec<String> {
    kubectl_ok(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("app={app}"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .split_whitespace()
    .map(String::from)
    .collect()
}

struct Reading {
    file: String,
    key: String,
    query: String,
    value: Option<f64>,
}

/// Every query of every policy in deploy/examples/, rendered for `ns` as the operator renders
/// it (templates filled in, raw PromQL confined to the namespace and cost-checked).
fn example_queries(ns: &str) -> Vec<Reading> {
    let mut out = vec![];
    let mut files: Vec<_> = std::fs::read_dir(repo().join("deploy/examples"))
        .expect("deploy/examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read example");
        let policy: ScalingPolicy =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let plan =
            Plan::resolve(&policy.spec).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let pods = pods_of(ns, &policy.spec.target_ref.name);
        let scope = Scope {
            namespace: ns,
            pods: Ok(&pods),
            cross_namespace: false,
            limits: Limits::default(),
        };
        for q in plan.queries() {
            let query = render(&q.measure, &scope)
                .unwrap_or_else(|e| panic!("{} {}: {e}", path.display(), q.key));
            out.push(Reading {
                file: path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into(),
                key: q.key.clone(),
                query,
                value: None,
            });
        }
    }
    out
}

fn report(readings: &[Reading]) -> String {
    let mut md = String::from(
        "# deploy/examples/ on the real data tier\n\nEach query as the operator sends it, read from the real exporters (PostgreSQL 15 + postgres_exporter v0.19.1, PgBouncer 1.18 + prometheus-pgbouncer-exporter 2.1.2, Redis 7 + redis_exporter 1.45, cAdvisor, kube-state-metrics) under load.\n\n| example | key | value | query |\n|---|---|---|---|\n",
    );
    for r in readings {
        let value = r.value.map_or("NO DATA".into(), |v| format!("{v:.4}"));
        md.push_str(&format!(
            "| {} | {} | {value} | `{}` |\n",
            r.file,
            r.key,
            r.query.replace('|', "\\|").replace('\n', " ")
        ));
    }
    md
}

#[test]
fn e2e_data_every_example_query_returns_data_on_the_real_stack() {
    let c = cluster_with_real_node();
    let ns = Namespace::new("e2e-data-examples");
    let ns = ns.0.as_str();
    app_image();
    kube_state_metrics();
    start_tier(ns, &Database::default());
    apply(&web(ns, "web", 10, "emails")).expect("the web tier");
    apply(&worker(ns, "worker", "emails")).expect("the worker");
    apply(&worker(ns, "exporter", "exports")).expect("the idle queue's worker");
    let _targets = PodTargets::start(ns);
    for name in ["web", "worker", "exporter"] {
        wait_ready(ns, name, 1, Duration::from_secs(120));
    }
    // Real SQL (a cheap read and a 20,000-row aggregate a request) and a job a request, at 4
    // a second: within the one web pod's 100m of CPU.
    let load = play_to(ns, "web", "/?expensive=20000", &["4:150"]);
    let started = Instant::now();
    let mut readings = example_queries(ns);
    assert!(readings.len() >= 10, "too few queries: {}", readings.len());
    // Rate windows and cAdvisor's 10-15 s refresh need a minute or two of samples; the
    // report is of a steady minute and a half of load (5m rates of younger series read low).
    loop {
        for r in readings.iter_mut() {
            r.value = prom_query(&c.prometheus_url, &r.query);
        }
        let all = readings.iter().all(|r| r.value.is_some());
        if (all && started.elapsed() > Duration::from_secs(90))
            || started.elapsed() > Duration::from_secs(140)
        {
            break;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    let md = report(&readings);
    println!("{md}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("real-data-queries.md"), &md).expect("write the report");
    let mut load = load;
    let _ = load.kill();
    let _ = load.wait();
    let missing: Vec<String> = readings
        .iter()
        .filter(|r| r.value.is_none())
        .map(|r| format!("{} {}: {}", r.file, r.key, r.query))
        .collect();
    assert!(
        missing.is_empty(),
        "queries of deploy/examples/ that returned nothing on the real stack:\n{}",
        missing.join("\n")
    );
    // The database is read as the systems report it, not as a constant.
    let db_cpu = readings.iter().find(|r| r.key == "databaseCpu");
    assert!(
        db_cpu.and_then(|r| r.value).is_some_and(|v| v > 0.0),
        "PostgreSQL's CPU under load reads above 0"
    );
}

/// PostgreSQL's CPU of its limit, as deploy/examples/web.yaml reads it.
/// PgBouncer's oldest waiting client, as `deploy/examples/web.yaml` reads it.
const POOL_WAIT: &str = r#"max(pgbouncer_pools_client_maxwait_seconds{database="orders"})"#;
const DATABASE_CPU: &str = r#"max(sum by (pod) (rate(container_cpu_usage_seconds_total{container="postgres"}[1m])) / sum by (pod) (kube_pod_container_resource_limits{container="postgres",resource="cpu"}))"#;

/// deploy/examples/web.yaml's hold on the p95 signal alone (300ms), its database read over a
/// minute instead of 30.
fn db_bound_policy(ns: &str) -> String {
    latency_policy(
        ns,
        6,
        "30s",
        &format!(
            "  indicators:\n    databaseCpu: {{query: '{DATABASE_CPU}', regularlyWindow: 1m}}\n    poolWait: {{query: '{POOL_WAIT}'}}\n  guardrails: {{databaseHold: true, panic: {{enabled: false}}}}\n"
        ),
    )
}

#[test]
fn e2e_data_a_saturated_postgres_holds_the_web_tier() {
    let c = cluster_with_real_node();
    let ns = Namespace::new("e2e-data-dbbound");
    let ns = ns.0.as_str();
    app_image();
    kube_state_metrics();
    // A small database: 200m of CPU, behind 2 of PgBouncer's server connections for the
    // app's pool of 10, so clients also queue at PgBouncer.
    let small = Database {
        cpu: "200m",
        pool: 2,
        ..Database::default()
    };
    start_tier(ns, &small);
    apply(&web(ns, "web", 10, "jobs")).expect("the web tier");
    let _targets = PodTargets::start(ns);
    wait_ready(ns, "web", 1, Duration::from_secs(120));
    // A 60,000-row aggregate a request: 4 requests a second ask more of PostgreSQL than its
    // 200m, so it is throttled at its limit and every query waits on it.
    let mut load = play_to(ns, "web", "/?expensive=60000", &["4:420"]);
    let db_query = headroom::metrics::scoped(DATABASE_CPU, ns).expect("scoped");
    let regularly = format!("avg_over_time(({db_query} > bool 0.7)[1m:5s])");
    let saturated = wait_until(
        "PostgreSQL's CPU over 70 % of its limit for most of a minute",
        Duration::from_secs(240),
        || prom_query(&c.prometheus_url, &regularly).filter(|v| *v >= 0.6),
    );
    println!(
        "database CPU over Act for {:.0}% of the last minute",
        saturated * 100.0
    );
    let _op = Operator::start(ns);
    apply(&db_bound_policy(ns)).expect("the policy");
    let p = wait_until("DatabaseBound=True", Duration::from_secs(90), || {
        let p = policy(ns, "web");
        condition(&p, "DatabaseBound")
            .filter(|c| c.0 == "True")
            .map(|_| p)
    });
    assert_eq!(p["status"]["limitedBy"], "DatabaseBound", "{p}");
    let warning = wait_until(
        "a DatabaseBound Warning event",
        Duration::from_secs(60),
        || events(ns, "DatabaseBound").into_iter().next(),
    );
    // Held for 45 s while the database stays saturated: p95 asks for more, none is added.
    let started = Instant::now();
    let (mut p95_peak, mut db, mut replicas_max) = (0.0f64, vec![], 0i64);
    let mut pool_waits = vec![];
    while started.elapsed() < Duration::from_secs(45) {
        let p = policy(ns, "web");
        if let Some(v) = p["status"]["signals"][0]["value"].as_f64() {
            p95_peak = p95_peak.max(v);
        }
        if let Some(row) = p["status"]["indicators"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == "poolWait"))
        {
            pool_waits.push(row.clone());
        }
        if let Some(v) = prom_query(&c.prometheus_url, &db_query) {
            db.push(v);
        }
        replicas_max = replicas_max.max(spec_replicas(ns, "deployment", "web"));
        std::thread::sleep(Duration::from_secs(3));
    }
    let _ = load.kill();
    let _ = load.wait();
    // "Regularly" over Act is what the hold reads, not every sample: a one-minute rate of a
    // saturated PostgreSQL still dips now and then.
    let over = db.iter().filter(|v| **v > 0.7).count();
    let db_low = db.iter().copied().fold(f64::INFINITY, f64::min);
    let wait_peak = pool_waits
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .fold(0.0f64, f64::max);
    let line = format!(
        "database-bound on the real stack: PostgreSQL over 70% of its 200m limit in {over} of {} samples (lowest {:.0}%), p95 signal up to {p95_peak:.2}s (target 0.3s), PgBouncer's oldest client waited up to {wait_peak:.2}s (poolWait), app replicas at most {replicas_max} (from 1), limitedBy DatabaseBound; event: {warning}",
        db.len(),
        db_low * 100.0
    );
    println!("{line}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("real-data-dbbound.txt"), format!("{line}\n")).expect("write");
    assert!(
        p95_peak > 0.3,
        "the p95 signal never asked for more ({p95_peak:.3}s): the hold was not tested"
    );
    assert!(
        !db.is_empty() && over * 4 >= db.len() * 3 && db_low > 0.5,
        "the database was not regularly over Act during the hold: {db:?}"
    );
    assert_eq!(
        replicas_max, 1,
        "app replicas added into a saturated database"
    );
    assert_eq!(limited_by(ns, "web"), "DatabaseBound");
    // PgBouncer's own reading of its queue, in the audit with its hint.
    let waited = pool_waits
        .iter()
        .find(|r| r["band"] == "Act" || r["band"] == "Watch");
    assert!(
        waited.is_some_and(|r| r["value"].as_f64().is_some_and(|v| v > 0.1)
            && r["hint"]
                .as_str()
                .is_some_and(|h| h.contains("database connection"))),
        "clients queued at PgBouncer, but the poolWait indicator never said so: {pool_waits:?}"
    );
}

fn idle_worker_policy(ns: &str) -> String {
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: exporter, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: exporter}}
  minReplicas: 0
  maxReplicas: 4
  interval: 5s
  idleCooldown: 20s
  signals:
    - name: backlog
      queue:
        query: sum(redis_key_size{{key="exports"}})
        targetPerReplica: 100
        arrivalRateQuery: sum(rate(redis_commands_total{{cmd="lpush"}}[30s])) or sum(redis_up == 1) * 0
        ratePerReplica: 4
"#
    )
}

#[test]
fn e2e_data_a_worker_starts_from_zero_on_the_first_real_message_and_returns_to_zero() {
    cluster_with_real_node();
    let ns = Namespace::new("e2e-data-zero");
    let ns = ns.0.as_str();
    app_image();
    start_tier(ns, &Database::default());
    apply(&worker(ns, "exporter", "exports")).expect("the worker");
    kubectl_ok(&[
        "scale",
        "deployment",
        "exporter",
        "-n",
        ns,
        "--replicas",
        "0",
    ]);
    let _targets = PodTargets::start(ns);
    let _op = Operator::start(ns);
    apply(&idle_worker_policy(ns)).expect("the policy");
    wait_until(
        "the policy reads the empty queue",
        Duration::from_secs(90),
        || {
            let p = policy(ns, "exporter");
            (condition(&p, "MetricsAvailable").is_some_and(|c| c.0 == "True")
                && p["status"]["signals"][0]["value"].as_f64() == Some(0.0))
            .then_some(())
        },
    );
    assert_eq!(spec_replicas(ns, "deployment", "exporter"), 0);
    let redis = kubectl_ok(&[
        "get",
        "service",
        "redis",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let pushed = Instant::now();
    let push = std::process::Command::new("redis-cli")
        .args(["-h", redis.trim(), "lpush", "exports", "job-1"])
        .output()
        .expect("redis-cli");
    assert!(push.status.success(), "LPUSH: {push:?}");
    let scaled = wait_until("/scale from zero", Duration::from_secs(60), || {
        (spec_replicas(ns, "deployment", "exporter") >= 1).then(|| pushed.elapsed())
    });
    wait_ready(ns, "exporter", 1, Duration::from_secs(60));
    wait_until(
        "the job taken off the queue",
        Duration::from_secs(60),
        || {
            prom_query(
                &cluster().prometheus_url,
                &format!(r#"sum(jobs_processed_total{{namespace="{ns}"}})"#),
            )
            .filter(|n| *n >= 1.0)
        },
    );
    let worked = pushed.elapsed();
    let idle = wait_until("back to zero", Duration::from_secs(150), || {
        (spec_replicas(ns, "deployment", "exporter") == 0).then(|| pushed.elapsed())
    });
    let line = format!(
        "worker from zero on real Redis: first message to /scale {:.1}s (interval 5s), job done {:.1}s, back to zero {:.0}s after the message (arrivals over 30s, idleCooldown 20s)",
        scaled.as_secs_f64(),
        worked.as_secs_f64(),
        idle.as_secs_f64()
    );
    println!("{line}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("real-data-from-zero.txt"), format!("{line}\n")).expect("write");
    assert!(
        scaled <= Duration::from_secs(7),
        "first message to /scale took {scaled:?}, over one interval + 2 s"
    );
}

/// A web tier asked for 6 replicas of 10 connections each by a custom signal, on a database
/// of max_connections 30, reached directly; `budget` adds the connection budget read from
/// postgres_exporter's pg_settings_max_connections.
fn pool_policy(ns: &str, budget: bool) -> String {
    let budget = if budget {
        "  guardrails:\n    panic: {enabled: false}\n    connectionBudget: {database: orders, poolSizePerReplica: 10, maxConnectionsQuery: 'max(pg_settings_max_connections)'}\n"
    } else {
        ""
    };
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: web, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: 6
  interval: 5s
  signals:
    - name: demand
      custom: {{query: 'sum(redis_up) * 60', target: 10, targetType: AverageValue}}
{budget}"#
    )
}

/// Connections PostgreSQL refused the web tier's pools past max_connections ("sorry, too many
/// clients already", SQLSTATE 53300), from the app's own counter.
fn refused(ns: &str) -> f64 {
    prom_query(
        &cluster().prometheus_url,
        &format!(r#"sum(db_client_errors_total{{namespace="{ns}",kind="too_many_connections"}}) or vector(0)"#),
    )
    .unwrap_or(0.0)
}

/// Runs the pool test with or without the budget: (replicas reached, connections refused,
/// most server connections PostgreSQL held).
fn pools_against_max_connections(ns: &str, budget: bool) -> (i64, f64, f64) {
    app_image();
    kube_state_metrics();
    let db = Database {
        max_connections: 30,
        ..Database::default()
    };
    start_tier(ns, &db);
    apply(&web_via(ns, "web", 10, "jobs", Via::Direct)).expect("the web tier");
    let _targets = PodTargets::start(ns);
    wait_ready(ns, "web", 1, Duration::from_secs(120));
    let _op = Operator::start(ns);
    apply(&pool_policy(ns, budget)).expect("the policy");
    let want = if budget { 2 } else { 6 };
    wait_until("the web tier scaled", Duration::from_secs(120), || {
        (ready_replicas(ns, "web") >= want).then_some(())
    });
    // Each request holds a connection for a 200,000-row aggregate: every pool fills up.
    let mut load = play_to(ns, "web", "/?expensive=200000", &["40:60"]);
    let started = Instant::now();
    let mut most = 0.0f64;
    let backends = format!(r#"sum(pg_stat_database_numbackends{{namespace="{ns}"}})"#);
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(n) = prom_query(&cluster().prometheus_url, &backends) {
            most = most.max(n);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let _ = load.kill();
    let _ = load.wait();
    std::thread::sleep(Duration::from_secs(3));
    (spec_replicas(ns, "deployment", "web"), refused(ns), most)
}

#[test]
fn e2e_data_the_connection_budget_keeps_pools_within_max_connections() {
    cluster_with_real_node();
    let on = Namespace::new("e2e-data-budget-on");
    let (replicas_on, refused_on, most_on) = pools_against_max_connections(&on.0, true);
    let limited = limited_by(&on.0, "web");
    drop(on);
    let off = Namespace::new("e2e-data-budget-off");
    let (replicas_off, refused_off, most_off) = pools_against_max_connections(&off.0, false);
    let line = format!(
        "connection budget on the real stack (max_connections 30, 10 a pool): on: {replicas_on} replicas ({limited}), {refused_on:.0} connections refused, at most {most_on:.0} backends; off: {replicas_off} replicas, {refused_off:.0} refused, at most {most_off:.0} backends"
    );
    println!("{line}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("real-data-budget.txt"), format!("{line}\n")).expect("write");
    assert_eq!(replicas_on, 2, "budget: floor(27 / 10) replicas");
    assert_eq!(limited, "ConnectionBudget");
    assert_eq!(
        refused_on, 0.0,
        "PostgreSQL refused connections with the budget on"
    );
    assert!(
        refused_off > 0.0,
        "without the budget 6 pools of 10 should overrun max_connections 30"
    );
}
