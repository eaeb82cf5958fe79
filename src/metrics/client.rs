//! Instant queries against Prometheus through prometheus-http-query.

use std::sync::Arc;
use std::time::Duration;

use prometheus_http_query::response::PromqlResult;
use prometheus_http_query::{Client, response::Data};
use serde::Deserialize;

use super::in_flight::{Held, InFlight};
use super::limits::{Limits, bytes};

/// Why a signal has no value this round. The text is shown in status and conditions.
pub use crate::plan::QueryError;

#[derive(Clone)]
pub struct Prometheus {
    client: Client,
    /// Sent with every query, a little under the client's own timeout: Prometheus stops
    /// evaluating before the operator stops waiting, and says why.
    timeout_millis: i64,
    limits: Limits,
    /// The operator-wide bound on response bytes held at once.
    in_flight: Arc<InFlight>,
}

/// The API's envelope: data on success, the error otherwise.
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Envelope {
    Success {
        data: PromqlResult,
    },
    Error {
        #[serde(rename = "errorType", default)]
        error_type: String,
        #[serde(default)]
        error: String,
    },
}

impl Prometheus {
    pub fn new(
        address: &str,
        timeout: Duration,
        bearer_token: Option<&str>,
        limits: Limits,
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
        Ok(Self {
            client,
            timeout_millis: i64::try_from(timeout.as_millis() * 9 / 10).unwrap_or(i64::MAX),
            limits,
            in_flight: InFlight::unbounded(),
        })
    }

    /// Holds its responses within `bound`, shared with every other client of the operator.
    pub fn bounded_by(mut self, bound: Arc<InFlight>) -> Self {
        self.in_flight = bound;
        self
    }

    /// Reads a query's response, at most `cap` bytes of it: a larger one is refused without
    /// being held, so a tenant padding its series cannot grow the operator's memory.
    async fn read(
        &self,
        response: Result<reqwest::Response, prometheus_http_query::Error>,
        cap: usize,
    ) -> Result<Data, QueryError> {
        let mut response = response.map_err(query_error)?;
        let too_large = || {
            QueryError::OverLimit(format!(
                "Prometheus' response is larger than {} (--max-response-bytes)",
                bytes(cap)
            ))
        };
        let announced = response
            .content_length()
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if announced.is_some_and(|n| n > cap) {
            return Err(too_large());
        }
        // Held until the answer is parsed: the body and its parse are the memory it costs.
        let mut held = Held::new(&self.in_flight);
        held.grow_to(announced.unwrap_or(0))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| QueryError::Unreachable(error_chain(&e)))?
        {
            if body.len() + chunk.len() > cap {
                return Err(too_large());
            }
            held.grow_to(body.len() + chunk.len())?;
            body.extend_from_slice(&chunk);
        }
        match serde_json::from_slice::<Envelope>(&body) {
            Ok(Envelope::Success { data }) => Ok(data.into_inner().0),
            Ok(Envelope::Error { error_type, error }) => {
                Err(QueryError::Rejected(format!("{error_type}: {error}")))
            }
            // Not Prometheus' JSON: a proxy's page or a cut connection.
            Err(e) => Err(QueryError::Unreachable(format!(
                "HTTP {status}: {}",
                if status.is_success() {
                    format!("unreadable response: {e}")
                } else {
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                        .trim()
                        .to_string()
                }
            ))),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Refuses an answer with more series than one namespace may return.
    fn series_cap(&self, n: usize) -> Result<(), QueryError> {
        if n > self.limits.max_series {
            Err(QueryError::OverLimit(format!(
                "the query returned {n} series; the limit is {} (--max-series)",
                self.limits.max_series
            )))
        } else {
            Ok(())
        }
    }

    /// One number from an instant query.
    pub async fn scalar(&self, promql: &str) -> Result<f64, QueryError> {
        super::cost::check(promql, &self.limits)?;
        let response = self
            .client
            .query(promql)
            .timeout(self.timeout_millis)
            .get_raw()
            .await;
        let data = self.read(response, self.limits.max_response_bytes).await?;
        let value = match &data {
            Data::Scalar(s) => s.value(),
            Data::Vector(v) => match v.as_slice() {
                [] => return Err(QueryError::Empty),
                [one] => one.sample().value(),
                many => {
                    self.series_cap(many.len())?;
                    return Err(QueryError::TooManySeries(many.len()));
                }
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

/// The error and its causes, without the request URLs: a query's URL holds the whole query,
/// which would crowd the cause out of a status message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    without_urls(&s)
}

fn without_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(" for url (") {
        out.push_str(&rest[..at]);
        rest = match rest[at..].find(')') {
            Some(end) => &rest[at + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
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
    /// The response may hold `limits.max_response_bytes` for each of the `namespaces` it covers.
    pub async fn grouped(
        &self,
        promql: &str,
        by: &[String],
        namespaces: usize,
    ) -> Result<super::ask::Grouped, QueryError> {
        let response = self
            .client
            .query(promql)
            .timeout(self.timeout_millis)
            .post_raw()
            .await;
        let cap = self
            .limits
            .max_response_bytes
            .saturating_mul(namespaces.max(1));
        let data = self.read(response, cap).await?;
        let Data::Vector(v) = &data else {
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

    /// Whether `promql` read over `span` is within the cost bounds: asked before a read waits
    /// for a slot it would only be refused in.
    pub fn check_range(&self, promql: &str, span: Duration) -> Result<(), QueryError> {
        super::cost::check_range(promql, &self.limits, span)
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
        // Calibrations and forecasts read raw queries too, not only evaluations, and over a
        // span: its subqueries are priced over all of it.
        let span = Duration::from_secs(u64::try_from(end.saturating_sub(start)).unwrap_or(0));
        self.check_range(promql, span)?;
        let response = self
            .client
            .query_range(promql, start, end, step_seconds.max(1.0))
            .timeout(self.timeout_millis)
            .get_raw()
            .await;
        let data = self.read(response, self.limits.max_response_bytes).await?;
        let Data::Matrix(series) = &data else {
            return Err(QueryError::Rejected("expected a range vector".into()));
        };
        let one = match series.as_slice() {
            [] => return Err(QueryError::Empty),
            [one] => one,
            many => {
                self.series_cap(many.len())?;
                return Err(QueryError::TooManySeries(many.len()));
            }
        };
        Ok(one
            .samples()
            .iter()
            .filter(|s| s.value().is_finite())
            .map(|s| (s.timestamp() - start as f64, s.value()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_left_out_of_error_texts() {
        let s = "failed to send request to server: error sending request for url (http://p:9090/api/v1/query?query=sum%28x%29): operation timed out";
        assert_eq!(
            super::without_urls(s),
            "failed to send request to server: error sending request: operation timed out"
        );
    }
}
