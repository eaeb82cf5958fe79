//! How every stage reports: the policy's status (server-side apply, only when it changed at
//! display precision) and its Events.

use std::time::Instant;

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use serde_json::json;

use super::Context;
use super::keys::key;
use super::status::{self, Outcome};
use crate::api::{ScalingPolicyStatus, StoredPolicy};
use crate::error::Result;

const FIELD_MANAGER: &str = "headroom";

pub(super) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(super) async fn write_status(
    object: &impl Resource<DynamicType = ()>,
    prev: Option<&ScalingPolicyStatus>,
    ctx: &Context,
    ns: &str,
    outcome: &Outcome,
    last_scale_time: Option<String>,
) -> Result<()> {
    // Only this process's own estimate: one in status that it did not make (another writer's,
    // or from before a restart) is exported as a metric, so it is dropped, not carried on.
    // Its own outlives a passing conflict or unreadable target, as the state does.
    let headroom = ctx
        .state
        .headroom(&key(object), prev.and_then(|p| p.headroom.as_ref()));
    let predicted = match outcome {
        Outcome::Decided { evaluation, .. } => evaluation.predicted,
        _ => None,
    };
    let predictive =
        ctx.state
            .prediction_status(&key(object), jiff::Timestamp::now().as_second(), predicted);
    // Nothing new at display precision: no etcd write, no watch event.
    let Some(status) = status::to_write(
        prev,
        object.meta().generation,
        outcome,
        &now_rfc3339(),
        last_scale_time,
        headroom,
        predictive,
    ) else {
        return Ok(());
    };
    let api: Api<StoredPolicy> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({
        "apiVersion": "headroom.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "status": status,
    });
    let written = api
        .patch_status(
            object.meta().name.as_deref().unwrap_or_default(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await;
    match written {
        Ok(_) => {
            ctx.state.wrote_status(&key(object), status, Instant::now());
            Ok(())
        }
        // Refused for what it holds (too large, invalid): the same write would be refused
        // every interval, so it is reported once, and the evaluation itself stands.
        Err(kube::Error::Api(e)) if refused_for_good(e.code) => {
            let why = format!("status not written: {}", e.message);
            if ctx.state.status_refused(&key(object), &why) {
                event(
                    ctx,
                    object,
                    EventType::Warning,
                    "StatusNotWritten",
                    "Status",
                    why,
                )
                .await;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A 4xx other than a conflict, a rate limit or a missing object: retrying will not help.
fn refused_for_good(code: u16) -> bool {
    (400..500).contains(&code) && !matches!(code, 404 | 408 | 409 | 429)
}

pub(super) async fn event(
    ctx: &Context,
    policy: &impl Resource<DynamicType = ()>,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let mut note = note;
    super::bounded::clip(&mut note, 1000);
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    // Events are best effort: a failure to publish must not fail the evaluation.
    if let Err(e) = ctx.events.publish(&ev, &policy.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_a_retry_cannot_mend_stop_the_retries() {
        for code in [400, 413, 422] {
            assert!(refused_for_good(code), "{code}");
        }
        for code in [404, 408, 409, 429, 500, 503] {
            assert!(!refused_for_good(code), "{code}");
        }
    }
}
