//! Which period, if any, the load repeats at: the autocorrelation of its logarithm (traffic
//! repeats in proportion, not in absolute terms), and of its changes (a burst that comes every
//! hour on a flat day), at every lag up to half the history.

/// A recurring period found in the history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Period {
    /// In steps of the history.
    pub steps: usize,
    /// The autocorrelation at that lag, from 0 (none) to 1 (the same every period).
    pub strength: f64,
    /// The period to a tenth of a step: a period between two steps, read a whole step off,
    /// drifts a step further each period back.
    pub exact: f64,
}

/// How much a peak of the autocorrelation must stand above the valley before it: a slow
/// trend correlates at every lag and has no peak.
const PROMINENCE: f64 = 0.2;
/// A shorter period whose strength is this close to the best one is preferred: every
/// multiple of a period is a period too, and the shortest one has the most recent data.
const NEAR: f64 = 0.9;

/// The logarithm of each reading, floored at a twentieth of the mean, so that idle steps do
/// not dominate; NaN stays NaN.
fn log_load(values: &[f64]) -> Option<Vec<f64>> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
    if finite.is_empty() || mean <= 0.0 {
        return None;
    }
    let floor = mean / 20.0;
    Some(values.iter().map(|v| v.max(floor).ln()).collect())
}

/// Autocorrelation at lags 0..=max_lag over the pairs where both readings exist.
fn autocorrelation(y: &[f64], max_lag: usize) -> Vec<f64> {
    let finite: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
    let n = finite.len().max(1) as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let var = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let centred: Vec<f64> = y.iter().map(|v| v - mean).collect();
    (0..=max_lag)
        .map(|lag| {
            if var <= 1e-12 {
                return 0.0;
            }
            let (sum, count) = centred
                .iter()
                .zip(&centred[lag.min(centred.len())..])
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .fold((0.0, 0usize), |(s, c), (a, b)| (s + a * b, c + 1));
            if count < 2 {
                0.0
            } else {
                sum / count as f64 / var
            }
        })
        .collect()
}

/// Lags at which `acf` peaks: the top of each rise of at least PROMINENCE above the valley
/// before it, once it has fallen PROMINENCE again (so noise on a peak makes one peak).
fn peaks(acf: &[f64], min_lag: usize) -> Vec<Period> {
    let mut out = vec![];
    let mut valley = f64::INFINITY;
    let mut top: Option<Period> = None;
    for (lag, &v) in acf.iter().enumerate().skip(1) {
        match top {
            Some(t) if v > t.strength => {
                top = Some(Period {
                    steps: lag,
                    strength: v,
                    exact: lag as f64,
                })
            }
            Some(t) if v < t.strength - PROMINENCE => {
                out.push(t);
                top = None;
                valley = v;
            }
            Some(_) => {}
            None => {
                valley = valley.min(v);
                if lag >= min_lag && v - valley >= PROMINENCE {
                    top = Some(Period {
                        steps: lag,
                        strength: v,
                        exact: lag as f64,
                    });
                }
            }
        }
    }
    // A top still rising at the last lag is not a peak.
    out.extend(top.filter(|t| t.steps + 1 < acf.len()));
    out
}

/// The period the history repeats at: at least `min_steps`, at most half the history, with a
/// strength of at least `min_strength`, in steps of `step_seconds`. None when nothing repeats.
pub fn detect(
    values: &[f64],
    step_seconds: f64,
    min_steps: usize,
    min_strength: f64,
) -> Option<Period> {
    let y = log_load(values)?;
    let max_lag = y.len() / 2;
    if max_lag <= min_steps.max(2) {
        return None;
    }
    let changes: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    let (levels, moves) = (
        autocorrelation(&y, max_lag),
        autocorrelation(&changes, max_lag),
    );
    let mut found = peaks(&levels, min_steps.max(2));
    found.extend(peaks(&moves, min_steps.max(2)));
    // One strength per lag: the larger of the two views.
    found.sort_by(|a, b| {
        a.steps
            .cmp(&b.steps)
            .then(b.strength.total_cmp(&a.strength))
    });
    found.dedup_by_key(|p| p.steps);
    let score = |lag: usize| {
        let at = |a: &[f64]| a.get(lag).copied().unwrap_or(f64::NAN);
        at(&levels).max(at(&moves))
    };
    // A period is judged by how the load repeats at all its multiples, not at one lag: one
    // long lag pairs few readings, and over a stretch with no missed burst it correlates by
    // chance as well as the period itself. The best is taken among the lags whose own
    // repetition can be seen (twice the lag within `max_lag`), if any repeats. Each candidate
    // is refined once: its period to a tenth of a step, and its comb.
    let judged: Vec<(Period, f64, f64)> = found
        .iter()
        .filter(|p| p.strength >= min_strength)
        .map(|p| {
            let (exact, comb) = refine(p.steps, max_lag, &score);
            (*p, exact, comb)
        })
        .collect();
    let testable = |p: &Period| p.steps * 2 <= max_lag;
    let best = judged.iter().max_by(|a, b| {
        testable(&a.0)
            .cmp(&testable(&b.0))
            .then(a.2.total_cmp(&b.2))
    })?;
    let &(_, refined, _) = judged
        .iter()
        .filter(|c| divides(c.0.steps, best.0.steps) && c.2 >= NEAR * best.2)
        .min_by_key(|c| c.0.steps)
        .unwrap_or(best);
    let whole = (refined.round() as usize).max(1);
    let steps = snap(refined, step_seconds).unwrap_or(whole);
    let exact = if steps == whole {
        refined
    } else {
        // On the calendar: exactly that.
        CALENDAR
            .iter()
            .map(|c| c / step_seconds)
            .find(|c| (c.round() as usize) == steps)
            .unwrap_or(steps as f64)
    };
    Some(Period {
        steps,
        strength: score(steps),
        exact,
    })
}

/// The period near `steps`, to a tenth of a step, whose first ten multiples (rounded to
/// steps) correlate best, and their mean correlation: a peak of the autocorrelation is flat
/// on top, its multiples are not, so a day is told from a day less fifteen minutes, and a
/// period between two steps is not read a step off (which drifts a step further each period
/// back).
fn refine(steps: usize, max_lag: usize, score: &dyn Fn(usize) -> f64) -> (f64, f64) {
    let slack = (steps / 25 + 1) as f64;
    let lo = (steps as f64 - slack).max(1.0);
    let candidates = ((2.0 * slack) * 10.0).round() as usize;
    (0..=candidates)
        .map(|i| lo + i as f64 / 10.0)
        .map(|p| {
            let multiples: Vec<f64> = (1..=10)
                .map(|k| (f64::from(k) * p).round() as usize)
                .take_while(|l| *l <= max_lag)
                .map(score)
                .filter(|v| v.is_finite())
                .collect();
            let mean = multiples.iter().sum::<f64>() / multiples.len().max(1) as f64;
            (p, mean)
        })
        .max_by(|a, b| {
            let off_step = |p: f64| (p - p.round()).abs();
            a.1.total_cmp(&b.1)
                // Ties to a whole step, then to the shorter period.
                .then(off_step(b.0).total_cmp(&off_step(a.0)))
                .then(b.0.total_cmp(&a.0))
        })
        .unwrap_or((steps as f64, 0.0))
}

/// Periods people schedule things at, seconds: a period found within 3 % of one is taken to
/// be it (cron, business days, weeks), since a few steps off drifts over several periods; but
/// only if also within a step of it (or 1 %, if more): 19m24s measured at 30 s is not 20m.
const CALENDAR: [f64; 14] = [
    300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0, 10800.0, 14400.0, 21600.0, 28800.0,
    43200.0, 86400.0, 604800.0,
];

fn snap(steps: f64, step_seconds: f64) -> Option<usize> {
    let seconds = steps * step_seconds;
    CALENDAR
        .iter()
        .find(|c| (seconds - **c).abs() <= (0.03 * **c).min(step_seconds.max(0.01 * **c)))
        .map(|c| (c / step_seconds).round() as usize)
        .filter(|s| *s >= 1)
}

/// Whether `long` is a whole multiple of `short`, give or take a step per multiple (a
/// period measured in steps is rounded).
fn divides(short: usize, long: usize) -> bool {
    let short = short.max(1);
    let k = (long as f64 / short as f64).round() as usize;
    k >= 1 && long.abs_diff(k * short) <= k.max(long / 50)
}

/// The strongest autocorrelation at any lag, for saying how little repeats.
pub fn strongest(values: &[f64], min_steps: usize) -> Option<Period> {
    let y = log_load(values)?;
    let acf = autocorrelation(&y, y.len() / 2);
    acf.iter()
        .enumerate()
        .skip(min_steps.max(2))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(steps, strength)| Period {
            steps,
            strength: *strength,
            exact: steps as f64,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A day of 288 five-minute steps: a trough at night, a peak in the afternoon.
    fn day(t: usize) -> f64 {
        let phase = (t % 288) as f64 / 288.0;
        100.0 * (1.2 - (std::f64::consts::TAU * phase).cos())
    }

    #[test]
    fn a_daily_cycle_is_found_at_a_day_not_at_two() {
        let mut rng = Rng::new(3);
        let v: Vec<f64> = (0..288 * 7)
            .map(|t| day(t) * (0.15 * rng.normal()).exp())
            .collect();
        let p = detect(&v, 300.0, 4, 0.3).expect("a daily cycle");
        assert_eq!(p.steps, 288, "{p:?}");
        assert!(p.strength > 0.6, "{p:?}");
    }

    #[test]
    fn an_hourly_burst_on_a_flat_day_is_found() {
        let mut rng = Rng::new(5);
        // Every 12 steps (an hour), one step at 4x.
        let v: Vec<f64> = (0..288 * 3)
            .map(|t| if t % 12 == 3 { 400.0 } else { 100.0 } * (0.1 * rng.normal()).exp())
            .collect();
        let p = detect(&v, 300.0, 4, 0.3).expect("an hourly burst");
        assert_eq!(p.steps, 12, "{p:?}");
    }

    #[test]
    fn a_period_off_the_calendar_is_measured_to_the_step() {
        let mut rng = Rng::new(6);
        // A burst every 23 steps (1h55m at five-minute steps): near no calendar period.
        let flat: Vec<f64> = (0..288 * 7)
            .map(|t: usize| if t.is_multiple_of(23) { 300.0 } else { 100.0 } * (0.1 * rng.normal()).exp())
            .collect();
        assert_eq!(detect(&flat, 300.0, 4, 0.3).map(|p| p.steps), Some(23));
    }

    #[test]
    fn a_period_between_two_steps_is_measured_to_a_tenth_of_a_step() {
        let mut rng = Rng::new(7);
        // A three-step burst every 16.2 steps: read as 16, the tenth period back is two
        // steps off, most of a burst.
        let v: Vec<f64> = (0..1440)
            .map(|t| {
                let into = (t as f64).rem_euclid(16.2);
                let base = if into < 3.0 { 500.0 } else { 100.0 };
                base * (0.1 * rng.normal()).exp()
            })
            .collect();
        let p = detect(&v, 30.0, 4, 0.3).expect("a period");
        assert_eq!(p.steps, 16, "{p:?}");
        assert!((p.exact - 16.2).abs() < 0.11, "{p:?}");
    }

    /// Twelve hours at 30 s (each reading the mean of the minute before it) of bursts every
    /// `period` seconds, `length` long at 7x, each up to 60 s late, at 0.7-1.4x their
    /// height, one in ten missed, with 10 % noise per 10 s.
    fn bursts(rng: &mut Rng, period: f64, length: f64) -> Vec<f64> {
        let seconds = 1440 * 30;
        let mut load = vec![100.0; seconds];
        let mut start = rng.uniform() * period;
        while start < seconds as f64 {
            let late = 60.0 * rng.uniform();
            let height = 700.0 * (0.7 + 0.7 * rng.uniform());
            if rng.uniform() >= 0.1 {
                let from = (start + late) as usize;
                let to = (from + length as usize).min(seconds);
                load[from.min(seconds)..to].fill(height);
            }
            start += period;
        }
        for chunk in load.chunks_mut(10) {
            let noise = (0.1 * rng.normal()).exp();
            chunk.iter_mut().for_each(|v| *v *= noise);
        }
        (0..1440usize)
            .map(|i| {
                load[(i * 30).saturating_sub(60)..(i * 30).max(1)]
                    .iter()
                    .sum::<f64>()
                    / 60.0
            })
            .collect()
    }

    #[test]
    fn hourly_batches_within_a_daily_pattern_are_found_at_the_day() {
        // The day holds the hour's batches and its own peak: the day is the period.
        let mut rng = Rng::new(8);
        let v: Vec<f64> = (0..288 * 7)
            .map(|t| {
                let batch = if t % 12 < 2 { 2.3 } else { 1.0 };
                let spike = if (160..164).contains(&(t % 288)) {
                    7.0
                } else {
                    1.0
                };
                day(t) * batch * spike * (0.1 * rng.normal()).exp()
            })
            .collect();
        let p = detect(&v, 300.0, 4, 0.3).expect("a period");
        assert_eq!(p.steps, 288, "{p:?}");
    }

    #[test]
    fn short_bursts_are_found_at_their_period_not_at_a_multiple_that_correlates_by_chance() {
        // A long lag pairs few steps: over a stretch with no missed burst it can correlate
        // better than the period itself, and was taken for the period (no backtest possible).
        let mut wrong = vec![];
        for seed in 0..100 {
            let mut rng = Rng::new(seed);
            let period = 60.0 * (15.0 + 45.0 * rng.uniform());
            let length = (60.0 + 240.0 * rng.uniform()).min(period / 2.0);
            let v = bursts(&mut rng, period, length);
            let found = detect(&v, 30.0, 4, 0.3).map(|p| p.exact * 30.0);
            if found.is_none_or(|f| (f - period).abs() > 0.03 * period) {
                wrong.push((seed, period.round(), found.map(f64::round)));
            }
        }
        // 26 of 100 were taken at a multiple when the strongest single lag was the best.
        assert!(wrong.len() <= 5, "{wrong:?}");
    }

    #[test]
    fn a_period_measured_a_step_off_the_calendar_is_not_taken_to_be_it() {
        // 19m24s is within 3 % of 20m, but 36 s a period is over a step at 30 s: taken to be
        // 20m, the fifth period back is three minutes off.
        let mut rng = Rng::new(4);
        let v: Vec<f64> = (0..1440)
            .map(|t| {
                let into = (f64::from(t) * 30.0).rem_euclid(1164.0);
                let base = if into < 180.0 { 500.0 } else { 100.0 };
                base * (0.1 * rng.normal()).exp()
            })
            .collect();
        let p = detect(&v, 30.0, 4, 0.3).expect("a period");
        assert!((p.exact * 30.0 - 1164.0).abs() < 6.0, "{p:?}");
        assert_eq!(snap(38.8, 30.0), None);
        assert_eq!(snap(40.2, 30.0), Some(40));
        // At 5-minute steps a day found a step or two off is still the day.
        assert_eq!(snap(289.0, 300.0), Some(288));
        assert_eq!(snap(285.5, 300.0), Some(288));
    }

    #[test]
    fn noise_growth_and_one_off_surges_have_no_period() {
        let mut rng = Rng::new(9);
        let noise: Vec<f64> = (0..2000)
            .map(|_| 100.0 * (0.3 * rng.normal()).exp())
            .collect();
        assert_eq!(detect(&noise, 300.0, 4, 0.3), None);
        let growth: Vec<f64> = (0..2000)
            .map(|t| 100.0 * (t as f64 / 500.0).exp() * (0.05 * rng.normal()).exp())
            .collect();
        assert_eq!(detect(&growth, 300.0, 4, 0.3), None);
        let surge: Vec<f64> = (0..2000)
            .map(|t| {
                if (700..760).contains(&t) {
                    2000.0
                } else {
                    100.0
                }
            })
            .collect();
        assert_eq!(detect(&surge, 300.0, 4, 0.3), None);
        assert_eq!(detect(&[0.0; 100], 300.0, 4, 0.3), None);
        assert_eq!(detect(&[f64::NAN; 100], 300.0, 4, 0.3), None);
    }
}
