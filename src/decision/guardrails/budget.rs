//! Connection budget: `replicas × poolSize` of every workload sharing one database must stay
//! within its `max_connections` less a reserve. Scarce budget goes to the workloads whose
//! need is least met, and nobody scales up into connections another workload still holds.

/// One workload's claim on a shared budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub name: String,
    pub pool_size: i32,
    /// Replicas it has, or may have: what its connections are counted at now.
    pub held: i32,
    /// Replicas it would run without the budget.
    pub need: i32,
}

/// A shared connection budget as one workload sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// Connections usable by all claims (after the reserve); `None` when its max_connections
    /// could not be read: growth is then held, since it may already be used up.
    pub usable: Option<i64>,
    /// This workload's name in the ledger, and its pool per replica.
    pub name: String,
    pub pool_size: i32,
    /// What the others sharing the database hold and need.
    pub others: Vec<Claim>,
}

/// Connections usable by all claims: max_connections less the reserve fraction.
pub fn usable(max_connections: f64, reserve: f64) -> i64 {
    let v = (max_connections * (1.0 - reserve.clamp(0.0, 1.0))).floor();
    if v.is_finite() {
        v.clamp(0.0, 1e15) as i64
    } else {
        0
    }
}

fn pool(c: &Claim) -> i64 {
    i64::from(c.pool_size.max(1))
}

/// The fair share of each claim, in the claims' order: replicas are handed out one at a time
/// to the claim whose need is least met (need / replicas so far), ties by name, until the
/// budget or every need is used up. The result does not depend on who computes it.
pub fn allocate(budget: i64, claims: &[Claim]) -> Vec<i32> {
    let need = |c: &Claim| i64::from(c.need.max(0));
    // Enough for everyone: each gets its need (the common case, in one pass).
    let total: i64 = claims
        .iter()
        .map(|c| need(c).saturating_mul(pool(c)))
        .fold(0, i64::saturating_add);
    if total <= budget {
        return claims.iter().map(|c| c.need.max(0)).collect();
    }
    // Scarce: the same hand-out, from a heap, in O(replicas × log claims).
    let mut alloc = vec![0i64; claims.len()];
    let mut left = budget;
    // Ties go to the smaller name: ranked once, so the heap compares integers.
    let mut by_name: Vec<usize> = (0..claims.len()).collect();
    by_name.sort_by(|&a, &b| claims[a].name.cmp(&claims[b].name));
    let mut rank = vec![0usize; claims.len()];
    for (r, &i) in by_name.iter().enumerate() {
        rank[i] = r;
    }
    let mut heap: std::collections::BinaryHeap<Turn> = claims
        .iter()
        .enumerate()
        .filter(|(_, c)| need(c) > 0)
        .map(|(i, c)| Turn::new(i, c, 0, rank[i]))
        .collect();
    while let Some(t) = heap.pop() {
        let c = &claims[t.index];
        // `left` only shrinks: a claim whose pool no longer fits never fits again.
        if pool(c) > left {
            continue;
        }
        alloc[t.index] += 1;
        left -= pool(c);
        if alloc[t.index] < need(c) {
            heap.push(Turn::new(t.index, c, alloc[t.index], t.rank));
        }
    }
    alloc
        .into_iter()
        .map(|a| i32::try_from(a).unwrap_or(i32::MAX))
        .collect()
}

/// A claim's next replica: the least-met need first, ties to the smaller name (rank).
struct Turn {
    index: usize,
    unmet: f64,
    rank: usize,
}

impl Turn {
    fn new(index: usize, c: &Claim, held: i64, rank: usize) -> Self {
        Self {
            index,
            unmet: f64::from(c.need) / (held + 1) as f64,
            rank,
        }
    }
}

impl Ord for Turn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.unmet
            .total_cmp(&other.unmet)
            .then_with(|| other.rank.cmp(&self.rank))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Turn {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Turn {}

/// The replicas `me` may set now: its fair share, but never more than the connections the
/// others do not hold right now allow. Scale-downs always pass.
pub fn cap(budget: i64, me: &Claim, others: &[Claim]) -> i32 {
    let mut all = vec![me.clone()];
    all.extend_from_slice(others);
    let share = allocate(budget, &all).first().copied().unwrap_or(0);
    if share <= me.held {
        return share;
    }
    let others_hold: i64 = others
        .iter()
        .map(|c| pool(c) * i64::from(c.held.max(0)))
        .sum();
    let free_for_me = (budget - others_hold).max(0) / pool(me);
    share.min(i32::try_from(free_for_me).unwrap_or(i32::MAX).max(me.held))
}

/// Caps the proposal at this workload's share; returns its claim after the decision.
/// `need` is what it would run without the budget (after the other caps).
pub fn apply(s: &mut super::step::Step, b: &Budget, need: i32) -> Claim {
    let me = Claim {
        name: b.name.clone(),
        pool_size: b.pool_size,
        held: s.current,
        need,
    };
    // The budget stops growth; it never takes replicas a workload already runs.
    let (cap, why) = match b.usable {
        Some(usable) => {
            let cap = cap(usable, &me, &b.others).max(s.current.min(s.desired));
            (cap, format!("connection budget allows {cap} replicas"))
        }
        None => (
            s.current,
            format!(
                "connection budget unknown (max_connections not read): holding {} replicas",
                s.current
            ),
        ),
    };
    s.cap_at(cap, crate::decision::Limit::ConnectionBudget, why.clone());
    let active = s.desired >= cap;
    let finding = match b.usable {
        Some(_) => format!("the shared connection budget allows {cap} replicas"),
        None => why,
    };
    s.found("ConnectionBudget", active, finding);
    Claim {
        held: s.current.max(s.desired.min(s.max)),
        ..me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, pool: i32, held: i32, need: i32) -> Claim {
        Claim {
            name: name.into(),
            pool_size: pool,
            held,
            need,
        }
    }

    /// The hand-out one replica at a time, as specified: the oracle for the fast one.
    fn allocate_slowly(budget: i64, claims: &[Claim]) -> Vec<i32> {
        let mut alloc = vec![0i64; claims.len()];
        let mut left = budget;
        loop {
            let next = (0..claims.len())
                .filter(|&i| {
                    alloc[i] < i64::from(claims[i].need.max(0)) && pool(&claims[i]) <= left
                })
                .max_by(|&a, &b| {
                    let ua = f64::from(claims[a].need) / (alloc[a] + 1) as f64;
                    let ub = f64::from(claims[b].need) / (alloc[b] + 1) as f64;
                    ua.total_cmp(&ub)
                        .then_with(|| claims[b].name.cmp(&claims[a].name))
                });
            let Some(i) = next else { break };
            alloc[i] += 1;
            left -= pool(&claims[i]);
        }
        alloc.into_iter().map(|a| a as i32).collect()
    }

    proptest::proptest! {
        #[test]
        fn the_fast_hand_out_matches_the_specified_one(
            budget in 0i64..400,
            raw in proptest::collection::vec((1i32..12, -2i32..15), 0..8),
        ) {
            let claims: Vec<Claim> = raw
                .iter()
                .enumerate()
                .map(|(i, (pool, need))| claim(&format!("c{i}"), *pool, 0, *need))
                .collect();
            proptest::prop_assert_eq!(allocate(budget, &claims), allocate_slowly(budget, &claims));
        }
    }

    #[test]
    fn everyone_gets_what_they_need_when_it_fits() {
        assert_eq!(usable(200.0, 0.1), 180);
        let claims = [claim("web", 10, 4, 6), claim("worker", 5, 2, 4)];
        assert_eq!(allocate(180, &claims), vec![6, 4]);
    }

    #[test]
    fn scarce_budget_goes_where_need_is_least_met() {
        // 90 connections of 10 each: 9 replicas for needs of 8 and 6.
        let a = allocate(90, &[claim("api", 10, 1, 8), claim("jobs", 10, 1, 6)]);
        assert_eq!(a.iter().sum::<i32>(), 9);
        assert_eq!(a, vec![5, 4]);
        // The same split whoever computes it.
        assert_eq!(
            allocate(90, &[claim("jobs", 10, 1, 6), claim("api", 10, 1, 8)]),
            vec![4, 5]
        );
    }

    #[test]
    fn nobody_scales_up_into_connections_others_still_hold() {
        // api holds 9 (all of it); jobs' fair share is 4, but none is free until api shrinks.
        let jobs = claim("jobs", 10, 1, 6);
        assert_eq!(cap(90, &jobs, &[claim("api", 10, 9, 8)]), 1);
        // api shrinks to its share of 5, after which jobs may grow to its 4.
        assert_eq!(
            cap(90, &claim("api", 10, 9, 8), std::slice::from_ref(&jobs)),
            5
        );
        assert_eq!(cap(90, &jobs, &[claim("api", 10, 5, 8)]), 4);
    }

    #[test]
    fn never_exceeds_the_budget_and_scale_downs_pass() {
        let a = allocate(150, &[claim("a", 10, 10, 12), claim("b", 10, 10, 10)]);
        assert!(
            a.iter().map(|r| i64::from(*r) * 10).sum::<i64>() <= 150,
            "{a:?}"
        );
        assert_eq!(cap(10, &claim("a", 10, 5, 1), &[]), 1);
    }
}
