//! Behavior with the autoscaling/v2 API defaults filled in, as the API server and the HPA
//! controller do before the controller reads it.

use crate::api::{Behavior, RatePolicy, RatePolicyKind, ScalingRules, SelectPolicy};

use super::Tolerance;

/// One direction's rules with nothing left unset.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub stabilization_window_seconds: i32,
    pub select_policy: SelectPolicy,
    pub policies: Vec<RatePolicy>,
    pub tolerance: f64,
}

/// Both directions, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedBehavior {
    pub scale_up: Rules,
    pub scale_down: Rules,
}

fn policy(kind: RatePolicyKind, value: i32, period_seconds: i32) -> RatePolicy {
    RatePolicy {
        kind,
        value,
        period_seconds,
    }
}

/// `GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules` plus the controller's
/// `maybeInitScaleDownStabilizationWindow`: fields the user set win, the rest take defaults.
pub fn resolve(
    behavior: &Behavior,
    tolerance: Tolerance,
    downscale_stabilization_seconds: i32,
) -> ResolvedBehavior {
    let up_defaults = Rules {
        stabilization_window_seconds: 0,
        select_policy: SelectPolicy::Max,
        policies: vec![
            policy(RatePolicyKind::Pods, 4, 15),
            policy(RatePolicyKind::Percent, 100, 15),
        ],
        tolerance: tolerance.scale_up,
    };
    let down_defaults = Rules {
        stabilization_window_seconds: downscale_stabilization_seconds,
        select_policy: SelectPolicy::Max,
        policies: vec![policy(RatePolicyKind::Percent, 100, 15)],
        tolerance: tolerance.scale_down,
    };
    ResolvedBehavior {
        scale_up: merge(behavior.scale_up.as_ref(), up_defaults),
        scale_down: merge(behavior.scale_down.as_ref(), down_defaults),
    }
}

/// The longest stabilization window a decision reads recommendations over: older ones
/// can change no decision, so they need not be kept.
pub fn longest_window_seconds(
    behavior: Option<&Behavior>,
    downscale_stabilization_seconds: i32,
) -> i32 {
    match behavior {
        None => downscale_stabilization_seconds,
        Some(b) => {
            let r = resolve(b, Tolerance::default(), downscale_stabilization_seconds);
            r.scale_up
                .stabilization_window_seconds
                .max(r.scale_down.stabilization_window_seconds)
        }
    }
    .max(0)
}

fn merge(from: Option<&ScalingRules>, mut to: Rules) -> Rules {
    let Some(from) = from else { return to };
    if let Some(s) = from.select_policy {
        to.select_policy = s;
    }
    if let Some(w) = from.stabilization_window_seconds {
        to.stabilization_window_seconds = w;
    }
    if let Some(p) = &from.policies {
        to.policies = p.clone();
    }
    if let Some(t) = from.tolerance {
        to.tolerance = t;
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_behavior_gets_api_defaults() {
        let r = resolve(&Behavior::default(), Tolerance::default(), 300);
        assert_eq!(r.scale_up.stabilization_window_seconds, 0);
        assert_eq!(r.scale_up.policies.len(), 2);
        assert_eq!(r.scale_down.stabilization_window_seconds, 300);
        assert_eq!(
            r.scale_down.policies,
            vec![policy(RatePolicyKind::Percent, 100, 15)]
        );
        assert_eq!(r.scale_down.select_policy, SelectPolicy::Max);
    }

    #[test]
    fn set_fields_win_and_unset_ones_default() {
        let b = Behavior {
            scale_up: Some(ScalingRules {
                select_policy: Some(SelectPolicy::Disabled),
                ..Default::default()
            }),
            scale_down: Some(ScalingRules {
                stabilization_window_seconds: Some(60),
                tolerance: Some(0.05),
                ..Default::default()
            }),
        };
        let r = resolve(&b, Tolerance::uniform(0.2), 300);
        assert_eq!(r.scale_up.select_policy, SelectPolicy::Disabled);
        assert_eq!(r.scale_up.policies.len(), 2);
        assert_eq!(r.scale_up.tolerance, 0.2);
        assert_eq!(r.scale_down.stabilization_window_seconds, 60);
        assert_eq!(r.scale_down.tolerance, 0.05);
    }

    #[test]
    fn the_longest_window_is_either_direction_s_or_the_operator_s() {
        assert_eq!(longest_window_seconds(None, 300), 300);
        assert_eq!(longest_window_seconds(Some(&Behavior::default()), 120), 120);
        let up_longer = Behavior {
            scale_up: Some(ScalingRules {
                stabilization_window_seconds: Some(900),
                ..Default::default()
            }),
            scale_down: Some(ScalingRules {
                stabilization_window_seconds: Some(60),
                ..Default::default()
            }),
        };
        assert_eq!(longest_window_seconds(Some(&up_longer), 300), 900);
    }
}
