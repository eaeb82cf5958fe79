//! Connection budget: `replicas × poolSize` of every workload sharing one database must stay
//! within its `max_connections` less a reserve. Scarce budget goes to the workloads under
//! the most pressure (worst latency or backlog ratio) first.

/// One workload's claim on a shared budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub name: String,
    pub pool_size: i32,
    pub current: i32,
    pub desired: i32,
    /// The largest value/target ratio of its signals: how badly it needs replicas.
    pub pressure: f64,
}

/// Connections usable by all claims: max_connections less the reserve fraction.
pub fn usable(max_connections: f64, reserve: f64) -> i64 {
    (max_connections * (1.0 - reserve.clamp(0.0, 1.0)))
        .floor()
        .max(0.0) as i64
}

/// Replicas allowed per claim, in the claims' order. Everyone first keeps what it already
/// has (up to its desire); if even that does not fit, everyone is cut in proportion. The rest
/// goes to the most pressed workloads first.
pub fn allocate(budget: i64, claims: &[Claim]) -> Vec<i32> {
    let pool = |c: &Claim| i64::from(c.pool_size.max(1));
    let mut alloc: Vec<i64> = claims
        .iter()
        .map(|c| i64::from(c.desired.min(c.current).max(0)))
        .collect();
    let base: i64 = claims.iter().zip(&alloc).map(|(c, a)| pool(c) * a).sum();
    if base > budget {
        let scale = budget.max(0) as f64 / base as f64;
        for a in alloc.iter_mut() {
            *a = (*a as f64 * scale).floor() as i64;
        }
    }
    let mut left = budget
        - claims
            .iter()
            .zip(&alloc)
            .map(|(c, a)| pool(c) * a)
            .sum::<i64>();
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by(|&a, &b| {
        claims[b]
            .pressure
            .total_cmp(&claims[a].pressure)
            .then(a.cmp(&b))
    });
    for i in order {
        let want = i64::from(claims[i].desired.max(0)) - alloc[i];
        if want <= 0 || left <= 0 {
            continue;
        }
        let extra = want.min(left / pool(&claims[i]));
        alloc[i] += extra;
        left -= extra * pool(&claims[i]);
    }
    alloc
        .into_iter()
        .map(|a| i32::try_from(a).unwrap_or(i32::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, pool: i32, current: i32, desired: i32, pressure: f64) -> Claim {
        Claim {
            name: name.into(),
            pool_size: pool,
            current,
            desired,
            pressure,
        }
    }

    #[test]
    fn everyone_gets_what_they_want_when_it_fits() {
        assert_eq!(usable(200.0, 0.1), 180);
        let claims = [claim("web", 10, 4, 6, 1.5), claim("worker", 5, 2, 4, 2.0)];
        assert_eq!(allocate(180, &claims), vec![6, 4]);
    }

    #[test]
    fn scarce_budget_goes_to_the_worst_pressure_first() {
        // 100 connections; both hold 4 replicas (60 used); 40 left.
        let claims = [claim("web", 10, 4, 8, 1.2), claim("api", 5, 4, 10, 3.0)];
        // api is under more pressure: it takes 6 more (30), web gets the last 10 (1 replica).
        assert_eq!(allocate(100, &claims), vec![5, 10]);
    }

    #[test]
    fn never_exceeds_the_budget_even_when_already_over() {
        let claims = [claim("a", 10, 10, 12, 1.0), claim("b", 10, 10, 10, 1.0)];
        let a = allocate(150, &claims);
        let used: i64 = a.iter().map(|r| i64::from(*r) * 10).sum();
        assert!(used <= 150, "{a:?}");
        // Both cut to 7 (140), the last 10 connections go to the first of equals.
        assert_eq!(a, vec![8, 7]);
    }

    #[test]
    fn scale_downs_are_not_blocked() {
        assert_eq!(allocate(10, &[claim("a", 10, 5, 1, 0.2)]), vec![1]);
    }
}
