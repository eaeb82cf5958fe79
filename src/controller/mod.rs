//! The kube-runtime Controller: evaluates each ScalingPolicy every `interval`, and at once
//! when the policy's spec or its target Deployment/StatefulSet's spec changes.

mod backoff;
mod bounded;
mod cache;
mod conflict;
mod context;
mod evaluation;
mod events;
mod groups;
mod headroom;
mod headroom_status;
mod history;
mod leader;
mod pacer;
mod permissions;
mod predictive;
mod reconcile;
mod selector;
mod shard;
mod state;
pub mod status;
mod target;
mod workload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};

pub use context::{Context, Settings, backoff_delay};
pub use evaluation::{budget_pool, step};
pub use leader::{LeaderElection, Leadership};
pub use reconcile::{error_policy, reconcile};
pub use shard::Shard;
pub use state::State;

use crate::api::StoredPolicy;
use crate::error::{Error, Result};
use crate::server::{self, Health};
use crate::telemetry::Metrics;

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

/// Runs the operator until SIGTERM/SIGINT, over all namespaces or only `namespace`. With an
/// `election`, it first waits to hold the lease, and stops with an error if it loses it.
pub async fn run(
    client: Client,
    settings: Settings,
    listen: SocketAddr,
    namespace: Option<String>,
    election: Option<LeaderElection>,
) -> Result<()> {
    let metrics = Metrics::default();
    let ready = Arc::new(AtomicBool::new(false));
    let lacking = Arc::new(std::sync::Mutex::new(None));
    let health = Health {
        ready: ready.clone(),
        lacking: lacking.clone(),
        metrics: metrics.clone(),
    };
    let server = tokio::spawn(server::serve(listen, health));
    tokio::spawn(permissions::watch(
        client.clone(),
        namespace.clone(),
        lacking,
    ));

    let leadership = match &election {
        None => {
            metrics.set_leader(true);
            None
        }
        Some(e) => {
            let mut l = Leadership::join(client.clone(), e).await?;
            // A standby is healthy and ready: a rollout must not wait for it to lead.
            ready.store(true, Ordering::Relaxed);
            tracing::info!(identity = %e.identity, lease = %e.lease_name, "standby: waiting for the lease");
            tokio::select! {
                r = l.acquired() => r?,
                _ = shutdown_signal() => {
                    l.release().await;
                    server.abort();
                    return Ok(());
                }
            }
            ready.store(false, Ordering::Relaxed);
            metrics.set_leader(true);
            tracing::info!(identity = %e.identity, "leading");
            Some(l)
        }
    };
    let reporter = Reporter {
        controller: "headroom".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let events = events::Events::new(client.clone(), reporter);
    let mut ctx = Context::new(client.clone(), settings, events, metrics.clone());
    ctx.resolver = target::Resolver::watching(namespace.clone());
    let ctx = Arc::new(ctx);
    if ctx.settings.scrape_interval.is_none() {
        tokio::spawn(learn_scrape_interval(ctx.clone()));
    }
    let forgetting = ctx.clone();
    tokio::spawn(async move { forgetting.events.forget_periodically().await });

    fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let ns = namespace.as_deref();
    // Objects are decoded one by one, so one the types cannot hold is reported on its own.
    let policies: Api<StoredPolicy> = api(&client, ns);
    // Fail fast, saying what is wrong.
    policies
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|e| Error::Config(startup_problem(&e)))?;

    let (reader, writer) = reflector::store();
    // Only spec changes (generation) trigger an evaluation: status writes must not loop.
    let ready_flag = ready.clone();
    let (forget_ctx, known) = (ctx.clone(), reader.clone());
    let policy_stream = watcher(policies, watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        // Who wrote which field is of no use here, and at fleet scale it is most of the bytes.
        .modify(StoredPolicy::slimmed)
        .reflect(writer)
        .inspect(move |event| match event {
            // A policy that leaves takes its memory and its budget claim with it.
            Ok(watcher::Event::Delete(p)) => {
                let target = p.policy.as_ref().ok().map(|p| &p.spec.target_ref);
                forget_ctx.state.forget(&reconcile::key(p), target);
                // The kinds the remaining policies target keep their watches; the rest stop.
                let named: std::collections::HashSet<String> = known
                    .state()
                    .iter()
                    .filter_map(|s| s.policy.as_ref().ok())
                    .map(|p| {
                        format!(
                            "{}/{}",
                            p.spec.target_ref.api_version, p.spec.target_ref.kind
                        )
                    })
                    .collect();
                forget_ctx.resolver.retain_kinds(&named);
            }
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                forget_ctx.state.spec_names(
                    &reconcile::key(p),
                    reconcile::shared_budget(p),
                    reconcile::scaled_target(p),
                )
            }
            Ok(watcher::Event::InitDone) => {
                // A relist after a watch gap: drop what was deleted meanwhile.
                let live: std::collections::HashSet<String> = known
                    .state()
                    .iter()
                    .map(|p| reconcile::key(p.as_ref()))
                    .collect();
                forget_ctx.state.retain(|k| live.contains(k));
                if !ready_flag.swap(true, Ordering::Relaxed) {
                    tracing::info!("policy cache synced; ready");
                }
            }
            _ => {}
        })
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let deployments = watcher(api::<Deployment>(&client, ns), watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let (hpa_reader, hpa_writer) = reflector::store();
    let _ = ctx.hpas.set(hpa_reader);
    let hpas = watcher(
        api::<HorizontalPodAutoscaler>(&client, ns),
        watcher::Config::default(),
    )
    .backoff(backoff::WatchBackoff::default())
    .modify(|h: &mut HorizontalPodAutoscaler| h.metadata.managed_fields = None)
    .reflect(hpa_writer)
    .applied_objects();
    let statefulsets = watcher(api::<StatefulSet>(&client, ns), watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());

    let _ = ctx.policies.set(reader.clone());
    // Bounded, so a burst of due policies queues here rather than at Prometheus or the API
    // server; each waits at most its turn (the lag histogram shows how long).
    let controller = Controller::for_stream(policy_stream, reader).with_config(
        kube::runtime::controller::Config::default().concurrency(EVALUATIONS_IN_FLIGHT),
    );
    let store = controller.store();
    let (s1, s2, s3) = (store.clone(), store.clone(), store);
    // A spec change the operator made itself (its /scale write) is not a reason to evaluate
    // again: the next evaluation comes at its interval, as the HPA's does.
    let (own1, own2) = (ctx.clone(), ctx.clone());
    let own = |ctx: &Context, meta: &kube::api::ObjectMeta, kind: &str, replicas: Option<i32>| {
        ctx.state.is_own_write(
            &reconcile::target_key(
                meta.namespace.as_deref().unwrap_or_default(),
                kind,
                meta.name.as_deref().unwrap_or_default(),
            ),
            replicas,
        )
    };

    tracing::info!("controller starting");
    let stopping = Arc::new(Notify::new());
    let graceful = stopping.clone();
    let run = controller
        .watches_stream(deployments, move |d: Deployment| {
            let replicas = d.spec.as_ref().and_then(|s| s.replicas);
            if own(&own1, &d.metadata, "Deployment", replicas) {
                return vec![];
            }
            policies_targeting(&s1, &d)
        })
        .watches_stream(statefulsets, move |s: StatefulSet| {
            let replicas = s.spec.as_ref().and_then(|s| s.replicas);
            if own(&own2, &s.metadata, "StatefulSet", replicas) {
                return vec![];
            }
            policies_targeting(&s2, &s)
        })
        // A new HPA on a policy's target is a conflict to report at once.
        .watches_stream(hpas, move |h: HorizontalPodAutoscaler| hpa_targets(&s3, &h))
        .graceful_shutdown_on(async move { graceful.notified().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(policy = %obj, "evaluated"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        });
    let mut run = std::pin::pin!(run);
    let lease_lost = async {
        match &leadership {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    let ended_by_itself = tokio::select! {
        _ = &mut run => true,
        _ = shutdown_signal() => false,
        _ = lease_lost => false,
    };
    if !ended_by_itself {
        // Let running evaluations finish, but not forever: a shutdown that comes before the
        // policy cache is synced would otherwise wait on a cache that no longer fills.
        stopping.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut run).await;
    }
    let lost = leadership.as_ref().is_some_and(|l| !l.leading());
    tracing::info!("controller stopped");
    server.abort();
    if lost {
        metrics.set_leader(false);
        return Err(Error::Leadership(
            "lost the lease; exiting so that a restart rejoins as a standby".into(),
        ));
    }
    if let Some(l) = leadership {
        l.release().await;
    }
    Ok(())
}
