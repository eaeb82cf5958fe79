//! A load's history, kept compact: one 16-bit code per step, scaled to the largest value seen,
//! so a week at five-minute steps is 4 KB a policy.

/// Marks a step with no reading.
const MISSING: u16 = u16::MAX;
/// The largest code of a reading.
const TOP: f64 = (u16::MAX - 1) as f64;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Unix seconds at which the first step starts.
    start: i64,
    step: u32,
    /// What the top code means; grows with the largest reading.
    scale: f64,
    codes: Vec<u16>,
    capacity: usize,
}

impl History {
    /// Empty, keeping at most `capacity` steps of `step_seconds` each.
    pub fn new(step_seconds: u32, capacity: usize) -> Self {
        History {
            start: 0,
            step: step_seconds.max(1),
            scale: 0.0,
            codes: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn step_seconds(&self) -> u32 {
        self.step
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Unix seconds just after the last step (where the next one starts).
    pub fn end(&self) -> i64 {
        self.start + self.codes.len() as i64 * i64::from(self.step)
    }

    /// Memory held by the readings.
    pub fn bytes(&self) -> usize {
        self.codes.capacity() * 2
    }

    /// Records the step starting at `at` (Unix seconds, rounded down to a step). Steps
    /// between the last one and this one are missing; a step already recorded is replaced.
    /// Negative and non-finite readings are missing.
    pub fn record(&mut self, at: i64, value: f64) {
        let step = i64::from(self.step);
        let at = at.div_euclid(step) * step;
        if self.codes.is_empty() {
            self.start = at;
        }
        if at < self.start {
            return;
        }
        let index = usize::try_from((at - self.start) / step).unwrap_or(usize::MAX);
        if index >= self.codes.len() + self.capacity {
            // Far past what is kept: start again from here.
            self.codes.clear();
            self.start = at;
            return self.record(at, value);
        }
        while self.codes.len() <= index {
            self.codes.push(MISSING);
        }
        let code = self.encode(value);
        if let Some(c) = self.codes.get_mut(index) {
            *c = code;
        }
        let over = self.codes.len().saturating_sub(self.capacity);
        if over > 0 {
            self.codes.drain(..over);
            self.start += over as i64 * step;
        }
    }

    fn encode(&mut self, value: f64) -> u16 {
        if !value.is_finite() || value < 0.0 {
            return MISSING;
        }
        if value > self.scale {
            // Room for growth, so that rescaling is rare.
            let scale = value * 1.25;
            if self.scale > 0.0 {
                let factor = self.scale / scale;
                for c in self.codes.iter_mut().filter(|c| **c != MISSING) {
                    *c = (f64::from(*c) * factor).round() as u16;
                }
            }
            self.scale = scale;
        }
        if self.scale <= 0.0 {
            return 0;
        }
        (value / self.scale * TOP).round().clamp(0.0, TOP) as u16
    }

    /// The readings, oldest first; NaN where a step is missing.
    pub fn values(&self) -> Vec<f64> {
        self.codes
            .iter()
            .map(|c| {
                if *c == MISSING {
                    f64::NAN
                } else {
                    f64::from(*c) / TOP * self.scale
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_come_back_within_a_ten_thousandth_of_the_largest() {
        let mut h = History::new(300, 10);
        h.record(1_000, 5.0);
        h.record(1_300, 200.0);
        h.record(1_900, 50.0);
        let v = h.values();
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(
            (v[0] - 5.0).abs() < 0.02 && (v[1] - 200.0).abs() < 0.02,
            "{v:?}"
        );
        assert!(v[2].is_nan(), "a step without a reading is missing");
        assert!((v[3] - 50.0).abs() < 0.02);
        // Steps start on multiples of the step.
        assert_eq!(h.end(), 900 + 4 * 300);
    }

    #[test]
    fn only_the_newest_steps_are_kept_and_bad_readings_are_missing() {
        let mut h = History::new(60, 3);
        for i in 0..5 {
            h.record(i * 60, i as f64);
        }
        h.record(5 * 60, -1.0);
        let v = h.values();
        assert_eq!(v.len(), 3);
        assert!((v[0] - 3.0).abs() < 1e-3 && (v[1] - 4.0).abs() < 1e-3 && v[2].is_nan());
        // A jump far ahead starts again.
        h.record(100 * 60, 7.0);
        assert_eq!(h.len(), 1);
    }
}
