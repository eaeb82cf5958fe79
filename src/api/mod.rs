//! The ScalingPolicy custom resource. `crds/` is generated from these types.

mod behavior;
mod duration;
mod guardrails;
mod policy;
mod predictive;
mod reference;
mod signal;
mod status;
mod stored;

pub use behavior::{Behavior, RatePolicy, RatePolicyKind, ScalingRules, SelectPolicy};
pub use duration::{ParseDurationError, PromDuration};
pub use guardrails::{
    ConnectionBudget, CostRule, CreepingLatencyRule, DatabaseCpuIndicator, ForecastRule,
    Guardrails, Indicators, PanicRule, QueryIndicator, QueueAgeIndicator, ScheduledWindow,
    Thresholds,
};
pub use policy::{
    HeadroomSpec, Mode, PrometheusSource, ScalingPolicy, ScalingPolicySpec, SecretKeyRef, TargetRef,
};
pub use predictive::{Predictive, PredictiveMode};
pub use reference::crd_reference;
pub use signal::{
    ConcurrencySignal, CpuSaturation, CpuSignal, CustomSignal, LatencySignal, QueueSignal, Signal,
    SignalKind, TargetType,
};
pub use status::{
    BudgetOrphanStatus, Condition, ConditionStatus, FitStatus, HeadroomStatus, IndicatorStatus,
    PredictiveStatus, ResourceHeadroomStatus, ScalingPolicyStatus, SignalStatus,
};
pub use stored::{DecodeError, StoredPolicy};

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&ScalingPolicy::crd())
}
