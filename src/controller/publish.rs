//! Stage 5, publish: what the evaluation decided goes to the policy's status, its Events and
//! the operator's metrics. Status and Events are written here for every stage that stops
//! early too (an invalid spec, a conflict, a target that cannot be read).

use kube::runtime::events::EventType;

use super::Context;
use super::act::Acted;
use super::evaluation::budget_pool;
use super::read::Read;
use super::report::{event, write_status};
use super::status::Outcome;
use crate::api::{BudgetOrphanStatus, ConditionStatus, ScalingPolicy, ScalingPolicyStatus};
use crate::decision::Evaluation;
use crate::decision::guardrails::Finding;
use crate::error::Result;

/// Events for what changed, the decision's metrics, then the status.
pub(super) async fn publish(
    ctx: &Context,
    read: &Read<'_>,
    ev: Evaluation,
    acted: Acted,
) -> Result<()> {
    let (policy, prev) = (read.policy, read.prev.as_deref());
    for r in ev.readings.iter().filter(|r| r.value.is_err()) {
        ctx.metrics.signal_error(r.kind);
    }
    ctx.metrics.decision(ev.decision.limited_by.as_str());
    findings(ctx, policy, &ev.findings, &ev.decision.reason).await;
    unread_signals(ctx, policy, prev, &ev).await;
    let last_scale_time = acted
        .scaled_at
        .or_else(|| ctx.state.last_scale_time(&read.key));
    let outcome = Outcome::Decided {
        mode: read.plan.mode,
        current: read.target.current_replicas,
        evaluation: Box::new(ev),
        interval: read.raised_interval.clone(),
        orphans: orphans(ctx, read),
    };
    write_status(policy, prev, ctx, &read.ns, &outcome, last_scale_time).await
}

/// Deleted sharers of the policy's connection budget whose targets still run, for status:
/// the record a restarted operator counts them from.
fn orphans(ctx: &Context, read: &Read<'_>) -> Vec<BudgetOrphanStatus> {
    let Some(pool) = budget_pool(&read.ns, &read.plan) else {
        return vec![];
    };
    ctx.state
        .orphan_claims(&pool)
        .into_iter()
        .filter_map(|(key, target_ref, claim)| {
            Some(BudgetOrphanStatus {
                policy: key.rsplit('/').next()?.to_string(),
                target_ref,
                pool_size_per_replica: claim.pool_size,
                replicas: claim.held,
            })
        })
        .take(32)
        .collect()
}

/// A Warning when signals stop being readable (not again while they stay so).
async fn unread_signals(
    ctx: &Context,
    policy: &ScalingPolicy,
    prev: Option<&ScalingPolicyStatus>,
    ev: &Evaluation,
) {
    let metrics_were_ok = prev
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "MetricsAvailable"))
        .is_none_or(|c| c.status == ConditionStatus::True);
    let failed: Vec<String> = ev
        .readings
        .iter()
        .filter_map(|r| r.value.as_ref().err().map(|e| format!("{}: {e}", r.name)))
        .collect();
    if metrics_were_ok && !failed.is_empty() {
        event(
            ctx,
            policy,
            EventType::Warning,
            "MetricsUnavailable",
            "ReadSignals",
            failed.join("; "),
        )
        .await;
    }
}

/// Guardrails that became active since the last evaluation get an Event; a database hold is
/// a Warning that says what to do instead of adding app servers.
async fn findings(ctx: &Context, policy: &ScalingPolicy, findings: &[Finding], reason: &str) {
    for f in findings.iter().filter(|f| f.active) {
        let was = policy
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == f.reason))
            .is_some_and(|c| c.status == ConditionStatus::True);
        if was {
            continue;
        }
        let (kind, note) = match f.reason {
            "DatabaseBound" => (EventType::Warning, reason.to_string()),
            // What to change is in the message, whatever the decision was.
            "CpuSaturated" | "HeldAtZero" => (EventType::Warning, f.message.clone()),
            _ => (EventType::Normal, format!("{}: {}", f.message, reason)),
        };
        event(ctx, policy, kind, f.reason, "Guardrail", note).await;
    }
}
