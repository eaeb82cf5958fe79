//! Instant queries against Prometheus through prometheus-http-query.

use std::time::Duration;

use prometheus_http_query::{Client, response::Data};

/// Why a signal has no value this round. The text is shown in status and conditions.
pub use crate::plan::QueryError;

#[derive(Clone)]
pub struct Prometheus {
    client: Client,
}

impl Prometheus {
    pub fn new(
        address: &str,
        timeout: Duration,
        bearer_token: Option<&str>,
    ) -> Result<Self, QueryError> {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(token) = bearer_token {
            let mut headers = reqwest::header::HeaderMap::new();
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|e| {
                        QueryError::BadAddress(address.into(), format!("bearer token: {e}"))
                    })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        let http = builder
            .build()
            .map_err(|e| QueryError::BadAddress(address.into(), e.to_string()))?;
        let client = Client::from(http, address)
            .map_err(|e| QueryError::BadAddress(address.into(), e.to_string()))?;
        Ok(Self { client })
    }

    /// One number from an instant query.
    pub async fn scalar(&self, promql: &str) -> Result<f64, QueryError> {
        let result = self.client.query(promql).get().await.map_err(query_error)?;
        let value = match result.data() {
            Data::Scalar(s) => s.value(),
            Data::Vector(v) => match v.as_slice() {
                [] => return Err(QueryError::Empty),
                [one] => one.sample().value(),
                many => return Err(QueryError::TooManySeries(many.len())),
            },
            Data::Matrix(_) => {
                return Err(QueryError::Rejected(
                    "range vector result; expected an instant value".into(),
                ));
            }
        };
        if value.is_finite() {
            Ok(value)
        } else {
            Err(QueryError::NotANumber(value))
        }
    }
}

/// Prometheus refused the query, or could not be reached.
fn query_error(e: prometheus_http_query::Error) -> QueryError {
    match e {
        prometheus_http_query::Error::Prometheus(p) => QueryError::Rejected(p.to_string()),
        other => QueryError::Unreachable(error_chain(&other)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

impl Prometheus {
    /// The longest scrape interval among the active targets: every series is sampled at
    /// least that often. None when there are no targets.
    pub async fn scrape_interval(&self) -> Result<Option<Duration>, QueryError> {
        let targets = self
            .client
            .targets(Some(prometheus_http_query::TargetState::Active))
            .await
            .map_err(|e| QueryError::Unreachable(error_chain(&e)))?;
        Ok(targets
            .active()
            .iter()
            .filter_map(|t| u64::try_from(t.scrape_interval().whole_milliseconds()).ok())
            .max()
            .map(Duration::from_millis))
    }

    /// An instant vector split by the values of `by` (a missing label is ""), sent as a
    /// POST since a grouped query names many namespaces.
    pub async fn grouped(
        &self,
        promql: &str,
        by: &[String],
    ) -> Result<super::ask::Grouped, QueryError> {
        let result = self
            .client
            .query(promql)
            .post()
            .await
            .map_err(query_error)?;
        let Data::Vector(v) = result.data() else {
            return Err(QueryError::Rejected("expected an instant vector".into()));
        };
        Ok(v.iter()
            .map(|s| {
                let labels = by
                    .iter()
                    .map(|l| s.metric().get(l).cloned().unwrap_or_default())
                    .collect();
                (labels, s.sample().value())
            })
            .collect())
    }

    /// One series over `[end - span, end]` at `step` seconds, as (seconds since start, value).
    pub async fn range(
        &self,
        promql: &str,
        span_seconds: f64,
        step_seconds: f64,
    ) -> Result<Vec<(f64, f64)>, QueryError> {
        let end = jiff::Timestamp::now().as_second();
        let start = end - span_seconds.ceil() as i64;
        self.range_between(promql, start, end, step_seconds).await
    }

    /// One series over `[start, end]` (Unix seconds) at `step` seconds, as (seconds since
    /// start, value): several series over the same bounds line up.
    pub async fn range_between(
        &self,
        promql: &str,
        start: i64,
        end: i64,
        step_seconds: f64,
    ) -> Result<Vec<(f64, f64)>, QueryError> {
        let result = self
            .client
            .query_range(promql, start, end, step_seconds.max(1.0))
            .get()
            .await
            .map_err(query_error)?;
        let Data::Matrix(series) = result.data() else {
            return Err(QueryError::Rejected("expected a range vector".into()));
        };
        let one = match series.as_slice() {
            [] => return Err(QueryError::Empty),
            [one] => one,
            many => return Err(QueryError::TooManySeries(many.len())),
        };
        Ok(one
            .samples()
            .iter()
            .filter(|s| s.value().is_finite())
            .map(|s| (s.timestamp() - start as f64, s.value()))
            .collect())
    }
}
