//! Stage 4, act: the decision written to the target's `/scale` (Enforce), or said as an Event
//! (Recommend).

use std::time::Instant;

use kube::runtime::events::EventType;

use super::Context;
use super::keys::target_key;
use super::read::Read;
use super::report::{event, now_rfc3339};
use crate::api::Mode;
use crate::decision::{Evaluation, Limit};
use crate::error::Result;

/// What acting did, for status.
pub(super) struct Acted {
    /// When the replicas were written, if they were.
    pub scaled_at: Option<String>,
}

pub(super) async fn act(ctx: &Context, read: &Read<'_>, ev: &Evaluation) -> Result<Acted> {
    let d = &ev.decision;
    let current = read.target.current_replicas;
    let wants_change = d.desired_replicas != current && d.limited_by != Limit::ScalingDisabled;
    let mut acted = Acted { scaled_at: None };
    if !wants_change {
        return Ok(acted);
    }
    match read.plan.mode {
        Mode::Enforce => acted.scaled_at = Some(scale(ctx, read, ev).await?),
        Mode::Recommend
            if read.prev.as_deref().and_then(|s| s.desired_replicas)
                != Some(d.desired_replicas) =>
        {
            let note = format!(
                "would scale from {current} to {}: {}",
                d.desired_replicas, d.reason
            );
            let policy = read.policy;
            event(
                ctx,
                policy,
                EventType::Normal,
                "Recommended",
                "Recommend",
                note,
            )
            .await;
        }
        _ => {}
    }
    Ok(acted)
}

/// Writes the desired replicas; returns when.
async fn scale(ctx: &Context, read: &Read<'_>, ev: &Evaluation) -> Result<String> {
    let (d, t, pkey) = (&ev.decision, &read.policy.spec.target_ref, &read.key);
    let current = read.target.current_replicas;
    // Noted before the write: its watch event can arrive before the write returns.
    ctx.state.wrote(
        pkey,
        &target_key(&read.ns, &t.kind, &t.name),
        d.desired_replicas,
    );
    if let Err(e) = ctx
        .resolver
        .scale(&ctx.client, &read.ns, t, d.desired_replicas)
        .await
    {
        ctx.metrics.scale_failed();
        let policy = read.policy;
        event(
            ctx,
            policy,
            EventType::Warning,
            "FailedScale",
            "Scale",
            e.to_string(),
        )
        .await;
        return Err(e);
    }
    let at = now_rfc3339();
    let change = d.desired_replicas - current;
    ctx.state
        .record_scale(pkey, Instant::now(), change, at.clone());
    ctx.metrics.scaled(d.desired_replicas > current);
    let note = format!(
        "{}/{} scaled from {current} to {}: {}",
        t.kind, t.name, d.desired_replicas, d.reason
    );
    tracing::info!(policy = %pkey, from = current, to = d.desired_replicas, reason = %d.reason, "scaled");
    // Scale to zero and back have their own reasons, as `kubectl get events` shows them.
    let reason = match d.limited_by {
        Limit::Activated | Limit::Idle => d.limited_by.as_str(),
        _ => "Scaled",
    };
    event(ctx, read.policy, EventType::Normal, reason, "Scale", note).await;
    Ok(at)
}
