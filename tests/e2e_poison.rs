//! Defence in depth: a ScalingPolicy the operator's types cannot hold (written under an
//! older, looser schema) never stops the others. This binary has one test because it
//! loosens the CRD for a moment, which must not overlap other tests.

mod support;

use std::time::Duration;

use support::*;

const MIN: Duration = Duration::from_secs(60);

/// The CRD with the spec's schema replaced by "anything": what an older release might have
/// installed.
fn loosened_crd() -> String {
    let crd = kubectl_ok(&["get", "crd", "scalingpolicies.headroom.dev", "-o", "json"]);
    let mut v: serde_json::Value = serde_json::from_str(&crd).expect("CRD JSON");
    let schema = &mut v["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    *schema = serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    v.to_string()
}

fn restore_crd() {
    kubectl_ok(&[
        "apply",
        "-f",
        &repo().join("crds/scalingpolicy.yaml").to_string_lossy(),
    ]);
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/scalingpolicies.headroom.dev",
        "--timeout=60s",
    ]);
}

#[test]
fn e2e_a_poison_policy_never_stops_the_others_across_a_restart() {
    let ns = Namespace::new("e2e-poison");
    set_backlog(&ns.0, "ok", 300.0);
    apply(&deployment("healthy", &ns.0, 1)).unwrap();

    // A policy the types cannot hold gets into etcd under a loose schema.
    must(run_kubectl(
        &cluster().kubeconfig,
        &["replace", "-f", "-"],
        Some(&loosened_crd()),
    ));
    let poison = format!(
        "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {{name: poison, namespace: {}}}\nspec:\n  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: healthy}}\n  maxReplicas: 2147483648\n  signals: []\n",
        ns.0
    );
    let created = wait_until("the loose schema to take the poison", MIN, || {
        apply(&poison).ok()
    });
    restore_crd();
    assert!(created.contains("poison"), "{created}");

    let mut op = Operator::start(&ns.0);
    apply(&queue_policy(
        &ns.0,
        "healthy",
        "healthy",
        &backlog_query(&ns.0, "ok"),
        "",
    ))
    .unwrap();
    wait_until("the healthy policy to scale to 3", MIN, || {
        (spec_replicas(&ns.0, "deployment", "healthy") == 3).then_some(())
    });
    // The poison is reported with its field, on itself.
    let reported = wait_until("the poison to be reported", MIN, || {
        events(&ns.0, "InvalidSpec")
            .into_iter()
            .find(|e| e.contains("spec.maxReplicas"))
    });
    assert!(reported.contains("cannot be read"), "{reported}");
    let (status, reason, _) = wait_until("the poison's condition", MIN, || {
        condition(&policy(&ns.0, "poison"), "Ready")
    });
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));

    // Across a restart the healthy policy keeps scaling.
    op.crash_and_restart();
    set_backlog(&ns.0, "ok", 700.0);
    wait_until(
        "the healthy policy to scale to 7 after the restart",
        MIN,
        || (spec_replicas(&ns.0, "deployment", "healthy") == 7).then_some(()),
    );
    assert!(
        op.is_running(),
        "the operator exited:\n{}",
        std::fs::read_to_string(&op.log).unwrap_or_default()
    );
    kubectl_ok(&["delete", "scalingpolicy", "poison", "-n", &ns.0]);
}
