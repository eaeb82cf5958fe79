//! Tenancy for raw PromQL: every vector selector of a user's query is given the policy's
//! namespace, the way prom-label-proxy enforces it, so a policy reads only its own namespace.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{self, Expr, VectorSelector};

use crate::plan::QueryError;

const LABEL: &str = "namespace";

/// Scoped queries remembered, by namespace then query text: every evaluation of every
/// policy renders its raw queries, and parsing PromQL (whose lexer builds regexes) cost more
/// than the rest of an evaluation. Bounded: forgotten all at once when full.
type Remembered = HashMap<String, HashMap<String, Result<String, QueryError>>>;
static REMEMBERED: LazyLock<Mutex<(usize, Remembered)>> = LazyLock::new(Mutex::default);
const REMEMBER_AT_MOST: usize = 16_384;

/// `query` with `namespace="<namespace>"` in every selector. A selector that names another
/// namespace, or a query that cannot be parsed, is refused.
pub fn scoped(query: &str, namespace: &str) -> Result<String, QueryError> {
    let remembered = || REMEMBERED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = remembered().1.get(namespace).and_then(|q| q.get(query)) {
        return hit.clone();
    }
    let result = scope(query, namespace);
    let mut r = remembered();
    if r.0 >= REMEMBER_AT_MOST {
        *r = Default::default();
    }
    let by_query = r.1.entry(namespace.to_string()).or_default();
    if by_query.insert(query.to_string(), result.clone()).is_none() {
        r.0 += 1;
    }
    result
}

fn scope(query: &str, namespace: &str) -> Result<String, QueryError> {
    let mut expr = parser::parse(query).map_err(|e| {
        QueryError::Unscoped(format!("cannot parse the query to scope it: {}", e.trim()))
    })?;
    scope_expr(&mut expr, namespace)?;
    Ok(expr.to_string())
}

fn scope_expr(e: &mut Expr, ns: &str) -> Result<(), QueryError> {
    match e {
        Expr::Aggregate(a) => {
            scope_expr(&mut a.expr, ns)?;
            if let Some(p) = a.param.as_mut() {
                scope_expr(p, ns)?;
            }
            Ok(())
        }
        Expr::Unary(u) => scope_expr(&mut u.expr, ns),
        Expr::Binary(b) => {
            scope_expr(&mut b.lhs, ns)?;
            scope_expr(&mut b.rhs, ns)
        }
        Expr::Paren(p) => scope_expr(&mut p.expr, ns),
        Expr::Subquery(s) => scope_expr(&mut s.expr, ns),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(v) => scope_selector(v, ns),
        Expr::MatrixSelector(m) => scope_selector(&mut m.vs, ns),
        Expr::Call(c) => c.args.args.iter_mut().try_for_each(|a| scope_expr(a, ns)),
        Expr::Extension(_) => Err(QueryError::Unscoped(
            "the query uses an extension Headroom cannot scope".into(),
        )),
    }
}

fn scope_selector(v: &mut VectorSelector, ns: &str) -> Result<(), QueryError> {
    let own = |m: &Matcher| m.op == MatchOp::Equal && m.value == ns;
    let groups = std::iter::once(&v.matchers.matchers).chain(&v.matchers.or_matchers);
    for m in groups.flatten().filter(|m| m.name == LABEL) {
        if !own(m) {
            return Err(QueryError::Unscoped(format!(
                "the query selects {m}; a policy reads only its own namespace ({ns})"
            )));
        }
    }
    let add = |ms: &mut Vec<Matcher>| {
        if !ms.iter().any(|m| m.name == LABEL) {
            ms.push(Matcher::new(MatchOp::Equal, LABEL, ns));
        }
    };
    add(&mut v.matchers.matchers);
    v.matchers.or_matchers.iter_mut().for_each(add);
    if v.matchers.or_matchers.is_empty() && v.matchers.matchers.is_empty() {
        v.matchers = Matchers::new(vec![Matcher::new(MatchOp::Equal, LABEL, ns)]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> String {
        match scoped(q, "shop") {
            Ok(s) => s,
            Err(e) => panic!("{q}: {e}"),
        }
    }

    #[test]
    fn every_selector_gets_the_namespace() {
        assert_eq!(
            ok(r#"sum(rabbitmq_queue_messages_ready{queue="emails"})"#),
            r#"sum(rabbitmq_queue_messages_ready{namespace="shop",queue="emails"})"#
        );
        let q = ok(
            r#"sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))"#,
        );
        assert_eq!(q.matches(r#"namespace="shop""#).count(), 2, "{q}");
        let q = ok("avg_over_time((max(pg_cpu) > bool 0.7)[30m:1m])");
        assert!(q.contains(r#"pg_cpu{namespace="shop"}"#), "{q}");
        // Its own namespace may be named.
        assert!(ok(r#"up{namespace="shop"}"#).contains(r#"namespace="shop""#));
    }

    #[test]
    fn another_namespace_or_garbage_is_refused() {
        for q in [
            r#"up{namespace="victim"}"#,
            r#"up{namespace=~".+"}"#,
            r#"sum(x) or histogram_quantile(0.95, sum by (le) (rate(h_bucket{namespace="victim"}[1m])))"#,
            r#"up{namespace!="shop"}"#,
            "sum(",
        ] {
            assert!(scoped(q, "shop").is_err(), "{q}");
            // Asked again (now remembered), still refused; and in another namespace, too.
            assert!(scoped(q, "shop").is_err(), "{q}");
        }
        // What is remembered for one namespace is never the answer for another.
        assert!(ok("up").contains(r#"namespace="shop""#));
        assert_eq!(
            scoped("up", "blog").ok().as_deref(),
            Some(r#"up{namespace="blog"}"#)
        );
        assert!(scoped(r#"up{namespace="blog"}"#, "blog").is_ok());
    }

    #[test]
    fn scoped_queries_parse_again() {
        let q = ok(
            r#"histogram_quantile(0.95, sum by (le) (rate(pg_query_duration_seconds_bucket[5m])))"#,
        );
        assert!(parser::parse(&q).is_ok(), "{q}");
    }
}
