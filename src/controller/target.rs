//! The workload being scaled, read and written only through its `/scale` subresource.
//! Writes are merge patches: server-side apply on /scale would make Headroom the owner
//! of `spec.replicas` and fight kubectl and Helm.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, discovery};
use serde_json::json;
use tokio::sync::OnceCell;

use super::cache::TargetCache;
pub use super::workload::TargetState;
use super::workload::{controller_of, ready_replicas};
use crate::api::TargetRef;
use crate::error::{Error, Result};

/// Resolved API resources of target kinds, cached: discovery is a round trip per kind.
/// With watches, targets and pods are read from their caches where these can answer.
#[derive(Default)]
pub struct Resolver {
    /// Each kind's API resource, resolved once.
    cache: Mutex<HashMap<String, Arc<OnceCell<ApiResource>>>>,
    watches: Option<TargetCache>,
}

fn target_error(t: &TargetRef, message: impl Into<String>) -> Error {
    Error::Target {
        kind: t.kind.clone(),
        name: t.name.clone(),
        message: message.into(),
    }
}

impl Resolver {
    async fn resource(&self, client: &Client, t: &TargetRef) -> Result<ApiResource> {
        let key = format!("{}/{}", t.api_version, t.kind);
        // One discovery per kind, however many evaluations ask at once (a fleet's first round
        // asks for the same kind hundreds of times in the same second).
        let cell = match self.cache.lock() {
            Ok(mut c) => c.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let found = cell
            .get_or_try_init(|| async {
                let (group, version) = match t.api_version.split_once('/') {
                    Some((g, v)) => (g.to_string(), v.to_string()),
                    None => (String::new(), t.api_version.clone()),
                };
                let gvk = GroupVersionKind::gvk(&group, &version, &t.kind);
                let (ar, caps) = discovery::pinned_kind(client, &gvk)
                    .await
                    .map_err(|e| target_error(t, format!("cannot resolve {key}: {e}")))?;
                // Headroom reads and writes replicas only through /scale: a kind without it
                // is not "not found", it cannot be scaled.
                if caps
                    .subresources
                    .iter()
                    .any(|(sub, _)| sub.plural == "scale")
                {
                    Ok(ar)
                } else {
                    Err(target_error(
                        t,
                        format!("{key} has no scale subresource, so it cannot be scaled"),
                    ))
                }
            })
            .await
            .cloned();
        if found.is_err() {
            // Only kinds that exist are remembered: what tenants misspell does not pile up.
            if let Ok(mut c) = self.cache.lock()
                && c.get(&key).is_some_and(|cell| !cell.initialized())
            {
                c.remove(&key);
            }
        }
        found
    }

    fn api(&self, client: &Client, ns: &str, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), ns, ar)
    }

    /// Reads targets and pods from watches of `namespace` (or all namespaces).
    pub fn watching(namespace: Option<String>) -> Self {
        Self {
            cache: Mutex::default(),
            watches: Some(TargetCache::new(namespace)),
        }
    }

    /// Stops watching the kinds that no policy in `named` (`apiVersion/kind`) targets.
    pub fn retain_kinds(&self, named: &std::collections::HashSet<String>) {
        if let Some(w) = &self.watches {
            w.retain_kinds(named);
        }
    }

    /// Names of the running pods matched by the target's selector.
    pub async fn pods(&self, client: &Client, ns: &str, selector: &str) -> Result<Vec<String>> {
        if let Some(names) = self
            .watches
            .as_ref()
            .and_then(|w| w.pods(client, ns, selector))
        {
            return Ok(names);
        }
        pod_names(client, ns, selector).await
    }

    /// The target's replicas, ready replicas and selector: from its watch cache, else from
    /// `/scale` and the object.
    pub async fn read(&self, client: &Client, ns: &str, t: &TargetRef) -> Result<TargetState> {
        let ar = self.resource(client, t).await?;
        if let Some(state) = self
            .watches
            .as_ref()
            .and_then(|w| w.target(client, &ar, ns, &t.name))
        {
            return Ok(state);
        }
        let api = self.api(client, ns, &ar);
        let scale = api
            .get_scale(&t.name)
            .await
            .map_err(|e| scale_error(t, e))?;
        let current = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
        let status = scale.status.unwrap_or_default();
        // Least privilege: the operator may read only /scale of custom kinds; their ready
        // count then falls back to the scale status.
        let (ready, controller) = match api.get(&t.name).await {
            Ok(obj) => (ready_replicas(&obj, status.replicas), controller_of(&obj)),
            Err(kube::Error::Api(s)) if s.code == 403 => (status.replicas, None),
            Err(e) => return Err(scale_error(t, e)),
        };
        Ok(TargetState {
            current_replicas: current,
            ready_replicas: ready,
            selector: status.selector.filter(|s| !s.is_empty()),
            controller,
        })
    }

    /// Sets `spec.replicas` through `/scale` with a merge patch.
    pub async fn scale(
        &self,
        client: &Client,
        ns: &str,
        t: &TargetRef,
        replicas: i32,
    ) -> Result<()> {
        let ar = self.resource(client, t).await?;
        let pp = PatchParams {
            field_manager: Some("headroom".into()),
            ..Default::default()
        };
        self.api(client, ns, &ar)
            .patch_scale(
                &t.name,
                &pp,
                &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
            )
            .await
            .map_err(|e| scale_error(t, e))?;
        Ok(())
    }
}

fn scale_error(t: &TargetRef, e: kube::Error) -> Error {
    match &e {
        kube::Error::Api(s) if s.code == 404 => target_error(t, "not found"),
        kube::Error::Api(s) if s.code == 403 => {
            target_error(t, format!("forbidden: {}", s.message))
        }
        _ => target_error(t, e.to_string()),
    }
}

/// Names of the running pods matched by the target's selector, listed.
async fn pod_names(client: &Client, ns: &str, selector: &str) -> Result<Vec<String>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods.list(&ListParams::default().labels(selector)).await?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::{Request, Response};
    use kube::client::Body;

    use super::*;

    fn deployment_ref() -> TargetRef {
        TargetRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
        }
    }

    /// A client whose API server answers discovery of apps/v1 (slowly, so that asks overlap)
    /// and counts the requests.
    fn discovering_client(asked: Arc<AtomicUsize>) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                asked.fetch_add(1, Ordering::SeqCst);
                let found = request.uri().path() == "/apis/apps/v1";
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let body = if found {
                    json!({"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [
                        {"name": "deployments", "singularName": "deployment", "namespaced": true,
                         "kind": "Deployment", "verbs": ["get", "list", "watch", "patch"]},
                        {"name": "deployments/scale", "singularName": "", "namespaced": true,
                         "group": "autoscaling", "version": "v1",
                         "kind": "Scale", "verbs": ["get", "patch", "update"]},
                        {"name": "configmaps", "singularName": "configmap", "namespaced": true,
                         "kind": "ConfigMap", "verbs": ["get", "list"]}]})
                } else {
                    json!({"kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found"})
                };
                let status = if found { 200 } else { 404 };
                let response = Response::builder()
                    .status(status)
                    .body(Body::from(body.to_string().into_bytes()));
                if let Ok(r) = response {
                    send.send_response(r);
                }
            }
        });
        Client::new(service, "default")
    }

    #[tokio::test]
    async fn a_kind_is_discovered_once_however_many_ask_at_once() {
        let asked = Arc::new(AtomicUsize::new(0));
        let client = discovering_client(asked.clone());
        let resolver = Resolver::default();
        let t = deployment_ref();
        let all = futures::future::join_all((0..50).map(|_| resolver.resource(&client, &t))).await;
        assert!(
            all.iter()
                .all(|r| r.as_ref().is_ok_and(|ar| ar.plural == "deployments"))
        );
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // Later asks are answered from memory.
        assert!(resolver.resource(&client, &t).await.is_ok());
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_kind_that_does_not_exist_is_not_remembered() {
        let asked = Arc::new(AtomicUsize::new(0));
        let client = discovering_client(asked.clone());
        let resolver = Resolver::default();
        let t = TargetRef {
            api_version: "example.com/v1".into(),
            kind: "Nope".into(),
            name: "x".into(),
        };
        assert!(resolver.resource(&client, &t).await.is_err());
        assert!(resolver.resource(&client, &t).await.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert!(resolver.cache.lock().is_ok_and(|c| c.is_empty()));
    }

    #[tokio::test]
    async fn a_kind_without_a_scale_subresource_is_reported_as_such() {
        let client = discovering_client(Arc::new(AtomicUsize::new(0)));
        let t = TargetRef {
            kind: "ConfigMap".into(),
            ..deployment_ref()
        };
        let err = Resolver::default()
            .resource(&client, &t)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("has no scale subresource"), "{err}");
    }
}
