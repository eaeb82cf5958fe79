//! Signals from Prometheus: PromQL rendering, the client, and the observer that runs a
//! plan's queries.

mod ask;
mod batch;
mod client;
mod cost;
mod in_flight;
mod limits;
#[cfg(test)]
mod limits_tests;
mod observe;
pub mod promql;
mod scope;

pub use batch::{Batcher, Source};
pub use client::{Prometheus, QueryError};
pub use in_flight::{InFlight, default_in_flight_bound};
pub use limits::{Limits, bytes, parse_bytes};
pub use observe::observe;
pub use scope::scoped;
