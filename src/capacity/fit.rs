//! How usage grows with load, and whether the data can carry it: a line in load whose slope
//! may drift in time (a creeping regression makes each request cost more by the hour).

/// One reading: when (seconds), the load, and the usage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: f64,
    pub load: f64,
    pub usage: f64,
}

/// `usage = intercept + (slope + drift × hours) × load`, by least squares, with hours counted
/// back from the newest reading: `slope` is what a unit of load costs now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    pub intercept: f64,
    pub slope: f64,
    /// Change of the slope per hour.
    pub drift: f64,
    /// Hours between the oldest and the newest reading.
    pub hours: f64,
    /// Share of the usage's variance the line explains (0..1).
    pub r2: f64,
    pub points: usize,
    /// Highest load over lowest (10th over 90th percentile, so one outlier cannot pass).
    pub load_spread: f64,
}

/// Why no line was fitted: the estimate says Unknown and this.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Unfit {
    #[error("{have} readings over the calibration window; {need} needed")]
    TooFewPoints { have: usize, need: usize },
    #[error(
        "load varied only {spread:.2}x over the calibration window; {need:.1}x needed to see how usage grows with it"
    )]
    TooLittleVariation { spread: f64, need: f64 },
    #[error("usage follows load poorly (R² {r2:.2}; {need:.2} needed)")]
    PoorFit { r2: f64, need: f64 },
}

pub const MIN_POINTS: usize = 12;
pub const MIN_SPREAD: f64 = 1.3;
pub const MIN_R2: f64 = 0.6;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Solves the 3×3 system `a·x = b` (Gaussian elimination with pivoting); None if singular.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    let scale = a.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let top = a[col];
        for row in col + 1..3 {
            let k = a[row][col] / top[col];
            for (x, t) in a[row][col..].iter_mut().zip(&top[col..]) {
                *x -= k * t;
            }
            b[row] -= k * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let rest: f64 = (row + 1..3).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    Some(x)
}

/// Fits usage against load, refusing data that cannot tell how one grows with the other.
pub fn fit(points: &[Point]) -> Result<Fit, Unfit> {
    let newest = points
        .iter()
        .map(|p| p.at)
        .fold(f64::NEG_INFINITY, f64::max);
    let points: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|p| p.load.is_finite() && p.usage.is_finite() && p.at.is_finite() && p.load > 0.0)
        .map(|p| ((p.at - newest) / 3600.0, p.load, p.usage))
        .collect();
    let n = points.len();
    if n < MIN_POINTS {
        return Err(Unfit::TooFewPoints {
            have: n,
            need: MIN_POINTS,
        });
    }
    let mut loads: Vec<f64> = points.iter().map(|p| p.1).collect();
    loads.sort_by(f64::total_cmp);
    let spread = quantile(&loads, 0.9) / quantile(&loads, 0.1);
    if spread < MIN_SPREAD {
        return Err(Unfit::TooLittleVariation {
            spread,
            need: MIN_SPREAD,
        });
    }
    // Columns 1, load, load × hours: the normal equations.
    let row = |&(h, x, _): &(f64, f64, f64)| [1.0, x, x * h];
    let mut xtx = [[0.0; 3]; 3];
    let mut xty = [0.0; 3];
    for p in &points {
        let r = row(p);
        for i in 0..3 {
            for j in 0..3 {
                xtx[i][j] += r[i] * r[j];
            }
            xty[i] += r[i] * p.2;
        }
    }
    // Readings all at one instant leave the drift undetermined: fit without it.
    let [intercept, slope, drift] = solve3(xtx, xty).unwrap_or_else(|| {
        let nf = n as f64;
        let mx = points.iter().map(|p| p.1).sum::<f64>() / nf;
        let my = points.iter().map(|p| p.2).sum::<f64>() / nf;
        let sxx: f64 = points.iter().map(|p| (p.1 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.1 - mx) * (p.2 - my)).sum();
        let slope = sxy / sxx;
        [my - slope * mx, slope, 0.0]
    });
    let my = points.iter().map(|p| p.2).sum::<f64>() / n as f64;
    let syy: f64 = points.iter().map(|p| (p.2 - my).powi(2)).sum();
    let sres: f64 = points
        .iter()
        .map(|&(h, x, y)| (y - intercept - (slope + drift * h) * x).powi(2))
        .sum();
    // A flat usage explains nothing but is fitted perfectly: it does not grow with load.
    let r2 = if syy <= f64::EPSILON * n as f64 {
        1.0
    } else {
        (1.0 - sres / syy).clamp(0.0, 1.0)
    };
    if r2 < MIN_R2 {
        return Err(Unfit::PoorFit { r2, need: MIN_R2 });
    }
    let hours = -points.iter().map(|p| p.0).fold(0.0, f64::min);
    Ok(Fit {
        intercept,
        slope,
        drift,
        hours,
        r2,
        points: n,
        load_spread: spread,
    })
}

impl Fit {
    /// The factor on `load` at which usage reaches `limit`; None when usage does not grow
    /// with load (it never reaches it by traffic alone).
    pub fn factor_at(&self, load: f64, limit: f64) -> Option<f64> {
        (self.slope > 0.0 && load > 0.0).then(|| (limit - self.intercept) / (self.slope * load))
    }

    pub fn at(&self, load: f64) -> f64 {
        self.intercept + self.slope * load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(f: impl Fn(usize) -> (f64, f64)) -> Vec<Point> {
        (0..60)
            .map(|i| {
                let (load, usage) = f(i);
                Point {
                    at: 60.0 * i as f64,
                    load,
                    usage,
                }
            })
            .collect()
    }

    fn line(a: f64, b: f64) -> Vec<Point> {
        points(|i| {
            let x = 100.0 + 10.0 * (i % 20) as f64;
            // A small deterministic wobble, as real readings have.
            let wobble = if i % 2 == 0 { 0.01 } else { -0.01 };
            (x, a + b * x + wobble)
        })
    }

    #[test]
    fn a_line_is_recovered_and_its_crossing_found() {
        let f = fit(&line(0.1, 0.002)).unwrap_or_else(|e| panic!("{e}"));
        assert!((f.slope - 0.002).abs() < 1e-4, "{f:?}");
        assert!((f.intercept - 0.1).abs() < 0.02, "{f:?}");
        assert!(f.r2 > 0.99);
        // 0.1 + 0.002 × 150 = 0.4 now; 0.7 is reached at 300, twice the load.
        let k = f.factor_at(150.0, 0.7).unwrap_or(0.0);
        assert!((k - 2.0).abs() < 0.05, "{k}");
    }

    #[test]
    fn data_that_cannot_tell_how_usage_grows_is_refused() {
        assert!(matches!(
            fit(&line(0.1, 0.002)[..5]),
            Err(Unfit::TooFewPoints { have: 5, .. })
        ));
        let flat_load = points(|i| (100.0, 0.3 + i as f64 * 1e-3));
        assert!(matches!(
            fit(&flat_load),
            Err(Unfit::TooLittleVariation { .. })
        ));
        let noise = points(|i| (100.0 + 5.0 * i as f64, if i % 3 == 0 { 0.9 } else { 0.1 }));
        assert!(matches!(fit(&noise), Err(Unfit::PoorFit { .. })));
    }

    #[test]
    fn a_cost_per_request_that_creeps_up_is_taken_at_its_newest() {
        // Each request costs 1 % more every minute: 0.002 an hour ago, 0.002 × 1.01^59 now.
        let creeping = points(|i| {
            let x = 100.0 + 10.0 * (i % 20) as f64;
            (x, 0.1 + 0.002 * 1.01_f64.powi(i as i32) * x)
        });
        let f = fit(&creeping).unwrap_or_else(|e| panic!("{e}"));
        let now = 0.002 * 1.01_f64.powi(59);
        assert!((f.slope / now - 1.0).abs() < 0.05, "{f:?} vs {now}");
        assert!(f.drift > 0.0 && f.r2 > 0.99, "{f:?}");
    }

    #[test]
    fn usage_that_does_not_grow_with_load_never_breaks_by_traffic() {
        let flat = points(|i| (100.0 + 5.0 * (i % 20) as f64, 0.3));
        let f = fit(&flat).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.factor_at(150.0, 0.7), None);
    }
}
