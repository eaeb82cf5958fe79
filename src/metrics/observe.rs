//! Runs a plan's queries against Prometheus, all at once, into an Observation.

use futures::future::join_all;

use super::Prometheus;
use super::promql::{Scope, render};
use crate::plan::{Observation, Query, QueryError, Sample, Shape};

/// Every query of one evaluation, concurrently. A failure is recorded on its key and never
/// stops the others.
pub async fn observe(
    prometheus: &Result<Prometheus, QueryError>,
    queries: &[Query],
    scope: &Scope<'_>,
) -> Observation {
    let runs = queries.iter().map(|q| async move {
        let result = match (prometheus, render(&q.measure, scope)) {
            (Err(e), _) => Err(e.clone()),
            (_, Err(e)) => Err(e),
            (Ok(p), Ok(promql)) => match q.shape {
                Shape::Instant => p.scalar(&promql).await.map(Sample::Value),
                Shape::Range {
                    span_seconds,
                    step_seconds,
                } => p
                    .range(&promql, span_seconds, step_seconds)
                    .await
                    .map(Sample::Series),
            },
        };
        (q.key.clone(), result)
    });
    let mut obs = Observation::default();
    for (key, result) in join_all(runs).await {
        obs.insert(key, result);
    }
    obs
}
