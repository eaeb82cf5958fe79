//! Leader election over a coordination.k8s.io Lease, so several replicas can run and only one
//! of them scales. A standby waits for the lease; a leader that loses it stops and exits, and
//! its restart comes back as a standby.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Where the lease lives and who competes for it.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per replica: the pod name in a cluster.
    pub identity: String,
    /// How long a lease is valid after its last renewal; a crashed leader is replaced after it.
    pub duration: Duration,
}

/// This process's place in the election.
pub struct Leadership {
    leader: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    client: Client,
    election: LeaderElection,
}

type Election = (
    watch::Receiver<bool>,
    JoinHandle<kube_lease_manager::Result<LeaseManager>>,
);

async fn contend(client: Client, e: &LeaderElection) -> Result<Election> {
    let duration = e.duration.as_secs().max(3);
    // Renew a third of the way before expiry: room for a slow API server.
    let grace = (duration / 3).max(1);
    let manager = LeaseManagerBuilder::new(client, &e.lease_name)
        .with_namespace(&e.namespace)
        .with_identity(&e.identity)
        .with_duration(duration)
        .with_grace(grace)
        .build()
        .await
        .map_err(|err| {
            Error::Leadership(format!("lease {}/{}: {err}", e.namespace, e.lease_name))
        })?;
    Ok(manager.watch().await)
}

/// Resolves when the Lease is given up (its holder cleared) after this watch began.
async fn released(client: Client, e: &LeaderElection) {
    let leases: Api<Lease> = Api::namespaced(client, &e.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", e.lease_name));
    // Only changes: the initial listing may show a lease that is free already, and the
    // election takes that one by itself.
    let mut events = std::pin::pin!(watcher(leases, config).default_backoff());
    while let Some(event) = events.next().await {
        if let Ok(watcher::Event::Apply(lease)) = event
            && lease
                .spec
                .and_then(|s| s.holder_identity)
                .is_none_or(|h| h.is_empty())
        {
            return;
        }
    }
}

impl Leadership {
    /// Joins the election; renewals run in the background from here on.
    pub async fn join(client: Client, e: &LeaderElection) -> Result<Self> {
        let (leader, task) = contend(client.clone(), e).await?;
        Ok(Self {
            leader,
            task,
            client,
            election: e.clone(),
        })
    }

    /// Waits until this process holds the lease.
    pub async fn acquired(&mut self) -> Result<()> {
        loop {
            if *self.leader.borrow_and_update() {
                return Ok(());
            }
            tokio::select! {
                changed = self.leader.changed() => {
                    changed.map_err(|_| Error::Leadership("the election task stopped".into()))?;
                }
                () = released(self.client.clone(), &self.election) => {
                    // A standby's election sleeps until the old lease would have expired; a
                    // leader that shut down cleanly gave it up already, so contend afresh now.
                    tracing::info!(lease = %self.election.lease_name, "the lease was released: contending now");
                    self.task.abort();
                    (self.leader, self.task) = contend(self.client.clone(), &self.election).await?;
                }
            }
        }
    }

    /// Resolves when the lease is lost (or the election task ends, which loses it too).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut leader = self.leader.clone();
        async move {
            loop {
                if !*leader.borrow_and_update() {
                    return;
                }
                if leader.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Whether this process holds the lease now.
    pub fn leading(&self) -> bool {
        *self.leader.borrow()
    }

    /// Gives the lease up on a clean shutdown, so a standby takes over at once.
    pub async fn release(self) {
        drop(self.leader);
        // Closing the channel makes the task release the lease and end.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}
