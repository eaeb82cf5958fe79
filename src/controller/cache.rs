//! Targets and their pods from watches, not from reads on every evaluation. A kind is
//! watched from the first policy that targets it; until its cache has synced, or where the
//! operator may not watch it, or where an object does not keep its replicas at the usual
//! paths, the evaluation asks the API server instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, PartialObjectMeta, Selector, SelectorExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::context::WatchBackoff;
use super::target::{TargetState, ready_replicas};

struct Watched {
    store: Store<DynamicObject>,
    synced: Arc<AtomicBool>,
}

/// Watch caches of target kinds and of pod metadata.
pub struct TargetCache {
    /// The namespace the operator watches, or all.
    namespace: Option<String>,
    kinds: Mutex<HashMap<String, Watched>>,
    pods: OnceLock<(Store<PartialObjectMeta<Pod>>, Arc<AtomicBool>)>,
}

fn synced_flag<T>(
    stream: impl futures::Stream<Item = watcher::Result<watcher::Event<T>>> + Send + 'static,
    what: String,
) -> Arc<AtomicBool>
where
    T: Send + 'static,
{
    let synced = Arc::new(AtomicBool::new(false));
    let flag = synced.clone();
    tokio::spawn(stream.for_each(move |event| {
        match event {
            Ok(watcher::Event::InitDone) => flag.store(true, Ordering::Relaxed),
            // Forbidden or gone: reads go to the API server, which says why.
            Err(e) => {
                tracing::debug!(kind = %what, error = %e, "target watch");
            }
            _ => {}
        }
        futures::future::ready(())
    }));
    synced
}

impl TargetCache {
    pub fn new(namespace: Option<String>) -> Self {
        Self {
            namespace,
            kinds: Mutex::default(),
            pods: OnceLock::new(),
        }
    }

    /// The target as its watch cache has it; None when the cache cannot answer (yet).
    /// Starts watching its kind on first use.
    pub fn target(
        &self,
        client: &Client,
        ar: &ApiResource,
        ns: &str,
        name: &str,
    ) -> Option<TargetState> {
        let key = format!("{}/{}", ar.api_version, ar.kind);
        let mut kinds = self.kinds.lock().ok()?;
        let watched = kinds.entry(key.clone()).or_insert_with(|| {
            let writer = reflector::store::Writer::new(ar.clone());
            let store = writer.as_reader();
            let api: Api<DynamicObject> = match &self.namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
                None => Api::all_with(client.clone(), ar),
            };
            let stream = watcher(api, watcher::Config::default())
                .backoff(WatchBackoff::default())
                .reflect(writer);
            Watched {
                store,
                synced: synced_flag(stream, key),
            }
        });
        if !watched.synced.load(Ordering::Relaxed) {
            return None;
        }
        let obj = watched
            .store
            .get(&ObjectRef::new_with(name, ar.clone()).within(ns))?;
        state_of(&obj)
    }

    /// Names of the live pods in `ns` matched by `selector`; None when the cache cannot
    /// answer (not synced yet, or a selector it cannot parse).
    pub fn pods(&self, client: &Client, ns: &str, selector: &str) -> Option<Vec<String>> {
        let (store, synced) = self.pods.get_or_init(|| {
            let (store, writer) = reflector::store();
            // Metadata only: names and labels are all the CPU signal needs.
            let api: Api<PartialObjectMeta<Pod>> = match &self.namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let stream = watcher(api, watcher::Config::default())
                .backoff(WatchBackoff::default())
                .reflect(writer);
            (store, synced_flag(stream, "Pod".into()))
        });
        if !synced.load(Ordering::Relaxed) {
            return None;
        }
        let selector = super::selector::parse(selector)?;
        let mut names: Vec<String> = store
            .state()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&Default::default())))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        names.sort();
        Some(names)
    }
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
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: serde_json::Value) -> DynamicObject {
        match serde_json::from_value(v) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_deployment_reads_as_its_scale_subresource_would() {
        let d = obj(json!({
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
            })
        );
    }

    #[test]
    fn a_custom_resource_uses_its_status_selector_or_is_left_to_scale() {
        let w = obj(json!({
            "apiVersion": "bench.headroom.dev/v1", "kind": "Workload", "metadata": {"name": "w"},
            "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=w"}
        }));
        assert_eq!(
            state_of(&w),
            Some(TargetState {
                current_replicas: 2,
                ready_replicas: 2,
                selector: Some("app=w".into()),
            })
        );
        let elsewhere = obj(json!({
            "apiVersion": "x/v1", "kind": "Odd", "metadata": {"name": "o"},
            "spec": {"size": 2}
        }));
        assert_eq!(state_of(&elsewhere), None);
    }
}
