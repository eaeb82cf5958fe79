//! A ScalingPolicy as the API server stores it, decoded leniently: an object the types cannot
//! hold (written under an older schema, or straight into etcd) keeps its metadata and the
//! reason, instead of failing the whole list and stopping every other policy.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};

use super::ScalingPolicy;

/// What cannot be decoded, with the field path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DecodeError {
    pub field: String,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct StoredPolicy {
    pub metadata: ObjectMeta,
    pub policy: Result<ScalingPolicy, DecodeError>,
}

impl<'de> Deserialize<'de> for StoredPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        // Without readable metadata there is nothing to report on: that one fails as before.
        let metadata = ObjectMeta::deserialize(value.get("metadata").cloned().unwrap_or_default())
            .map_err(serde::de::Error::custom)?;
        let policy = serde_path_to_error::deserialize(value).map_err(|e| DecodeError {
            field: e.path().to_string(),
            message: e.inner().to_string(),
        });
        Ok(StoredPolicy { metadata, policy })
    }
}

/// kubectl's copy of the last applied object: the whole spec again, read by nothing here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

impl StoredPolicy {
    /// Without what the operator never reads (who wrote which field, kubectl's copy of the
    /// spec), in both copies of the metadata: at fleet scale these are most of the bytes held.
    pub fn slimmed(&mut self) {
        let slim = |m: &mut ObjectMeta| {
            m.managed_fields = None;
            if let Some(a) = m.annotations.as_mut() {
                a.remove(LAST_APPLIED);
            }
        };
        slim(&mut self.metadata);
        if let Ok(p) = self.policy.as_mut() {
            slim(&mut p.metadata);
        }
    }
}

impl Resource for StoredPolicy {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        ScalingPolicy::kind(&())
    }
    fn group(_: &()) -> Cow<'_, str> {
        ScalingPolicy::group(&())
    }
    fn version(_: &()) -> Cow<'_, str> {
        ScalingPolicy::version(&())
    }
    fn plural(_: &()) -> Cow<'_, str> {
        ScalingPolicy::plural(&())
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: serde_json::Value) -> StoredPolicy {
        match serde_json::from_value(json) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_object_the_types_cannot_hold_keeps_its_metadata_and_the_field() {
        let p = decode(serde_json::json!({
            "apiVersion": "headroom.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": "evil", "namespace": "a", "generation": 1},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                     "maxReplicas": 2147483648u64, "signals": []}
        }));
        assert_eq!(p.metadata.name.as_deref(), Some("evil"));
        let e = p.policy.err().unwrap_or_else(|| DecodeError {
            field: "none".into(),
            message: String::new(),
        });
        assert_eq!(e.field, "spec.maxReplicas");
        assert!(e.message.contains("2147483648"), "{e}");
    }

    #[test]
    fn a_good_object_decodes_whole() {
        let p = decode(serde_json::json!({
            "apiVersion": "headroom.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": "ok", "namespace": "a"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                     "maxReplicas": 3, "signals": [{"name": "q", "queue": {"query": "q", "targetPerReplica": 1}}]}
        }));
        assert!(p.policy.is_ok_and(|p| p.spec.max_replicas == 3));
    }

    #[test]
    fn slimmed_keeps_what_is_read_in_both_copies() {
        let mut p = decode(serde_json::json!({
            "apiVersion": "headroom.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": "ok", "namespace": "a", "generation": 2,
                         "annotations": {LAST_APPLIED: "{}", "team": "web"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                     "maxReplicas": 3, "signals": [{"name": "q", "queue": {"query": "q", "targetPerReplica": 1}}]}
        }));
        p.slimmed();
        let inner = p
            .policy
            .as_ref()
            .map(|p| p.metadata.clone())
            .unwrap_or_default();
        for m in [&p.metadata, &inner] {
            assert_eq!(m.managed_fields, None);
            assert_eq!((m.name.as_deref(), m.generation), (Some("ok"), Some(2)));
            let a = m.annotations.clone().unwrap_or_default();
            assert_eq!(a.keys().collect::<Vec<_>>(), ["team"]);
        }
    }
}
