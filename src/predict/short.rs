//! The short-period history beside the long one: the last 12 hours at 30 s, so that bursts of
//! a minute recurring every few minutes are learned, which a week at 5-minute steps cannot
//! see (a period must span four steps, and a burst shorter than a step is seen in part).

use super::{History, Learned, Settings, learn};

/// One reading per 30 s (a `rate(...[1m])` read at this step overlaps its neighbour).
pub const SHORT_STEP_SECONDS: u32 = 30;
/// 12 hours: 1,440 steps, 2.9 KB; periods up to 6 hours.
pub const SHORT_POINTS: usize = 1440;
/// How far back the short history reaches, seconds.
pub const SHORT_SPAN_SECONDS: usize = SHORT_POINTS * SHORT_STEP_SECONDS as usize;
/// Steps of short history before its forecast may act: 6 hours. A few hours of a retry storm
/// or of noise can look periodic; a pattern that held for six hours is one.
const SHORT_MIN_POINTS: usize = SHORT_POINTS / 2;
/// A short forecast is learned again within 30 minutes, so an hour ahead is enough (1 KB).
const SHORT_VALID_SECONDS: f64 = 3600.0;

/// A load's history at two resolutions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histories {
    pub long: History,
    pub short: History,
}

impl Histories {
    /// The long history at `step_seconds` over `points` steps, beside the short one.
    pub fn new(step_seconds: u32, points: usize) -> Self {
        Histories {
            long: History::new(step_seconds, points),
            short: History::new(SHORT_STEP_SECONDS, SHORT_POINTS),
        }
    }

    /// Memory held by the readings.
    pub fn bytes(&self) -> usize {
        self.long.bytes() + self.short.bytes()
    }
}

/// Learns from both histories. The trusted one with the better backtest skill leads (its
/// account is the status'); a trusted other one acts beside it. Where neither is trusted,
/// the long one's account.
pub fn learn_all(h: &Histories, settings: &Settings) -> Learned {
    let long = learn(&h.long, settings);
    let short_settings = Settings {
        valid_seconds: SHORT_VALID_SECONDS,
        ..*settings
    };
    let mut short = if h.short.len() >= SHORT_MIN_POINTS {
        learn(&h.short, &short_settings)
    } else {
        Learned::nothing("needs 6h of history to act")
    };
    short.summary = format!("last 12h at 30s: {}", short.summary);
    let skill = |l: &Learned| l.backtest.map_or(f64::NEG_INFINITY, |b| b.skill);
    let (mut lead, other) = if short.trusted && (!long.trusted || skill(&short) > skill(&long)) {
        (short, long)
    } else {
        (long, short)
    };
    if other.trusted {
        lead.summary = format!(
            "{}; also acting: the {} period",
            lead.summary,
            other.period().unwrap_or_default()
        );
        lead.also = Some(Box::new(other));
    }
    lead
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bursts of 90 s at 6x every 13 minutes, each up to a minute late, over a flat load:
    /// the 5-minute steps see them in part, the 30 s history whole; its forecast is the one
    /// kept, and the outlook rises before a burst.
    #[test]
    fn bursts_every_few_minutes_are_learned_from_the_short_history() {
        let period = 780i64;
        let late = |k: i64| (k * 7919).rem_euclid(60);
        let load = |t: i64| {
            let k = t.div_euclid(period);
            if (0..90).contains(&(t - k * period - late(k))) {
                600.0
            } else {
                100.0
            }
        };
        let mut h = Histories::new(300, 2016);
        let end = 2 * 86_400i64;
        for t in (0..end).step_by(300) {
            let mean = (t..t + 300).map(load).sum::<f64>() / 300.0;
            h.long.record(t, mean);
        }
        for t in (end - 12 * 3600..end).step_by(30) {
            let mean = (t - 60..t).map(load).sum::<f64>() / 60.0;
            h.short.record(t, mean);
        }
        let settings = Settings {
            horizon_seconds: 120.0,
            ..Settings::default()
        };
        let long = learn(&h.long, &settings);
        let l = learn_all(&h, &settings);
        assert!(l.trusted, "{}", l.summary);
        assert!(
            l.summary.starts_with("last 12h at 30s: 13m period"),
            "{}",
            l.summary
        );
        let skill = |l: &Learned| l.backtest.map_or(f64::NAN, |b| b.skill);
        assert!(
            !long.trusted || skill(&l) > skill(&long),
            "{}",
            long.summary
        );
        assert_eq!(l.step_seconds, SHORT_STEP_SECONDS);
        // Just before the next burst the peak ahead is the burst; just after one it
        // is the quiet load.
        let next = (end / period + 1) * period + late(end / period + 1);
        let before = l.at(next - 30).map(|o| o.peak).unwrap_or(0.0);
        let after = l.at(next + 300).map(|o| o.peak).unwrap_or(f64::INFINITY);
        assert!(before > 300.0, "{before}");
        assert!(after < 200.0, "{after}");
    }
}
