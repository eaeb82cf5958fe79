//! Signals from Prometheus: PromQL rendering, the client, and the observer that runs a
//! plan's queries.

mod client;
mod observe;
pub mod promql;
mod scope;

pub use client::{Prometheus, QueryError};
pub use observe::observe;
pub use scope::scoped;
