//! Before a forecast may act: forecast the most recent span of the history from what came
//! before each moment, and compare with the naive forecast ("the load stays as it is").
//! Only the moments that matter count: where the load rose, or the forecast said it would.

use super::forecast::Forecaster;

/// A rise smaller than this share is not one (noise, not a pattern).
pub const RISE: f64 = 0.1;

/// How the forecast did over the held-back span, against the naive one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backtest {
    /// 1 - forecast error / naive error over the moments that matter: 1 is perfect, 0 no
    /// better than naive, negative worse.
    pub skill: f64,
    /// The same over the last period of the span alone: a pattern that changed shows here
    /// first.
    pub recent_skill: Option<f64>,
    /// Moments that mattered.
    pub moments: usize,
    /// Steps held back.
    pub span: usize,
}

/// Forecasts each step of the last `span` steps (each from the steps up to it), scoring log
/// errors of the busiest load ahead against the naive forecast.
pub fn backtest(f: &Forecaster, span: usize) -> Option<Backtest> {
    let values = f.values;
    let n = values.len();
    let first = n.checked_sub(span)?;
    let recent_from = n.saturating_sub(f.period + f.ahead);
    let (mut forecast_err, mut naive_err, mut moments) = (0.0, 0.0, 0usize);
    let (mut recent_f, mut recent_n, mut recent_moments) = (0.0, 0.0, 0usize);
    for at in first..n.saturating_sub(f.ahead) {
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
        if at >= recent_from {
            recent_f += ef;
            recent_n += en;
            recent_moments += 1;
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
        recent_skill: (recent_moments > 0).then(|| skill(recent_f, recent_n)),
        moments,
        span,
    })
}
