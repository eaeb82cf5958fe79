//! Predictive scaling: learns the recurring pattern of a policy's load (by the day, the week,
//! the hour) from its history, backtests it, and says how much the load will rise over the
//! next horizon. Pure, like the decision engine: the operator and the simulator bring the
//! history and the time. It only ever adds capacity, and it switches itself off where there
//! is no pattern, or where the pattern stopped holding.

mod backtest;
mod forecast;
mod history;
mod period;
mod short;

pub use backtest::{Backtest, RISE};
pub use history::History;
pub use period::Period;
pub use short::{Histories, SHORT_POINTS, SHORT_SPAN_SECONDS, SHORT_STEP_SECONDS, learn_all};

/// How a policy learns; defaults in `Settings::default`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// How far ahead capacity must be ready: pod start-up plus the metrics' lag, seconds.
    pub horizon_seconds: f64,
    /// Least backtest skill (1 - error / naive error) for the forecast to act.
    pub min_skill: f64,
    /// Least autocorrelation for a period to count.
    pub min_strength: f64,
    /// Shortest period, in steps.
    pub min_period_steps: usize,
    /// How long a learned outlook is used, seconds: past it nothing is predicted.
    pub valid_seconds: f64,
    /// Largest rise it will size for, as a ratio to the load now.
    pub max_rise: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            horizon_seconds: 300.0,
            min_skill: 0.2,
            min_strength: 0.3,
            min_period_steps: 4,
            valid_seconds: 3.0 * 3600.0,
            max_rise: 20.0,
        }
    }
}

/// What was learned from one history: the period, how well it forecast, and the rises
/// ahead. `trusted` says whether it may act.
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    pub period_seconds: Option<f64>,
    pub strength: Option<f64>,
    pub backtest: Option<Backtest>,
    pub trusted: bool,
    /// One line for status: what was found, or why nothing acts.
    pub summary: String,
    /// Unix seconds of the first step the forecast covers.
    pub from: i64,
    pub step_seconds: u32,
    /// For each step from `from`: the busiest load expected from it to the horizon.
    pub peaks: Vec<f32>,
    /// For each step from the one before `from`: the load expected in it.
    pub levels: Vec<f32>,
    /// The least rise worth acting on: three times the noise of a step's change, at least
    /// `RISE`. A smaller one is the history's noise, not its pattern.
    pub min_rise: f64,
    /// A trusted forecast learned at the other resolution: the outlook is the larger rise of
    /// the two (a daily peak and bursts every few minutes both come).
    pub also: Option<Box<Learned>>,
}

/// What the forecast says at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outlook {
    /// The busiest load expected from now to the horizon.
    pub peak: f64,
    /// The load expected now: the least of this step's and the one before.
    pub level: f64,
    /// The next peak of the expected load after this step: Unix seconds and the load.
    pub next_peak: Option<(i64, f64)>,
    /// The least rise worth acting on, and the period, of the forecast this came from.
    pub min_rise: f64,
    pub period_seconds: Option<f64>,
}

impl Outlook {
    /// The period of the forecast this came from, as a duration ("12m").
    pub fn period(&self) -> Option<String> {
        self.period_seconds.map(human)
    }
}

impl Learned {
    /// Nothing learned yet.
    pub fn nothing(why: impl Into<String>) -> Self {
        Learned {
            period_seconds: None,
            strength: None,
            backtest: None,
            trusted: false,
            summary: why.into(),
            from: 0,
            step_seconds: 1,
            peaks: vec![],
            levels: vec![],
            min_rise: 1.0 + RISE,
            also: None,
        }
    }

    /// The outlook at `unix`: this forecast's or the other resolution's, whichever expects
    /// the larger rise; None outside what was learned.
    pub fn at(&self, unix: i64) -> Option<Outlook> {
        let rise = |o: &Outlook| o.peak / o.level.max(f64::MIN_POSITIVE);
        match (
            self.own_at(unix),
            self.also.as_ref().and_then(|a| a.own_at(unix)),
        ) {
            (Some(a), Some(b)) if rise(&b) > rise(&a) => Some(b),
            (None, b) => b,
            (a, _) => a,
        }
    }

    fn own_at(&self, unix: i64) -> Option<Outlook> {
        let step = i64::from(self.step_seconds.max(1));
        let index = usize::try_from((unix - self.from).div_euclid(step)).ok()?;
        let peak = f64::from(*self.peaks.get(index)?);
        if !peak.is_finite() {
            return None;
        }
        // `levels` starts a step earlier than `peaks`.
        let here = f64::from(*self.levels.get(index + 1)?);
        if !here.is_finite() {
            return None;
        }
        let next_peak = self
            .levels
            .iter()
            .enumerate()
            .skip(index + 2)
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .filter(|(_, l)| f64::from(**l) > here * (1.0 + RISE))
            .map(|(i, l)| (self.from + (i as i64 - 1) * step, f64::from(*l)));
        // The step a rise lands in averages the rise in: the step before tells the level it
        // rises from, so a rise is still seen coming in its own step.
        let before = f64::from(*self.levels.get(index)?).min(here);
        Some(Outlook {
            peak,
            level: if before.is_finite() { before } else { here },
            next_peak,
            min_rise: self.min_rise,
            period_seconds: self.period_seconds,
        })
    }

    /// The period found, as a duration ("24h"), for messages and status.
    pub fn period(&self) -> Option<String> {
        self.period_seconds.map(human)
    }

    /// Memory held.
    pub fn bytes(&self) -> usize {
        (self.peaks.capacity() + self.levels.capacity()) * 4
            + self.summary.capacity()
            + self.also.as_ref().map_or(0, |a| a.bytes())
    }
}

/// The standard deviation of a step's change in log load, from its median absolute value
/// (robust: the pattern's own rises are few).
fn step_noise(values: &[f64], floor: f64) -> f64 {
    let mut changes: Vec<f64> = values
        .windows(2)
        .filter(|w| w[0].is_finite() && w[1].is_finite())
        .map(|w| (w[1].max(floor) / w[0].max(floor)).ln().abs())
        .collect();
    if changes.is_empty() {
        return 0.0;
    }
    changes.sort_by(f64::total_cmp);
    changes[changes.len() / 2] / 0.674
}

/// A correlation weaker than this is noise, not worth naming in status.
const SHOWN_STRENGTH: f64 = 0.3;

/// `seconds` rounded down to a few marks (5m, 10m, 30m, 1h, 3h, 6h, 12h, then days and
/// weeks): a history growing every refresh changes its text a dozen times, not every time.
fn coarse(seconds: f64) -> f64 {
    const MARKS: [f64; 14] = [
        300.0,
        600.0,
        1800.0,
        3600.0,
        10_800.0,
        21_600.0,
        43_200.0,
        86_400.0,
        172_800.0,
        259_200.0,
        432_000.0,
        604_800.0,
        1_209_600.0,
        2_419_200.0,
    ];
    MARKS
        .iter()
        .rev()
        .find(|&&m| m <= seconds)
        .copied()
        .unwrap_or(seconds)
}

fn human(seconds: f64) -> String {
    crate::api::PromDuration::from_secs(seconds.max(0.0).round() as u64).to_string()
}

/// The least span whose skill tells whether the pattern still holds: an hour, so that one
/// missed burst of a pattern every few minutes does not switch it off (and at least a period).
fn recent_steps(step: f64) -> usize {
    (3600.0 / step.max(1.0)).ceil() as usize
}

/// Learns from `history` (its steps end now): the period, the backtest, and the rises for
/// the next `settings.valid_seconds`.
pub fn learn(history: &History, settings: &Settings) -> Learned {
    let values = history.values();
    let step = f64::from(history.step_seconds());
    let ahead = ((settings.horizon_seconds / step).ceil() as usize).max(1);
    let Some(p) = period::detect(
        &values,
        step,
        settings.min_period_steps,
        settings.min_strength,
    ) else {
        // Status text: only what changes with the load, not with time alone (each refresh
        // would write status again), so the history's length is shown coarsely and a weak
        // correlation, which wanders with noise, not at all.
        let strongest = period::strongest(&values, settings.min_period_steps)
            .filter(|p| p.strength >= SHOWN_STRENGTH)
            .map_or(String::new(), |p| {
                format!(
                    " (strongest autocorrelation {:.1} at {})",
                    p.strength,
                    human(p.steps as f64 * step)
                )
            });
        return Learned::nothing(format!(
            "no recurring pattern in {} of history{strongest}",
            human(coarse(values.len() as f64 * step))
        ));
    };
    let floor = forecast::floor_of(&values);
    let f = forecast::Forecaster {
        values: &values,
        floor,
        period: p.steps,
        exact: p.exact,
        ahead,
        level_steps: (p.steps / 8).clamp(1, 12),
    };
    let period_seconds = p.exact * step;
    // Held back: the last day, or the last period if longer; at least two periods before it.
    let span = p
        .steps
        .max((86_400.0 / step) as usize)
        .min(values.len().saturating_sub(2 * p.steps));
    let mut learned = Learned::nothing("");
    learned.period_seconds = Some(period_seconds);
    learned.strength = Some(p.strength);
    learned.step_seconds = history.step_seconds();
    learned.from = history.end();
    let found = format!(
        "{} period (strength {:.2})",
        human(period_seconds),
        p.strength
    );
    if span < p.steps {
        learned.summary = format!("{found}: needs three periods of history to backtest");
        return learned;
    }
    let min_rise = (3.0 * step_noise(&values, floor)).exp().max(1.0 + RISE);
    let Some(bt) = backtest::backtest(&f, span, min_rise, recent_steps(step)) else {
        learned.summary = format!(
            "{found}: no rise in the last {} to forecast",
            human(span as f64 * step)
        );
        return learned;
    };
    learned.backtest = Some(bt);
    learned.min_rise = min_rise;
    let recent_ok = bt.recent_skill.is_none_or(|s| s >= 0.0);
    learned.trusted = bt.skill >= settings.min_skill && recent_ok;
    let verdict = if learned.trusted {
        "acting".to_string()
    } else if !recent_ok {
        "off: the last period broke the pattern".into()
    } else {
        format!("off: skill under {:.2}", settings.min_skill)
    };
    learned.summary = format!(
        "{found}; backtest skill {:.2} over {} rises in {} (latest telling period {}); {verdict}",
        bt.skill,
        bt.moments,
        human(span as f64 * step),
        bt.recent_skill.map_or("none".into(), |s| format!("{s:.2}")),
    );
    let (n, known) = (values.len(), values.len().saturating_sub(1));
    let steps = (settings.valid_seconds / step).ceil() as usize + 1;
    let cap = |x: Option<f64>| x.unwrap_or(f64::NAN) as f32;
    learned.peaks = (n..n + steps).map(|at| cap(f.peak(at, known))).collect();
    learned.levels = (n.saturating_sub(1)..n + steps)
        .map(|at| cap(f.level(at, known)))
        .collect();
    learned
}

#[cfg(test)]
mod tests;
