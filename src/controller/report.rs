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
        Ok(stored) => {
            let kept = stored.policy.ok().and_then(|p| p.status);
            if kept.as_ref() != Some(&status) {
                remove_foreign(&api, object, kept.as_ref(), &status).await?;
            }
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

/// Takes out of status what another writer put there beside the operator's fields (a
/// condition, a forecast on a policy without one, a field of the estimate the operator left
/// empty): server-side apply keeps fields another manager owns, so these would stay, be
/// exported as metrics, and make every evaluation write again. One merge patch, only when
/// the stored status is not the one written.
async fn remove_foreign(
    api: &Api<StoredPolicy>,
    object: &impl Resource<DynamicType = ()>,
    kept: Option<&ScalingPolicyStatus>,
    written: &ScalingPolicyStatus,
) -> Result<()> {
    let (Ok(kept), Ok(written)) = (serde_json::to_value(kept), serde_json::to_value(written))
    else {
        return Ok(());
    };
    let Some(patch) = merge_patch(&kept, &written) else {
        return Ok(());
    };
    tracing::info!(policy = %key(object), "removing status fields another writer set");
    api.patch_status(
        object.meta().name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": patch })),
    )
    .await?;
    Ok(())
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`; None when they are equal.
fn merge_patch(from: &serde_json::Value, to: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    let (Value::Object(from), Value::Object(to)) = (from, to) else {
        return (from != to).then(|| to.clone());
    };
    let mut patch = serde_json::Map::new();
    for (k, f) in from {
        match to.get(k) {
            None => {
                patch.insert(k.clone(), Value::Null);
            }
            Some(t) => {
                if let Some(d) = merge_patch(f, t) {
                    patch.insert(k.clone(), d);
                }
            }
        }
    }
    for (k, t) in to {
        if !from.contains_key(k) {
            patch.insert(k.clone(), t.clone());
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
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
    fn the_patch_takes_out_what_another_writer_added_and_keeps_the_rest() {
        let kept = json!({
            "reason": "steady",
            "headroom": {"summary": "2.0x app", "factor": 50},
            "predictive": {"summary": "forged"},
            "conditions": [{"type": "Ready"}, {"type": "Forged"}],
        });
        let written = json!({
            "reason": "steady",
            "headroom": {"summary": "2.0x app"},
            "conditions": [{"type": "Ready"}],
        });
        assert_eq!(
            merge_patch(&kept, &written),
            Some(json!({
                "headroom": {"factor": null},
                "predictive": null,
                "conditions": [{"type": "Ready"}],
            }))
        );
        assert_eq!(merge_patch(&written, &written), None);
        let mut patched = kept.clone();
        json_patch::merge(
            &mut patched,
            &merge_patch(&kept, &written).unwrap_or_default(),
        );
        assert_eq!(patched, written);
    }

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
