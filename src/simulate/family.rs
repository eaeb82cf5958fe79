//! Families of generated traffic, for judging a policy on traffic it was not tuned for: each
//! case draws its shape, noise and app model at random, deterministically per seed.

use super::bursts::{self, BURSTS, BURSTS_COLD};
use super::draws::{between, log_between, surge};
use super::model::Params;
use super::rng::Rng;
use super::seasonal::{DAY, WARMUP_DAYS, draw};
use super::traffic::Trace;

/// The families `--family` takes (and `all`): onsets at random times, nothing repeats.
pub const FAMILIES: [&str; 7] = [
    "flash", "viral", "launch", "storm", "diurnal", "organic", "surges",
];

/// The family of multi-day traces with recurring patterns (not in `all`): a week of history,
/// then a day played.
pub const SEASONAL: &str = "seasonal";

/// Every family `--family` takes besides `all` and `idle`, for the error that names them.
pub fn names() -> String {
    let mut all: Vec<&str> = FAMILIES.to_vec();
    all.extend([SEASONAL, BURSTS, BURSTS_COLD]);
    all.join(", ")
}

/// One generated case: the traffic, the app it hits, and how often Prometheus scrapes.
#[derive(Clone, Debug)]
pub struct Case {
    pub trace: Trace,
    pub params: Params,
    pub scrape_seconds: usize,
    /// A line saying what was drawn.
    pub about: String,
    /// When the recurring pattern changed, and the period of what changed (seasonal only).
    pub change: Option<(usize, usize)>,
}

/// Multiplicative noise per 10 s (a few to 25 %), with rare heavy-tailed bursts on top.
fn noise(rng: &mut Rng, seconds: usize) -> Vec<f64> {
    let sigma = between(rng, 0.02, 0.25);
    let burst_rate = between(rng, 0.0, 0.01);
    let chunks = seconds / 10 + 1;
    let mut out = Vec::with_capacity(chunks);
    let mut burst = 1.0;
    for _ in 0..chunks {
        if rng.uniform() < burst_rate {
            // Pareto, alpha 2.5: mostly small, sometimes 3x or more, for a few chunks.
            burst = (1.0 - rng.uniform()).powf(-1.0 / 2.5).min(8.0);
        } else {
            burst = 1.0 + (burst - 1.0) * 0.5;
        }
        out.push((sigma * rng.normal().clamp(-3.0, 3.0)).exp() * burst);
    }
    out
}

/// A drawn shape: its length in seconds, the load multiplier over time, and what was drawn.
type Shape = (usize, Box<dyn Fn(f64) -> f64>, String);

fn shape(rng: &mut Rng, family: &str) -> Option<Shape> {
    let hour = 3600.0;
    Some(match family {
        // A flash crowd: 5x-30x within seconds to a few minutes, gone within the hour.
        "flash" => {
            let (start, rise) = (between(rng, 0.3, 1.0) * hour, between(rng, 5.0, 240.0));
            let (factor, half) = (log_between(rng, 5.0, 30.0), between(rng, 300.0, 1800.0));
            (
                (2.5 * hour) as usize,
                Box::new(move |t| surge(t, start, rise, factor, half)),
                format!("flash {factor:.0}x over {rise:.0}s"),
            )
        }
        // One viral surge: 2x-60x over 1-60 minutes, decaying for hours.
        "viral" => {
            let (start, rise) = (between(rng, 0.3, 1.0) * hour, between(rng, 60.0, 3600.0));
            let (factor, half) = (log_between(rng, 2.0, 60.0), between(rng, 0.3, 1.5) * hour);
            (
                (4.0 * hour) as usize,
                Box::new(move |t| surge(t, start, rise, factor, half)),
                format!("viral {factor:.0}x over {:.0}min", rise / 60.0),
            )
        }
        // Several surges, one on another's tail.
        "surges" => {
            let n = 2 + (rng.uniform() * 2.0) as usize;
            let parts: Vec<(f64, f64, f64, f64)> = (0..n)
                .map(|i| {
                    (
                        (0.3 + i as f64 * between(rng, 0.6, 1.2)) * hour,
                        between(rng, 60.0, 1800.0),
                        log_between(rng, 2.0, 40.0),
                        between(rng, 0.2, 1.0) * hour,
                    )
                })
                .collect();
            let about = format!(
                "{n} surges up to {:.0}x",
                parts.iter().map(|p| p.2).fold(0.0, f64::max)
            );
            (
                (4.0 * hour) as usize,
                Box::new(move |t| {
                    parts
                        .iter()
                        .map(|(s, r, f, h)| surge(t, *s, *r, *f, *h) - 1.0)
                        .sum::<f64>()
                        + 1.0
                }),
                about,
            )
        }
        // A launch step: 2x-8x at once, held for one to two hours.
        "launch" => {
            let (start, factor) = (between(rng, 0.3, 1.0) * hour, log_between(rng, 2.0, 8.0));
            let length = between(rng, 1.0, 2.0) * hour;
            (
                (3.5 * hour) as usize,
                Box::new(move |t| {
                    if (start..start + length).contains(&t) {
                        factor
                    } else {
                        1.0
                    }
                }),
                format!("launch step {factor:.1}x"),
            )
        }
        // A retry storm: load oscillating between 1x and 2x-5x with a 1-10 minute period.
        "storm" => {
            let (start, length) = (between(rng, 0.2, 0.6) * hour, between(rng, 0.5, 1.5) * hour);
            let (amp, period) = (between(rng, 1.0, 4.0), between(rng, 60.0, 600.0));
            (
                (2.5 * hour) as usize,
                Box::new(move |t| {
                    if (start..start + length).contains(&t) {
                        1.0 + amp
                            * 0.5
                            * (1.0 - (std::f64::consts::TAU * (t - start) / period).cos())
                    } else {
                        1.0
                    }
                }),
                format!("storm to {:.1}x every {period:.0}s", 1.0 + amp),
            )
        }
        // A compressed day (6 h) from a trough of 0.2-0.5x to the peak, a newsletter spike on top.
        "diurnal" => {
            let trough = between(rng, 0.2, 0.5);
            let (spike_at, spike) = (between(rng, 1.0, 5.0) * hour, log_between(rng, 3.0, 10.0));
            (
                (6.0 * hour) as usize,
                Box::new(move |t| {
                    let day = trough
                        + (1.0 - trough)
                            * 0.5
                            * (1.0 - (std::f64::consts::TAU * t / (6.0 * hour)).cos());
                    day * surge(t, spike_at, 120.0, spike, 900.0)
                }),
                format!("day from {trough:.1}x, {spike:.0}x spike"),
            )
        }
        // Organic growth: 1x to 3x-10x over two to three hours.
        "organic" => {
            let (to, over) = (between(rng, 3.0, 10.0), between(rng, 2.0, 3.0) * hour);
            (
                (3.5 * hour) as usize,
                Box::new(move |t| to.powf((t / over).min(1.0))),
                format!("organic to {to:.1}x"),
            )
        }
        _ => return None,
    })
}

/// Case `index` of `family` (or of a family picked by the seed for `all`).
pub fn case(family: &str, seed: u64, index: usize) -> Option<Case> {
    let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let family = if family == "all" {
        FAMILIES[index % FAMILIES.len()]
    } else {
        family
    };
    let (trend, pattern, warmup, change, about) = if family == SEASONAL {
        let d = draw(&mut rng);
        (d.load, d.pattern, WARMUP_DAYS * DAY, d.change, d.about)
    } else if family == BURSTS || family == BURSTS_COLD {
        let d = bursts::draw(&mut rng, family == BURSTS);
        (d.load, d.pattern, d.warmup, None, d.about)
    } else {
        let (seconds, f, about) = shape(&mut rng, family)?;
        let trend = (0..seconds).map(|t| f(t as f64)).collect();
        (trend, vec![], 0, None, about)
    };
    let seconds = trend.len();
    let noise = noise(&mut rng, seconds);
    let params = Params {
        // App time per request: the example policy's 300 ms p95 target stays reachable.
        service_time: log_between(&mut rng, 0.01, 0.06),
        startup_seconds: between(&mut rng, 20.0, 120.0) as usize,
        db_capacity_qps: log_between(&mut rng, 5_000.0, 60_000.0),
        ..Params::default()
    };
    // The base load is set so that the peak needs 8-36 web replicas at 70 %: within the
    // example policy's maxReplicas, so the trace tests decisions, not the ceiling.
    let shape: Vec<f64> = (0..seconds).map(|t| trend[t] * noise[t / 10]).collect();
    let peak = shape.iter().copied().fold(1.0, f64::max);
    let want = between(&mut rng, 8.0, 36.0);
    let base = want * f64::from(params.concurrency) * 0.7 / (params.service_time * peak);
    let jobs_share = between(&mut rng, 0.1, 0.4);
    let requests: Vec<f64> = shape.iter().map(|x| (base * x).max(0.0)).collect();
    let jobs = requests.iter().map(|r| r * jobs_share).collect();
    let scrape_seconds = if rng.uniform() < 0.5 { 15 } else { 30 };
    Some(Case {
        about: format!(
            "{about}; base {base:.0}/s, service {:.0}ms, start-up {}s, scrape {scrape_seconds}s",
            params.service_time * 1000.0,
            params.startup_seconds
        ),
        trace: Trace {
            name: format!("{family}-{index}"),
            requests,
            jobs,
            noise: (0..seconds).map(|t| noise[t / 10]).collect(),
            warmup,
            pattern,
        },
        params,
        scrape_seconds,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_deterministic_per_seed_and_differ_between_seeds() {
        for family in FAMILIES {
            let a = case(family, 7, 3).map(|c| c.trace);
            assert_eq!(a, case(family, 7, 3).map(|c| c.trace), "{family}");
            assert_ne!(a, case(family, 8, 3).map(|c| c.trace), "{family}");
            let a = a.unwrap_or_else(|| panic!("{family}"));
            assert!(a.requests.iter().all(|r| r.is_finite() && *r >= 0.0));
            assert_eq!((a.warmup, a.pattern.len()), (0, 0), "{family}");
        }
        assert!(case("nope", 1, 0).is_none());
    }

    #[test]
    fn seasonal_cases_have_a_week_of_history_and_repeat_by_the_day() {
        let c = case(SEASONAL, 1, 0).expect("seasonal");
        let t = &c.trace;
        assert_eq!((t.seconds(), t.warmup), (8 * DAY, 7 * DAY));
        assert_eq!(t.pattern.len(), t.seconds());
        // Without a change, the pattern is the same a day apart on weekdays; the load, with
        // noise and surprises, is not.
        let changes = (0..40)
            .filter_map(|i| case(SEASONAL, 2, i).and_then(|c| c.change))
            .count();
        assert!((4..=24).contains(&changes), "{changes} of 40 change");
        let steady = (0..40)
            .filter_map(|i| case(SEASONAL, 2, i))
            .find(|c| c.change.is_none() && !c.about.contains("weekends"))
            .expect("one steady weekly-flat case");
        let p = &steady.trace.pattern;
        assert!(
            (0..DAY)
                .step_by(600)
                .all(|s| (p[s] - p[s + 3 * DAY]).abs() < 1e-9)
        );
    }
}
