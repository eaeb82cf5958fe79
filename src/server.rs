//! `/healthz`, `/readyz` and `/metrics` on one port, for probes and Prometheus.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::{Router, extract::State, http::StatusCode, routing::get};

use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct Health {
    pub ready: Arc<AtomicBool>,
    /// A right the operator lacks (`cannot patch scalingpolicies/status`), if any.
    pub lacking: Arc<Mutex<Option<String>>>,
    pub metrics: Metrics,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> (StatusCode, String) {
    let lacking = h.lacking.lock().ok().and_then(|l| l.clone());
    match (h.ready.load(Ordering::Relaxed), lacking) {
        (_, Some(what)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("missing RBAC: {what}"),
        ),
        (true, None) => (StatusCode::OK, "ok".into()),
        (false, None) => (StatusCode::SERVICE_UNAVAILABLE, "caches not synced".into()),
    }
}

async fn metrics(State(h): State<Health>) -> ([(&'static str, &'static str); 1], String) {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.render(),
    )
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

pub async fn serve(addr: SocketAddr, health: Health) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, router(health)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn not_ready_while_a_right_is_missing_and_says_which() {
        let h = Health {
            ready: Arc::new(AtomicBool::new(true)),
            lacking: Arc::new(Mutex::new(None)),
            metrics: Metrics::default(),
        };
        assert_eq!(readyz(State(h.clone())).await.0, StatusCode::OK);
        if let Ok(mut l) = h.lacking.lock() {
            *l = Some("cannot patch scalingpolicies/status".into());
        }
        let (code, body) = readyz(State(h.clone())).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "missing RBAC: cannot patch scalingpolicies/status");
        h.ready.store(false, Ordering::Relaxed);
        assert_eq!(readyz(State(h)).await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
