//! Engine tests. The tables mirror the upstream HPA controller's own tests
//! (TestScalingWithRules, TestNormalizeDesiredReplicas[WithBehavior], the metric-invalid
//! cases) with Headroom's names for the limiting conditions.

use super::normalize::{legacy, with_behavior};
use super::*;
use crate::api::{Behavior, RatePolicy, RatePolicyKind, ScalingRules, SelectPolicy, TargetType};

/// upstream `generateScalingRules(pods, podsPeriod, percent, percentPeriod, window)`.
fn rules(
    pods: i32,
    pods_period: i32,
    percent: i32,
    percent_period: i32,
    window: i32,
) -> ScalingRules {
    let mut policies = vec![];
    if pods != 0 {
        policies.push(RatePolicy {
            kind: RatePolicyKind::Pods,
            value: pods,
            period_seconds: pods_period,
        });
    }
    if percent != 0 {
        policies.push(RatePolicy {
            kind: RatePolicyKind::Percent,
            value: percent,
            period_seconds: percent_period,
        });
    }
    ScalingRules {
        stabilization_window_seconds: Some(window),
        select_policy: Some(SelectPolicy::Max),
        policies: Some(policies),
        tolerance: None,
    }
}

/// upstream `generateEventsUniformDistribution`: events spread over the last `period`
/// seconds, each in the middle of its segment, oldest first.
fn uniform(changes: &[i32], period: f64, sign: i32) -> Vec<ScaleEvent> {
    let seg = period / changes.len() as f64;
    changes
        .iter()
        .enumerate()
        .map(|(i, c)| ScaleEvent {
            replica_change: sign * c,
            age_seconds: period - seg * (i as f64 + 1.0) + seg / 2.0,
        })
        .collect()
}

struct RateCase {
    name: &'static str,
    up_events: &'static [i32],
    down_events: &'static [i32],
    min: i32,
    max: i32,
    up: Option<ScalingRules>,
    down: Option<ScalingRules>,
    current: i32,
    prenormalized: i32,
    expected: i32,
    limit: Limit,
}

fn run_rate_case(c: &RateCase) {
    let history = History {
        recommendations: vec![],
        scale_events: [
            uniform(c.up_events, 120.0, 1),
            uniform(c.down_events, 120.0, -1),
        ]
        .concat(),
        capacity_age_seconds: None,
    };
    let behavior = Behavior {
        scale_up: c.up.clone(),
        scale_down: c.down.clone(),
    };
    let resolved = resolve(&behavior, Tolerance::default(), 300);
    let n = with_behavior(
        &resolved,
        &history,
        c.current,
        c.prenormalized,
        c.min,
        c.max,
    );
    assert_eq!((n.desired, n.limit), (c.expected, c.limit), "{}", c.name);
}

#[test]
fn rate_policies_match_upstream_scaling_with_rules() {
    use Limit as L;
    let none: &[i32] = &[];
    let cases = [
        RateCase {
            name: "within range",
            up_events: none,
            down_events: none,
            min: 3,
            max: 8,
            up: None,
            down: None,
            current: 5,
            prenormalized: 7,
            expected: 7,
            limit: L::None,
        },
        RateCase {
            name: "below min",
            up_events: none,
            down_events: none,
            min: 2,
            max: 8,
            up: None,
            down: None,
            current: 3,
            prenormalized: 1,
            expected: 2,
            limit: L::MinReplicas,
        },
        RateCase {
            name: "min 0",
            up_events: none,
            down_events: none,
            min: 0,
            max: 10,
            up: None,
            down: None,
            current: 1,
            prenormalized: 0,
            expected: 0,
            limit: L::None,
        },
        RateCase {
            name: "max below scale-up limit",
            up_events: none,
            down_events: none,
            min: 1,
            max: 10,
            up: None,
            down: None,
            current: 20,
            prenormalized: 1000,
            expected: 10,
            limit: L::MaxReplicas,
        },
        RateCase {
            name: "more than max",
            up_events: none,
            down_events: none,
            min: 100,
            max: 150,
            up: None,
            down: None,
            current: 100,
            prenormalized: 1000,
            expected: 150,
            limit: L::MaxReplicas,
        },
        RateCase {
            name: "user 1% scale-up policy",
            up_events: none,
            down_events: none,
            min: 1,
            max: 2000,
            up: Some(rules(0, 0, 1, 60, 0)),
            down: None,
            current: 3,
            prenormalized: 1000,
            expected: 4,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "user 20 pods scale-down policy",
            up_events: none,
            down_events: none,
            min: 3,
            max: 2000,
            up: None,
            down: Some(rules(20, 60, 0, 0, 0)),
            current: 1000,
            prenormalized: 3,
            expected: 980,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "default scale-up",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: None,
            down: None,
            current: 10,
            prenormalized: 50,
            expected: 20,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "pods policy larger",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(100, 60, 100, 60, 0)),
            down: None,
            current: 10,
            prenormalized: 500,
            expected: 110,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "percent policy larger",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(2, 60, 100, 60, 0)),
            down: None,
            current: 10,
            prenormalized: 500,
            expected: 20,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "large pods policy",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(100, 60, 0, 0, 0)),
            down: None,
            current: 10,
            prenormalized: 50,
            expected: 50,
            limit: L::None,
        },
        RateCase {
            name: "pods policy limit",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(30, 60, 0, 0, 0)),
            down: None,
            current: 10,
            prenormalized: 50,
            expected: 40,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "percent policy limit",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(0, 0, 200, 60, 0)),
            down: None,
            current: 10,
            prenormalized: 50,
            expected: 30,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "down: percent larger",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(20, 60, 1, 60, 300)),
            current: 100,
            prenormalized: 2,
            expected: 80,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "down: pods larger",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(2, 60, 1, 60, 300)),
            current: 100,
            prenormalized: 2,
            expected: 98,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "down: min with large pods",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(100, 60, 0, 0, 300)),
            current: 10,
            prenormalized: 0,
            expected: 1,
            limit: L::MinReplicas,
        },
        RateCase {
            name: "down: min with large percent",
            up_events: none,
            down_events: none,
            min: 5,
            max: 1000,
            up: None,
            down: Some(rules(0, 0, 100, 60, 300)),
            current: 10,
            prenormalized: 2,
            expected: 5,
            limit: L::MinReplicas,
        },
        RateCase {
            name: "down: pods limit",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(5, 60, 0, 0, 300)),
            current: 10,
            prenormalized: 2,
            expected: 5,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "down: percent exactly",
            up_events: none,
            down_events: none,
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(0, 0, 50, 60, 300)),
            current: 10,
            prenormalized: 5,
            expected: 5,
            limit: L::None,
        },
        RateCase {
            name: "up: events, max",
            up_events: &[1, 5, 9],
            down_events: none,
            min: 1,
            max: 200,
            up: Some(rules(300, 60, 0, 0, 0)),
            down: None,
            current: 100,
            prenormalized: 500,
            expected: 200,
            limit: L::MaxReplicas,
        },
        RateCase {
            name: "up: events, max, percent",
            up_events: &[1, 5, 9],
            down_events: none,
            min: 1,
            max: 200,
            up: Some(rules(0, 0, 10000, 60, 0)),
            down: None,
            current: 100,
            prenormalized: 500,
            expected: 200,
            limit: L::MaxReplicas,
        },
        RateCase {
            name: "up: recent events block",
            up_events: &[1, 5, 9],
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(5, 120, 0, 0, 0)),
            down: None,
            current: 100,
            prenormalized: 500,
            expected: 100,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "up: pods after events",
            up_events: &[1, 5, 9],
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(150, 120, 0, 0, 0)),
            down: None,
            current: 100,
            prenormalized: 500,
            expected: 235,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "up: percent after events",
            up_events: &[1, 5, 9],
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(0, 0, 200, 120, 0)),
            down: None,
            current: 100,
            prenormalized: 500,
            expected: 255,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "up: percent after up and down",
            up_events: &[4],
            down_events: &[2],
            min: 1,
            max: 1000,
            up: Some(rules(0, 0, 300, 300, 0)),
            down: None,
            current: 6,
            prenormalized: 24,
            expected: 16,
            limit: L::ScaleUpPolicy,
        },
        RateCase {
            name: "down: default after events",
            up_events: none,
            down_events: &[1, 5, 9],
            min: 1,
            max: 1000,
            up: None,
            down: None,
            current: 10,
            prenormalized: 5,
            expected: 5,
            limit: L::None,
        },
        RateCase {
            name: "down: min=1 large pods events",
            up_events: none,
            down_events: &[1, 5, 9],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(115, 120, 0, 0, 300)),
            current: 100,
            prenormalized: 0,
            expected: 1,
            limit: L::MinReplicas,
        },
        RateCase {
            name: "down: min=5 large pods events",
            up_events: none,
            down_events: &[1, 5, 9],
            min: 5,
            max: 1000,
            up: None,
            down: Some(rules(130, 120, 0, 0, 300)),
            current: 100,
            prenormalized: 0,
            expected: 5,
            limit: L::MinReplicas,
        },
        RateCase {
            name: "down: min=5 100% events",
            up_events: none,
            down_events: &[1, 5, 9],
            min: 5,
            max: 1000,
            up: None,
            down: Some(rules(0, 0, 100, 120, 300)),
            current: 100,
            prenormalized: 2,
            expected: 5,
            limit: L::MinReplicas,
        },
        RateCase {
            name: "down: pods limit events",
            up_events: none,
            down_events: &[1, 5, 9],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(5, 120, 0, 0, 300)),
            current: 100,
            prenormalized: 2,
            expected: 100,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "down: percent limit events",
            up_events: none,
            down_events: &[2, 4, 6],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(0, 0, 50, 120, 300)),
            current: 100,
            prenormalized: 0,
            expected: 56,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "down: percent after up and down",
            up_events: &[2],
            down_events: &[4],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(0, 0, 50, 180, 0)),
            current: 10,
            prenormalized: 1,
            expected: 6,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "down: events block",
            up_events: none,
            down_events: &[10, 10, 10],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(0, 0, 10, 120, 300)),
            current: 100,
            prenormalized: 0,
            expected: 100,
            limit: L::ScaleDownPolicy,
        },
        RateCase {
            name: "down: events still allow",
            up_events: none,
            down_events: &[10, 10, 10],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(0, 0, 1000, 120, 300)),
            current: 10,
            prenormalized: 5,
            expected: 5,
            limit: L::None,
        },
        RateCase {
            name: "up: outdated one policy",
            up_events: &[8, 12, 9, 11],
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(1000, 60, 0, 0, 0)),
            down: None,
            current: 100,
            prenormalized: 200,
            expected: 200,
            limit: L::None,
        },
        RateCase {
            name: "up: two policies",
            up_events: &[8, 12, 9, 11],
            down_events: none,
            min: 1,
            max: 1000,
            up: Some(rules(1000, 120, 100, 60, 0)),
            down: None,
            current: 100,
            prenormalized: 200,
            expected: 200,
            limit: L::None,
        },
        RateCase {
            name: "down: outdated one policy",
            up_events: none,
            down_events: &[8, 12, 9, 11],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(1000, 60, 0, 0, 300)),
            current: 100,
            prenormalized: 5,
            expected: 5,
            limit: L::None,
        },
        RateCase {
            name: "down: two policies",
            up_events: none,
            down_events: &[8, 12, 9, 11],
            min: 1,
            max: 1000,
            up: None,
            down: Some(rules(1000, 120, 100, 60, 300)),
            current: 100,
            prenormalized: 5,
            expected: 5,
            limit: L::None,
        },
    ];
    for c in &cases {
        run_rate_case(c);
    }
}

#[test]
fn select_policy_min_and_disabled() {
    let mut up = rules(4, 60, 100, 60, 0);
    up.select_policy = Some(SelectPolicy::Min);
    let b = Behavior {
        scale_up: Some(up),
        scale_down: None,
    };
    let n = with_behavior(
        &resolve(&b, Tolerance::default(), 300),
        &History::default(),
        10,
        50,
        1,
        100,
    );
    assert_eq!((n.desired, n.limit), (14, Limit::ScaleUpPolicy));

    let mut down = rules(4, 60, 0, 0, 0);
    down.select_policy = Some(SelectPolicy::Disabled);
    let b = Behavior {
        scale_up: None,
        scale_down: Some(down),
    };
    let n = with_behavior(
        &resolve(&b, Tolerance::default(), 300),
        &History::default(),
        10,
        2,
        1,
        100,
    );
    assert_eq!((n.desired, n.limit), (10, Limit::ScaleDownPolicy));
}

fn recs(list: &[(i32, f64)]) -> History {
    History {
        recommendations: list
            .iter()
            .map(|&(replicas, age_minutes)| Recommendation {
                replicas,
                age_seconds: age_minutes * 60.0,
            })
            .collect(),
        scale_events: vec![],
        capacity_age_seconds: None,
    }
}

#[test]
#[allow(clippy::type_complexity)]
fn stabilization_matches_upstream_normalize_with_behavior() {
    // (name, recommendations (replicas, age min), current, prenormalized, up window, down window, expected)
    let cases: &[(&str, &[(i32, f64)], i32, i32, i32, i32, i32)] = &[
        ("empty, scaling down", &[], 100, 5, 0, 0, 5),
        ("simple down", &[(4, 2.0), (5, 1.0)], 100, 3, 0, 180, 5),
        ("simple up", &[(4, 2.0), (5, 1.0)], 1, 7, 300, 0, 4),
        (
            "no down stabilization",
            &[(1, 2.0), (2, 1.0)],
            100,
            3,
            300,
            0,
            3,
        ),
        (
            "no up stabilization",
            &[(4, 2.0), (5, 1.0)],
            1,
            3,
            0,
            300,
            3,
        ),
        (
            "old recs ignored down",
            &[(10, 10.0), (9, 9.0)],
            100,
            3,
            0,
            0,
            3,
        ),
        (
            "old recs ignored up",
            &[(10, 10.0), (9, 9.0)],
            1,
            100,
            0,
            0,
            100,
        ),
        (
            "down among obsolete",
            &[(10, 10.0), (4, 1.0), (5, 2.0), (9, 9.0)],
            100,
            3,
            0,
            180,
            5,
        ),
        (
            "up among obsolete",
            &[(10, 100.0), (6, 1.0), (5, 2.0), (9, 3.0)],
            1,
            100,
            300,
            0,
            5,
        ),
        (
            "no up when rec goes down",
            &[(2, 100.0), (3, 3.0)],
            2,
            1,
            300,
            300,
            2,
        ),
        (
            "no down when rec goes up",
            &[(2, 100.0), (1, 3.0)],
            2,
            3,
            300,
            300,
            2,
        ),
    ];
    for &(name, r, current, pre, up_w, down_w, expected) in cases {
        let b = Behavior {
            scale_up: Some(ScalingRules {
                stabilization_window_seconds: Some(up_w),
                policies: Some(vec![RatePolicy {
                    kind: RatePolicyKind::Pods,
                    value: 1000,
                    period_seconds: 15,
                }]),
                ..Default::default()
            }),
            scale_down: Some(ScalingRules {
                stabilization_window_seconds: Some(down_w),
                ..Default::default()
            }),
        };
        let n = with_behavior(
            &resolve(&b, Tolerance::default(), 300),
            &recs(r),
            current,
            pre,
            0,
            1000,
        );
        assert_eq!(n.stabilized, expected, "{name}");
    }
}

#[test]
#[allow(clippy::type_complexity)]
fn legacy_path_matches_upstream_normalize_desired_replicas() {
    let cases: &[(&str, &[(i32, f64)], i32, i32)] = &[
        ("empty log", &[], 5, 5),
        ("stabilize", &[(4, 2.0), (5, 1.0)], 3, 5),
        ("no stabilize", &[(1, 2.0), (2, 1.0)], 3, 3),
        ("old recommendations", &[(10, 10.0), (9, 9.0)], 3, 3),
        (
            "stabilize among old",
            &[(10, 10.0), (4, 1.0), (5, 2.0), (9, 9.0)],
            3,
            5,
        ),
    ];
    for &(name, r, pre, expected) in cases {
        let n = legacy(&recs(r), 300, 10, pre, 1, 100);
        assert_eq!(n.stabilized, expected, "{name}");
    }
    // The legacy window includes its edge (upstream keeps samples not Before(cutoff)).
    assert_eq!(legacy(&recs(&[(9, 5.0)]), 300, 10, 3, 1, 100).stabilized, 9);
}

#[test]
fn legacy_path_limits_scale_up_to_double_or_four() {
    use Limit as L;
    // (current, prenormalized, min, max, expected, limit) from upstream convertDesiredReplicasWithRules.
    let cases = [
        (1, 10, 1, 100, 4, L::ScaleUpPolicy),
        (3, 10, 1, 100, 6, L::ScaleUpPolicy),
        (10, 15, 1, 100, 15, L::None),
        (10, 50, 1, 15, 15, L::MaxReplicas),
        (10, 1, 2, 100, 2, L::MinReplicas),
        (10, 3, 1, 100, 3, L::None),
    ];
    for (current, pre, min, max, expected, limit) in cases {
        let n = legacy(&History::default(), 300, current, pre, min, max);
        assert_eq!((n.desired, n.limit), (expected, limit), "{current}->{pre}");
    }
}

fn input(current: i32, signals: Vec<SignalValue>) -> Input {
    Input {
        min_replicas: 1,
        max_replicas: 10,
        behavior: None,
        tolerance: Tolerance::default(),
        current_replicas: current,
        ready_replicas: current,
        signals,
        history: History::default(),
        downscale_stabilization_seconds: DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    }
}

fn avg(name: &str, target: f64, value: Option<f64>) -> SignalValue {
    SignalValue {
        name: name.into(),
        target_type: TargetType::AverageValue,
        target,
        value,
        up_only: false,
        lookback_seconds: None,
    }
}

#[test]
fn decide_takes_the_largest_signal_and_says_which() {
    let d = decide(&input(
        3,
        vec![avg("a", 100.0, Some(250.0)), avg("q", 100.0, Some(450.0))],
    ));
    assert_eq!(d.desired_replicas, 5);
    assert_eq!(d.limited_by, Limit::None);
    assert_eq!(d.recommendation, Some(5));
    assert!(d.reason.contains("signal q proposes 5"), "{}", d.reason);
    assert_eq!(
        d.proposals.iter().map(|p| p.replicas).collect::<Vec<_>>(),
        vec![Some(3), Some(5)]
    );
}

#[test]
fn decide_holds_when_all_signals_are_missing() {
    let d = decide(&input(3, vec![avg("q", 100.0, None)]));
    assert_eq!(
        (d.desired_replicas, d.limited_by, d.recommendation),
        (3, Limit::MetricsUnavailable, None)
    );
}

#[test]
fn decide_never_scales_down_on_partial_data() {
    // upstream TestNoScaleDownOneMetricInvalid: the readable signal says 2, one is missing.
    let d = decide(&input(
        5,
        vec![avg("q", 100.0, Some(150.0)), avg("x", 1.0, None)],
    ));
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (5, Limit::MetricsUnavailable)
    );
    assert!(d.reason.contains("x could not be read"), "{}", d.reason);
    // upstream TestScaleUpOneMetricEmpty: scaling up on the readable signal is fine.
    let d = decide(&input(
        3,
        vec![avg("q", 100.0, Some(400.0)), avg("x", 1.0, None)],
    ));
    assert_eq!(d.desired_replicas, 4);
}

#[test]
fn decide_handles_out_of_range_and_disabled_targets() {
    let mut i = input(12, vec![avg("q", 100.0, Some(100.0))]);
    assert_eq!(
        (decide(&i).desired_replicas, decide(&i).limited_by),
        (10, Limit::MaxReplicas)
    );
    i.current_replicas = 0;
    i.ready_replicas = 0;
    assert_eq!(
        (decide(&i).desired_replicas, decide(&i).limited_by),
        (0, Limit::ScalingDisabled)
    );
    i.min_replicas = 3;
    i.current_replicas = 2;
    assert_eq!(
        (decide(&i).desired_replicas, decide(&i).limited_by),
        (3, Limit::MinReplicas)
    );
}

#[test]
fn decide_without_behavior_keeps_the_highest_recent_recommendation() {
    let mut i = input(6, vec![avg("q", 100.0, Some(200.0))]);
    i.history = recs(&[(6, 1.0)]);
    let d = decide(&i);
    assert_eq!(
        (d.desired_replicas, d.limited_by, d.recommendation),
        (6, Limit::Stabilization, Some(2))
    );
    assert!(d.reason.contains("stabilized at 6"), "{}", d.reason);
    // Once the recommendation ages out of the 300s window the scale-down happens in one step.
    i.history = recs(&[(6, 5.1)]);
    assert_eq!(decide(&i).desired_replicas, 2);
}

#[test]
fn decide_is_deterministic() {
    let i = input(
        3,
        vec![avg("q", 100.0, Some(450.0)), avg("p", 0.3, Some(0.2))],
    );
    assert_eq!(decide(&i), decide(&i));
}

#[test]
fn scale_events_count_only_strictly_inside_their_period() {
    let b = Behavior {
        scale_up: Some(rules(2, 60, 0, 0, 0)),
        scale_down: None,
    };
    let r = resolve(&b, Tolerance::default(), 300);
    let at = |age: f64| History {
        recommendations: vec![],
        scale_events: vec![ScaleEvent {
            replica_change: 2,
            age_seconds: age,
        }],
        capacity_age_seconds: None,
    };
    // 2 pods per 60s, 2 already added 59s ago: no room yet.
    assert_eq!(with_behavior(&r, &at(59.0), 10, 20, 1, 100).desired, 10);
    // Exactly 60s ago is outside the period (upstream: After(now - period)).
    assert_eq!(with_behavior(&r, &at(60.0), 10, 20, 1, 100).desired, 12);
}

#[test]
fn decide_says_when_a_read_signal_has_no_ready_pod_to_scale_from() {
    let mut i = input(
        3,
        vec![SignalValue {
            name: "p95".into(),
            target_type: TargetType::Value,
            target: 0.3,
            value: Some(0.6),
            up_only: false,
            lookback_seconds: None,
        }],
    );
    i.ready_replicas = 0;
    let d = decide(&i);
    assert_eq!(
        (d.desired_replicas, d.limited_by),
        (3, Limit::MetricsUnavailable)
    );
    assert!(
        d.reason.starts_with("no ready replicas to scale p95 from"),
        "{}",
        d.reason
    );
}

#[test]
fn a_reading_describes_the_fleet_before_the_scale_ups_it_has_not_seen_for_its_window() {
    let up = |change, age_seconds| ScaleEvent {
        replica_change: change,
        age_seconds,
    };
    // 2 → 4 → 8, 30 s and 5 s ago; the newest pods ready 2 s ago (they took 3 s).
    let h = History {
        scale_events: vec![up(2, 30.0), up(4, 5.0)],
        capacity_age_seconds: Some(2.0),
        ..Default::default()
    };
    // A 20 s window has seen the first scale-up's pods for 27 s: it describes 4.
    assert_eq!(h.fleet_in_reading(Some(20.0), 8, 8), Some(4));
    // A 60 s window has seen neither for its whole length: it describes 2.
    assert_eq!(h.fleet_in_reading(Some(60.0), 8, 8), Some(2));
    // Pods still starting count only once ready.
    assert_eq!(h.fleet_in_reading(Some(60.0), 8, 1), Some(1));
    // Fresh once the window has passed, or with no window known.
    assert_eq!(h.fleet_in_reading(Some(1.0), 8, 8), None);
    assert_eq!(h.fleet_in_reading(None, 8, 8), None);
    // Scale-downs do not count, and no recent scale-up means fresh.
    let down = History {
        scale_events: vec![up(-2, 5.0)],
        capacity_age_seconds: None,
        ..Default::default()
    };
    assert_eq!(down.fleet_in_reading(Some(60.0), 4, 4), None);
}
