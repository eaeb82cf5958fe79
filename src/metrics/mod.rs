//! Signals from Prometheus: PromQL rendering, the client, and the observer that runs a
//! plan's queries.

mod client;
mod observe;
pub mod promql;

pub use client::{Prometheus, QueryError};
pub use observe::observe;
