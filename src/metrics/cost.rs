//! What a raw query costs the Prometheus it shares, from its parsed form: how far back it
//! reads and how many steps its subqueries evaluate. Over the admin's limits it is refused
//! before it is sent, with the limit and its flag named.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use promql_parser::parser::{self, Expr, Offset};

use super::limits::Limits;
use crate::api::PromDuration;
use crate::plan::QueryError;

/// A subquery without a step runs at Prometheus' global evaluation interval, which the
/// operator cannot see: its points are counted at this step (Prometheus' default is 1m).
const ASSUMED_EVALUATION_INTERVAL: Duration = Duration::from_secs(15);

type Checked = HashMap<(String, Limits, Duration), Result<(), QueryError>>;
/// Checked queries remembered, as scope.rs does: parsing costs more than an evaluation.
static CHECKED: LazyLock<Mutex<Checked>> = LazyLock::new(Mutex::default);
const REMEMBER_AT_MOST: usize = 16_384;

/// Whether `query`, as an instant query, stays within `limits`. A query that does not parse
/// is left to the scoping (or to Prometheus) to refuse.
pub fn check(query: &str, limits: &Limits) -> Result<(), QueryError> {
    check_range(query, limits, Duration::ZERO)
}

/// Whether a range read of `query` over `span` stays within `limits`. Prometheus evaluates
/// each subquery of a range read once over the whole span (from its range before the
/// start to the end), so the subquery's steps grow with the span: a `[5h:1s]` subquery is
/// 18,000 steps at an instant and 104,400 over a day's history.
pub fn check_range(query: &str, limits: &Limits, span: Duration) -> Result<(), QueryError> {
    let checked = || CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    let key = (query.to_string(), *limits, span);
    if let Some(hit) = checked().get(&key) {
        return hit.clone();
    }
    let result = match parser::parse(query) {
        Ok(expr) => within(&expr, limits, span),
        Err(_) => Ok(()),
    };
    let mut c = checked();
    if c.len() >= REMEMBER_AT_MOST {
        c.clear();
    }
    c.insert(key, result.clone());
    result
}

fn within(expr: &Expr, limits: &Limits, span: Duration) -> Result<(), QueryError> {
    let cost = cost(expr, limits, span)?;
    if cost.lookback > limits.max_lookback {
        return Err(QueryError::OverLimit(format!(
            "the query reads {} back; the limit is {} (--max-query-lookback)",
            show(cost.lookback),
            show(limits.max_lookback)
        )));
    }
    if cost.points > limits.max_subquery_points {
        let over = if span.is_zero() {
            String::new()
        } else {
            format!(" over a {} read", show(span))
        };
        return Err(QueryError::OverLimit(format!(
            "the query's subqueries evaluate {} steps{over}; the limit is {} (--max-subquery-points)",
            cost.points, limits.max_subquery_points
        )));
    }
    Ok(())
}

/// As PromQL writes it, in days where whole.
fn show(d: Duration) -> String {
    match d.as_secs() {
        s if s > 0 && s % 86_400 == 0 && d.subsec_nanos() == 0 => format!("{}d", s / 86_400),
        _ => {
            PromDuration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).to_string()
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Cost {
    /// How far before the evaluation time the query reads.
    lookback: Duration,
    /// Evaluation steps of its subqueries, nested ones multiplied, side by side ones added.
    points: u64,
}

impl Cost {
    /// Two parts of one query: it reads as far back as the further, and evaluates both
    /// parts' subqueries (twenty subqueries joined by `+` are twenty times one).
    fn and(self, other: Cost) -> Cost {
        Cost {
            lookback: self.lookback.max(other.lookback),
            points: self.points.saturating_add(other.points),
        }
    }
}

fn back(offset: &Option<Offset>) -> Duration {
    match offset {
        Some(Offset::Pos(d)) => *d,
        Some(Offset::Neg(_)) | None => Duration::ZERO,
    }
}

/// What `e` costs when read over `span` (zero: an instant query).
fn cost(e: &Expr, limits: &Limits, span: Duration) -> Result<Cost, QueryError> {
    let cost = |e: &Expr| cost(e, limits, span);
    Ok(match e {
        Expr::Aggregate(a) => {
            let inner = cost(&a.expr)?;
            match a.param.as_deref() {
                Some(p) => inner.and(cost(p)?),
                None => inner,
            }
        }
        Expr::Unary(u) => cost(&u.expr)?,
        Expr::Binary(b) => cost(&b.lhs)?.and(cost(&b.rhs)?),
        Expr::Paren(p) => cost(&p.expr)?,
        Expr::Call(c) => c.args.args.iter().try_fold(Cost::default(), |acc, a| {
            Ok::<_, QueryError>(acc.and(cost(a)?))
        })?,
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Cost::default(),
        Expr::VectorSelector(v) => Cost {
            lookback: back(&v.offset),
            points: 0,
        },
        Expr::MatrixSelector(m) => Cost {
            lookback: m.range + back(&m.vs.offset),
            points: 0,
        },
        Expr::Subquery(s) => {
            if let Some(step) = s.step
                && step < limits.min_subquery_step
            {
                return Err(QueryError::OverLimit(format!(
                    "a subquery steps every {}; the finest step allowed is {} (--min-subquery-step)",
                    show(step),
                    show(limits.min_subquery_step)
                )));
            }
            let step = s.step.unwrap_or(ASSUMED_EVALUATION_INTERVAL);
            // Over a read's span the subquery runs from its range before the start; nested
            // in it, each of its steps is taken as an instant (counted generously).
            let steps = ((s.range + span).as_millis() / step.as_millis().max(1)).max(1);
            let inner = self::cost(&s.expr, limits, Duration::ZERO)?;
            Cost {
                lookback: s.range + back(&s.offset) + inner.lookback,
                points: u64::try_from(steps)
                    .unwrap_or(u64::MAX)
                    .saturating_mul(inner.points.max(1)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(q: &str) -> String {
        match check(q, &Limits::default()) {
            Err(QueryError::OverLimit(m)) => m,
            other => panic!("{q}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn ordinary_queries_pass() {
        for q in [
            r#"sum(rate(http_requests_total{code=~"5.."}[5m]))"#,
            "avg_over_time((max(pg_cpu) > bool 0.7)[20s:1s])",
            "max_over_time(rate(x[1m])[1h:])",
            "count_over_time(jobs_published_rate[8d])",
            "x offset 1d",
            "sum(",
        ] {
            assert_eq!(check(q, &Limits::default()), Ok(()), "{q}");
        }
    }

    #[test]
    fn a_long_lookback_is_refused_naming_the_limit() {
        let m = refused(r#"count_over_time({__name__=~".+"}[30d])"#);
        assert!(
            m.contains("30d") && m.contains("--max-query-lookback"),
            "{m}"
        );
        // An offset reads further back, and nested ranges add up.
        assert!(refused("rate(x[1d] offset 14d)").contains("15d"));
        assert!(refused("max_over_time(rate(x[7d])[8d:1h])").contains("--max-query-lookback"));
        // Within a raised limit it passes.
        let wide = Limits {
            max_lookback: Duration::from_secs(40 * 86_400),
            ..Limits::default()
        };
        assert_eq!(check("rate(x[30d])", &wide), Ok(()));
    }

    #[test]
    fn fine_or_many_subquery_steps_are_refused() {
        let m = refused(r#"count_over_time({__name__=~".+"}[1d:1s])"#);
        assert!(
            m.contains("86400 steps") && m.contains("--max-subquery-points"),
            "{m}"
        );
        let m = refused("max_over_time(x[1m:100ms])");
        assert!(
            m.contains("100ms") && m.contains("--min-subquery-step"),
            "{m}"
        );
        // Nested subqueries multiply: 200 × 200 steps.
        let m = refused("max_over_time(max_over_time(x[200s:1s])[200m:1m])");
        assert!(m.contains("40000 steps"), "{m}");
        // Hidden in a binary operation or a function argument, still found.
        assert!(refused("up + on() group_left sum(count_over_time(x[1d:1s]))").contains("steps"));
        assert!(refused("clamp_max(x, scalar(count_over_time(y[1d:1s])))").contains("steps"));
    }

    #[test]
    fn subqueries_side_by_side_are_added_up() {
        let one = "max_over_time(x[3h:1s])";
        assert_eq!(check(one, &Limits::default()), Ok(()));
        let many = vec![one; 20].join(" + ");
        assert!(
            refused(&many).contains("216000 steps"),
            "{}",
            refused(&many)
        );
        let or = vec![one; 20].join(" or ");
        assert!(refused(&or).contains("--max-subquery-points"));
    }

    #[test]
    fn a_range_read_prices_its_subqueries_over_the_whole_span() {
        let q = "max_over_time(sum(x)[5h:1s])";
        let l = Limits::default();
        let hour = |h: u64| Duration::from_secs(h * 3600);
        // Instant: 18,000 steps, within 20,000; over a day's history 104,400.
        let l = Limits {
            max_subquery_points: 20_000,
            ..l
        };
        assert_eq!(check(q, &l), Ok(()));
        let m = match check_range(q, &l, hour(24)) {
            Err(QueryError::OverLimit(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(
            m.contains("104400 steps over a 1d read") && m.contains("--max-subquery-points"),
            "{m}"
        );
        // A read of the last few steps is as cheap as it really is.
        assert_eq!(check_range(q, &l, Duration::from_secs(60)), Ok(()));
        // A query without subqueries costs its series, not steps: any span passes.
        assert_eq!(check_range("sum(rate(x[5m]))", &l, hour(672)), Ok(()));
        // A coarse subquery over a week: 10,140 steps.
        assert_eq!(
            check_range("max_over_time(sum(x)[1h:1m])", &l, hour(168)),
            Ok(())
        );
    }
}
