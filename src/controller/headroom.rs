//! Keeps each policy's traffic headroom estimate fresh, off the evaluation path: when one is
//! due and the pacer has a turn free (across all policies), a background task reads the
//! policy's series over its calibration window and leaves the estimate in the policy's
//! memory. The next evaluation's status carries it. A policy due without a free turn asks
//! again at its next evaluation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;

use super::Context;
use super::headroom_status::{headroom, nothing_to_estimate};
use super::keys::key;
use super::observe::prometheus_for;
use crate::api::{HeadroomStatus, ScalingPolicy};
use crate::calibration::{CalibrationError, calibrate, pods_of};
use crate::capacity::Limits;
use crate::plan::Plan;

/// How often an estimate is recalibrated: a sixth of its window, so each fit shares most of
/// its readings with the one before.
pub fn every(window: Duration) -> Duration {
    (window / 6).clamp(Duration::from_secs(30), Duration::from_secs(3600))
}

/// Starts a calibration of `policy` if one is due. Returns at once.
pub fn refresh(ctx: &Arc<Context>, policy: &ScalingPolicy, ns: &str, plan: &Plan) {
    let pkey = key(policy);
    let window = plan.calibration_window;
    let now = Instant::now();
    let every = every(window.as_duration());
    // Most evaluations stop here: not due, nothing else looked at.
    if !ctx.state.calibration_wanted(&pkey, now) {
        return;
    }
    if Limits::from_plan(plan, None).is_empty() {
        // Nothing to ask Prometheus: no turn needed.
        if ctx.state.calibration_due(&pkey, now, every) {
            ctx.state
                .calibrated(&pkey, Some(nothing_to_estimate(window)));
        }
        return;
    }
    // A policy with no estimate yet goes before those that have one.
    let first = policy.status.as_ref().is_none_or(|s| s.headroom.is_none());
    if !ctx.calibrations.try_turn(ns, first, now) || !ctx.state.calibration_due(&pkey, now, every) {
        return;
    }
    let ctx = ctx.clone();
    let policy = policy.clone();
    let plan = plan.clone();
    let ns = ns.to_string();
    tokio::spawn(async move {
        let status = run(&ctx, &policy, &ns, &plan).await;
        ctx.state.calibrated(&pkey, status);
    });
}

/// One calibration; None when Prometheus could not be asked at all (the last estimate stays).
async fn run(
    ctx: &Context,
    policy: &ScalingPolicy,
    ns: &str,
    plan: &Plan,
) -> Option<HeadroomStatus> {
    let (source, prometheus) = match prometheus_for(&policy.spec, ctx, ns).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(policy = %key(policy), error = %e, "no Prometheus for the headroom estimate");
            return None;
        }
    };
    let window = plan.calibration_window;
    let pods = pods_of(&policy.spec.target_ref);
    let calibration = calibrate(
        &prometheus,
        &policy.spec,
        plan,
        ns,
        &pods,
        jiff::Timestamp::now().as_second(),
        window.as_duration(),
    );
    // In the namespace's share for background reads: its calibrations wait behind its own,
    // not in front of another namespace's queries or its own evaluations.
    let (result, took) = match ctx.batcher.in_share(ns, &source, calibration).await {
        Ok(read) => read,
        // Counted as the namespace's refusal where it was refused (the share).
        Err(e) => {
            tracing::debug!(policy = %key(policy), error = %e, "headroom estimate refused");
            return None;
        }
    };
    ctx.metrics.calibrated(result.is_ok());
    // The namespace's per-namespace figures count its calibrations (one query each here).
    let refused = result.as_ref().is_err_and(CalibrationError::refused);
    ctx.metrics
        .tenants()
        .answered(ns, took.as_secs_f64(), refused);
    // Compared with this process's own last estimate only, never with one read from status.
    let prev = ctx.state.headroom(
        &key(policy),
        policy.status.as_ref().and_then(|s| s.headroom.as_ref()),
    );
    tracing::debug!(policy = %policy.name_any(), ok = result.is_ok(), "calibrated headroom");
    Some(headroom(prev.as_ref(), &result, window))
}
