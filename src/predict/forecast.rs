//! The seasonal forecast: the busiest load of the next `ahead` steps, read from the same
//! moment of earlier periods, each brought to today's level (its recent load against the
//! same span of that period). The lower median over up to five earlier periods: one
//! period's surprise never drives it, and a pattern at another level (a quieter weekend, a
//! month of growth) is still a pattern.

/// Earlier periods a forecast reads.
pub const PERIODS: usize = 5;

/// Loads are floored at this share of the mean before taking ratios, so that an idle step
/// does not make every rise look infinite.
pub const FLOOR_SHARE: f64 = 0.05;

pub fn floor_of(values: &[f64]) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.iter().sum::<f64>() / finite.len().max(1) as f64 * FLOOR_SHARE
}

fn mean(v: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64)
}

/// What the forecast reads from a history.
pub struct Forecaster<'a> {
    pub values: &'a [f64],
    pub floor: f64,
    pub period: usize,
    /// The period to a fraction of a step: the k-th period back is this times k, rounded.
    pub exact: f64,
    /// Steps after the current one that the busiest load is taken over.
    pub ahead: usize,
    /// Steps of recent load that set today's level.
    pub level_steps: usize,
}

impl Forecaster<'_> {
    /// The busiest load of steps `at..=at + ahead`, knowing only steps up to `known`. None
    /// when no earlier period has the readings.
    pub fn peak(&self, at: usize, known: usize) -> Option<f64> {
        self.lower_median(at, known, self.ahead)
    }

    /// The load at step `at`, knowing only steps up to `known`.
    pub fn level(&self, at: usize, known: usize) -> Option<f64> {
        self.lower_median(at, known, 0)
    }

    fn lower_median(&self, at: usize, known: usize, ahead: usize) -> Option<f64> {
        let (v, p) = (self.values, self.period);
        if p == 0 {
            return None;
        }
        let w = self.level_steps.max(1);
        let recent = mean(v.get((known + 1).saturating_sub(w)..=known)?)?;
        let exact = if self.exact > 0.0 {
            self.exact
        } else {
            p as f64
        };
        let mut seen: Vec<f64> = (1..)
            .map(|k| (f64::from(k) * exact).round() as usize)
            .take_while(|back| *back <= at && *back <= known)
            .filter(|back| at - back + ahead <= known)
            .take(PERIODS)
            .filter_map(|back| {
                let then = mean(v.get((known - back + 1).saturating_sub(w)..=known - back)?)?;
                let busiest = v
                    .get(at - back..=at - back + ahead)?
                    .iter()
                    .copied()
                    .filter(|x| x.is_finite())
                    .fold(f64::NAN, f64::max);
                busiest
                    .is_finite()
                    .then(|| busiest * recent.max(self.floor) / then.max(self.floor))
            })
            .collect();
        if seen.is_empty() {
            return None;
        }
        seen.sort_by(f64::total_cmp);
        // The lower median: with two periods the smaller; a rise must be in most of them.
        Some(seen[(seen.len() - 1) / 2])
    }
}
