//! Signals from Prometheus: PromQL templates and the client that runs them.

mod client;
pub mod promql;

pub use client::{Prometheus, QueryError};
