//! The `headroom` binary's offline commands: the CRD stays in sync with the Rust types, and
//! `decide` keeps its JSON contract and exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

fn headroom(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_headroom"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run headroom");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn committed_crd_matches_the_rust_types() {
    let (code, yaml, _) = headroom(&["crd"], "");
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/scalingpolicy.yaml"
    ))
    .expect("read crds/scalingpolicy.yaml");
    assert!(
        yaml == committed,
        "crds/scalingpolicy.yaml is out of date: run `cargo run -- crd > crds/scalingpolicy.yaml`"
    );
}

#[test]
fn decide_prints_the_contract() {
    let input = r#"{"minReplicas": 1, "maxReplicas": 10, "currentReplicas": 3,
        "signals": [{"name": "q", "targetType": "AverageValue", "target": 100, "value": 450},
                    {"name": "p95", "targetType": "Value", "target": 0.3, "value": null}]}"#;
    let (code, out, err) = headroom(&["decide", "--input", "-"], input);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("decide prints JSON");
    assert_eq!(v["desiredReplicas"], 5);
    assert_eq!(v["limitedBy"], "None");
    assert_eq!(
        v["proposals"][0],
        serde_json::json!({"name": "q", "replicas": 5})
    );
    assert_eq!(
        v["proposals"][1],
        serde_json::json!({"name": "p95", "replicas": null})
    );
    assert!(v["reason"].as_str().is_some_and(|r| r.contains("signal q")));
}

#[test]
fn decide_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("headroom-decide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let f = dir.join("in.json");
    std::fs::write(&f, r#"{"maxReplicas": 4, "currentReplicas": 2, "signals": [{"name": "q", "targetType": "AverageValue", "target": 10, "value": 1000}]}"#).expect("write");
    let (code, out, _) = headroom(&["decide", "--input", f.to_str().unwrap_or_default()], "");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (v["desiredReplicas"].as_i64(), v["limitedBy"].as_str()),
        (Some(4), Some("MaxReplicas"))
    );
}

#[test]
fn decide_rejects_bad_input_with_exit_2_and_the_field() {
    let (code, out, err) = headroom(
        &["decide"],
        r#"{"maxReplicas": 3, "currentReplicas": 1, "signals": [{"name": "q", "targetType": "AverageValue", "target": 0, "value": 1}]}"#,
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("signals[0].target: must be greater than 0"),
        "{err}"
    );
    let (code, _, err) = headroom(&["decide", "--input", "/nonexistent/in.json"], "");
    assert_eq!(code, 2);
    assert!(err.contains("cannot read /nonexistent/in.json"), "{err}");
}

#[test]
fn simulate_prints_the_json_contract_and_writes_a_plot() {
    let dir = std::env::temp_dir().join(format!("headroom-sim-{}", std::process::id()));
    let (code, out, err) = headroom(
        &[
            "simulate",
            "--scenario",
            "launch",
            "--json",
            "--out-dir",
            dir.to_str().unwrap_or_default(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("simulate --json prints JSON");
    assert_eq!(v["scenario"], "launch");
    let results = v["results"].as_array().expect("results");
    let names: Vec<&str> = results
        .iter()
        .filter_map(|r| r["autoscaler"].as_str())
        .collect();
    assert_eq!(names, ["headroom", "hpa", "keda", "kpa", "static"]);
    let keys = [
        "autoscaler",
        "sloViolationMinutes",
        "errorMinutes",
        "replicaMinutes",
        "workerReplicaMinutes",
        "peakReplicas",
        "scaleEvents",
        "reversals",
        "maxQueueAgeSeconds",
        "connectionOverflowMinutes",
    ];
    let mut got: Vec<&str> = results[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    got.sort_unstable();
    let mut want = keys.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
    assert!(err.contains("plot: "), "{err}");
    let svg = std::fs::read_to_string(dir.join("launch.svg")).expect("the SVG plot");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}

#[test]
fn simulate_replays_a_csv_trace_and_names_bad_input() {
    let dir = std::env::temp_dir().join(format!("headroom-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let trace = dir.join("spike.csv");
    std::fs::write(
        &trace,
        "seconds,requests_per_second,jobs_per_second\n0,40,10\n600,400,10\n1200,40,10\n",
    )
    .expect("write");
    let (code, out, err) = headroom(
        &[
            "simulate",
            "--trace",
            trace.to_str().unwrap_or_default(),
            "--out-dir",
            dir.to_str().unwrap_or_default(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("scenario: spike") && out.contains("headroom") && out.contains("plot: "),
        "{out}"
    );
    let (code, _, err) = headroom(&["simulate", "--scenario", "tuesday"], "");
    assert_eq!(code, 2);
    assert!(
        err.contains("--scenario: unknown scenario \"tuesday\""),
        "{err}"
    );
    std::fs::write(&trace, "0,40,1\n0,50,1\n").expect("write");
    let (code, _, err) = headroom(
        &["simulate", "--trace", trace.to_str().unwrap_or_default()],
        "",
    );
    assert_eq!(code, 2);
    assert!(err.contains("seconds must increase"), "{err}");
}

#[test]
fn simulate_places_a_planned_launch_on_the_calendar() {
    let dir = std::env::temp_dir().join(format!("headroom-launch-{}", std::process::id()));
    let out_dir = dir.to_str().unwrap_or_default();
    let headroom_slo = |out: &str| -> f64 {
        let row = out.lines().find(|l| l.starts_with("headroom"));
        row.and_then(|r| r.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    // The example web policy's launch window opens at 09:00+01:00; the step comes an hour in.
    let (code, planned, err) = headroom(
        &[
            "simulate",
            "--scenario",
            "launch",
            "--start",
            "2026-12-01T08:00:00+01:00",
            "--out-dir",
            out_dir,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(planned.contains("schedule: windows applied"), "{planned}");
    assert_eq!(headroom_slo(&planned), 0.0, "{planned}");
    let (code, surprise, err) = headroom(
        &["simulate", "--scenario", "launch", "--out-dir", out_dir],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        surprise.contains("schedule: windows not applied"),
        "{surprise}"
    );
    assert!(headroom_slo(&surprise) > 0.0, "{surprise}");

    let (code, _, err) = headroom(&["simulate", "--start", "tomorrow 9am"], "");
    assert_eq!(code, 2);
    assert!(
        err.contains("--start: \"tomorrow 9am\" is not an RFC 3339 time"),
        "{err}"
    );
}

fn decide_policy(observation: &str) -> (i32, serde_json::Value, String) {
    decide_with(
        concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/web.yaml"),
        observation,
    )
}

fn decide_with(policy: &str, observation: &str) -> (i32, serde_json::Value, String) {
    let dir = std::env::temp_dir().join(format!("headroom-why-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let f = dir.join(format!("obs-{}.json", observation.len()));
    std::fs::write(&f, observation).expect("write");
    let (code, out, err) = headroom(
        &[
            "decide",
            "--policy",
            policy,
            "--observation",
            f.to_str().unwrap_or_default(),
        ],
        "",
    );
    (
        code,
        serde_json::from_str(&out).unwrap_or(serde_json::Value::Null),
        err,
    )
}

/// The example web policy at 6 replicas with CPU asking for about 11.
fn busy_web(database_cpu: f64, regularly: f64, max_connections: f64, others: &str) -> String {
    format!(
        r#"{{"currentReplicas": 6,
            "values": {{"p95": 0.25, "p95@short": 0.25, "cpu": 120, "cpu@short": 120,
                        "databaseCpu": {database_cpu}, "databaseCpu/regularly": {regularly},
                        "slowQuery": 0.05, "errorRate": 0.001,
                        "connectionBudget/maxConnections": {max_connections}}},
            "memory": {{"connectionBudget": [{others}]}}}}"#
    )
}

#[test]
fn decide_explains_a_database_hold_for_a_policy() {
    // CPU over its 70 % target (it asks for 8) but short of saturation: the app waits on
    // its database, so the hold keeps 6.
    let waiting = busy_web(0.82, 0.64, 1000.0, "").replace("120", "85");
    let (code, v, err) = decide_policy(&waiting);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["desiredReplicas"], 6, "{v}");
    assert_eq!(v["limitedBy"], "DatabaseBound", "{v}");
    let why = v["why"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("DatabaseBound: ")
            && why.contains("databaseCpu regularly over 0.7 (0.82 for 64% of 30m)"),
        "{why}"
    );
    assert_eq!(v["verdict"], "NeedsAttention", "{v}");
    // Unobserved guardrail inputs are named, not guessed.
    let errors = v["errors"].to_string();
    assert!(
        errors.contains("spec.guardrails.forecast (cpu trend)"),
        "{errors}"
    );
    // At 120 % CPU the app is saturated too: it grows as far as CPU alone asks (11).
    let (_, v, _) = decide_policy(&busy_web(0.82, 0.64, 1000.0, ""));
    assert_eq!(v["desiredReplicas"], 11, "{v}");
}

#[test]
fn decide_explains_a_connection_budget_cap_for_a_policy() {
    let worker = r#"{"name": "shop/worker", "poolSizePerReplica": 10, "held": 5, "need": 5}"#;
    let (code, v, err) = decide_policy(&busy_web(0.3, 0.0, 100.0, worker));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (v["desiredReplicas"].as_i64(), v["limitedBy"].as_str()),
        (Some(6), Some("ConnectionBudget")),
        "{v}"
    );
    // With the budget to spare, CPU sizes the fleet.
    let (_, v, _) = decide_policy(&busy_web(0.3, 0.0, 1000.0, worker));
    assert_eq!(v["desiredReplicas"], 11, "{v}");
}

#[test]
fn decide_explains_a_start_from_zero_and_an_idle_return_to_it() {
    let idle = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/worker-idle.yaml"
    );
    let at = |current: i32, backlog: f64, idle_seconds: f64| {
        let obs = format!(
            r#"{{"currentReplicas": {current}, "values": {{"backlog": {backlog}, "backlog-arrivals": 0}},
                "memory": {{"idleSeconds": {idle_seconds}}}}}"#
        );
        let (code, v, err) = decide_with(idle, &obs);
        assert_eq!(code, 0, "{err}");
        (
            v["desiredReplicas"].as_i64(),
            v["limitedBy"].as_str().map(String::from),
        )
    };
    // 400 messages at 100 per replica: 4 workers in one step from zero.
    assert_eq!(at(0, 400.0, 0.0), (Some(4), Some("Activated".into())));
    assert_eq!(at(0, 0.0, 0.0), (Some(0), Some("Idle".into())));
    // Empty for 4 minutes: still one; for the 5-minute cooldown: zero.
    assert_eq!(at(2, 0.0, 240.0).0, Some(1));
    assert_eq!(at(2, 0.0, 300.0), (Some(0), Some("Idle".into())));
}

#[test]
fn decide_rejects_unknown_readings_and_trailing_garbage() {
    let (code, _, err) = decide_policy(r#"{"currentReplicas": 2, "values": {"p99": 1}}"#);
    assert_eq!(code, 2);
    assert!(
        err.contains("values.p99: not a reading of this policy") && err.contains("p95@short"),
        "{err}"
    );
    let (code, _, err) = decide_policy(r#"{"currentReplicas": 2} {"more": 1}"#);
    assert_eq!(code, 2);
    assert!(err.contains("trailing characters"), "{err}");
    let (code, _, err) = headroom(
        &["decide"],
        r#"{"maxReplicas": 3, "currentReplicas": 1} garbage"#,
    );
    assert_eq!(code, 2);
    assert!(err.contains("input: trailing characters"), "{err}");
}

/// `--case N` replays exactly the trace that row N of the family report summarises.
#[test]
fn simulate_replays_one_generated_case_as_the_report_scored_it() {
    let dir = std::env::temp_dir().join(format!("headroom-case-{}", std::process::id()));
    let report = dir.join("family.md");
    let (code, _, err) = headroom(
        &[
            "simulate",
            "--family",
            "storm",
            "--count",
            "2",
            "--seed",
            "3",
            "--report",
            report.to_str().unwrap_or_default(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(&report).expect("the report");
    let row = md
        .lines()
        .find(|l| l.starts_with("| storm-1 |"))
        .expect("row storm-1");
    // | trace | drawn | headroom SLO min | hpa | ...
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let (about, headroom_slo, hpa_slo) = (cells[2], cells[3], cells[4]);

    let (code, out, err) = headroom(
        &[
            "simulate",
            "--family",
            "storm",
            "--seed",
            "3",
            "--case",
            "1",
            "--out-dir",
            dir.to_str().unwrap_or_default(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(about), "{out}");
    let slo_of = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    assert_eq!(slo_of("headroom").as_deref(), Some(headroom_slo), "{out}");
    assert_eq!(slo_of("hpa").as_deref(), Some(hpa_slo), "{out}");
    let svg = std::fs::read_to_string(dir.join("storm-1.svg")).expect("the case's plot");
    assert!(svg.starts_with("<svg"));
    let (code, _, err) = headroom(&["simulate", "--case", "1"], "");
    assert_eq!(code, 2, "--case needs --family: {err}");
}
