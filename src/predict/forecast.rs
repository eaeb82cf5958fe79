//! The seasonal forecast: how much the load will rise over the next `ahead` steps, read from
//! the same moment of earlier periods. It is a ratio to the load now, so a pattern that
//! repeats at another level (a quieter weekend, a month of growth) is still a pattern. The
//! lower median over up to five earlier periods: one period's surprise never drives it.

/// Earlier periods a forecast reads.
pub const PERIODS: usize = 5;

/// Loads are floored at this share of the mean before taking ratios, so that an idle step
/// does not make every rise look infinite.
pub const FLOOR_SHARE: f64 = 0.05;

/// The forecast rise from step `at`: the largest load of the `ahead` steps after it, over
/// the load at it, as the earlier periods saw it. Reads only steps at or before `known`.
/// None when no earlier period has both readings.
pub fn rise(
    values: &[f64],
    floor: f64,
    period: usize,
    ahead: usize,
    at: usize,
    known: usize,
) -> Option<f64> {
    if period == 0 {
        return None;
    }
    let mut ratios: Vec<f64> = (1..)
        .map(|k| (k, k * period))
        .take_while(|(_, back)| *back <= at)
        .filter(|(_, back)| at - back + ahead <= known)
        .take(PERIODS)
        .filter_map(|(_, back)| {
            let then = values.get(at - back).copied().filter(|v| v.is_finite())?;
            let next = (1..=ahead)
                .filter_map(|j| values.get(at - back + j).copied())
                .filter(|v| v.is_finite())
                .fold(f64::NAN, f64::max);
            next.is_finite()
                .then(|| (next.max(floor)) / then.max(floor))
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    // The lower median: with two periods, the smaller; a rise must be in most of them.
    Some(ratios[(ratios.len() - 1) / 2])
}

/// The load at `at` as the earlier periods saw it, relative: the lower median of their
/// readings there, over the lower median of their readings at `now`.
pub fn level(values: &[f64], floor: f64, period: usize, at: usize, now: usize) -> Option<f64> {
    let median = |i: usize| -> Option<f64> {
        let mut v: Vec<f64> = (1..=PERIODS)
            .filter_map(|k| i.checked_sub(k * period))
            .filter(|j| *j < now)
            .filter_map(|j| values.get(j).copied().filter(|v| v.is_finite()))
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len().checked_sub(1)? / 2).map(|x| x.max(floor))
    };
    Some(median(at)? / median(now)?)
}

pub fn floor_of(values: &[f64]) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.iter().sum::<f64>() / finite.len().max(1) as f64 * FLOOR_SHARE
}
