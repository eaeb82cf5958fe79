//! Two autoscalers on one target fight: each undoes the other's change. A policy yields to an
//! HPA (KEDA's included) and to any older policy on the same target, and says who owns it.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::ResourceExt;

use crate::api::{ScalingPolicy, StoredPolicy};

/// Who else scales `me`'s target, if anyone does.
pub fn owner<'a>(
    me: &ScalingPolicy,
    policies: impl IntoIterator<Item = &'a StoredPolicy>,
    hpas: impl IntoIterator<Item = &'a HorizontalPodAutoscaler>,
) -> Option<String> {
    let ns = me.namespace();
    let t = &me.spec.target_ref;
    let same_kind = |api_version: &str, kind: &str| {
        kind == t.kind && group(api_version) == group(&t.api_version)
    };
    if let Some(h) = hpas.into_iter().find(|h| {
        h.namespace() == ns
            && h.spec.as_ref().is_some_and(|s| {
                let r = &s.scale_target_ref;
                r.name == t.name && same_kind(r.api_version.as_deref().unwrap_or_default(), &r.kind)
            })
    }) {
        return Some(format!(
            "HorizontalPodAutoscaler {} already scales {}/{}; remove it (or its KEDA ScaledObject) to let this policy scale",
            h.name_any(),
            t.kind,
            t.name
        ));
    }
    let first = |p: &ScalingPolicy| {
        (
            p.metadata.creation_timestamp.clone().map(|t| t.0),
            p.name_any(),
        )
    };
    policies
        .into_iter()
        .filter_map(|s| s.policy.as_ref().ok())
        // The target's name first: it rules out nearly every policy without allocating.
        .filter(|p| {
            p.spec.target_ref.name == t.name
                && p.metadata.namespace == me.metadata.namespace
                && p.metadata.name != me.metadata.name
                && same_kind(&p.spec.target_ref.api_version, &p.spec.target_ref.kind)
        })
        .filter(|p| first(p) < first(me))
        .min_by_key(|p| first(p))
        .map(|p| {
            format!(
                "ScalingPolicy {} already scales {}/{}; only the oldest policy on a target scales it",
                p.name_any(),
                t.kind,
                t.name
            )
        })
}

/// `apps` of `apps/v1`; "" for the core group.
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, created: &str, target: &str) -> StoredPolicy {
        let p: ScalingPolicy = match serde_json::from_value(serde_json::json!({
            "apiVersion": "headroom.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "maxReplicas": 3, "signals": [{"name": "q", "queue": {"query": "q", "targetPerReplica": 1}}]}
        })) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        StoredPolicy {
            metadata: p.metadata.clone(),
            policy: Ok(p),
        }
    }

    fn hpa(target: &str) -> HorizontalPodAutoscaler {
        match serde_json::from_value(serde_json::json!({
            "metadata": {"name": "keda-hpa-web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "maxReplicas": 5}
        })) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    fn of(s: &StoredPolicy) -> &ScalingPolicy {
        match &s.policy {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_newer_policy_yields_and_names_the_owner() {
        let old = policy("old", "2026-01-01T00:00:00Z", "web");
        let new = policy("new", "2026-02-01T00:00:00Z", "web");
        let other = policy("other", "2025-01-01T00:00:00Z", "api");
        let all = [old.clone(), new.clone(), other];
        assert_eq!(owner(of(&old), &all, []), None);
        let msg = owner(of(&new), &all, []).unwrap_or_default();
        assert!(
            msg.starts_with("ScalingPolicy old already scales Deployment/web"),
            "{msg}"
        );
    }

    #[test]
    fn a_policy_yields_to_an_hpa_on_its_target() {
        let p = policy("p", "2026-01-01T00:00:00Z", "web");
        let msg = owner(of(&p), [&p], [&hpa("web")]).unwrap_or_default();
        assert!(
            msg.starts_with("HorizontalPodAutoscaler keda-hpa-web"),
            "{msg}"
        );
        assert_eq!(owner(of(&p), [&p], [&hpa("api")]), None);
    }
}
