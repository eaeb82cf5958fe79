//! M/M/c queueing: Erlang C and the response-time distribution of a web tier.

/// Probability an arrival waits (Erlang C) for `c` servers at offered load `a = λ/μ`.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let c_f = f64::from(c);
    if c == 0 || a >= c_f {
        return 1.0;
    }
    // Erlang B by its stable recurrence, then C from B.
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    let rho = a / c_f;
    b / (1.0 - rho + rho * b)
}

/// P(response time > t) in M/M/c: wait W (Erlang C, `pw`) plus an exponential service
/// time. `pw` does not depend on `t`, so a quantile search computes it once.
fn tail_given_wait(pw: f64, c: u32, lambda: f64, mu: f64, t: f64) -> f64 {
    let theta = f64::from(c) * mu - lambda;
    let service = (-mu * t).exp();
    if (theta - mu).abs() < 1e-9 {
        return service + pw * mu * t * (-mu * t).exp();
    }
    service + pw * mu / (theta - mu) * ((-mu * t).exp() - (-theta * t).exp())
}

/// P(response time ≤ t) at each of `bounds`; None when the queue is unstable (λ ≥ cμ).
pub fn response_cdf<const N: usize>(
    c: u32,
    lambda: f64,
    mu: f64,
    bounds: &[f64; N],
) -> Option<[f64; N]> {
    let pw = if lambda <= 0.0 {
        0.0
    } else if lambda >= f64::from(c) * mu {
        return None;
    } else {
        erlang_c(c, lambda / mu)
    };
    Some(bounds.map(|t| (1.0 - tail_given_wait(pw, c, lambda, mu, t)).clamp(0.0, 1.0)))
}

/// The `q` quantile of the response time; None when the queue is unstable (λ ≥ cμ).
pub fn response_quantile(c: u32, lambda: f64, mu: f64, q: f64) -> Option<f64> {
    if lambda <= 0.0 {
        return Some(-(1.0 - q).ln() / mu);
    }
    if lambda >= f64::from(c) * mu {
        return None;
    }
    let target = 1.0 - q;
    let pw = erlang_c(c, lambda / mu);
    let tail = |t: f64| tail_given_wait(pw, c, lambda, mu, t);
    let (mut lo, mut hi) = (0.0, 1.0 / mu);
    while tail(hi) > target {
        hi *= 2.0;
        if hi > 1e6 {
            return None;
        }
    }
    // 40 halvings: far below a microsecond, and half the work of 80.
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::rng::Rng;

    #[test]
    fn erlang_c_known_values() {
        // Textbook: c = 2, a = 1 → C = 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        // c = 1: C = ρ.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        assert_eq!(erlang_c(3, 3.5), 1.0);
    }

    /// A discrete-event M/M/c simulation (FCFS), for checking the analytic p95.
    fn simulate_p95(c: usize, lambda: f64, mu: f64, n: usize, seed: u64) -> f64 {
        let mut rng = Rng::new(seed);
        let mut free_at = vec![0.0f64; c];
        let mut t = 0.0;
        let mut responses = Vec::with_capacity(n);
        for i in 0..n + n / 10 {
            t += rng.exp(lambda);
            let (k, earliest) =
                free_at
                    .iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f64::INFINITY),
                        |acc, (k, f)| if f < acc.1 { (k, f) } else { acc },
                    );
            let start = t.max(earliest);
            let done = start + rng.exp(mu);
            free_at[k] = done;
            if i >= n / 10 {
                responses.push(done - t); // after a warm-up
            }
        }
        responses.sort_by(f64::total_cmp);
        responses[(responses.len() as f64 * 0.95) as usize]
    }

    #[test]
    fn p95_matches_a_discrete_event_simulation_within_5_percent() {
        for (c, lambda, mu) in [
            (1usize, 7.0, 10.0),
            (4, 30.0, 10.0),
            (8, 70.0, 10.0),
            (16, 100.0, 10.0),
        ] {
            let analytic = response_quantile(c as u32, lambda, mu, 0.95).unwrap();
            let simulated = simulate_p95(c, lambda, mu, 400_000, 42);
            let err = (analytic - simulated).abs() / simulated;
            assert!(
                err < 0.05,
                "c={c} λ={lambda}: analytic {analytic:.4} vs simulated {simulated:.4}"
            );
        }
    }

    #[test]
    fn the_distribution_agrees_with_its_quantile() {
        let (c, lambda, mu) = (8, 100.0, 16.0);
        let p95 = response_quantile(c, lambda, mu, 0.95).unwrap();
        let [below, at, above] = response_cdf(c, lambda, mu, &[p95 * 0.9, p95, p95 * 1.1]).unwrap();
        assert!((at - 0.95).abs() < 1e-6, "{at}");
        assert!(below < 0.95 && above > 0.95);
        assert_eq!(response_cdf(2, 40.0, 10.0, &[1.0]), None);
    }

    #[test]
    fn unstable_queues_have_no_quantile() {
        assert_eq!(response_quantile(2, 20.0, 10.0, 0.95), None);
        // No load: the service time's own quantile.
        let q = response_quantile(2, 0.0, 10.0, 0.95).unwrap();
        assert!((q - (20f64).ln() / 10.0).abs() < 1e-9);
    }
}
