//! The bursts families: short recurring bursts, as cron-driven clients and "everyone at :00"
//! traffic make them. Bursts of 1-10 minutes at 3-10x every 5-60 minutes, each start
//! jittered, each height varied, some missed. `bursts` plays four hours after two days of the
//! same bursts as history; `bursts-cold` plays the four hours with no history.

use super::draws::{between, log_between};
use super::rng::Rng;
use super::seasonal::DAY;

/// With history (not in `all`: the bursts repeat).
pub const BURSTS: &str = "bursts";
/// The same draws with no history before the played span.
pub const BURSTS_COLD: &str = "bursts-cold";

/// Days of history before the played span of `bursts`.
pub const HISTORY_DAYS: usize = 2;
/// The played span.
pub const PLAYED_SECONDS: usize = 4 * 3600;

/// One drawn schedule of bursts.
#[derive(Clone, Debug)]
struct Schedule {
    period: f64,
    phase: f64,
    length: f64,
    rise: f64,
    height: f64,
    /// Per burst: the start's jitter is drawn in 0..jitter seconds.
    jitter: f64,
    /// Per burst: the height is multiplied by a factor in 1/spread..spread.
    spread: f64,
    missed: f64,
}

impl Schedule {
    fn draw(rng: &mut Rng) -> Self {
        let period = log_between(rng, 5.0, 60.0) * 60.0;
        Schedule {
            period,
            phase: between(rng, 0.0, period),
            // A burst takes at most half its period: otherwise it is a plateau, not a burst.
            length: between(rng, 60.0, 600.0).min(period * 0.5),
            rise: between(rng, 5.0, 60.0),
            height: log_between(rng, 3.0, 10.0),
            jitter: between(rng, 0.0, 90.0),
            spread: between(rng, 1.0, 1.5),
            missed: between(rng, 0.0, 0.15),
        }
    }

    /// The multiplier of one burst `into` seconds after its start, at `height`.
    fn shape(&self, into: f64, height: f64) -> f64 {
        let up = if into < 0.0 || into >= self.length + self.rise {
            0.0
        } else if into < self.rise {
            into / self.rise
        } else if into < self.length {
            1.0
        } else {
            1.0 - (into - self.length) / self.rise
        };
        1.0 + (height - 1.0) * up
    }
}

/// A drawn trace: each second's load factor and its recurring part (nominal bursts, no
/// jitter, none missed), and what was drawn.
pub struct Drawn {
    pub load: Vec<f64>,
    pub pattern: Vec<f64>,
    pub warmup: usize,
    pub about: String,
}

/// Draws one case; `history` puts `HISTORY_DAYS` of the same bursts before the played span.
pub fn draw(rng: &mut Rng, history: bool) -> Drawn {
    let s = Schedule::draw(rng);
    let warmup = if history { HISTORY_DAYS * DAY } else { 0 };
    let seconds = warmup + PLAYED_SECONDS;
    let mut load = vec![1.0f64; seconds];
    let mut pattern = vec![1.0f64; seconds];
    let mut start = s.phase;
    while start < seconds as f64 {
        let nominal = start;
        let jitter = between(rng, 0.0, s.jitter);
        let height = s.height * s.spread.powf(between(rng, -1.0, 1.0));
        let missed = rng.uniform() < s.missed;
        let span = (s.length + s.rise) as usize + 1;
        let from = nominal as usize;
        for t in from..(from + span + s.jitter as usize + 1).min(seconds) {
            let t_f = t as f64;
            pattern[t] = pattern[t].max(s.shape(t_f - nominal, s.height));
            if !missed {
                load[t] = load[t].max(s.shape(t_f - nominal - jitter, height));
            }
        }
        start += s.period;
    }
    let about = format!(
        "{:.1}x bursts of {:.0}s every {:.1}min (rise {:.0}s, jitter {:.0}s, heights /{:.2}..x{:.2}, {:.0}% missed){}",
        s.height,
        s.length,
        s.period / 60.0,
        s.rise,
        s.jitter,
        s.spread,
        s.spread,
        s.missed * 100.0,
        if history { ", 2 days of history" } else { "" },
    );
    Drawn {
        load,
        pattern,
        warmup,
        about,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_recur_within_the_drawn_ranges_and_history_is_the_same_bursts() {
        for i in 0..40 {
            let d = draw(&mut Rng::new(i), true);
            assert_eq!(d.warmup, HISTORY_DAYS * DAY);
            assert_eq!(d.load.len(), d.warmup + PLAYED_SECONDS);
            let peak = d.pattern.iter().copied().fold(0.0, f64::max);
            assert!((3.0..=10.0).contains(&peak), "{}", d.about);
            // Bursts in the played span and in the history alike.
            let busy = |v: &[f64]| v.iter().filter(|x| **x > 2.0).count();
            let (past, played) = d.pattern.split_at(d.warmup);
            assert!(busy(played) > 60, "{}", d.about);
            assert!(busy(past) > 12 * busy(played) / 2, "{}", d.about);
            // Never above the highest drawn burst, never below the base.
            assert!(
                d.load.iter().all(|x| (1.0..=15.0).contains(x)),
                "{}",
                d.about
            );
        }
        let cold = draw(&mut Rng::new(3), false);
        assert_eq!((cold.warmup, cold.load.len()), (0, PLAYED_SECONDS));
    }
}
