//! The ScalingPolicy custom resource. `crds/` is generated from these types.

mod behavior;
mod duration;
mod policy;
mod signal;
mod status;

pub use behavior::{Behavior, RatePolicy, RatePolicyKind, ScalingRules, SelectPolicy};
pub use duration::{ParseDurationError, PromDuration};
pub use policy::{
    Mode, PrometheusSource, ScalingPolicy, ScalingPolicySpec, SecretKeyRef, TargetRef,
};
pub use signal::{
    CpuSignal, CustomSignal, LatencySignal, QueueSignal, Signal, SignalKind, TargetType,
};
pub use status::{Condition, ConditionStatus, ScalingPolicyStatus, SignalStatus};

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&ScalingPolicy::crd())
}
