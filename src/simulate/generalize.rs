//! "How robust is my policy?": a policy run over a family of generated traces, against every
//! baseline, summarised as distributions, with the decision-quality targets judged on them.

use std::fmt::Write;

use super::bound::{Sight, UTILIZATIONS};
use super::equal_cost::{self, AtCost, Outside};
use super::family::{Case, case};
use super::{Kind, Outcome, Policy, run, setup};

/// One case's outcomes, one per autoscaler in `Kind::ALL` order, and the bound's: for each
/// sight of the case, one at each of `bound::UTILIZATIONS`.
pub struct CaseResult {
    /// The case, its per-second vectors dropped once run (a seasonal trace holds 22 MB).
    pub case: Case,
    pub outcomes: Vec<Outcome>,
    /// The HPA at each of `equal_cost::HPA_TARGETS`.
    pub ladder: Vec<Outcome>,
    pub bounds: Vec<(Sight, Vec<Outcome>)>,
    /// Where the recurring pattern changed: Headroom's predicted raises more than one period
    /// after the change that the new pattern does not call for (a rise of `RISE` within the
    /// horizon).
    pub stale_raises: Option<usize>,
}

/// Predicted raises at or after `from` where `pattern` does not rise within `horizon`.
fn stale(raises: &[usize], pattern: &[f64], from: usize, horizon: usize) -> usize {
    raises
        .iter()
        .filter(|t| **t >= from)
        .filter(|t| {
            let now = pattern.get(**t).copied().unwrap_or(0.0);
            let ahead = pattern
                .get(**t..(**t + horizon).min(pattern.len()))
                .unwrap_or(&[])
                .iter()
                .copied()
                .fold(now, f64::max);
            ahead <= now * (1.0 + crate::predict::RISE)
        })
        .count()
}

/// The sights a case's frontiers are drawn with: a pattern forecast where the trace has a
/// pattern, otherwise the forecast of its trend and foresight.
fn sights(c: &Case) -> &'static [Sight] {
    if c.trace.pattern.is_empty() {
        &Sight::ALL
    } else {
        &Sight::SEASONAL
    }
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
            "--family: unknown family {family:?}; expected all, idle or one of {}",
            super::family::names()
        )
    })?;
    let mut s = setup(&c.trace.name, web.clone(), worker.clone());
    s.params = c.params.clone();
    s.scrape_seconds = c.scrape_seconds;
    let outcomes: Vec<Outcome> = Kind::ALL
        .iter()
        .map(|k| run(*k, &c.trace, &s, &mut |_| {}))
        .collect();
    let ladder = equal_cost::ladder(&c.trace, &s);
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
    let bounds = sights(&c).iter().map(|s| (*s, frontier(*s))).collect();
    let horizon = web
        .plan
        .predictive
        .as_ref()
        .map_or(300, |p| p.settings.horizon_seconds as usize);
    let stale_raises = c.change.map(|(at, period)| {
        of_kind(&outcomes, Kind::Headroom).map_or(0, |o: &Outcome| {
            stale(&o.predicted_at, &c.trace.pattern, at + period, horizon)
        })
    });
    let mut c = c;
    c.trace = super::Trace {
        name: std::mem::take(&mut c.trace.name),
        ..Default::default()
    };
    Ok(CaseResult {
        outcomes,
        ladder,
        bounds,
        stale_raises,
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

/// The bound with `sight` at the `i`th utilization.
fn bound(r: &CaseResult, sight: Sight, i: usize) -> Option<&Outcome> {
    r.bounds.iter().find(|(s, _)| *s == sight)?.1.get(i)
}

fn of(r: &CaseResult, k: Kind) -> Option<&Outcome> {
    of_kind(&r.outcomes, k)
}

fn of_kind(outcomes: &[Outcome], k: Kind) -> Option<&Outcome> {
    outcomes.iter().find(|o| o.autoscaler == k.name())
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
        no_worse_slo: count(&pairs, |(h, b)| {
            h.slo_violation_minutes <= b.slo_violation_minutes + 1e-9
        }) as f64
            / n,
        no_more_reversals: count(&pairs, |(h, b)| h.reversals <= b.reversals) as f64 / n,
    }
}

fn count<T>(items: &[T], pick: impl Fn(&T) -> bool) -> usize {
    items.iter().filter(|x| pick(x)).count()
}

/// The HPA at Headroom's replica-minutes on one case.
fn hpa_at_cost(r: &CaseResult) -> Option<(&Outcome, AtCost)> {
    let h = of(r, Kind::Headroom)?;
    Some((h, equal_cost::hpa_at(h, &r.outcomes, &r.ladder)?))
}

/// Headroom against the HPA at its own replica-minutes, over every case.
pub struct EqualCost {
    pub slo_ratio_median: f64,
    pub slo_ratio_p90: f64,
    pub no_worse_slo: f64,
    /// Cases cheaper than the cheapest HPA, and dearer than the dearest (its nearest end
    /// taken).
    pub cheaper: usize,
    pub dearer: usize,
}

pub fn at_equal_cost(results: &[CaseResult]) -> EqualCost {
    let pairs: Vec<(&Outcome, AtCost)> = results.iter().filter_map(hpa_at_cost).collect();
    let slo: Vec<f64> = pairs
        .iter()
        .map(|(h, a)| (h.slo_violation_minutes + 0.1) / (a.slo_violation_minutes + 0.1))
        .collect();
    EqualCost {
        slo_ratio_median: quantile(slo.clone(), 0.5),
        slo_ratio_p90: quantile(slo, 0.9),
        no_worse_slo: count(&pairs, |(h, a)| {
            h.slo_violation_minutes <= a.slo_violation_minutes + 1e-9
        }) as f64
            / pairs.len().max(1) as f64,
        cheaper: count(&pairs, |(_, a)| a.outside == Some(Outside::Cheaper)),
        dearer: count(&pairs, |(_, a)| a.outside == Some(Outside::Dearer)),
    }
}

/// The equal-cost line of the table.
fn equal_cost_line(results: &[CaseResult]) -> String {
    let e = at_equal_cost(results);
    format!(
        "  vs hpa at equal cost (its targets at {}% and 100%, read at headroom's replica-minutes): SLO ratio p50 {:.2} p90 {:.2}; no worse on SLO {:.0}%; of {} traces headroom was cheaper than every HPA on {} and dearer on {} (the nearest HPA taken)\n",
        equal_cost::HPA_TARGETS.map(|p| p.to_string()).join("/"),
        e.slo_ratio_median,
        e.slo_ratio_p90,
        e.no_worse_slo * 100.0,
        results.len(),
        e.cheaper,
        e.dearer
    )
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
    out.push_str(&equal_cost_line(results));
    let drawn = |sight: Sight| {
        results
            .iter()
            .any(|r| r.bounds.iter().any(|(s, _)| *s == sight))
    };
    for sight in [
        Sight::Now,
        Sight::Forecast,
        Sight::Foresight,
        Sight::Pattern,
    ] {
        if !drawn(sight) {
            continue;
        }
        let title = match sight {
            Sight::Now => {
                "the causal bound against the hpa (true load, no delay, pods still start; not an autoscaler)"
            }
            Sight::Forecast => {
                "and with a perfect forecast (also the trend one pod start-up ahead)"
            }
            Sight::Foresight => "and with foresight (the true load one pod start-up ahead)",
            Sight::Pattern => {
                "and with a perfect pattern forecast (the true load now, and the rise its recurring pattern makes one pod start-up ahead)"
            }
        };
        frontier(&mut out, results, title, sight);
    }
    out
}

/// One sight's bound at each utilization, against the HPA.
fn frontier(out: &mut String, results: &[CaseResult], title: &str, sight: Sight) {
    let _ = writeln!(out, "\n{title}:");
    for (i, u) in UTILIZATIONS.iter().enumerate() {
        let v = compare(results, |r| bound(r, sight, i), Kind::Hpa);
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
    let acted = results
        .iter()
        .filter(|r| of(r, Kind::Headroom).is_some_and(|o| !o.predicted_at.is_empty()))
        .count();
    let _ = writeln!(
        md,
        "- predictive scaling raised replicas ahead of a predicted rise on {acted} of {} traces",
        results.len()
    );
    let changed: Vec<usize> = results.iter().filter_map(|r| r.stale_raises).collect();
    if !changed.is_empty() {
        let clean = changed.iter().filter(|n| **n == 0).count();
        let _ = writeln!(
            md,
            "- a pattern that changed stopped driving scale-ups within one period of the change on {clean} of {} traces (target: all: {}); stale raises after that: {} in all",
            changed.len(),
            verdict(clean == changed.len()),
            changed.iter().sum::<usize>()
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
        results.first().map_or(0, |r| r.bounds.len()),
        UTILIZATIONS.len(),
    );
    md.push_str("\n## Traces\n\n| trace | drawn | headroom SLO min | hpa | hpa at equal cost | keda | kpa | headroom replica-min | hpa | headroom reversals | hpa | predicted raises | learned |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let f = |k: Kind, g: fn(&Outcome) -> f64| of(r, k).map_or(f64::NAN, g);
        let learned = of(r, Kind::Headroom).map_or(String::new(), |o| o.learned.join("; "));
        let raises = of(r, Kind::Headroom).map_or(0, |o| o.predicted_at.len());
        let raises = match r.stale_raises {
            Some(n) if n > 0 => format!("{raises} ({n} stale)"),
            _ => raises.to_string(),
        };
        let equal = hpa_at_cost(r).map_or("-".into(), |(_, a)| {
            let mark = match a.outside {
                None => "",
                Some(Outside::Cheaper) => " (headroom cheaper than every HPA)",
                Some(Outside::Dearer) => " (headroom dearer than every HPA)",
            };
            format!("{:.1}{mark}", a.slo_violation_minutes)
        });
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} | {equal} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {raises} | {learned} |",
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
            let [(_, now), (_, forecast), (_, foresight)] = &r.bounds[..] else {
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
