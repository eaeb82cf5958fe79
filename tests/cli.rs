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
