//! CPU saturation under a limit. Utilization reads usage over the request, and a pod that the
//! CFS quota throttles can wait seconds while it reads well under its target (found on the
//! real node: 50-80 % of the request at a p95 of 3-8 s). The share of throttled periods, and
//! PSI's share of time some task waits for CPU, measure the wait itself. Pure.

use crate::api::IndicatorStatus;
use crate::plan::{QueryError, SaturationPlan};

use super::guardrails::Band;

/// What was read of one CPU signal's pods (None: not read, e.g. no limit, no PSI).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stall {
    /// Throttled CFS periods over all periods, 0-1.
    pub throttled: Option<f64>,
    /// Share of time some task waited for CPU, 0-1.
    pub pressure: Option<f64>,
}

/// How stalled the pods are, by the measure furthest toward its threshold, once one is at
/// least half way there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stalled {
    pub by: By,
    pub share: f64,
    pub threshold: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Throttling,
    Pressure,
}

impl Stall {
    /// The measure furthest toward its threshold, when one is at least half way.
    pub fn stalled(&self, plan: &SaturationPlan) -> Option<Stalled> {
        let candidates = [
            (By::Throttling, self.throttled, plan.throttled),
            (By::Pressure, self.pressure, plan.pressure),
        ];
        candidates
            .into_iter()
            .filter_map(|(by, share, threshold)| {
                let share = share.filter(|s| s.is_finite() && *s >= 0.0)?.min(1.0);
                (threshold > 0.0 && share >= threshold / 2.0).then_some(Stalled {
                    by,
                    share,
                    threshold,
                })
            })
            .max_by(|a, b| (a.share / a.threshold).total_cmp(&(b.share / b.threshold)))
    }

    /// The stall at or past its threshold, if any.
    pub fn saturated(&self, plan: &SaturationPlan) -> Option<Stalled> {
        self.stalled(plan).filter(Stalled::is_saturated)
    }
}

impl Stalled {
    pub fn is_saturated(&self) -> bool {
        self.share >= self.threshold
    }

    /// What the CPU signal reads at least. At or past the threshold: the target times how
    /// far past it the pods are, at most twice (a saturated pod hides how far over it is in
    /// its queue, so one reading at most doubles the fleet, as latency beside a sizing signal
    /// does). Half way to it: the target, so the fleet holds: throttling falls steeply as
    /// replicas are added, and utilization alone would take back what it added.
    pub fn reading(&self, target: f64) -> f64 {
        if self.is_saturated() {
            target * (self.share / self.threshold).min(2.0)
        } else {
            target
        }
    }
}

/// The CPU reading the engine sizes on: utilization, or the stalled reading when that is
/// higher and the pods are busy (at least half their target). Idle pods throttled by bursts
/// of their own (a collector, a timer) are not short of replicas: more would stall alike.
/// A stall only ever raises a valid reading: an unreadable utilization stays unreadable, so
/// the hold on missing data (no scale-down on the other signals) stands.
pub fn cpu_reading(
    utilization: Result<f64, QueryError>,
    target: f64,
    stalled: Option<Stalled>,
) -> Result<f64, QueryError> {
    utilization.map(|u| match stalled {
        Some(s) if u >= target / 2.0 => u.max(s.reading(target)),
        _ => u,
    })
}

/// The audit's row for one CPU signal's pods, when a stall measure was read.
pub fn row(
    signal: &str,
    stall: &Stall,
    plan: &SaturationPlan,
    utilization: Option<f64>,
) -> Option<IndicatorStatus> {
    let stalled = stall.stalled(plan);
    let (share, threshold) = match stalled {
        Some(s) => (s.share, s.threshold),
        None => match (stall.throttled, stall.pressure) {
            (Some(t), _) => (t, plan.throttled),
            (None, Some(p)) => (p, plan.pressure),
            (None, None) => return None,
        },
    };
    let band = Band::classify(Some(share), threshold / 2.0, threshold - f64::EPSILON);
    let hint = match stalled {
        Some(s) if s.is_saturated() => message(&s, utilization),
        Some(_) => format!(
            "{signal}: {:.0} % stalled, saturated from {:.0} %: holding replicas",
            share * 100.0,
            threshold * 100.0
        ),
        None => format!("{signal}: not saturated"),
    };
    Some(IndicatorStatus {
        name: format!("{signal}/saturation"),
        value: Some(share),
        band: band.as_str().into(),
        hint,
    })
}

/// e.g. `throttled 40 % of periods at 55 % of its request: raise the CPU limit or the request`.
pub fn message(s: &Stalled, utilization: Option<f64>) -> String {
    let what = match s.by {
        By::Throttling => format!("throttled {:.0} % of periods", s.share * 100.0),
        By::Pressure => format!("waiting for CPU {:.0} % of the time", s.share * 100.0),
    };
    let at = utilization.map_or(String::new(), |u| format!(" at {u:.0} % of its request"));
    let fix = match s.by {
        By::Throttling => "raise the CPU limit or the request",
        By::Pressure => "give it more CPU (a higher request, or a less crowded node)",
    };
    format!("{what}{at}: {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SaturationPlan {
        SaturationPlan {
            throttled_key: "cpu/throttled".into(),
            pressure_key: "cpu/pressure".into(),
            throttled: 0.1,
            pressure: 0.2,
        }
    }

    fn stall(throttled: Option<f64>, pressure: Option<f64>) -> Option<Stalled> {
        Stall {
            throttled,
            pressure,
        }
        .stalled(&plan())
    }

    #[test]
    fn a_throttled_pod_reads_its_target_times_how_far_past_the_threshold_it_is() {
        // The real app at a p95 of 0.9 s: 51 % of its request, throttled in 19 % of periods.
        let s = stall(Some(0.19), None);
        assert_eq!(cpu_reading(Ok(51.0), 60.0, s).map(|v| v.round()), Ok(114.0));
        // Throttled in every period: at most twice the target, one doubling a reading.
        assert_eq!(
            cpu_reading(Ok(55.0), 60.0, stall(Some(1.0), None)),
            Ok(120.0)
        );
        // Busier than it is throttled: utilization stands.
        assert_eq!(cpu_reading(Ok(300.0), 60.0, s), Ok(300.0));
    }

    #[test]
    fn half_way_to_the_threshold_holds_the_fleet_and_under_it_utilization_speaks() {
        // Throttling falls steeply with more replicas: past half the threshold it holds.
        assert_eq!(
            cpu_reading(Ok(40.0), 60.0, stall(Some(0.06), None)),
            Ok(60.0)
        );
        assert_eq!(
            cpu_reading(Ok(40.0), 60.0, stall(Some(0.04), None)),
            Ok(40.0)
        );
    }

    #[test]
    fn idle_pods_throttled_by_their_own_bursts_read_as_utilization() {
        // A collector's bursts: throttled, but at a tenth of the request more pods stall alike.
        assert_eq!(cpu_reading(Ok(6.0), 60.0, stall(Some(0.5), None)), Ok(6.0));
        assert_eq!(
            cpu_reading(Ok(29.0), 60.0, stall(Some(0.5), None)),
            Ok(29.0)
        );
        assert_eq!(
            cpu_reading(Ok(30.0), 60.0, stall(Some(0.5), None)),
            Ok(120.0)
        );
    }

    #[test]
    fn missing_or_low_stall_readings_leave_utilization_as_it_is() {
        for s in [
            stall(None, None),
            stall(Some(0.02), Some(0.05)),
            stall(Some(f64::NAN), None),
            stall(Some(-1.0), None),
        ] {
            assert_eq!(s, None);
            assert_eq!(cpu_reading(Ok(30.0), 60.0, s), Ok(30.0));
        }
        // Saturated but utilization unreadable: still unreadable, so nothing scales down.
        let v = cpu_reading(Err(QueryError::Empty), 60.0, stall(Some(0.5), None));
        assert_eq!(v, Err(QueryError::Empty));
    }

    #[test]
    fn the_measure_furthest_toward_its_threshold_speaks() {
        let s = stall(Some(0.12), Some(0.35));
        assert_eq!(s.map(|s| s.by), Some(By::Pressure));
        assert_eq!(s.map(|s| s.reading(60.0).round()), Some(105.0));
        // A share over 1 (rounding in rates) is read as 1.
        assert_eq!(stall(Some(1.3), None).map(|s| s.share), Some(1.0));
    }

    #[test]
    fn the_audit_names_a_limit_bound_app_and_what_to_do() {
        let stall = |t| Stall {
            throttled: Some(t),
            pressure: None,
        };
        let Some(r) = row("cpu", &stall(0.4), &plan(), Some(55.0)) else {
            panic!("a row")
        };
        assert_eq!(r.name, "cpu/saturation");
        assert_eq!(r.band, "Act");
        assert_eq!(
            r.hint,
            "throttled 40 % of periods at 55 % of its request: raise the CPU limit or the request"
        );
        assert!(row("cpu", &stall(0.07), &plan(), Some(20.0)).is_some_and(|r| r.band == "Watch"));
        assert!(row("cpu", &stall(0.01), &plan(), Some(20.0)).is_some_and(|r| r.band == "Healthy"));
        assert_eq!(row("cpu", &Stall::default(), &plan(), Some(20.0)), None);
    }
}
