//! Before a forecast may act: forecast the most recent span of the history from what came
//! before each moment, and compare with the naive forecast ("the load stays as it is").
//! Only the moments that matter count: where the load rose, or the forecast said it would.

use super::forecast::Forecaster;

/// A rise smaller than this share is not one (noise, not a pattern).
pub const RISE: f64 = 0.1;

/// A period's skill closer to 0 than this says nothing either way.
const TELLS: f64 = 0.005;

/// How the forecast did over the held-back span, against the naive one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backtest {
    /// 1 - forecast error / naive error over the moments that matter: 1 is perfect, 0 no
    /// better than naive, negative worse.
    pub skill: f64,
    /// The same over the newest period of the span (at least `recent` steps of it) where the
    /// forecast differed from the naive one: a pattern that changed shows here first, a
    /// period that says nothing (no rise forecast or seen, or the forecast no different) does
    /// not clear it, and where periods are short one missed burst among several is not a
    /// changed pattern.
    pub recent_skill: Option<f64>,
    /// Moments that mattered.
    pub moments: usize,
    /// Steps held back.
    pub span: usize,
}

/// Forecasts each step of the last `span` steps (each from the steps up to it), scoring log
/// errors of the busiest load ahead against the naive forecast.
/// A period tells only through moments where the forecast or the load rose by more than
/// `noise` (a ratio): smaller rises are the history's noise, and the forecast's luck on them
/// says nothing about whether the pattern holds.
pub fn backtest(f: &Forecaster, span: usize, noise: f64, recent: usize) -> Option<Backtest> {
    let bucket = recent.max(f.period).max(1);
    let values = f.values;
    let n = values.len();
    let first = n.checked_sub(span)?;
    let last = n.saturating_sub(f.ahead);
    let (mut forecast_err, mut naive_err, mut moments) = (0.0, 0.0, 0usize);
    // Per bucket of the span (a period, at least `recent` steps), newest first: forecast and
    // naive errors.
    let mut buckets = vec![(0.0, 0.0); span.div_ceil(bucket) + 1];
    for at in first..last {
        let Some(now) = values[at].is_finite().then(|| values[at].max(f.floor)) else {
            continue;
        };
        let actual = values[at..=at + f.ahead]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NAN, f64::max)
            .max(f.floor);
        // Like the evaluation: the forecast only ever adds to the load now.
        let predicted = f.peak(at, at.saturating_sub(1)).map_or(now, |p| p.max(now));
        let matters = actual > now * (1.0 + RISE) || predicted > now * (1.0 + RISE);
        if !matters {
            continue;
        }
        let (ef, en) = ((predicted / actual).ln().abs(), (now / actual).ln().abs());
        forecast_err += ef;
        naive_err += en;
        moments += 1;
        let tells = actual.max(predicted) > now * noise;
        if let Some(p) = buckets.get_mut((last - 1 - at) / bucket).filter(|_| tells) {
            p.0 += ef;
            p.1 += en;
        }
    }
    if moments == 0 {
        return None;
    }
    let skill = |f: f64, n: f64| {
        if n > 0.0 {
            1.0 - f / n
        } else if f > 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    Some(Backtest {
        skill: skill(forecast_err, naive_err),
        recent_skill: buckets
            .iter()
            .map(|(f, n)| skill(*f, *n))
            .find(|s| s.abs() > TELLS),
        moments,
        span,
    })
}
