//! "How robust is my policy?": a policy run over a family of generated traces, against every
//! baseline, summarised as distributions, with the decision-quality targets judged on them.

use std::fmt::Write;

use super::bound::{Sight, UTILIZATIONS};
use super::family::{Case, case};
use super::{Kind, Outcome, Policy, run, setup};

/// One case's outcomes, one per autoscaler in `Kind::ALL` order, and the bound's: for each
/// of `Sight::ALL`, one at each of `bound::UTILIZATIONS`.
pub struct CaseResult {
    pub case: Case,
    pub outcomes: Vec<Outcome>,
    pub bounds: Vec<Vec<Outcome>>,
}

/// Runs `count` cases of `family` (or `all`) from `seed`.
pub fn run_family(
    family: &str,
    count: usize,
    seed: u64,
    web: &Policy,
    worker: &Policy,
) -> Result<Vec<CaseResult>, String> {
    (0..count)
        .map(|i| run_case(family, seed, i, web, worker))
        .collect()
}

/// One generated case through every autoscaler.
pub fn run_case(
    family: &str,
    seed: u64,
    index: usize,
    web: &Policy,
    worker: &Policy,
) -> Result<CaseResult, String> {
    let c = case(family, seed, index).ok_or_else(|| {
        format!(
            "--family: unknown family {family:?}; expected all or one of {}",
            super::family::FAMILIES.join(", ")
        )
    })?;
    let mut s = setup(&c.trace.name, web.clone(), worker.clone());
    s.params = c.params.clone();
    s.scrape_seconds = c.scrape_seconds;
    let outcomes = Kind::ALL
        .iter()
        .map(|k| run(*k, &c.trace, &s, &mut |_| {}))
        .collect();
    let frontier = |sight: Sight| {
        UTILIZATIONS
            .iter()
            .map(|u| {
                let kind = Kind::Bound {
                    utilization: *u,
                    sight,
                };
                run(kind, &c.trace, &s, &mut |_| {})
            })
            .collect()
    };
    Ok(CaseResult {
        outcomes,
        bounds: Sight::ALL.iter().map(|s| frontier(*s)).collect(),
        case: c,
    })
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

fn of(r: &CaseResult, k: Kind) -> Option<&Outcome> {
    r.outcomes.iter().find(|o| o.autoscaler == k.name())
}

/// SLO-violation minutes as a ratio, each side plus 0.1 minute, so that traces where both
/// are at zero count as 1 (no worse) rather than dividing by zero.
fn slo_ratio(h: &Outcome, b: &Outcome) -> f64 {
    (h.slo_violation_minutes + 0.1) / (b.slo_violation_minutes + 0.1)
}

/// Headroom against one baseline, over every case.
pub struct Versus {
    pub slo_ratio_median: f64,
    pub slo_ratio_p90: f64,
    pub cost_ratio_median: f64,
    pub cost_ratio_p90: f64,
    pub no_worse_slo: f64,
    pub no_more_reversals: f64,
}

pub fn versus(results: &[CaseResult], baseline: Kind) -> Versus {
    compare(results, |r| of(r, Kind::Headroom), baseline)
}

/// `one` (picked from each case) against `baseline`, over every case.
fn compare<'a>(
    results: &'a [CaseResult],
    one: impl Fn(&'a CaseResult) -> Option<&'a Outcome>,
    baseline: Kind,
) -> Versus {
    let pairs: Vec<(&Outcome, &Outcome)> = results
        .iter()
        .filter_map(|r| Some((one(r)?, of(r, baseline)?)))
        .collect();
    let n = pairs.len().max(1) as f64;
    let slo: Vec<f64> = pairs.iter().map(|(h, b)| slo_ratio(h, b)).collect();
    let cost: Vec<f64> = pairs
        .iter()
        .map(|(h, b)| h.replica_minutes / b.replica_minutes.max(1e-9))
        .collect();
    Versus {
        slo_ratio_median: quantile(slo.clone(), 0.5),
        slo_ratio_p90: quantile(slo, 0.9),
        cost_ratio_median: quantile(cost.clone(), 0.5),
        cost_ratio_p90: quantile(cost, 0.9),
        no_worse_slo: pairs
            .iter()
            .filter(|(h, b)| h.slo_violation_minutes <= b.slo_violation_minutes + 1e-9)
            .count() as f64
            / n,
        no_more_reversals: pairs
            .iter()
            .filter(|(h, b)| h.reversals <= b.reversals)
            .count() as f64
            / n,
    }
}

/// The distribution table: per autoscaler, median and 90th percentile of each figure.
pub fn table(results: &[CaseResult]) -> String {
    let mut out = format!(
        "{} traces\n{:<10} {:>16} {:>20} {:>14} {:>12}\n",
        results.len(),
        "autoscaler",
        "SLO-viol min p50/p90",
        "replica-min p50/p90",
        "reversals p50/p90",
        "error min p50"
    );
    for k in Kind::ALL {
        let pick = |f: fn(&Outcome) -> f64| -> Vec<f64> {
            results.iter().filter_map(|r| of(r, k)).map(f).collect()
        };
        let slo = pick(|o| o.slo_violation_minutes);
        let cost = pick(|o| o.replica_minutes);
        let rev = pick(|o| f64::from(o.reversals));
        let err = pick(|o| o.error_minutes);
        let _ = writeln!(
            out,
            "{:<10} {:>8.1} / {:<7.1} {:>9.0} / {:<10.0} {:>5.0} / {:<6.0} {:>12.1}",
            k.name(),
            quantile(slo.clone(), 0.5),
            quantile(slo, 0.9),
            quantile(cost.clone(), 0.5),
            quantile(cost, 0.9),
            quantile(rev.clone(), 0.5),
            quantile(rev, 0.9),
            quantile(err, 0.5),
        );
    }
    out.push_str("\nheadroom against each baseline (SLO ratio: each side + 0.1 min):\n");
    for b in [Kind::Hpa, Kind::Keda, Kind::Kpa] {
        let v = versus(results, b);
        let _ = writeln!(
            out,
            "  vs {:<5} SLO ratio p50 {:.2} p90 {:.2}; replica-min ratio p50 {:.2} p90 {:.2}; no worse on SLO {:.0}%, reversals no more {:.0}%",
            b.name(),
            v.slo_ratio_median,
            v.slo_ratio_p90,
            v.cost_ratio_median,
            v.cost_ratio_p90,
            v.no_worse_slo * 100.0,
            v.no_more_reversals * 100.0
        );
    }
    for (k, sight) in Sight::ALL.iter().enumerate() {
        let title = match sight {
            Sight::Now => {
                "the causal bound against the hpa (true load, no delay, pods still start; not an autoscaler)"
            }
            Sight::Forecast => {
                "and with a perfect forecast (also the trend one pod start-up ahead)"
            }
            Sight::Foresight => "and with foresight (the true load one pod start-up ahead)",
        };
        frontier(&mut out, results, title, k);
    }
    out
}

/// One sight's bound at each utilization, against the HPA.
fn frontier(out: &mut String, results: &[CaseResult], title: &str, sight: usize) {
    let _ = writeln!(out, "\n{title}:");
    for (i, u) in UTILIZATIONS.iter().enumerate() {
        let v = compare(results, |r| r.bounds.get(sight)?.get(i), Kind::Hpa);
        let _ = writeln!(
            out,
            "  at {u}%    SLO ratio p50 {:.2} p90 {:.2}; replica-min ratio p50 {:.2} p90 {:.2}; no worse on SLO {:.0}%",
            v.slo_ratio_median,
            v.slo_ratio_p90,
            v.cost_ratio_median,
            v.cost_ratio_p90,
            v.no_worse_slo * 100.0,
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Why the bounds are in the report: they tell a target reaction can reach from one only a
/// forecast, or only foresight, can.
const BOUND_NOTE: &str = "- the causal bound (above, `at N%`) knows every second's true load and the time a request takes, with no scrape, window or sync delay, scales at once and keeps the HPA's 5-minute scale-down window; only pod start-up is left. Where its SLO ratio at the HPA's replica-minutes is above a target, no reactive autoscaler on these traces can meet that target without spending more replica-minutes or knowing the future. The perfect forecast also knows each trace's trend (its load without the noise) one pod start-up ahead, so it sees a surge, launch or spike coming; foresight knows the noise too. A target only they reach needs the onset of traffic to be known before it starts (a `schedule` window does that for known events).\n";

/// The Markdown report with the targets of the generalization benchmark.
pub fn report(results: &[CaseResult], family: &str, seed: u64, cpu_seconds: f64) -> String {
    let mut md = format!(
        "# Generalization\n\n{} generated traces (family `{family}`, seed {seed}): shapes, noise, pod start-up (20-120 s), service time, database capacity and scrape interval (15 or 30 s) drawn at random per trace. Policies: deploy/examples (or `--policy`).\n\n```\n{}```\n\n## Targets\n\n",
        results.len(),
        table(results)
    );
    let hpa = versus(results, Kind::Hpa);
    let _ = writeln!(
        md,
        "- vs hpa: median SLO-violation ratio {:.2} (target <= 0.5: {}); no worse on SLO on {:.0}% of traces (target >= 90%: {}); median replica-minutes ratio {:.3} (target <= 1.0: {}); reversals no more than the HPA's on {:.0}% (target >= 90%: {})",
        hpa.slo_ratio_median,
        verdict(hpa.slo_ratio_median <= 0.5),
        hpa.no_worse_slo * 100.0,
        verdict(hpa.no_worse_slo >= 0.9),
        hpa.cost_ratio_median,
        verdict(hpa.cost_ratio_median <= 1.0),
        hpa.no_more_reversals * 100.0,
        verdict(hpa.no_more_reversals >= 0.9)
    );
    for b in [Kind::Kpa, Kind::Keda] {
        let v = versus(results, b);
        let _ = writeln!(
            md,
            "- vs {}: no worse on SLO on {:.0}% of traces (target >= 80%: {}) at median replica-minutes ratio {:.3} (target <= 1.0: {})",
            b.name(),
            v.no_worse_slo * 100.0,
            verdict(v.no_worse_slo >= 0.8),
            v.cost_ratio_median,
            verdict(v.cost_ratio_median <= 1.0)
        );
    }
    md.push_str(BOUND_NOTE);
    let autoscalers: f64 = results
        .iter()
        .flat_map(|r| &r.outcomes)
        .map(|o| o.cpu_seconds)
        .sum();
    let _ = writeln!(
        md,
        "- speed: {} traces x {} autoscalers took {autoscalers:.1} s of CPU (target < 60 s: {}); with the bounds ({} sights at {} utilizations) the run took {cpu_seconds:.1} s",
        results.len(),
        Kind::ALL.len(),
        verdict(autoscalers < 60.0),
        Sight::ALL.len(),
        UTILIZATIONS.len(),
    );
    md.push_str("\n## Traces\n\n| trace | drawn | headroom SLO min | hpa | keda | kpa | headroom replica-min | hpa | headroom reversals | hpa |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let f = |k: Kind, g: fn(&Outcome) -> f64| of(r, k).map_or(f64::NAN, g);
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.case.trace.name,
            r.case.about,
            f(Kind::Headroom, |o| o.slo_violation_minutes),
            f(Kind::Hpa, |o| o.slo_violation_minutes),
            f(Kind::Keda, |o| o.slo_violation_minutes),
            f(Kind::Kpa, |o| o.slo_violation_minutes),
            f(Kind::Headroom, |o| o.replica_minutes),
            f(Kind::Hpa, |o| o.replica_minutes),
            f(Kind::Headroom, |o| f64::from(o.reversals)),
            f(Kind::Hpa, |o| f64::from(o.reversals)),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More spare capacity buys no more violation and costs no fewer replica-minutes: the
    /// bound draws a frontier, and the table shows it.
    #[test]
    fn the_bound_draws_a_frontier_beside_the_autoscalers() {
        let (web, worker) = crate::simulate::examples();
        let results = match run_family("flash", 2, 5, &web, &worker) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        for r in &results {
            let [now, forecast, foresight] = &r.bounds[..] else {
                panic!("one frontier per sight");
            };
            let names: Vec<&str> = now.iter().map(|o| o.autoscaler.as_str()).collect();
            assert_eq!(names, ["bound 70%", "bound 60%", "bound 50%"]);
            assert_eq!(foresight[1].autoscaler, "foresight 60%");
            for pair in now.windows(2) {
                let (tight, spare) = (&pair[0], &pair[1]);
                assert!(spare.replica_minutes >= tight.replica_minutes, "{names:?}");
                assert!(
                    spare.slo_violation_minutes <= tight.slo_violation_minutes,
                    "{}: {} then {}",
                    r.case.trace.name,
                    tight.slo_violation_minutes,
                    spare.slo_violation_minutes
                );
            }
            assert!(now[2].slo_violation_minutes < now[0].slo_violation_minutes);
            // Seeing ahead never costs SLO at the same utilization.
            for i in 0..UTILIZATIONS.len() {
                let slo = |b: &[Outcome]| b[i].slo_violation_minutes;
                assert!(
                    slo(forecast) <= slo(now) && slo(foresight) <= slo(now),
                    "{i}"
                );
            }
        }
        let t = table(&results);
        assert!(
            t.contains("the causal bound") && t.contains("at 50%") && t.contains("foresight"),
            "{t}"
        );
    }
}
