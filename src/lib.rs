//! Headroom: a Kubernetes autoscaler that acts on leading indicators read from Prometheus.
//!
//! Data flows one way: Prometheus → [`metrics`] (signals) → [`decision`] → [`controller`]
//! (actuation through `/scale`, status, Events).

#![forbid(unsafe_code)]

pub mod api;
pub mod calibration;
pub mod capacity;
pub mod controller;
pub mod decide;
pub mod decision;
pub mod error;
pub mod metrics;
pub mod plan;
pub mod predict;
pub(crate) mod rng;
pub mod server;
pub mod simulate;
pub mod telemetry;
pub mod whatif;

pub use error::{Error, Result};
