//! End-to-end scenarios of the guardrails, with real Prometheus data from the test exporter,
//! the real API server and the real operator.

mod support;

use std::time::{Duration, Instant};

use support::*;

const MIN: Duration = Duration::from_secs(60);

fn policy_yaml(ns: &str, name: &str, queue: &str, tail: &str) -> String {
    queue_policy(ns, name, name, &backlog_query(ns, queue), tail)
}

#[test]
fn e2e_guardrail_database_bound_holds_scale_up_until_the_database_recovers() {
    let ns = Namespace::new("e2e-dbhold");
    set_backlog(&ns.0, "orders", 800.0);
    exporter().gauge("pg_cpu_utilization_ratio", &[("namespace", &ns.0)], 0.85);
    let db = format!(r#"max(pg_cpu_utilization_ratio{{namespace="{}"}})"#, ns.0);
    wait_until("DB CPU in Prometheus for a while", MIN, || {
        prom_query(
            &cluster().prometheus_url,
            &format!("avg_over_time(({db} > bool 0.7)[20s:1s])"),
        )
        .filter(|v| *v > 0.5)
    });
    apply(&deployment("app", &ns.0, 2)).unwrap();
    let _op = Operator::start(&ns.0);
    let tail = format!(
        "  indicators:\n    databaseCpu: {{query: '{db}', regularlyWindow: 20s}}\n  guardrails: {{panic: {{enabled: false}}}}\n"
    );
    apply(&policy_yaml(&ns.0, "app", "orders", &tail)).unwrap();

    let p = wait_until("DatabaseBound=True", MIN, || {
        let p = policy(&ns.0, "app");
        condition(&p, "DatabaseBound")
            .filter(|c| c.0 == "True")
            .map(|_| p)
    });
    assert_eq!(p["status"]["limitedBy"], "DatabaseBound", "{p}");
    assert_eq!(p["status"]["verdict"], "NeedsAttention");
    assert_eq!(p["status"]["databaseCpu"], "85%");
    let warning = wait_until("a DatabaseBound Warning event", MIN, || {
        events(&ns.0, "DatabaseBound").into_iter().next()
    });
    for advice in ["cache hot reads", "indexes", "read replica"] {
        assert!(warning.to_lowercase().contains(advice), "{warning}");
    }
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        spec_replicas(&ns.0, "deployment", "app"),
        2,
        "app tier scaled into a database bottleneck"
    );
    let table = kubectl_ok(&["get", "sp", "app", "-n", &ns.0]);
    assert!(
        table.contains("VERDICT") && table.contains("NeedsAttention") && table.contains("85%"),
        "{table}"
    );

    exporter().gauge("pg_cpu_utilization_ratio", &[("namespace", &ns.0)], 0.3);
    wait_until("scale-up once the database recovers", MIN, || {
        (spec_replicas(&ns.0, "deployment", "app") > 2).then_some(())
    });
    assert_eq!(
        condition(&policy(&ns.0, "app"), "DatabaseBound").map(|c| c.0),
        Some("False".into())
    );
}

/// `api` (backlog 8x its target) and `jobs` (6x) sharing a budget of 9 replicas x 10
/// connections (100 less the 10% reserve).
fn two_policies_sharing_a_budget(name: &str) -> (Namespace, Operator) {
    let ns = Namespace::new(name);
    set_backlog(&ns.0, "a", 800.0);
    set_backlog(&ns.0, "b", 600.0);
    apply(&deployment("api", &ns.0, 1)).unwrap();
    apply(&deployment("jobs", &ns.0, 1)).unwrap();
    let op = Operator::start(&ns.0);
    let tail = "  guardrails:\n    panic: {enabled: false}\n    connectionBudget: {database: orders, poolSizePerReplica: 10, maxConnections: 100}\n";
    apply(&policy_yaml(&ns.0, "api", "a", tail)).unwrap();
    apply(&policy_yaml(&ns.0, "jobs", "b", tail)).unwrap();
    (ns, op)
}

/// Waits until api and jobs share the budget's 9 replicas with jobs capped by it.
fn budget_in_use(ns: &str) {
    wait_until("the budget of 9 replicas shared", MIN, || {
        let total =
            spec_replicas(ns, "deployment", "api") + spec_replicas(ns, "deployment", "jobs");
        (total == 9 && limited_by(ns, "jobs") == "ConnectionBudget").then_some(())
    });
}

/// api's and jobs' replicas at 10 connections each never exceed the 90 of the budget for
/// `seconds`; `what` says when, in the failure.
fn budget_holds_for(ns: &str, seconds: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let t = spec_replicas(ns, "deployment", "api") + spec_replicas(ns, "deployment", "jobs");
        assert!(
            t <= 9,
            "{what}: {t} replicas x 10 connections exceed the budget of 90"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn e2e_guardrail_connection_budget_is_shared_and_never_exceeded() {
    let (ns, _op) = two_policies_sharing_a_budget("e2e-budget");

    // 100 connections less the 10% reserve: 9 replicas of 10 connections between both.
    wait_until("a policy limited by ConnectionBudget", MIN, || {
        ["api", "jobs"]
            .iter()
            .any(|n| limited_by(&ns.0, n) == "ConnectionBudget")
            .then_some(())
    });
    budget_holds_for(&ns.0, 15, "shared");
    let total =
        spec_replicas(&ns.0, "deployment", "api") + spec_replicas(&ns.0, "deployment", "jobs");
    assert_eq!(total, 9, "the budget should be used, not left idle");
    // api's backlog is worse (8x vs 6x): it gets at least as much.
    assert!(
        spec_replicas(&ns.0, "deployment", "api") >= spec_replicas(&ns.0, "deployment", "jobs")
    );
}

#[test]
fn e2e_guardrail_a_deleted_policy_frees_its_budget_share_at_once() {
    let (ns, _op) = two_policies_sharing_a_budget("e2e-budget-delete");
    budget_in_use(&ns.0);
    let capped = spec_replicas(&ns.0, "deployment", "jobs");
    assert!(
        capped < 6,
        "jobs should be capped below its need of 6, has {capped}"
    );

    // The api workload goes away with its policy: its connections are no longer held.
    kubectl_ok(&["delete", "scalingpolicy", "api", "-n", &ns.0]);
    kubectl_ok(&["delete", "deployment", "api", "-n", &ns.0]);
    let deleted = Instant::now();
    wait_until(
        "jobs to take the freed share (6 for its backlog)",
        MIN,
        || (spec_replicas(&ns.0, "deployment", "jobs") == 6).then_some(()),
    );
    // Before, the deleted policy's claim stayed in the ledger until the operator restarted.
    eprintln!("freed share taken {:?} after the delete", deleted.elapsed());
}

/// A policy deleted and re-created while its Deployment keeps running: the replicas keep
/// their connections, so the other workload never scales into them (160 connections of 100
/// were reported before).
#[test]
fn e2e_guardrail_a_re_created_policy_cannot_push_the_budget_over() {
    let (ns, _op) = two_policies_sharing_a_budget("e2e-budget-recreate");
    let total =
        || spec_replicas(&ns.0, "deployment", "api") + spec_replicas(&ns.0, "deployment", "jobs");
    budget_in_use(&ns.0);
    let tail = "  guardrails:\n    panic: {enabled: false}\n    connectionBudget: {database: orders, poolSizePerReplica: 10, maxConnections: 100}\n";
    kubectl_ok(&["delete", "scalingpolicy", "api", "-n", &ns.0]);
    // jobs (interval 2 s) evaluates several times while api's Deployment runs unmanaged.
    budget_holds_for(&ns.0, 6, "after the delete");
    apply(&policy_yaml(&ns.0, "api", "a", tail)).unwrap();
    budget_holds_for(&ns.0, 10, "after the re-creation");
    assert_eq!(total(), 9, "the budget should still be used");
}

/// A policy deleted while its Deployment keeps running, then the operator restarted: the
/// new process has no ledger, and the deleted policy writes no status; the sharer's status
/// lists the orphan, so its replicas are still counted (160 connections of 100 before).
#[test]
fn e2e_guardrail_a_deleted_sharers_replicas_are_counted_across_a_restart() {
    let (ns, mut op) = two_policies_sharing_a_budget("e2e-budget-orphan-restart");
    budget_in_use(&ns.0);
    let api = spec_replicas(&ns.0, "deployment", "api");
    kubectl_ok(&["delete", "scalingpolicy", "api", "-n", &ns.0]);
    let listed = wait_until("jobs' status to list api's orphaned replicas", MIN, || {
        let o = support::policy(&ns.0, "jobs")["status"]["budgetOrphans"].clone();
        (o[0]["policy"] == "api" && o[0]["replicas"] == api).then_some(o)
    });
    assert_eq!(listed[0]["targetRef"]["name"], "api", "{listed}");
    assert_eq!(listed[0]["poolSizePerReplica"], 10, "{listed}");
    op.crash_and_restart();
    budget_holds_for(
        &ns.0,
        20,
        &format!("after the restart (api runs {api} unmanaged)"),
    );
    // Once api's Deployment is gone, its share is freed and the listing goes.
    kubectl_ok(&["delete", "deployment", "api", "-n", &ns.0]);
    wait_until(
        "jobs to take the freed share (6 for its backlog)",
        MIN,
        || (spec_replicas(&ns.0, "deployment", "jobs") == 6).then_some(()),
    );
    wait_until("the orphan to leave jobs' status", MIN, || {
        support::policy(&ns.0, "jobs")["status"]["budgetOrphans"]
            .is_null()
            .then_some(())
    });
}

/// A sharer the operator has not evaluated since it started (here: paused) is counted from
/// its status; a status written by hand to say it runs nothing cannot hide the replicas its
/// Deployment runs.
#[test]
fn e2e_guardrail_a_forged_status_cannot_hide_a_sharers_replicas() {
    let (ns, mut op) = two_policies_sharing_a_budget("e2e-budget-forged");
    budget_in_use(&ns.0);
    let api = spec_replicas(&ns.0, "deployment", "api");
    op.kill();
    kubectl_ok(&[
        "patch",
        "scalingpolicy",
        "api",
        "-n",
        &ns.0,
        "--type=merge",
        "-p",
        r#"{"spec":{"mode":"Paused"}}"#,
    ]);
    kubectl_ok(&[
        "patch",
        "scalingpolicy",
        "api",
        "-n",
        &ns.0,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"currentReplicas":0,"desiredReplicas":0}}"#,
    ]);
    op.crash_and_restart();
    budget_holds_for(&ns.0, 15, &format!("api runs {api}, its status says 0"));
}

#[test]
fn e2e_guardrail_panic_jumps_in_one_step_and_holds() {
    let ns = Namespace::new("e2e-panic");
    let labels = [("namespace", ns.0.as_str()), ("service", "web")];
    exporter().latency(&labels, 0.2);
    apply(&deployment("web", &ns.0, 2)).unwrap();
    let _op = Operator::start(&ns.0);
    let tail = "  behavior:\n    scaleUp: {policies: [{type: Pods, value: 1, periodSeconds: 60}]}\n    scaleDown: {stabilizationWindowSeconds: 0}\n  guardrails:\n    panic: {stableWindow: 40s}\n";
    apply(&latency_policy(&ns.0, 12, "60s", tail)).unwrap();
    wait_until("a first evaluation", MIN, || {
        (policy(&ns.0, "web")["status"]["verdict"] == "Solid").then_some(())
    });

    exporter().latency(&labels, 0.9);
    // The rate policy allows +1 per minute, so without panic the fleet is at most 3 for a
    // minute. Panic goes to what the short window needs in one step; the first evaluation
    // after the jump may still see the short window below 2x and take the +1 first.
    let up = wait_until(
        "panic scale-up past the rate policy",
        Duration::from_secs(45),
        || {
            let r = spec_replicas(&ns.0, "deployment", "web");
            (r >= 5).then_some(r)
        },
    );
    let p = policy(&ns.0, "web");
    assert_eq!(
        condition(&p, "Panic").map(|c| c.0),
        Some("True".into()),
        "{p}"
    );
    assert!(
        events(&ns.0, "Scaled")
            .iter()
            .any(|e| e.contains(&format!("to {up}")) && e.contains("panic"))
    );

    exporter().latency(&labels, 0.05);
    // The spike is over, but scale-down waits for a full stable window (40s).
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        assert!(
            spec_replicas(&ns.0, "deployment", "web") >= up,
            "scaled down inside the stable window"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn e2e_guardrail_creeping_latency_scales_before_the_slo_is_breached() {
    let ns = Namespace::new("e2e-creep");
    let labels = [("namespace", ns.0.as_str()), ("service", "web")];
    exporter().counter("http_requests_total", &labels, 50.0);
    exporter().latency(&labels, 0.1);
    apply(&deployment("web", &ns.0, 3)).unwrap();
    let _op = Operator::start(&ns.0);
    let rate = format!(
        r#"sum(rate(http_requests_total{{namespace="{}"}}[10s]))"#,
        ns.0
    );
    let tail = format!(
        "  behavior:\n    scaleDown: {{selectPolicy: Disabled}}\n  guardrails:\n    panic: {{enabled: false}}\n    creepingLatency: {{requestRateQuery: '{rate}', window: 30s, startupTime: 30s}}\n"
    );
    apply(&latency_policy(&ns.0, 10, "5s", &tail)).unwrap();
    // Let the request rate settle: a new counter's rate ramps up over its 10s window.
    wait_until("a steady request rate", MIN, || {
        prom_query(&cluster().prometheus_url, &rate).filter(|r| (r - 50.0).abs() < 1.0)
    });
    std::thread::sleep(Duration::from_secs(20));
    // Flat traffic, p95 rising 4ms a second from 100ms: a regression, not load.
    let start = Instant::now();
    let mut fired_at = None;
    while start.elapsed() < Duration::from_secs(90) {
        let p95 = 0.1 + 0.004 * start.elapsed().as_secs_f64();
        exporter().latency(&labels, p95.min(0.6));
        if spec_replicas(&ns.0, "deployment", "web") > 3 {
            fired_at = Some(p95);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let p95 = fired_at.expect("no early scale-up on creeping latency");
    println!(
        "creeping latency scaled up at an offered p95 of {:.0}ms (target 300ms)",
        p95 * 1000.0
    );
    let p = policy(&ns.0, "web");
    let trend = p["status"]["indicators"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "latencyTrend").cloned())
        .unwrap_or_default();
    assert_eq!(trend["band"], "Act", "{p}");
    assert!(
        trend["hint"]
            .as_str()
            .is_some_and(|h| h.contains("request rate is flat")),
        "{p}"
    );
    assert!(
        p95 < 0.3,
        "fired only after the breach: {p95}: {}",
        p["status"]
    );
    // One step, then the new pod gets its start-up time (30s) before the trend is judged again.
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(spec_replicas(&ns.0, "deployment", "web"), 4, "one step");
    assert!(
        events(&ns.0, "CreepingLatency")
            .iter()
            .any(|e| e.contains("rising")),
        "{p}"
    );
}

#[test]
fn e2e_guardrail_schedule_floor_and_cost_ceiling() {
    let ns = Namespace::new("e2e-schedule");
    set_backlog(&ns.0, "s", 50.0);
    set_backlog(&ns.0, "c", 900.0);
    apply(&deployment("launch", &ns.0, 1)).unwrap();
    apply(&deployment("budget", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let iso = |secs: u64| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The launch starts in 2 minutes; the floor applies 5 minutes ahead, so now.
    let tail = format!(
        "  guardrails:\n    panic: {{enabled: false}}\n    schedule:\n      - {{start: '{}', end: '{}', minReplicas: 4}}\n",
        iso(now + 120),
        iso(now + 3600)
    );
    apply(&policy_yaml(&ns.0, "launch", "s", &tail)).unwrap();
    exporter().gauge(
        "rabbitmq_oldest_message_age_seconds",
        &[("namespace", &ns.0)],
        420.0,
    );
    let cost = format!(
        "  indicators:\n    queueAge: {{query: 'max(rabbitmq_oldest_message_age_seconds{{namespace=\"{}\"}})', deadline: 5m}}\n  guardrails:\n    panic: {{enabled: false}}\n    cost: {{costPerReplicaHour: 0.5, maxHourlyCost: 1.5}}\n",
        ns.0
    );
    apply(&policy_yaml(&ns.0, "budget", "c", &cost)).unwrap();

    wait_until("the scheduled floor of 4", MIN, || {
        (spec_replicas(&ns.0, "deployment", "launch") == 4).then_some(())
    });
    // Once the backlog is read (it asks for 1), the floor is what holds 4.
    wait_until("limitedBy ScheduledFloor", MIN, || {
        (limited_by(&ns.0, "launch") == "ScheduledFloor").then_some(())
    });
    wait_until("the cost ceiling of 3 replicas", MIN, || {
        (spec_replicas(&ns.0, "deployment", "budget") == 3).then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(spec_replicas(&ns.0, "deployment", "budget"), 3);
    let p = policy(&ns.0, "budget");
    assert_eq!(p["status"]["limitedBy"], "CostCeiling", "{p}");
    assert_eq!(p["status"]["hourlyCost"], 1.5);
    // Jobs wait 7 minutes against a 5-minute deadline: the audit says so.
    assert_eq!(p["status"]["indicators"][0]["name"], "queueAge", "{p}");
    assert_eq!(p["status"]["indicators"][0]["band"], "Act", "{p}");
    assert_eq!(p["status"]["verdict"], "NeedsAttention", "{p}");

    // A malformed time makes the spec invalid: reported with its field, nothing is scaled
    // on it, and the other policy goes on.
    let bad = tail.replace(&iso(now + 120), "next tuesday");
    apply(&policy_yaml(&ns.0, "launch", "s", &bad)).unwrap();
    let (status, reason, msg) = wait_until("the bad schedule to be reported", MIN, || {
        condition(&policy(&ns.0, "launch"), "Ready").filter(|c| c.1 == "InvalidSpec")
    });
    assert_eq!(status, "False");
    assert_eq!(reason, "InvalidSpec");
    assert!(
        msg.contains("spec.guardrails.schedule[0].start") && msg.contains("next tuesday"),
        "{msg}"
    );
    assert_eq!(spec_replicas(&ns.0, "deployment", "launch"), 4);
    assert_eq!(limited_by(&ns.0, "budget"), "CostCeiling");
}

#[test]
fn e2e_guardrail_forecast_sizes_ahead_of_a_rising_backlog() {
    let ns = Namespace::new("e2e-forecast");
    set_backlog(&ns.0, "rise", 100.0);
    apply(&deployment("rise", &ns.0, 1)).unwrap();
    let _op = Operator::start(&ns.0);
    let tail = "  behavior:\n    scaleUp: {policies: [{type: Pods, value: 20, periodSeconds: 15}]}\n  guardrails:\n    panic: {enabled: false}\n    forecast: {horizon: 60s, window: 30s}\n";
    apply(&policy_yaml(&ns.0, "rise", "rise", tail)).unwrap();
    // The backlog grows 10 messages a second: a minute ahead it is 600 more.
    let start = Instant::now();
    let mut ahead = None;
    while start.elapsed() < Duration::from_secs(90) {
        let backlog = 100.0 + 10.0 * start.elapsed().as_secs_f64();
        set_backlog(&ns.0, "rise", backlog);
        let replicas = spec_replicas(&ns.0, "deployment", "rise");
        // limitedBy and the condition from one read: the next evaluation (2 s) may already
        // find the replicas there and be limited by something else.
        let p = policy(&ns.0, "rise");
        if p["status"]["limitedBy"] == "Forecast"
            && f64::from(replicas as i32) > (backlog / 100.0).ceil()
        {
            ahead = Some((backlog, replicas, p));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (backlog, replicas, p) = ahead.expect("the forecast never sized ahead of the backlog");
    println!(
        "forecast: {replicas} replicas for a backlog of {backlog:.0} (the backlog alone asks for {})",
        (backlog / 100.0).ceil()
    );
    assert_eq!(
        condition(&p, "Forecast").map(|c| c.0),
        Some("True".into()),
        "{p}"
    );
}

/// Hysteresis on the way down: with guardrails on, a scale-down sizes for 80 % of target.
/// A backlog of 400 at 100 per replica is 4 replicas for the HPA and 5 (400 / 80) here.
#[test]
fn e2e_guardrail_scale_down_leaves_a_margin_below_target() {
    let ns = Namespace::new("e2e-hysteresis");
    set_backlog(&ns.0, "h", 800.0);
    apply(&deployment("h", &ns.0, 8)).unwrap();
    let _op = Operator::start(&ns.0);
    let tail = "  behavior:\n    scaleDown: {stabilizationWindowSeconds: 0}\n  guardrails:\n    panic: {enabled: false}\n";
    apply(&policy_yaml(&ns.0, "h", "h", tail)).unwrap();
    wait_until("a first evaluation at 8", MIN, || {
        (policy(&ns.0, "h")["status"]["desiredReplicas"] == 8).then_some(())
    });
    set_backlog(&ns.0, "h", 400.0);
    wait_until("a scale-down", MIN, || {
        (spec_replicas(&ns.0, "deployment", "h") < 8).then_some(())
    });
    // Several more evaluations (interval 2s): it stays at 5, not 4.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(spec_replicas(&ns.0, "deployment", "h"), 5);
    // And 470 (4.7 per replica of 5 at 94 % of target) is within tolerance: no change.
    set_backlog(&ns.0, "h", 470.0);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(spec_replicas(&ns.0, "deployment", "h"), 5);
}

/// A week of one-minute readings of `jobs_published_rate` in `ns` as OpenMetrics, ending 20
/// minutes ago: 8 jobs/s, and 40 for 20 minutes each day from the time of day of `spike`.
fn daily_history(ns: &str, now: i64, spike: i64) -> String {
    let mut text = String::from("# TYPE jobs_published_rate gauge\n");
    let (from, to) = (now - 7 * 86_400, now - 1200);
    for t in (from..to).step_by(60) {
        let into = (t - spike).rem_euclid(86_400);
        let base = if into < 1200 { 40.0 } else { 8.0 };
        let value = base * (1.0 + 0.03 * (t as f64 / 700.0).sin());
        text.push_str(&format!(
            "jobs_published_rate{{namespace=\"{ns}\",queue=\"q\"}} {value:.3} {t}\n"
        ));
    }
    text.push_str("# EOF\n");
    text
}

#[test]
fn e2e_predictive_learns_a_daily_peak_from_history_and_scales_ahead_of_it() {
    let ns = Namespace::new("e2e-predict");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Every day for a week the load went 5x at this time of day: 10 minutes from now. With
    // a 15-minute horizon and readings 5 minutes apart, the rise is in sight from the start.
    let spike = now + 600;
    let prom =
        PrivatePrometheus::start_with_history("predict", Some(&daily_history(&ns.0, now, spike)));
    let week = format!(
        r#"count_over_time(jobs_published_rate{{namespace="{}"}}[8d])"#,
        ns.0
    );
    wait_until("the backfilled week in Prometheus", MIN, || {
        prom_query(&prom.url, &week).filter(|n| *n > 9000.0)
    });
    let labels = [("namespace", ns.0.as_str()), ("queue", "q")];
    exporter().gauge("jobs_published_rate", &labels, 8.0);
    set_backlog(&ns.0, "q", 0.0);
    apply(&deployment("worker", &ns.0, 1)).unwrap();
    let _op = Operator::start_with(&ns.0, &prom.url);
    let tail = |mode: &str| {
        format!(
            "        arrivalRateQuery: 'sum(jobs_published_rate{{queue=\"q\"}})'\n        ratePerReplica: 5\n  predictive: {{mode: {mode}, horizon: 15m}}\n"
        )
    };
    apply(&policy_yaml(&ns.0, "worker", "q", &tail("Observe"))).unwrap();

    // Observe: the pattern is found and backtested, the peak is named, nothing is scaled.
    let p = wait_until("the forecast to be learned and trusted", 2 * MIN, || {
        let p = policy(&ns.0, "worker");
        (p["status"]["predictive"]["acting"] == true).then_some(p)
    });
    let s = &p["status"]["predictive"];
    assert_eq!(s["mode"], "Observe", "{s}");
    assert_eq!(s["period"], "24h", "{s}");
    assert!(s["skill"].as_f64().is_some_and(|k| k > 0.5), "{s}");
    let next = s["nextPeak"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    assert!(
        // Within the 20 minutes at 40/s, to the 5-minute step the history is read at.
        next.is_some_and(|t| (spike - 300..spike + 1200).contains(&t)),
        "next peak {next:?} vs {spike}: {s}"
    );
    let would = wait_until("what the forecast would set", MIN, || {
        policy(&ns.0, "worker")["status"]["predictive"]["predictedReplicas"].as_i64()
    });
    // 8/s now, 40/s ahead (±3 % in the history), 5 a replica: 8, or 9 on a rounded-up peak.
    assert!((8..=9).contains(&would), "{would}");
    let (status, _, message) =
        condition(&policy(&ns.0, "worker"), "Predicted").expect("a Predicted condition");
    assert_eq!(status, "False");
    assert!(message.starts_with("observing"), "{message}");
    assert!(spec_replicas(&ns.0, "deployment", "worker") <= 2);

    // Enforce: ready before the peak, while the load is still 8/s.
    apply(&policy_yaml(&ns.0, "worker", "q", &tail("Enforce"))).unwrap();
    let ready = wait_until("replicas ready ahead of the peak", 2 * MIN, || {
        (spec_replicas(&ns.0, "deployment", "worker") >= would).then(std::time::SystemTime::now)
    });
    let at = ready
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    assert!(at < spike, "ready at {at}, the peak comes at {spike}");
    assert_eq!(limited_by(&ns.0, "worker"), "Predicted");
    assert!(
        events(&ns.0, "Scaled")
            .iter()
            .any(|e| e.contains("predicted: the 24h pattern")),
        "{:?}",
        events(&ns.0, "Scaled")
    );
}
