//! Least-squares trends, for "response time creeping up under normal load".

/// Slope per second and its t statistic (slope / standard error).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    pub slope: f64,
    pub t_stat: f64,
    pub mean: f64,
    pub last: f64,
}

/// Ordinary least squares over `(seconds, value)` samples; None with fewer than 3 samples
/// or no spread in time.
pub fn trend(samples: &[(f64, f64)]) -> Option<Trend> {
    let n = samples.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mx = samples.iter().map(|s| s.0).sum::<f64>() / nf;
    let my = samples.iter().map(|s| s.1).sum::<f64>() / nf;
    let sxx: f64 = samples.iter().map(|s| (s.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = samples.iter().map(|s| (s.0 - mx) * (s.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = samples
        .iter()
        .map(|s| (s.1 - intercept - slope * s.0).powi(2))
        .sum();
    let se = (sse / (nf - 2.0) / sxx).sqrt();
    let t_stat = if se > 0.0 {
        slope / se
    } else if slope == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(slope)
    };
    let last = samples.last().map(|s| s.1).unwrap_or(my);
    Some(Trend {
        slope,
        t_stat,
        mean: my,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_line_has_its_slope_and_a_huge_t() {
        let s: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64 * 60.0, 0.1 + 0.001 * i as f64 * 60.0))
            .collect();
        let t = trend(&s).unwrap();
        assert!((t.slope - 0.001).abs() < 1e-12);
        assert!(t.t_stat > 1e6);
    }

    #[test]
    fn noise_without_trend_is_not_significant() {
        let ys = [0.20, 0.23, 0.19, 0.22, 0.18, 0.21, 0.20, 0.23, 0.19, 0.21];
        let s: Vec<(f64, f64)> = ys
            .iter()
            .enumerate()
            .map(|(i, y)| (i as f64 * 60.0, *y))
            .collect();
        let t = trend(&s).unwrap();
        assert!(t.t_stat.abs() < 2.0, "{t:?}");
    }

    #[test]
    fn too_few_samples() {
        assert!(trend(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
        assert!(trend(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]).is_none());
    }
}
