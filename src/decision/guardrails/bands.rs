//! Health bands of the leading indicators, and the audit verdict over them.

use serde::Serialize;

/// Where an indicator stands. Unknown counts as a finding: you can't fix what you can't see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Band {
    Healthy,
    Watch,
    Act,
    Unknown,
}

impl Band {
    /// For indicators where higher is worse: Healthy below `watch`, Act above `act`.
    pub fn classify(value: Option<f64>, watch: f64, act: f64) -> Band {
        match value {
            Some(v) if v.is_finite() => {
                if v > act {
                    Band::Act
                } else if v >= watch {
                    Band::Watch
                } else {
                    Band::Healthy
                }
            }
            _ => Band::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Band::Healthy => "Healthy",
            Band::Watch => "Watch",
            Band::Act => "Act",
            Band::Unknown => "Unknown",
        }
    }
}

/// The audit's overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every indicator Healthy.
    Solid,
    /// Some in Watch, none in Act or Unknown.
    Mixed,
    /// Any in Act, or any that cannot be read.
    NeedsAttention,
}

impl Verdict {
    pub fn of(bands: impl IntoIterator<Item = Band>) -> Verdict {
        let worst = bands.into_iter().max().unwrap_or(Band::Healthy);
        match worst {
            Band::Healthy => Verdict::Solid,
            Band::Watch => Verdict::Mixed,
            Band::Act | Band::Unknown => Verdict::NeedsAttention,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Solid => "Solid",
            Verdict::Mixed => "Mixed",
            Verdict::NeedsAttention => "NeedsAttention",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_follow_the_field_guidance() {
        // p95: healthy under 500ms, watch to 1s, act above.
        assert_eq!(Band::classify(Some(0.3), 0.5, 1.0), Band::Healthy);
        assert_eq!(Band::classify(Some(0.5), 0.5, 1.0), Band::Watch);
        assert_eq!(Band::classify(Some(1.0), 0.5, 1.0), Band::Watch);
        assert_eq!(Band::classify(Some(1.2), 0.5, 1.0), Band::Act);
        assert_eq!(Band::classify(None, 0.5, 1.0), Band::Unknown);
        assert_eq!(Band::classify(Some(f64::NAN), 0.5, 1.0), Band::Unknown);
    }

    #[test]
    fn verdict_is_the_worst_band_and_unknown_needs_attention() {
        use Band::*;
        assert_eq!(Verdict::of([Healthy, Healthy]), Verdict::Solid);
        assert_eq!(Verdict::of([Healthy, Watch]), Verdict::Mixed);
        assert_eq!(Verdict::of([Watch, Act]), Verdict::NeedsAttention);
        assert_eq!(Verdict::of([Healthy, Unknown]), Verdict::NeedsAttention);
        assert_eq!(Verdict::of([]), Verdict::Solid);
    }
}
