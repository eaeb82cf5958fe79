//! The keys the operator files policies and targets under.

use kube::Resource;

use crate::api::StoredPolicy;

pub(crate) fn target_key(ns: &str, kind: &str, name: &str) -> String {
    format!("{ns}/{kind}/{name}")
}

pub(crate) fn key<K: Resource>(p: &K) -> String {
    format!(
        "{}/{}",
        p.meta().namespace.as_deref().unwrap_or_default(),
        p.meta().name.as_deref().unwrap_or_default()
    )
}

/// The connection budget a stored policy shares, as `namespace/database`.
pub(crate) fn shared_budget(p: &StoredPolicy) -> Option<String> {
    let policy = p.policy.as_ref().ok()?;
    let b = policy
        .spec
        .guardrails
        .as_ref()?
        .connection_budget
        .as_ref()?;
    Some(format!(
        "{}/{}",
        policy.metadata.namespace.as_deref().unwrap_or_default(),
        b.database
    ))
}

/// The target a stored policy scales, as `namespace/kind/name`.
pub(crate) fn scaled_target(p: &StoredPolicy) -> Option<String> {
    let policy = p.policy.as_ref().ok()?;
    let t = &policy.spec.target_ref;
    Some(target_key(
        policy.metadata.namespace.as_deref().unwrap_or_default(),
        &t.kind,
        &t.name,
    ))
}
