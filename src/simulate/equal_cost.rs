//! Headroom against the HPA at the same replica-minutes: the HPA is run again with its
//! targets tighter and looser, and its SLO at Headroom's cost is read off that ladder. A gain
//! bought with replicas shows here as no gain.

use super::{Kind, Outcome, Setup, Trace, run};

/// The HPA's targets, in percent of the policy's, beside the HPA at 100 %.
pub const HPA_TARGETS: [u8; 7] = [110, 90, 80, 70, 60, 50, 40];

/// The HPA at each of `HPA_TARGETS` on this trace.
pub fn ladder(trace: &Trace, setup: &Setup) -> Vec<Outcome> {
    HPA_TARGETS
        .iter()
        .map(|p| run(Kind::HpaAt { percent: *p }, trace, setup, &mut |_| {}))
        .collect()
}

/// The HPA's SLO-violation minutes at a given replica-minutes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AtCost {
    pub slo_violation_minutes: f64,
    /// Where the cost lies outside the ladder and its nearest end was taken.
    pub outside: Option<Outside>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outside {
    /// Cheaper than the cheapest HPA: compared with a dearer HPA, which flatters the HPA.
    Cheaper,
    /// Dearer than the dearest HPA: compared with a cheaper HPA, which flatters Headroom.
    Dearer,
}

/// The HPA's SLO at `cost` replica-minutes: the best an HPA of the ladder does for no more
/// cost, linear between the rungs of its frontier (a tighter target is not always dearer: an
/// HPA that falls behind queues work, and a queue holds replicas for longer).
pub fn at_cost(rungs: &[&Outcome], cost: f64) -> Option<AtCost> {
    let mut points: Vec<(f64, f64)> = rungs
        .iter()
        .map(|o| (o.replica_minutes, o.slo_violation_minutes))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let dearest = points.last()?.0;
    // The frontier: each rung that violates less than every cheaper one.
    let mut frontier: Vec<(f64, f64)> = vec![];
    for p in points {
        if frontier.last().is_none_or(|l| p.1 < l.1) {
            frontier.push(p);
        }
    }
    let first = *frontier.first()?;
    if cost < first.0 - 1e-9 {
        return Some(AtCost {
            slo_violation_minutes: first.1,
            outside: Some(Outside::Cheaper),
        });
    }
    let slo = frontier
        .windows(2)
        .find(|w| (w[0].0..w[1].0).contains(&cost))
        .map_or(frontier.last().map_or(first.1, |l| l.1), |w| {
            let ((c0, s0), (c1, s1)) = (w[0], w[1]);
            s0 + (s1 - s0) * (cost - c0) / (c1 - c0)
        });
    Some(AtCost {
        slo_violation_minutes: slo.max(0.0),
        outside: (cost > dearest + 1e-9).then_some(Outside::Dearer),
    })
}

/// The HPA at `headroom`'s cost among `outcomes` (with the HPA at 100 %) and `ladder`.
pub fn hpa_at(headroom: &Outcome, outcomes: &[Outcome], ladder: &[Outcome]) -> Option<AtCost> {
    let rungs: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.autoscaler == Kind::Hpa.name())
        .chain(ladder)
        .collect();
    at_cost(&rungs, headroom.replica_minutes)
}

/// One line for a scenario's table: Headroom against the HPA at its replica-minutes.
pub fn line(outcomes: &[Outcome], ladder: &[Outcome]) -> Option<String> {
    let h = outcomes
        .iter()
        .find(|o| o.autoscaler == Kind::Headroom.name())?;
    let at = hpa_at(h, outcomes, ladder)?;
    let outside = match at.outside {
        None => "",
        Some(Outside::Cheaper) => " (headroom cheaper than every HPA tried: the cheapest taken)",
        Some(Outside::Dearer) => " (headroom dearer than every HPA tried: the best taken)",
    };
    Some(format!(
        "at equal cost: headroom {:.1} SLO-violation minutes at {:.0} replica-minutes; the hpa at the same replica-minutes {:.1}{outside} (its targets at {}% and 100% of the policy's)\n",
        h.slo_violation_minutes,
        h.replica_minutes,
        at.slo_violation_minutes,
        HPA_TARGETS.map(|p| p.to_string()).join("/"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(cost: f64, slo: f64) -> Outcome {
        Outcome {
            replica_minutes: cost,
            slo_violation_minutes: slo,
            ..Outcome::empty("hpa")
        }
    }

    #[test]
    fn the_hpa_is_read_between_its_rungs_and_says_when_outside() {
        // The rung at 105 costs more than the one at 100 and violates more: off the frontier.
        let rungs = [o(100.0, 10.0), o(120.0, 4.0), o(90.0, 14.0), o(105.0, 12.0)];
        let r: Vec<&Outcome> = rungs.iter().collect();
        let at = |c| at_cost(&r, c).map(|a| (a.slo_violation_minutes, a.outside));
        assert_eq!(at(110.0), Some((7.0, None)));
        assert_eq!(at(95.0), Some((12.0, None)));
        assert_eq!(at(120.0), Some((4.0, None)));
        // Dearer than the dearest rung: the dearest, flagged.
        assert_eq!(at(150.0), Some((4.0, Some(Outside::Dearer))));
        assert_eq!(at(80.0), Some((14.0, Some(Outside::Cheaper))));
        assert_eq!(at_cost(&[], 1.0), None);
    }

    /// On steady traffic a tighter HPA costs no less, and the tightest more.
    #[test]
    fn a_tighter_hpa_runs_more_replicas() {
        let (web, worker) = crate::simulate::examples();
        let trace = crate::simulate::scenario("steady", 1).expect("steady");
        let s = crate::simulate::setup("steady", web, worker);
        let rungs = ladder(&trace, &s);
        let names: Vec<&str> = rungs.iter().map(|o| o.autoscaler.as_str()).collect();
        assert_eq!(
            names,
            [
                "hpa 110%", "hpa 90%", "hpa 80%", "hpa 70%", "hpa 60%", "hpa 50%", "hpa 40%"
            ]
        );
        let cost: Vec<f64> = rungs.iter().map(|o| o.replica_minutes).collect();
        assert!(cost.windows(2).all(|w| w[1] >= w[0]), "{cost:?}");
        assert!(cost[6] > cost[0], "{cost:?}");
    }
}
