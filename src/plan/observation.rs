//! What one evaluation saw: every query's result by its key. The operator fills it from
//! Prometheus, the simulator from its model, `decide` from a file; the engine reads only this.

use std::collections::HashMap;

/// Why a reading is missing. Typed, so callers can count and explain failures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("Prometheus unreachable: {0}")]
    Unreachable(String),
    #[error("Prometheus rejected the query: {0}")]
    Rejected(String),
    #[error("query returned no data")]
    Empty,
    #[error("query returned {0} series; expected one (aggregate it, e.g. with sum())")]
    TooManySeries(usize),
    #[error("query returned {0}, not a number")]
    NotANumber(f64),
    #[error("query returned {0}; a negative reading is invalid")]
    Negative(f64),
    #[error("invalid Prometheus address {0:?}: {1}")]
    BadAddress(String, String),
    /// A prerequisite failed (the target's pods, the token Secret): said once, with its field.
    #[error("{0}")]
    Unavailable(String),
    /// A raw query that cannot be confined to the policy's namespace.
    #[error("refused: {0}")]
    Unscoped(String),
    /// Over one of the operator's query limits; the text names the limit and its flag.
    #[error("over the operator's limit: {0}")]
    OverLimit(String),
    #[error("not observed")]
    NotObserved,
    #[error("expected a single value, got a series")]
    NotAValue,
    #[error("expected a series, got a single value")]
    NotASeries,
}

/// One query's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Sample {
    Value(f64),
    /// (seconds, value) pairs, oldest first.
    Series(Vec<(f64, f64)>),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    results: HashMap<String, Result<Sample, QueryError>>,
}

impl Observation {
    pub fn insert(&mut self, key: impl Into<String>, result: Result<Sample, QueryError>) {
        self.results.insert(key.into(), result);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.results.contains_key(key)
    }

    /// A single reading; non-finite values are never passed on.
    pub fn value(&self, key: &str) -> Result<f64, QueryError> {
        match self.results.get(key) {
            None => Err(QueryError::NotObserved),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(Sample::Value(v))) if v.is_finite() => Ok(*v),
            Some(Ok(Sample::Value(v))) => Err(QueryError::NotANumber(*v)),
            Some(Ok(Sample::Series(_))) => Err(QueryError::NotAValue),
        }
    }

    /// A range reading, with non-finite points left out.
    pub fn series(&self, key: &str) -> Result<Vec<(f64, f64)>, QueryError> {
        match self.results.get(key) {
            None => Err(QueryError::NotObserved),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(Sample::Series(s))) => Ok(s
                .iter()
                .copied()
                .filter(|(t, v)| t.is_finite() && v.is_finite())
                .collect()),
            Some(Ok(Sample::Value(_))) => Err(QueryError::NotASeries),
        }
    }
}
