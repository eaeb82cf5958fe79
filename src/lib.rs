//! Headroom: a Kubernetes autoscaler that acts on leading indicators read from Prometheus.
//!
//! Data flows one way: Prometheus → [`metrics`] (signals) → [`decision`] → [`controller`]
//! (actuation through `/scale`, status, Events).

pub mod api;
pub mod decision;
