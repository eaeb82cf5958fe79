//! Stage 3, decide: the pure evaluation (`evaluation::step`) with what the operator keeps
//! for the policy, and, for a connection budget, what its sharers hold.

use std::time::Instant;

use super::Context;
use super::evaluation::{budget_pool, step};
use super::keys::key;
use super::read::{Read, stored};
use crate::decision::guardrails::Claim;
use crate::decision::{Evaluation, Moment};
use crate::error::Error;
use crate::plan::Observation;

pub(super) async fn decide(
    ctx: &Context,
    read: &Read<'_>,
    observation: &Observation,
) -> Evaluation {
    let pool = budget_pool(&read.ns, &read.plan);
    let from_status = match &pool {
        Some(pool) => {
            adopt_listed_orphans(ctx, read, pool);
            count_orphans(ctx, &read.ns, pool).await;
            claims_from_status(ctx, read, pool).await
        }
        None => vec![],
    };
    step(
        &ctx.state,
        &read.key,
        pool.as_deref(),
        &read.plan,
        observation,
        Instant::now(),
        Moment {
            unix: Some(jiff::Timestamp::now().as_second()),
            current_replicas: read.target.current_replicas,
            ready_replicas: read.target.ready_replicas,
        },
        from_status,
    )
}

/// The orphans the policy's last status lists, which a restarted operator's ledger does not
/// know: deleted policies leave no status of their own, so their sharers' is the record.
/// One whose policy exists again claims for itself.
fn adopt_listed_orphans(ctx: &Context, read: &Read<'_>, pool: &str) {
    let Some(prev) = read.prev.as_deref() else {
        return;
    };
    let live = |k: &str| {
        ctx.policies
            .get()
            .is_some_and(|store| stored(store, &read.ns, k).is_some())
    };
    for o in &prev.budget_orphans {
        let k = format!("{}/{}", read.ns, o.policy);
        if k == read.key || live(&k) {
            continue;
        }
        let claim = Claim {
            name: k.clone(),
            pool_size: o.pool_size_per_replica,
            held: o.replicas,
            need: 0,
        };
        ctx.state
            .adopt_orphan(&k, pool, o.target_ref.clone(), claim);
    }
}

/// What the targets of deleted policies in `pool` run now: their replicas keep their
/// connections whether a policy scales them or not, until the target is gone or at zero.
async fn count_orphans(ctx: &Context, ns: &str, pool: &str) {
    for (key, target) in ctx.state.orphans_in(pool) {
        match ctx.resolver.read(&ctx.client, ns, &target).await {
            Ok(t) => ctx.state.orphan_runs(&key, Some(t.current_replicas)),
            // Gone (or no longer readable): nothing is known to hold connections.
            Err(Error::Target { .. }) => ctx.state.orphan_runs(&key, None),
            Err(e) => tracing::debug!(error = %e, orphan = %key, "orphan's target unread"),
        }
    }
}

/// Claims of the other policies sharing the policy's database, from their last status (after
/// a restart, before the ledger knows them, or while they are paused). What they hold is
/// counted high: the most of their status and of what their targets run now, so a status
/// written by hand cannot hide replicas that hold connections.
async fn claims_from_status(ctx: &Context, read: &Read<'_>, pool: &str) -> Vec<Claim> {
    let Some(store) = ctx.policies.get() else {
        return vec![];
    };
    let ns = read.ns.as_str();
    let mut claims = vec![];
    for k in ctx.state.unledgered_sharers(pool, &key(read.policy)) {
        let Some(stored) = stored(store, ns, &k) else {
            continue;
        };
        let Ok(p) = stored.policy.as_ref() else {
            continue;
        };
        let Some(b) = p
            .spec
            .guardrails
            .as_ref()
            .and_then(|g| g.connection_budget.as_ref())
        else {
            continue;
        };
        let status = p.status.as_ref();
        let current = status.and_then(|s| s.current_replicas).unwrap_or(0);
        let desired = status.and_then(|s| s.desired_replicas);
        let running = ctx
            .resolver
            .read(&ctx.client, ns, &p.spec.target_ref)
            .await
            .map_or(0, |t| t.current_replicas);
        claims.push(Claim {
            name: k.clone(),
            pool_size: b.pool_size_per_replica,
            held: current.max(desired.unwrap_or(current)).max(running),
            // One that has not decided yet may need up to its maximum: the first to
            // decide must not take the whole budget before the others have asked.
            need: desired.unwrap_or(p.spec.max_replicas),
        });
    }
    claims
}
