//! Runs a plan's queries through the shared batcher, all at once, into an Observation.

use futures::future::join_all;

use super::Prometheus;
use super::ask::ask;
use super::batch::{Batcher, Source};
use super::promql::Scope;
use crate::plan::{Observation, Query, QueryError};

/// Every query of one evaluation, concurrently. A failure is recorded on its key and never
/// stops the others.
pub async fn observe(
    batcher: &Batcher,
    prometheus: &Result<(Source, Prometheus), QueryError>,
    queries: &[Query],
    scope: &Scope<'_>,
) -> Observation {
    let runs = queries.iter().map(|q| async move {
        let result = match (prometheus, ask(q, scope)) {
            (Err(e), _) => Err(e.clone()),
            (_, Err(e)) => Err(e),
            (Ok((source, p)), Ok(a)) => batcher.answer(source, p, &a).await,
        };
        (q.key.clone(), result)
    });
    let mut obs = Observation::default();
    for (key, result) in join_all(runs).await {
        obs.insert(key, result);
    }
    obs
}
