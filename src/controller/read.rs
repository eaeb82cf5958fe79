//! Stage 1, read: the policy, its plan and its target. A policy that cannot go further (an
//! invalid spec, paused, in conflict, a target that cannot be read) is reported here, and the
//! evaluation stops.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};

use super::Context;
use super::keys::{key, target_key};
use super::report::{event, write_status};
use super::status::Outcome;
use super::target::TargetState;
use crate::api::{
    ConditionStatus, Mode, PromDuration, ScalingPolicy, ScalingPolicySpec, ScalingPolicyStatus,
    StoredPolicy,
};
use crate::error::{Error, Result};
use crate::plan::Plan;

/// A policy ready to be observed: everything the later stages read of it.
pub(super) struct Read<'a> {
    pub policy: &'a ScalingPolicy,
    /// `namespace/name`.
    pub key: String,
    pub ns: String,
    pub plan: Plan,
    pub target: TargetState,
    /// The newest status: what this process last wrote, else the watch cache's (borrowed:
    /// at steady state the cache's copy is the only one).
    pub prev: Option<Cow<'a, ScalingPolicyStatus>>,
    /// What status says when the operator's floor raised the interval.
    pub raised_interval: Option<String>,
}

/// The policy to evaluate, or None when it was reported and stops here.
pub(super) async fn read<'a>(policy: &'a ScalingPolicy, ctx: &Context) -> Result<Option<Read<'a>>> {
    let ns = policy
        .namespace()
        .ok_or_else(|| Error::InvalidPolicy("ScalingPolicy must be namespaced".into()))?;
    let spec = &policy.spec;
    // What this process last wrote is newer than the watch cache's copy, which can lag.
    let prev = ctx
        .state
        .written_status(&key(policy), policy.status.as_ref(), Instant::now())
        .map(Cow::Owned)
        .or_else(|| policy.status.as_ref().map(Cow::Borrowed));
    let Some(plan) = plan(policy, ctx, &ns, prev.as_deref()).await? else {
        return Ok(None);
    };
    if let Some(message) = conflicting(policy, ctx, &ns) {
        conflict(policy, prev.as_deref(), ctx, &ns, message).await?;
        return Ok(None);
    }
    let Some(target) = target(policy, ctx, &ns, prev.as_deref()).await? else {
        return Ok(None);
    };
    Ok(Some(Read {
        policy,
        key: key(policy),
        raised_interval: raised_interval(spec, ctx.settings.min_interval),
        ns,
        plan,
        target,
        prev,
    }))
}

/// The plan for the operator's settings; an invalid or paused policy is reported.
async fn plan(
    policy: &ScalingPolicy,
    ctx: &Context,
    ns: &str,
    prev: Option<&ScalingPolicyStatus>,
) -> Result<Option<Plan>> {
    let plan = match Plan::resolve(&policy.spec) {
        Ok(p) => p
            .with_downscale_stabilization(ctx.settings.downscale_stabilization_seconds)
            .for_scrape_interval(ctx.scrape_interval()),
        Err(errors) => {
            let message = errors.to_string();
            let unready = Unready::new("InvalidSpec", "Validate", message.clone());
            stop(
                policy,
                ctx,
                ns,
                prev,
                unready,
                &Outcome::Invalid { message },
            )
            .await?;
            return Ok(None);
        }
    };
    if plan.mode == Mode::Paused {
        write_status(policy, prev, ctx, ns, &Outcome::Paused, None).await?;
        return Ok(None);
    }
    Ok(Some(plan))
}

/// Another policy or an HPA that owns the same target, from the watch caches.
fn conflicting(policy: &ScalingPolicy, ctx: &Context, ns: &str) -> Option<String> {
    let t = &policy.spec.target_ref;
    // Only the policies on the same target can conflict with this one.
    let policies: Vec<Arc<StoredPolicy>> = match ctx.policies.get() {
        Some(store) => ctx
            .state
            .scalers(&target_key(ns, &t.kind, &t.name))
            .iter()
            .filter_map(|k| stored(store, ns, k))
            .collect(),
        None => vec![],
    };
    let hpas = ctx.hpas.get().map(|s| s.state()).unwrap_or_default();
    super::conflict::owner(
        policy,
        policies.iter().map(AsRef::as_ref),
        hpas.iter().map(AsRef::as_ref),
    )
}

/// The target's replicas and selector; one that cannot be read, or that another controller
/// owns, is reported.
async fn target(
    policy: &ScalingPolicy,
    ctx: &Context,
    ns: &str,
    prev: Option<&ScalingPolicyStatus>,
) -> Result<Option<TargetState>> {
    let t = &policy.spec.target_ref;
    let target = match ctx.resolver.read(&ctx.client, ns, t).await {
        Ok(t) => t,
        Err(e @ Error::Target { .. }) => {
            let message = e.to_string();
            let unready = Unready::new("TargetUnavailable", "Read", message.clone());
            let outcome = Outcome::TargetUnavailable { message };
            stop(policy, ctx, ns, prev, unready, &outcome).await?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // A Deployment's ReplicaSet (or any target another controller owns) has its replicas
    // set by that controller: scaling it would fight the owner, silently.
    if let Some(owner) = &target.controller {
        let message = format!(
            "{}/{} is controlled by {owner}, which sets its replicas: target {owner} instead",
            t.kind, t.name
        );
        conflict(policy, prev, ctx, ns, message).await?;
        return Ok(None);
    }
    Ok(Some(target))
}

/// Why a policy stops here, as its Warning Event says.
struct Unready {
    reason: &'static str,
    action: &'static str,
    message: String,
}

impl Unready {
    fn new(reason: &'static str, action: &'static str, message: String) -> Self {
        Self {
            reason,
            action,
            message,
        }
    }
}

/// Reports a policy that stops here: a Warning when it was Ready before, then its status.
async fn stop(
    policy: &ScalingPolicy,
    ctx: &Context,
    ns: &str,
    prev: Option<&ScalingPolicyStatus>,
    why: Unready,
    outcome: &Outcome,
) -> Result<()> {
    if was_ready(prev) {
        let note = why.message.to_string();
        event(
            ctx,
            policy,
            EventType::Warning,
            why.reason,
            why.action,
            note,
        )
        .await;
    }
    write_status(policy, prev, ctx, ns, outcome, None).await
}

fn was_ready(prev: Option<&ScalingPolicyStatus>) -> bool {
    prev.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .is_none_or(|c| c.status != ConditionStatus::False)
}

/// Reports a conflict (an Event when it begins) and stands aside.
async fn conflict(
    policy: &ScalingPolicy,
    prev: Option<&ScalingPolicyStatus>,
    ctx: &Context,
    ns: &str,
    message: String,
) -> Result<()> {
    let was_conflict = prev
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.reason == "Conflict");
    if !was_conflict {
        let note = message.clone();
        event(ctx, policy, EventType::Warning, "Conflict", "Scale", note).await;
    }
    write_status(policy, prev, ctx, ns, &Outcome::Conflict { message }, None).await
}

/// The stored policy `namespace/name` in `ns`, from the watch cache.
pub(super) fn stored(
    store: &Store<StoredPolicy>,
    ns: &str,
    key: &str,
) -> Option<Arc<StoredPolicy>> {
    store.get(&ObjectRef::new(key.rsplit('/').next()?).within(ns))
}

/// How often a policy is evaluated: its spec.interval, but never more often than the
/// operator's floor.
pub(super) fn interval_of(spec: &ScalingPolicySpec, floor: Duration) -> Duration {
    spec.interval.as_duration().max(floor).clamp(
        Duration::from_secs(1),
        Duration::from_secs(crate::plan::MAX_INTERVAL_SECONDS),
    )
}

/// What status says when the floor applies.
fn raised_interval(spec: &ScalingPolicySpec, floor: Duration) -> Option<String> {
    let asked = spec.interval.as_duration();
    (floor > asked).then(|| {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        format!(
            "{}: the operator's minimum (--min-interval); spec.interval asks {}",
            PromDuration::from_millis(ms(floor)),
            spec.interval
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_floor_raises_short_intervals_and_says_so() {
        let policy: ScalingPolicy =
            match serde_yaml::from_str(include_str!("../../deploy/examples/worker.yaml")) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
        let mut spec = policy.spec;
        spec.interval = PromDuration::from_secs(1);
        let floor = Duration::from_secs(10);
        assert_eq!(interval_of(&spec, floor), floor);
        let said = raised_interval(&spec, floor).unwrap_or_default();
        assert!(
            said.starts_with("10s: ")
                && said.contains("--min-interval")
                && said.contains("asks 1s"),
            "{said}"
        );
        spec.interval = PromDuration::from_secs(30);
        assert_eq!(interval_of(&spec, floor), Duration::from_secs(30));
        assert_eq!(raised_interval(&spec, floor), None);
    }
}
