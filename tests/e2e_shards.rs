//! Several replicas share the policies by shard, each shard held through its own Lease, and
//! a standby takes a crashed replica's shard over. The operators here watch every namespace,
//! so this binary holds this one test.

mod support;

use std::time::{Duration, Instant};

use headroom::controller::Shard;
use support::*;

const MIN: Duration = Duration::from_secs(60);

/// A namespace that falls into `shard` of 2.
fn namespace_in(shard: u32) -> Namespace {
    let name = (0..100)
        .map(|i| format!("e2e-shard{shard}-{i}"))
        .find(|n| Shard::of(n, 2) == shard)
        .expect("a namespace name in the shard");
    Namespace::new(&name)
}

#[test]
fn e2e_shards_split_the_policies_and_a_standby_takes_a_shard_over() {
    let (a, b) = (namespace_in(0), namespace_in(1));
    for ns in [&a, &b] {
        set_backlog(&ns.0, "q", 150.0);
        apply(&deployment("app", &ns.0, 1)).unwrap();
    }
    let lease = "headroom-e2e-shards";
    let _zero = Operator::start_sharded("zero", lease, 0, 2);
    let mut one = Operator::start_sharded("one", lease, 1, 2);
    wait_until("zero and one to hold their shards", MIN, || {
        (lease_holder(&format!("{lease}-0")) == "zero"
            && lease_holder(&format!("{lease}-1")) == "one")
            .then_some(())
    });
    let _standby = Operator::start_sharded("one-standby", lease, 1, 2);
    for ns in [&a, &b] {
        apply(&queue_policy(
            &ns.0,
            "app",
            "app",
            &backlog_query(&ns.0, "q"),
            "",
        ))
        .unwrap();
    }
    for ns in [&a, &b] {
        wait_until("each shard scales its policy to 2", MIN, || {
            (spec_replicas(&ns.0, "deployment", "app") == 2).then_some(())
        });
    }
    // Several intervals in which a replica of the wrong shard would have acted.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(event_reporters(&a.0, "Scaled"), vec!["zero".to_string()]);
    assert_eq!(event_reporters(&b.0, "Scaled"), vec!["one".to_string()]);

    // Shard 1's replica crashes: its standby takes the shard over; shard 0 is untouched.
    one.kill();
    let crashed = Instant::now();
    set_backlog(&b.0, "q", 350.0);
    wait_until("the standby to scale shard 1's policy to 4", MIN, || {
        (spec_replicas(&b.0, "deployment", "app") == 4).then_some(())
    });
    let took = crashed.elapsed();
    println!("shard 1 taken over and scaled {took:?} after its replica crashed (lease 4s)");
    assert_eq!(lease_holder(&format!("{lease}-1")), "one-standby");
    assert!(event_reporters(&b.0, "Scaled").contains(&"one-standby".to_string()));
    assert_eq!(event_reporters(&a.0, "Scaled"), vec!["zero".to_string()]);
}
