//! A scalable workload as Headroom reads it: replicas, ready replicas and the pods' selector,
//! from the object (a watch cache) or its `/scale` subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::DynamicObject;
use kube::core::Selector;

/// What Headroom needs to know about the target this round.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetState {
    /// `spec.replicas` of the scale subresource.
    pub current_replicas: i32,
    pub ready_replicas: i32,
    /// Label selector of the target's pods, from the scale status.
    pub selector: Option<String>,
    /// The controller that owns the target and sets its replicas itself (`Deployment/web`
    /// for a Deployment's ReplicaSet): scaling the target would fight it.
    pub controller: Option<String>,
}

/// `Kind/name` of the object's controlling owner, if it has one.
pub fn controller_of(obj: &DynamicObject) -> Option<String> {
    obj.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("{}/{}", o.kind, o.name))
}

/// Ready replicas from the target's status: `readyReplicas` where the kind reports it
/// (Deployments omit it at zero), else the scale status' replica count.
pub fn ready_replicas(obj: &DynamicObject, scale_status_replicas: i32) -> i32 {
    let status = obj.data.get("status");
    match status
        .and_then(|s| s.get("readyReplicas"))
        .and_then(|v| v.as_i64())
    {
        Some(n) => i32::try_from(n).unwrap_or(i32::MAX),
        None if status_has_ready_concept(obj) => 0,
        None => scale_status_replicas,
    }
}

fn status_has_ready_concept(obj: &DynamicObject) -> bool {
    matches!(
        obj.types.as_ref().map(|t| t.kind.as_str()),
        Some("Deployment" | "StatefulSet" | "ReplicaSet")
    )
}

/// Replicas, readiness and selector at the paths Deployments, StatefulSets and most scalable
/// custom resources use; None when `spec.replicas` is not there (ask `/scale` then).
pub fn state_of(obj: &DynamicObject) -> Option<TargetState> {
    let spec = obj.data.get("spec");
    let status = obj.data.get("status");
    let current = spec?.get("replicas")?.as_i64()?;
    let status_replicas = status
        .and_then(|s| s.get("replicas"))
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let selector = match status
        .and_then(|s| s.get("selector"))
        .and_then(|v| v.as_str())
    {
        Some(s) => Some(s.to_string()),
        None => spec
            .and_then(|s| s.get("selector"))
            .and_then(|v| serde_json::from_value::<LabelSelector>(v.clone()).ok())
            .and_then(|ls| Selector::try_from(ls).ok())
            .map(|s| s.to_string()),
    };
    Some(TargetState {
        current_replicas: i32::try_from(current).ok()?,
        ready_replicas: ready_replicas(obj, i32::try_from(status_replicas).unwrap_or(0)),
        selector: selector.filter(|s| !s.is_empty()),
        controller: controller_of(obj),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(kind: &str, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "x"}, "status": status
        }))
        .unwrap()
    }

    #[test]
    fn ready_replicas_come_from_status() {
        assert_eq!(
            ready_replicas(
                &obj("Deployment", json!({"replicas": 3, "readyReplicas": 2})),
                3
            ),
            2
        );
        // Deployments omit readyReplicas when none are ready.
        assert_eq!(
            ready_replicas(&obj("Deployment", json!({"replicas": 3})), 3),
            0
        );
        assert_eq!(ready_replicas(&obj("Deployment", json!({})), 3), 0);
        // A custom resource without the concept: trust the scale status.
        assert_eq!(ready_replicas(&obj("Worker", json!({"replicas": 4})), 4), 4);
    }

    fn object(v: serde_json::Value) -> DynamicObject {
        match serde_json::from_value(v) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_deployment_reads_as_its_scale_subresource_would() {
        let d = object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 4, "readyReplicas": 3}
        }));
        assert_eq!(
            state_of(&d),
            Some(TargetState {
                current_replicas: 4,
                ready_replicas: 3,
                selector: Some("app=web".into()),
                controller: None,
            })
        );
    }

    #[test]
    fn a_custom_resource_uses_its_status_selector_or_is_left_to_scale() {
        let w = object(json!({
            "apiVersion": "bench.headroom.dev/v1", "kind": "Workload", "metadata": {"name": "w"},
            "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=w"}
        }));
        assert_eq!(
            state_of(&w),
            Some(TargetState {
                current_replicas: 2,
                ready_replicas: 2,
                selector: Some("app=w".into()),
                controller: None,
            })
        );
        let elsewhere = object(json!({
            "apiVersion": "x/v1", "kind": "Odd", "metadata": {"name": "o"},
            "spec": {"size": 2}
        }));
        assert_eq!(state_of(&elsewhere), None);
    }

    #[test]
    fn a_replica_set_names_the_deployment_that_controls_it() {
        let rs = object(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d9c", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "1"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "2",
                 "controller": true}]},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 3, "readyReplicas": 3}
        }));
        assert_eq!(
            state_of(&rs).and_then(|s| s.controller),
            Some("Deployment/web".into())
        );
    }
}
