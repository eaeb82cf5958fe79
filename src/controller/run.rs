//! The operator's process: health endpoints, leader election, the watches, and the
//! kube-runtime Controller that runs `reconcile` for each policy until shutdown.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::{Controller, WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, Resource};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{
    Context, EVALUATIONS_IN_FLIGHT, LeaderElection, Leadership, Settings, backoff, error_policy,
    events, hpa_targets, keys, learn_scrape_interval, permissions, policies_targeting, reconcile,
    shutdown_signal, startup_problem, target,
};
use crate::api::StoredPolicy;
use crate::error::{Error, Result};
use crate::server::{self, Health};
use crate::telemetry::Metrics;

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
        Some(e) => match lead(&client, e, &ready, &metrics).await? {
            Some(l) => Some(l),
            None => {
                server.abort();
                return Ok(());
            }
        },
    };
    let ctx = context(&client, settings, namespace.clone(), &metrics);
    let stopping = Arc::new(Notify::new());
    let evaluations = evaluate_all(&client, namespace.as_deref(), ctx, ready, stopping.clone());
    until_stopped(evaluations.await?, leadership.as_ref(), &stopping).await;
    finish(leadership, server, &metrics).await
}

/// Waits as a standby until this replica holds the lease; None when it was stopped first.
async fn lead(
    client: &Client,
    e: &LeaderElection,
    ready: &AtomicBool,
    metrics: &Metrics,
) -> Result<Option<Leadership>> {
    let mut l = Leadership::join(client.clone(), e).await?;
    // A standby is healthy and ready: a rollout must not wait for it to lead.
    ready.store(true, Ordering::Relaxed);
    tracing::info!(identity = %e.identity, lease = %e.lease_name, "standby: waiting for the lease");
    tokio::select! {
        r = l.acquired() => r?,
        _ = shutdown_signal() => {
            l.release().await;
            return Ok(None);
        }
    }
    ready.store(false, Ordering::Relaxed);
    metrics.set_leader(true);
    tracing::info!(identity = %e.identity, "leading");
    Ok(Some(l))
}

/// The shared context, with the background tasks that keep it current.
fn context(
    client: &Client,
    settings: Settings,
    namespace: Option<String>,
    metrics: &Metrics,
) -> Arc<Context> {
    let reporter = Reporter {
        controller: "headroom".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let events = events::Events::new(client.clone(), reporter);
    let mut ctx = Context::new(client.clone(), settings, events, metrics.clone());
    ctx.resolver = target::Resolver::watching(namespace);
    let ctx = Arc::new(ctx);
    if ctx.settings.scrape_interval.is_none() {
        tokio::spawn(learn_scrape_interval(ctx.clone()));
    }
    let forgetting = ctx.clone();
    tokio::spawn(async move { forgetting.events.forget_periodically().await });
    ctx
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

type Evaluations = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The Controller over every policy, re-evaluating a policy when its spec, its target's spec
/// or an HPA on its target changes.
async fn evaluate_all(
    client: &Client,
    ns: Option<&str>,
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
    stopping: Arc<Notify>,
) -> Result<Evaluations> {
    // Objects are decoded one by one, so one the types cannot hold is reported on its own.
    let policies: Api<StoredPolicy> = api(client, ns);
    // Fail fast, saying what is wrong.
    policies
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|e| Error::Config(startup_problem(&e)))?;
    let (reader, writer) = reflector::store();
    let policy_stream = policy_stream(policies, writer, ctx.clone(), reader.clone(), ready);
    let (hpa_reader, hpa_writer) = reflector::store();
    let _ = ctx.hpas.set(hpa_reader);
    let hpas = watcher(
        api::<HorizontalPodAutoscaler>(client, ns),
        watcher::Config::default(),
    )
    .backoff(backoff::WatchBackoff::default())
    .modify(|h: &mut HorizontalPodAutoscaler| h.metadata.managed_fields = None)
    .reflect(hpa_writer)
    .applied_objects();
    let _ = ctx.policies.set(reader.clone());
    // Bounded, so a burst of due policies queues here rather than at Prometheus or the API
    // server; each waits at most its turn (the lag histogram shows how long).
    let controller = Controller::for_stream(policy_stream, reader).with_config(
        kube::runtime::controller::Config::default().concurrency(EVALUATIONS_IN_FLIGHT),
    );
    let store = controller.store();
    let controller = watch_workloads(controller, client, ns, &ctx, &store)
        // A new HPA on a policy's target is a conflict to report at once.
        .watches_stream(hpas, move |h: HorizontalPodAutoscaler| {
            hpa_targets(&store, &h)
        });
    tracing::info!("controller starting");
    let run = controller
        .graceful_shutdown_on(async move { stopping.notified().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(policy = %obj, "evaluated"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        });
    Ok(Box::pin(run))
}

/// Policies, reflected into the store; only spec changes (generation) trigger an evaluation,
/// so status writes do not loop.
fn policy_stream(
    policies: Api<StoredPolicy>,
    writer: Writer<StoredPolicy>,
    ctx: Arc<Context>,
    known: Store<StoredPolicy>,
    ready: Arc<AtomicBool>,
) -> impl Stream<Item = std::result::Result<StoredPolicy, watcher::Error>> + Send {
    watcher(policies, watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        // Who wrote which field is of no use here, and at fleet scale it is most of the bytes.
        .modify(StoredPolicy::slimmed)
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                remember(&ctx, &known, &ready, event);
            }
        })
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
}

/// What the operator keeps per policy follows the policies: a deleted one takes its memory
/// and its budget claim with it.
fn remember(
    ctx: &Context,
    known: &Store<StoredPolicy>,
    ready: &AtomicBool,
    event: &watcher::Event<StoredPolicy>,
) {
    match event {
        watcher::Event::Delete(p) => {
            let target = p.policy.as_ref().ok().map(|p| &p.spec.target_ref);
            ctx.state.forget(&keys::key(p), target);
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
            ctx.resolver.retain_kinds(&named);
        }
        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => ctx.state.spec_names(
            &keys::key(p),
            keys::shared_budget(p),
            keys::scaled_target(p),
        ),
        watcher::Event::InitDone => {
            // A relist after a watch gap: drop what was deleted meanwhile.
            let live: std::collections::HashSet<String> = known
                .state()
                .iter()
                .map(|p| keys::key(p.as_ref()))
                .collect();
            ctx.state.retain(|k| live.contains(k));
            if !ready.swap(true, Ordering::Relaxed) {
                tracing::info!("policy cache synced; ready");
            }
        }
        watcher::Event::Init => {}
    }
}

/// Deployments and StatefulSets whose spec changed re-evaluate the policies on them, unless
/// the change is the operator's own `/scale` write: the next evaluation comes at its
/// interval, as the HPA's does.
fn watch_workloads(
    controller: Controller<StoredPolicy>,
    client: &Client,
    ns: Option<&str>,
    ctx: &Arc<Context>,
    store: &Store<StoredPolicy>,
) -> Controller<StoredPolicy> {
    let deployments = watcher(api::<Deployment>(client, ns), watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let statefulsets = watcher(api::<StatefulSet>(client, ns), watcher::Config::default())
        .backoff(backoff::WatchBackoff::default())
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let own = |ctx: &Context, meta: &kube::api::ObjectMeta, kind: &str, replicas: Option<i32>| {
        ctx.state.is_own_write(
            &keys::target_key(
                meta.namespace.as_deref().unwrap_or_default(),
                kind,
                meta.name.as_deref().unwrap_or_default(),
            ),
            replicas,
        )
    };
    let (own1, own2) = (ctx.clone(), ctx.clone());
    let (s1, s2) = (store.clone(), store.clone());
    controller
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
}

/// Runs the evaluations until they end, a signal comes or the lease is lost.
async fn until_stopped(run: Evaluations, leadership: Option<&Leadership>, stopping: &Notify) {
    let mut run = run;
    let lease_lost = async {
        match leadership {
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
}

/// Gives the lease up on a clean stop; a lost lease is an error, so that a restart rejoins as
/// a standby.
async fn finish(
    leadership: Option<Leadership>,
    server: JoinHandle<std::io::Result<()>>,
    metrics: &Metrics,
) -> Result<()> {
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
