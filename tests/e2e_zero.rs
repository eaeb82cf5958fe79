//! Scale to zero on the real cluster: a worker Deployment at zero starts on the first
//! messages, and goes back to zero only after the idle cooldown.

mod support;

use std::time::{Duration, Instant};

use support::*;

const MIN: Duration = Duration::from_secs(60);

#[test]
fn e2e_a_worker_goes_from_zero_to_n_on_the_first_messages_and_back_after_the_cooldown() {
    let ns = Namespace::new("e2e-zero");
    set_backlog(&ns.0, "exports", 0.0);
    apply(&deployment("exporter", &ns.0, 0)).unwrap();
    let _op = Operator::start(&ns.0);
    let yaml = queue_policy(
        &ns.0,
        "exporter",
        "exporter",
        &backlog_query(&ns.0, "exports"),
        "  idleCooldown: 20s\n",
    )
    .replace("minReplicas: 1", "minReplicas: 0");
    apply(&yaml).unwrap();
    wait_until("the idle policy at zero", MIN, || {
        (limited_by(&ns.0, "exporter") == "Idle").then_some(())
    });
    assert_eq!(spec_replicas(&ns.0, "deployment", "exporter"), 0);
    // What a user watching the policy sees.
    let row = kubectl_ok(&["get", "sp", "exporter", "-n", &ns.0, "--no-headers"]);
    assert!(row.split_whitespace().any(|c| c == "Idle"), "{row}");

    // 250 messages at 100 per replica: 3 workers, in one step from zero.
    set_backlog(&ns.0, "exports", 250.0);
    let seen = wait_prom(
        &cluster().prometheus_url,
        &backlog_query(&ns.0, "exports"),
        |v| v > 0.0,
    );
    let (started, first) = wait_until("a start from zero", MIN, || {
        let n = spec_replicas(&ns.0, "deployment", "exporter");
        (n > 0).then(|| (Instant::now(), n))
    });
    assert_eq!(first, 3, "one step from 0 to what the backlog asks");
    let activation = started.duration_since(seen).as_secs_f64();
    let line = format!(
        "activation time (Prometheus first shows messages -> /scale from 0), interval 2s, scrape 1s: {activation:.2}s"
    );
    println!("{line}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("activation-time.txt"), format!("{line}\n"))
        .expect("write target/bench/activation-time.txt");
    let activated = events(&ns.0, "Activated");
    assert!(
        activated.iter().any(|n| n.contains("from 0 to 3")),
        "{activated:?}"
    );

    // Drained: the workers stay for the cooldown, then go to zero.
    set_backlog(&ns.0, "exports", 0.0);
    let empty = wait_prom(
        &cluster().prometheus_url,
        &backlog_query(&ns.0, "exports"),
        |v| v == 0.0,
    );
    let zero = wait_until("a return to zero", 2 * MIN, || {
        (spec_replicas(&ns.0, "deployment", "exporter") == 0).then(Instant::now)
    });
    let idle = zero.duration_since(empty).as_secs_f64();
    println!("back to zero {idle:.1}s after the queue emptied (cooldown 20s)");
    assert!(
        idle >= 17.0,
        "to zero after {idle:.1}s, before the 20s cooldown"
    );
    let idled = events(&ns.0, "Idle");
    assert!(idled.iter().any(|n| n.contains("to 0")), "{idled:?}");
    assert_eq!(limited_by(&ns.0, "exporter"), "Idle");
}

#[test]
fn e2e_a_worker_whose_queue_cannot_be_read_is_never_taken_to_zero() {
    let ns = Namespace::new("e2e-zero-missing");
    apply(&deployment("worker", &ns.0, 2)).unwrap();
    let _op = Operator::start(&ns.0);
    // No such series: every reading is empty, for far longer than the cooldown.
    let yaml = queue_policy(
        &ns.0,
        "worker",
        "worker",
        &backlog_query(&ns.0, "never-published"),
        "  idleCooldown: 2s\n",
    )
    .replace("minReplicas: 1", "minReplicas: 0");
    apply(&yaml).unwrap();
    wait_until("the unreadable queue reported", MIN, || {
        (limited_by(&ns.0, "worker") == "MetricsUnavailable").then_some(())
    });
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(spec_replicas(&ns.0, "deployment", "worker"), 2);
    assert_eq!(limited_by(&ns.0, "worker"), "MetricsUnavailable");
}
