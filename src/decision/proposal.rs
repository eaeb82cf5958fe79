//! Per-signal replica proposals and how they combine: the HPA's replica calculator and
//! `computeReplicasForMetrics`.

use crate::api::TargetType;

use super::{SignalValue, Tolerance};

/// What one signal asks for. `replicas: None` when the signal could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub name: String,
    pub replicas: Option<i32>,
    /// value / target: how far the signal is from where the user wants it.
    pub ratio: Option<f64>,
    /// Whether the ratio grows with the load, so that a predicted rise may multiply it: not
    /// latency within its target (service time sets its floor, not the load).
    pub scales_with_load: bool,
}

/// Why no proposal could be acted on.
#[derive(Clone, Debug, PartialEq)]
pub enum Unavailable {
    /// No signal could be read.
    AllMissing,
    /// Some signals are missing and the readable ones would scale down: never scale down on partial data.
    PartialWouldScaleDown { missing: Vec<String> },
}

/// The combined proposal: the largest across readable signals, and which signal gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Combined {
    pub replicas: i32,
    pub signal: String,
    pub missing: Vec<String>,
}

// f64 division can land a hair above an integer (0.3/0.1*3 = 9.000000000000002) where the
// HPA's integer milli-quantities land exactly on it; this keeps `ceil` from adding a replica.
fn ceil(x: f64) -> i32 {
    let c = (x - 1e-9).ceil();
    if c >= i32::MAX as f64 {
        i32::MAX
    } else if c <= 0.0 {
        0
    } else {
        c as i32
    }
}

/// One signal's proposal. `stale_fleet`: see `History::fleet_in_reading`.
pub fn propose(
    s: &SignalValue,
    current: i32,
    ready: i32,
    tol: Tolerance,
    stale_fleet: Option<i32>,
) -> Proposal {
    let ratio_and_replicas = match s.value {
        Some(v) if v.is_finite() && s.target > 0.0 => Some(match s.target_type {
            // GetObjectMetricReplicas / getUsageRatioReplicaCount.
            TargetType::Value => {
                let ratio = v / s.target;
                let replicas = if current == 0 {
                    Some(ceil(ratio))
                } else if tol.is_within(ratio) {
                    Some(current)
                } else if ready == 0 {
                    // The HPA would propose 0 here; with no ready pod there is nothing to scale
                    // from, so the signal counts as unavailable and never scales down.
                    None
                } else if let Some(fleet) = stale_fleet.filter(|_| !s.up_only) {
                    // The reading still averages over the fleet before the newest pods (their
                    // requests or samples not in it yet): it sizes that fleet, as the HPA's
                    // "missing pods use nothing" does, and never scales down.
                    Some(ceil(ratio * f64::from(fleet)).max(current))
                } else if ratio < 1.0 {
                    let down = v / tol.down_target(s.target);
                    Some(ceil(down * f64::from(ready)).min(current))
                } else {
                    Some(ceil(ratio * f64::from(ready)))
                };
                (ratio, replicas)
            }
            // GetExternalPerPodMetricReplicas.
            TargetType::AverageValue => {
                if current == 0 {
                    (f64::INFINITY, Some(ceil(v / s.target)))
                } else {
                    let ratio = v / (s.target * f64::from(current));
                    let replicas = if tol.is_within(ratio) {
                        current
                    } else if ratio < 1.0 {
                        ceil(v / tol.down_target(s.target)).min(current)
                    } else {
                        ceil(v / s.target)
                    };
                    (ratio, Some(replicas))
                }
            }
        }),
        _ => None,
    };
    let raw_ratio = ratio_and_replicas.map(|(r, _)| r);
    let ratio = raw_ratio.filter(|r| r.is_finite());
    let replicas = ratio_and_replicas.and_then(|(_, n)| n);
    // Over target, latency says "more", not "how many": a saturated queue's latency explodes
    // far beyond what more replicas need. At most double what is ready; and while the
    // reading's window still covers the time before the newest pods were ready, it describes
    // the old fleet: hold, and ask again once it is fresh. An overflowing ratio (+Inf) is
    // still over target. Within and below target it sizes as the HPA's does, so the sizing
    // signals cannot shrink the fleet past where latency meets its target.
    if s.up_only && raw_ratio.is_some_and(|r| r > 1.0 + tol.scale_up) {
        let bound = if stale_fleet.is_some() {
            current
        } else {
            ready.max(1).saturating_mul(2)
        };
        return Proposal {
            name: s.name.clone(),
            ratio,
            replicas: replicas.map(|n| n.min(bound).max(current)),
            scales_with_load: true,
        };
    }
    Proposal {
        name: s.name.clone(),
        ratio,
        replicas,
        scales_with_load: !s.up_only,
    }
}

/// The largest readable proposal; missing data may hold or raise, never lower.
pub fn combine(proposals: &[Proposal], current: i32) -> Result<Combined, Unavailable> {
    let missing: Vec<String> = proposals
        .iter()
        .filter(|p| p.replicas.is_none())
        .map(|p| p.name.clone())
        .collect();
    // First signal wins ties, as in the HPA.
    let best = proposals
        .iter()
        .filter_map(|p| p.replicas.map(|r| (r, &p.name)))
        .fold(None::<(i32, &String)>, |acc, (r, n)| match acc {
            Some((br, _)) if br >= r => acc,
            _ => Some((r, n)),
        });
    let Some((replicas, signal)) = best else {
        return Err(Unavailable::AllMissing);
    };
    if !missing.is_empty() && replicas < current {
        return Err(Unavailable::PartialWouldScaleDown { missing });
    }
    Ok(Combined {
        replicas,
        signal: signal.clone(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(t: TargetType, target: f64, value: Option<f64>) -> SignalValue {
        SignalValue {
            name: "s".into(),
            target_type: t,
            target,
            value,
            up_only: false,
            lookback_seconds: None,
        }
    }

    fn replicas(t: TargetType, target: f64, value: f64, current: i32, ready: i32) -> Option<i32> {
        propose(
            &sig(t, target, Some(value)),
            current,
            ready,
            Tolerance::default(),
            None,
        )
        .replicas
    }

    #[test]
    fn value_scales_ready_replicas_by_ratio() {
        // Ratio 3 over 3 ready pods → 9 (upstream TestReplicaCalcScaleUpCMObject has the same shape).
        assert_eq!(replicas(TargetType::Value, 10.0, 30.0, 3, 3), Some(9));
        // Ready replicas, not current, are what the ratio multiplies.
        assert_eq!(replicas(TargetType::Value, 0.3, 0.45, 4, 2), Some(3));
        // Float ratios that are exact in milli-quantities do not gain a replica.
        assert_eq!(replicas(TargetType::Value, 0.1, 0.3, 3, 3), Some(9));
    }

    #[test]
    fn value_within_tolerance_keeps_current() {
        assert_eq!(replicas(TargetType::Value, 100.0, 109.0, 5, 5), Some(5));
        assert_eq!(replicas(TargetType::Value, 100.0, 91.0, 5, 5), Some(5));
        assert_eq!(replicas(TargetType::Value, 100.0, 111.0, 5, 5), Some(6));
        // Exactly on the tolerance edge is within (<=), as upstream.
        assert_eq!(replicas(TargetType::Value, 100.0, 110.0, 5, 5), Some(5));
    }

    #[test]
    fn value_from_zero_replicas_uses_the_ratio_alone() {
        assert_eq!(replicas(TargetType::Value, 10.0, 25.0, 0, 0), Some(3));
    }

    #[test]
    fn value_with_no_ready_pod_is_unavailable() {
        assert_eq!(replicas(TargetType::Value, 10.0, 5.0, 4, 0), None);
    }

    #[test]
    fn average_value_divides_the_total_by_target() {
        // Upstream TestReplicaCalcScaleUpCMExternalPerPod-like: total 8600 / 2150 per pod → 4.
        assert_eq!(
            replicas(TargetType::AverageValue, 2150.0, 8600.0, 1, 1),
            Some(4)
        );
        assert_eq!(
            replicas(TargetType::AverageValue, 100.0, 450.0, 3, 3),
            Some(5)
        );
        // Tolerance is checked against current (status) replicas.
        assert_eq!(
            replicas(TargetType::AverageValue, 100.0, 310.0, 3, 1),
            Some(3)
        );
        assert_eq!(
            replicas(TargetType::AverageValue, 100.0, 0.0, 3, 3),
            Some(0)
        );
    }

    #[test]
    fn a_down_margin_sizes_a_scale_down_below_target_and_nothing_else() {
        let margin = Tolerance::default().with_down_margin(0.2);
        let with = |t, target, value, current| {
            propose(&sig(t, target, Some(value)), current, current, margin, None).replicas
        };
        // 10 replicas at half the target: the HPA asks for 5, the margin for 7 (50/80 × 10).
        assert_eq!(replicas(TargetType::Value, 100.0, 50.0, 10, 10), Some(5));
        assert_eq!(with(TargetType::Value, 100.0, 50.0, 10), Some(7));
        assert_eq!(with(TargetType::AverageValue, 100.0, 500.0, 10), Some(7));
        // Never above the current count, and scale-up and tolerance are the HPA's.
        assert_eq!(with(TargetType::Value, 100.0, 85.0, 10), Some(10));
        assert_eq!(with(TargetType::Value, 100.0, 150.0, 10), Some(15));
        assert_eq!(with(TargetType::Value, 100.0, 95.0, 10), Some(10));
    }

    #[test]
    fn unreadable_values_propose_nothing() {
        let t = Tolerance::default();
        for v in [None, Some(f64::NAN), Some(f64::INFINITY)] {
            assert_eq!(
                propose(&sig(TargetType::Value, 1.0, v), 3, 3, t, None).replicas,
                None
            );
        }
    }

    fn p(name: &str, r: Option<i32>) -> Proposal {
        Proposal {
            name: name.into(),
            replicas: r,
            ratio: None,
            scales_with_load: true,
        }
    }

    #[test]
    fn combine_takes_the_max_and_names_it() {
        let c = combine(&[p("a", Some(3)), p("b", Some(7)), p("c", Some(7))], 4).unwrap();
        assert_eq!((c.replicas, c.signal.as_str()), (7, "b"));
    }

    #[test]
    fn combine_never_scales_down_on_partial_data() {
        let e = combine(&[p("a", Some(2)), p("b", None)], 4).unwrap_err();
        assert_eq!(
            e,
            Unavailable::PartialWouldScaleDown {
                missing: vec!["b".into()]
            }
        );
        // Holding or scaling up on partial data is allowed, as in the HPA.
        assert_eq!(
            combine(&[p("a", Some(4)), p("b", None)], 4)
                .unwrap()
                .replicas,
            4
        );
        assert_eq!(
            combine(&[p("a", Some(6)), p("b", None)], 4)
                .unwrap()
                .replicas,
            6
        );
        assert_eq!(
            combine(&[p("a", None)], 4).unwrap_err(),
            Unavailable::AllMissing
        );
        assert_eq!(combine(&[], 4).unwrap_err(), Unavailable::AllMissing);
    }

    #[test]
    fn an_overflowing_up_only_ratio_still_at_most_doubles() {
        let mut s = sig(TargetType::Value, 1e-300, Some(1e300));
        s.up_only = true;
        let p = propose(&s, 4, 4, Tolerance::default(), None);
        assert_eq!(p.replicas, Some(8));
    }

    #[test]
    fn latency_beside_sizing_signals_at_most_doubles_up_and_holds_near_target() {
        let t = Tolerance::default();
        let mut s = sig(TargetType::Value, 0.3, Some(0.6));
        s.up_only = true;
        assert_eq!(propose(&s, 4, 4, t, None).replicas, Some(8));
        // A saturated tier's latency (10s against 300ms) asks for 2x, not 33x.
        s.value = Some(10.0);
        assert_eq!(propose(&s, 4, 4, t, None).replicas, Some(8));
        // Near its target it holds the fleet where CPU alone would halve it: between two
        // bursts the fleet stays where latency is met (issue #41).
        s.value = Some(0.27);
        let near = propose(&s, 10, 10, t, None);
        let cpu = p_named("cpu", Some(5));
        assert_eq!(combine(&[cpu.clone(), near], 10).unwrap().replicas, 10);
        // Far under target the sizing signal decides the way down.
        s.value = Some(0.1);
        let far = propose(&s, 10, 10, t, None);
        assert_eq!(combine(&[cpu, far], 10).unwrap().replicas, 5);
    }

    #[test]
    fn up_only_signals_wait_for_a_reading_of_the_new_fleet() {
        let t = Tolerance::default();
        let mut s = sig(TargetType::Value, 0.3, Some(10.0));
        s.up_only = true;
        s.lookback_seconds = Some(60.0);
        // No recent scale-up: the reading is of this fleet.
        assert_eq!(propose(&s, 4, 4, t, None).replicas, Some(8));
        // A reading that still describes the fleet before the newest pods: hold.
        assert_eq!(propose(&s, 8, 4, t, Some(4)).replicas, Some(8));
        assert_eq!(propose(&s, 8, 8, t, Some(4)).replicas, Some(8));
        // A reading of the new fleet, still over target: push again.
        assert_eq!(propose(&s, 8, 8, t, None).replicas, Some(16));
    }

    #[test]
    fn a_utilization_read_before_the_new_pods_sizes_the_fleet_it_describes() {
        let t = Tolerance::default();
        let at = |value: f64, stale: Option<i32>| {
            let mut s = sig(TargetType::Value, 47.0, Some(value));
            s.lookback_seconds = Some(20.0);
            propose(&s, 4, 4, t, stale).replicas
        };
        // 90% against 47% read on the 2 pods there were before a scale-up to 4: the HPA's 4
        // (the new pods' use not seen yet counts as none), not 8.
        assert_eq!(at(90.0, Some(2)), Some(4));
        assert_eq!(at(90.0, None), Some(8));
        // Load still rising: the old fleet's need, which is more than runs now.
        assert_eq!(at(150.0, Some(2)), Some(7));
        // A low reading that may not cover the new pods does not scale down.
        assert_eq!(at(20.0, Some(2)), Some(4));
    }

    fn p_named(name: &str, r: Option<i32>) -> Proposal {
        p(name, r)
    }
}
