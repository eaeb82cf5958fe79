//! Leader election over a coordination.k8s.io Lease, so several replicas can run and only one
//! of them scales. A standby waits for the lease; a leader that loses it stops and exits, and
//! its restart comes back as a standby.

use std::time::Duration;

use kube::Client;
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
}

impl Leadership {
    /// Joins the election; renewals run in the background from here on.
    pub async fn join(client: Client, e: &LeaderElection) -> Result<Self> {
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
        let (leader, task) = manager.watch().await;
        Ok(Self { leader, task })
    }

    /// Waits until this process holds the lease.
    pub async fn acquired(&mut self) -> Result<()> {
        loop {
            if *self.leader.borrow_and_update() {
                return Ok(());
            }
            self.leader
                .changed()
                .await
                .map_err(|_| Error::Leadership("the election task stopped".into()))?;
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
