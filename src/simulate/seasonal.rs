//! The seasonal family: a week of history and a day to play, with the patterns real traffic
//! repeats (a day's shape, quieter weekends, a spike at the same minute each day, hourly
//! batches), noise, surprises that never come again, and on some traces a pattern that
//! changes as the played day starts (the peak moves by hours, the batches stop, the weekend
//! dip stops).

use super::draws::{between, log_between, surge};
use super::rng::Rng;

pub const DAY: usize = 86_400;
/// Days of history before the played day.
pub const WARMUP_DAYS: usize = 7;

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// The recurring part of the load, in one regime (before or after a change).
#[derive(Clone, Debug)]
struct Regime {
    trough: f64,
    /// Business hours (open, close, ramp), or an evening bell (peak hour, width), in hours.
    business: Option<(f64, f64, f64)>,
    bell: (f64, f64),
    /// Saturday and Sunday at this share.
    weekend: Option<f64>,
    /// The same spike each day: second of the day, rise, factor, half-life.
    spike: Option<(f64, f64, f64, f64)>,
    /// Every hour at this second of the hour: rise, factor, length.
    batch: Option<(f64, f64, f64, f64)>,
}

impl Regime {
    fn at(&self, t: f64, first_weekday: usize) -> f64 {
        let day = (t / DAY as f64).floor();
        let tod = t - day * DAY as f64;
        let hour = tod / 3600.0;
        let shape = match self.business {
            Some((open, close, ramp)) => {
                smoothstep((hour - open) / ramp) * (1.0 - smoothstep((hour - close) / ramp))
            }
            None => {
                let (peak, width) = self.bell;
                let d = (hour - peak).abs();
                let d = d.min(24.0 - d);
                (-0.5 * (d / width).powi(2)).exp()
            }
        };
        let mut load = self.trough + (1.0 - self.trough) * shape;
        let weekday = (day as usize + first_weekday) % 7;
        if let Some(w) = self.weekend.filter(|_| weekday >= 5) {
            load *= w;
        }
        if let Some((at, rise, factor, half)) = self.spike {
            load *= surge(tod, at, rise, factor, half);
        }
        if let Some((at, rise, factor, length)) = self.batch {
            let into = (tod % 3600.0 - at).rem_euclid(3600.0);
            let up = if into < rise {
                into / rise
            } else if into < length {
                1.0
            } else {
                0.0
            };
            load *= 1.0 + (factor - 1.0) * up;
        }
        load
    }
}

/// A drawn seasonal trace: each second's load factor and its recurring part, what was drawn,
/// and when its pattern changed (with the period of what changed).
pub struct Drawn {
    pub load: Vec<f64>,
    pub pattern: Vec<f64>,
    pub about: String,
    pub change: Option<(usize, usize)>,
}

pub fn draw(rng: &mut Rng) -> Drawn {
    let business = (rng.uniform() < 0.7).then(|| {
        (
            between(rng, 6.0, 10.0),
            between(rng, 16.0, 22.0),
            between(rng, 0.5, 2.0),
        )
    });
    let mut regime = Regime {
        trough: between(rng, 0.1, 0.5),
        business,
        bell: (between(rng, 17.0, 22.0), between(rng, 1.5, 4.0)),
        weekend: (rng.uniform() < 0.5).then(|| between(rng, 0.3, 0.9)),
        spike: (rng.uniform() < 0.6).then(|| {
            (
                between(rng, 6.0, 21.0) * 3600.0,
                between(rng, 30.0, 300.0),
                log_between(rng, 2.0, 8.0),
                between(rng, 300.0, 1800.0),
            )
        }),
        batch: (rng.uniform() < 0.4).then(|| {
            (
                between(rng, 0.0, 3000.0),
                between(rng, 10.0, 60.0),
                between(rng, 1.5, 4.0),
                between(rng, 180.0, 900.0),
            )
        }),
    };
    let first_weekday = (rng.uniform() * 7.0) as usize;
    let seconds = (WARMUP_DAYS + 1) * DAY;
    let surprises: Vec<(f64, f64, f64, f64)> = (0..(rng.uniform() * 3.0) as usize)
        .map(|_| {
            (
                between(rng, 0.0, seconds as f64 - 3600.0),
                between(rng, 60.0, 600.0),
                log_between(rng, 2.0, 10.0),
                between(rng, 600.0, 3600.0),
            )
        })
        .collect();
    let mut about = format!(
        "{}{}{}{}",
        match regime.business {
            Some((o, c, _)) => format!("open {o:.0}h-{c:.0}h"),
            None => format!("evening peak {:.0}h", regime.bell.0),
        },
        regime
            .weekend
            .map_or(String::new(), |w| format!(", weekends {w:.1}x")),
        regime.spike.map_or(String::new(), |s| format!(
            ", {:.0}x spike at {:02.0}:{:02.0}",
            s.2,
            (s.0 / 3600.0).floor(),
            (s.0 % 3600.0 / 60.0).floor()
        )),
        regime
            .batch
            .map_or(String::new(), |b| format!(", hourly {:.1}x batch", b.2)),
    );
    if !surprises.is_empty() {
        about.push_str(&format!(", {} surprise(s)", surprises.len()));
    }
    let before = regime.clone();
    let change = (rng.uniform() < 0.3).then(|| {
        let at = WARMUP_DAYS * DAY + (between(rng, 0.0, 6.0) * 3600.0) as usize;
        let pick = rng.uniform();
        let period = if pick < 0.34 && regime.batch.is_some() {
            regime.batch = None;
            about.push_str("; the batches stop");
            3600
        } else if pick < 0.67 && regime.weekend.is_some() {
            regime.weekend = None;
            about.push_str("; the weekend dip stops");
            7 * DAY
        } else {
            let by = between(rng, 2.0, 6.0) * if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
            if let Some((o, c, r)) = regime.business {
                regime.business = Some((o + by, c + by, r));
            }
            regime.bell.0 += by;
            if let Some(s) = &mut regime.spike {
                s.0 = (s.0 + by * 3600.0).rem_euclid(DAY as f64 - 7200.0);
            }
            about.push_str(&format!("; the day moves {by:+.0}h"));
            DAY
        };
        (at, period)
    });
    let mut pattern = Vec::with_capacity(seconds);
    let mut load = Vec::with_capacity(seconds);
    for t in 0..seconds {
        let r = match change {
            Some((at, _)) if t >= at => &regime,
            _ => &before,
        };
        let p = r.at(t as f64, first_weekday);
        let s: f64 = surprises
            .iter()
            .map(|(s, r, f, h)| surge(t as f64, *s, *r, *f, *h) - 1.0)
            .sum();
        pattern.push(p);
        load.push(p * (1.0 + s));
    }
    Drawn {
        load,
        pattern,
        about,
        change,
    }
}
