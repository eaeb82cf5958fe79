//! The kube-runtime Controller: evaluates each ScalingPolicy every `interval`, and at once
//! when the policy's spec or its target Deployment/StatefulSet's spec changes.

mod act;
mod backoff;
mod bounded;
mod cache;
mod conflict;
mod context;
mod decide;
mod evaluation;
mod events;
mod groups;
mod headroom;
mod headroom_status;
mod history;
mod keys;
mod leader;
mod observe;
mod pacer;
mod permissions;
mod predictive;
mod publish;
mod read;
mod reconcile;
mod report;
mod run;
mod selector;
mod shard;
#[cfg(test)]
mod stage_tests;
mod state;
pub mod status;
mod target;
#[cfg(test)]
mod test_api;
mod workload;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

pub use context::{Context, Settings, backoff_delay};
pub use evaluation::{budget_pool, step};
pub use leader::{LeaderElection, Leadership};
pub use reconcile::{error_policy, reconcile};
pub use run::run;
pub use shard::Shard;
pub use state::State;

use crate::api::StoredPolicy;

/// Evaluations run at once. Each is mostly waiting (on a shared Prometheus answer, the API
/// server), and Prometheus is protected by the observer's own bound: at 10,000 policies every
/// 15 s and a busy Prometheus (1 s answers), 64 at once kept up with 1 in 8.
const EVALUATIONS_IN_FLIGHT: u16 = 512;

/// Asks the default Prometheus how often it scrapes, now and every 10 minutes (every 30 s
/// until it answers), and sizes windows for it.
async fn learn_scrape_interval(ctx: Arc<Context>) {
    loop {
        let learned = match ctx.prometheus(&ctx.settings.prometheus_url, None) {
            Ok(p) => p.scrape_interval().await,
            Err(e) => Err(e),
        };
        let next = match learned {
            Ok(Some(d)) => {
                if ctx.learned_scrape_interval(d) {
                    tracing::info!(scrape_interval = ?d, "scrape interval learned from Prometheus' targets: windows shorter than twice it are widened");
                }
                Duration::from_secs(600)
            }
            Ok(None) => Duration::from_secs(30),
            Err(e) => {
                tracing::debug!(error = %e, "scrape interval not learned yet");
                Duration::from_secs(30)
            }
        };
        tokio::time::sleep(next).await;
    }
}

/// Policies whose target is `obj`.
fn policies_targeting<K: Resource<DynamicType = ()>>(
    store: &Store<StoredPolicy>,
    obj: &K,
) -> Vec<ObjectRef<StoredPolicy>> {
    let (kind, name, ns) = (
        K::kind(&()),
        obj.meta().name.clone(),
        obj.meta().namespace.clone(),
    );
    store
        .state()
        .iter()
        .filter(|s| {
            s.policy.as_ref().is_ok_and(|p| {
                p.namespace() == ns
                    && Some(&p.spec.target_ref.name) == name.as_ref()
                    && p.spec.target_ref.kind == kind
            })
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// Policies whose target an HPA scales.
fn hpa_targets(
    store: &Store<StoredPolicy>,
    h: &HorizontalPodAutoscaler,
) -> Vec<ObjectRef<StoredPolicy>> {
    let Some(t) = h.spec.as_ref().map(|s| &s.scale_target_ref) else {
        return vec![];
    };
    store
        .state()
        .iter()
        .filter(|s| {
            s.policy.as_ref().is_ok_and(|p| {
                p.namespace() == h.namespace()
                    && p.spec.target_ref.name == t.name
                    && p.spec.target_ref.kind == t.kind
            })
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// What a failed first list of ScalingPolicies means.
fn startup_problem(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 404 => {
            "cannot list ScalingPolicies: the CRD is not installed (kubectl apply -f crds/)".into()
        }
        kube::Error::Api(s) if s.code == 401 || s.code == 403 => format!(
            "cannot list ScalingPolicies: not allowed ({}); apply deploy/rbac.yaml for the operator's ServiceAccount",
            s.message
        ),
        other => format!("cannot list ScalingPolicies: {other}"),
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
