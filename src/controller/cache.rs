//! Targets and their pods from watches, not from reads on every evaluation. A kind is
//! watched from the first policy that targets it; until its cache has synced, or where the
//! operator may not watch it, or where an object does not keep its replicas at the usual
//! paths, the evaluation asks the API server instead. A kind's watch stops once no policy
//! names it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, PartialObjectMeta, SelectorExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::backoff::WatchBackoff;
use super::workload::{TargetState, state_of};

/// A kind's targets as `state_of` reads them, by `namespace/name`: a few dozen bytes each,
/// where the objects themselves (a Deployment's pod template) are kilobytes.
#[derive(Default)]
struct Targets {
    synced: bool,
    states: HashMap<String, TargetState>,
    /// A relist in progress: it replaces `states` once complete.
    relist: Option<HashMap<String, TargetState>>,
}

fn object_key(o: &DynamicObject) -> String {
    format!(
        "{}/{}",
        o.metadata.namespace.as_deref().unwrap_or_default(),
        o.metadata.name.as_deref().unwrap_or_default()
    )
}

impl Targets {
    /// Objects whose replicas are not at the usual paths are left out: those are read
    /// through `/scale`, as are targets not (yet) here.
    fn apply(&mut self, event: watcher::Event<DynamicObject>) {
        match event {
            watcher::Event::Apply(o) => match state_of(&o) {
                Some(st) => {
                    self.states.insert(object_key(&o), st);
                }
                None => {
                    self.states.remove(&object_key(&o));
                }
            },
            watcher::Event::Delete(o) => {
                self.states.remove(&object_key(&o));
            }
            watcher::Event::Init => self.relist = Some(HashMap::new()),
            watcher::Event::InitApply(o) => {
                if let (Some(relist), Some(st)) = (self.relist.as_mut(), state_of(&o)) {
                    relist.insert(object_key(&o), st);
                }
            }
            watcher::Event::InitDone => {
                if let Some(relist) = self.relist.take() {
                    self.states = relist;
                }
                self.synced = true;
            }
        }
    }
}

type Watched = Arc<RwLock<Targets>>;

/// Watch caches of target kinds and of pod metadata.
pub struct TargetCache {
    /// The namespace the operator watches, or all.
    namespace: Option<String>,
    /// Each watched kind (`apiVersion/kind`) and its watch task, stopped when no policy
    /// names the kind any more.
    kinds: Mutex<HashMap<String, (Watched, tokio::task::AbortHandle)>>,
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
            let api: Api<DynamicObject> = match &self.namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
                None => Api::all_with(client.clone(), ar),
            };
            let targets = Watched::default();
            let into = targets.clone();
            let stream = watcher(api, watcher::Config::default()).backoff(WatchBackoff::default());
            let task = tokio::spawn(stream.for_each(move |event| {
                match event {
                    Ok(e) => {
                        if let Ok(mut t) = into.write() {
                            t.apply(e);
                        }
                    }
                    // Forbidden or gone: reads go to the API server, which says why.
                    Err(e) => tracing::debug!(kind = %key, error = %e, "target watch"),
                }
                futures::future::ready(())
            }));
            (targets, task.abort_handle())
        });
        let targets = watched.0.read().ok()?;
        if !targets.synced {
            return None;
        }
        targets.states.get(&format!("{ns}/{name}")).cloned()
    }

    /// Stops the watches of kinds no policy names any more (`named` holds `apiVersion/kind`):
    /// policies naming dozens of kinds, then deleted, left as many watches (and, where the
    /// operator may not list a kind, as many failing LISTs) running until a restart.
    pub fn retain_kinds(&self, named: &std::collections::HashSet<String>) {
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.retain(|kind, (_, task)| {
                let keep = named.contains(kind);
                if !keep {
                    task.abort();
                    tracing::debug!(%kind, "no policy names this kind: its watch stops");
                }
                keep
            });
        }
    }

    /// The kinds watched now.
    #[cfg(test)]
    pub fn watched_kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .kinds
            .lock()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn workload(name: &str, replicas: Option<i64>) -> DynamicObject {
        let spec = replicas.map_or(json!({"size": 1}), |r| json!({"replicas": r}));
        match serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "a"},
            "spec": spec, "status": {"replicas": 1, "readyReplicas": 1}
        })) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    fn replicas(t: &Targets, name: &str) -> Option<i32> {
        t.states
            .get(&format!("a/{name}"))
            .map(|s| s.current_replicas)
    }

    #[test]
    fn targets_follow_the_watch_and_a_relist_drops_what_went_meanwhile() {
        let mut t = Targets::default();
        t.apply(watcher::Event::Init);
        t.apply(watcher::Event::InitApply(workload("web", Some(2))));
        t.apply(watcher::Event::InitApply(workload("odd", None)));
        // Not answered until the list is complete.
        assert!(!t.synced);
        t.apply(watcher::Event::InitDone);
        assert!(t.synced);
        assert_eq!(replicas(&t, "web"), Some(2));
        // Replicas elsewhere than spec.replicas: left to /scale.
        assert_eq!(replicas(&t, "odd"), None);
        t.apply(watcher::Event::Apply(workload("web", Some(5))));
        t.apply(watcher::Event::Apply(workload("api", Some(1))));
        assert_eq!(
            (replicas(&t, "web"), replicas(&t, "api")),
            (Some(5), Some(1))
        );
        t.apply(watcher::Event::Delete(workload("api", Some(1))));
        assert_eq!(replicas(&t, "api"), None);
        // A relist after a watch gap: web went meanwhile, worker came.
        t.apply(watcher::Event::Init);
        t.apply(watcher::Event::InitApply(workload("worker", Some(3))));
        // The old answers stand until the relist is complete.
        assert_eq!(replicas(&t, "web"), Some(5));
        t.apply(watcher::Event::InitDone);
        assert_eq!(
            (replicas(&t, "web"), replicas(&t, "worker")),
            (None, Some(3))
        );
    }

    #[tokio::test]
    async fn a_kind_no_policy_names_stops_being_watched() {
        // An API server that never answers: the watches wait, as on a slow cluster.
        let (service, _handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = Client::new(service, "default");
        let cache = TargetCache::new(None);
        let kind = |group: &str, kind: &str| ApiResource {
            group: group.into(),
            version: "v1".into(),
            api_version: if group.is_empty() {
                "v1".into()
            } else {
                format!("{group}/v1")
            },
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
        };
        let (deployments, widgets) = (kind("apps", "Deployment"), kind("example.com", "Widget"));
        assert_eq!(cache.target(&client, &deployments, "a", "web"), None);
        assert_eq!(cache.target(&client, &widgets, "a", "w"), None);
        assert_eq!(
            cache.watched_kinds(),
            ["apps/v1/Deployment", "example.com/v1/Widget"]
        );
        let named = ["apps/v1/Deployment".to_string()].into_iter().collect();
        cache.retain_kinds(&named);
        assert_eq!(cache.watched_kinds(), ["apps/v1/Deployment"]);
        cache.retain_kinds(&Default::default());
        assert!(cache.watched_kinds().is_empty());
    }
}
