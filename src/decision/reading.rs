//! One signal's reading this round: what the engine sized on, what status shows, and what
//! scale to zero asks of each signal.

use crate::plan::QueryError;

/// One signal's reading this round, for status.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalReading {
    pub name: String,
    pub kind: &'static str,
    pub target: f64,
    pub value: Result<f64, QueryError>,
}
