//! After the API server comes back, evaluations resume within about one interval. This binary
//! restarts the shared API server, so it holds this one test only. The figure is printed and
//! written to target/bench/recovery.txt; the test asserts that scaling resumes, not how fast.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const MIN: Duration = Duration::from_secs(60);

/// Kills the API server and starts it again with the same command line; returns when it is
/// ready. The new process outlives the test on purpose: the cluster scripts stop it by pid.
#[allow(clippy::zombie_processes)]
fn restart_api_server(down_for: Duration) -> Instant {
    let pid_file = repo().join("target/cluster/pids/kube-apiserver.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("API server pid");
    let pid = pid.trim().to_string();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("API server cmdline");
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let _ = Command::new("kill").args(["-9", &pid]).status();
    std::thread::sleep(down_for);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(repo().join("target/cluster/logs/kube-apiserver.log"))
        .expect("API server log");
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start the API server again");
    // The cluster scripts stop it by this pid.
    std::fs::write(&pid_file, child.id().to_string()).expect("pid file");
    wait_until("the API server to be ready again", MIN, || {
        kubectl(&["get", "--raw", "/readyz"])
            .status
            .success()
            .then(Instant::now)
    })
}

#[test]
fn e2e_evaluations_resume_within_an_interval_after_the_api_server_returns() {
    let ns = Namespace::new("e2e-recovery");
    set_backlog(&ns.0, "r", 200.0);
    apply(&deployment("r", &ns.0, 1)).unwrap();
    let op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "r",
        "r",
        &backlog_query(&ns.0, "r"),
        "",
    ))
    .unwrap();
    wait_until("the first scale-up to 2", MIN, || {
        (spec_replicas(&ns.0, "deployment", "r") == 2).then_some(())
    });
    // Long enough for the operator's evaluations and watches to fail and back off.
    set_backlog(&ns.0, "r", 600.0);
    let ready = restart_api_server(Duration::from_secs(20));
    wait_until("scaling to 6 once the API server is back", MIN, || {
        (spec_replicas(&ns.0, "deployment", "r") == 6).then_some(())
    });
    let resumed = ready.elapsed().as_secs_f64();
    let line = format!(
        "API server down 20 s; from /readyz OK to the next scale: {resumed:.1} s (interval 2 s)\n"
    );
    eprint!("{line}");
    let _ = std::fs::create_dir_all(repo().join("target/bench"));
    let _ = std::fs::write(repo().join("target/bench/recovery.txt"), line);
    drop(op);
    // Leave the cluster as the next test binary expects it: the controllers (here, the one
    // that gives a new namespace its default ServiceAccount) have resynced too.
    let probe = "e2e-recovery-probe";
    let _ = kubectl(&["create", "namespace", probe]);
    wait_until(
        "the controllers to resync after the restart",
        3 * MIN,
        || {
            kubectl(&["get", "serviceaccount", "default", "-n", probe])
                .status
                .success()
                .then_some(())
        },
    );
    let _ = kubectl(&["delete", "namespace", probe, "--wait=false"]);
}
