//! Targets and their pods from watches, not from reads on every evaluation. A kind is
//! watched from the first policy that targets it; until its cache has synced, or where the
//! operator may not watch it, or where an object does not keep its replicas at the usual
//! paths, the evaluation asks the API server instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, PartialObjectMeta, SelectorExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::backoff::WatchBackoff;
use super::workload::{TargetState, slim, state_of};

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
                // Replicas, readiness and the selector are read; nothing else is kept.
                .modify(slim)
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
                // Names and labels are all that is matched.
                .modify(|p: &mut PartialObjectMeta<Pod>| {
                    p.metadata.managed_fields = None;
                    p.metadata.annotations = None;
                    p.metadata.owner_references = None;
                    p.metadata.finalizers = None;
                })
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
