//! Errors of the operator's I/O paths. The decision engine itself cannot fail.

/// Everything that can go wrong talking to the API server or Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("target {kind}/{name}: {message}")]
    Target {
        kind: String,
        name: String,
        message: String,
    },
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    #[error("serialization error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Config(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("leader election: {0}")]
    Leadership(String),
}

impl Error {
    /// A bounded label for the operator's error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Target { .. } => "target",
            Error::InvalidPolicy(_) => "invalid_policy",
            Error::Json(_) => "serialization",
            Error::Config(_) => "config",
            Error::Io(_) => "io",
            Error::Leadership(_) => "leadership",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
