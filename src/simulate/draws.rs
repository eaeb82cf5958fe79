//! Draws and shapes the generated trace families share.

use super::rng::Rng;

/// Uniform between `lo` and `hi`.
pub(super) fn between(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

/// Log-uniform: as likely 2x-4x as 20x-40x.
pub(super) fn log_between(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.uniform()).exp()
}

/// A surge from `start`: rises to `factor` over `rise` seconds, then decays with `half_life`.
pub(super) fn surge(t: f64, start: f64, rise: f64, factor: f64, half_life: f64) -> f64 {
    if t < start {
        1.0
    } else if t < start + rise {
        factor.powf((t - start) / rise)
    } else {
        1.0 + (factor - 1.0) * 0.5f64.powf((t - start - rise) / half_life)
    }
}
