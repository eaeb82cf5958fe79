//! `headroom decide`: one offline decision through the same engine the operator runs.
//! The JSON shapes here are a stable contract; field names follow the HPA's.

mod policy;

pub use policy::{PolicyDecision, decide_policy};

use serde::{Deserialize, Serialize};

use crate::api::{Behavior, ScalingRules, TargetType};
use crate::decision::{
    self, DEFAULT_DOWNSCALE_STABILIZATION_SECONDS, History, Recommendation, ScaleEvent, SignalValue,
};

/// Input that is not valid JSON, or not what the contract expects. Always names the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidInput {
    InvalidInput {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DecideInput {
    #[serde(default = "one")]
    min_replicas: i32,
    max_replicas: i32,
    #[serde(default)]
    behavior: Option<Behavior>,
    #[serde(default)]
    tolerance: Option<ToleranceInput>,
    current_replicas: i32,
    #[serde(default)]
    ready_replicas: Option<i32>,
    #[serde(default)]
    signals: Vec<SignalInput>,
    #[serde(default)]
    history: HistoryInput,
    /// The HPA controller flag `--horizontal-pod-autoscaler-downscale-stabilization`, in seconds.
    #[serde(default = "default_downscale")]
    downscale_stabilization_seconds: i32,
}

fn one() -> i32 {
    1
}

fn default_downscale() -> i32 {
    DEFAULT_DOWNSCALE_STABILIZATION_SECONDS
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ToleranceInput {
    Both(f64),
    PerDirection(PerDirection),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PerDirection {
    scale_up: Option<f64>,
    scale_down: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignalInput {
    name: String,
    target_type: TargetType,
    target: f64,
    value: Option<f64>,
    /// Headroom's leading-indicator semantics: push up, never size down (default false: HPA).
    #[serde(default)]
    up_only: bool,
    /// The reading's window, seconds (see `history.capacityAgeSeconds`).
    lookback_seconds: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HistoryInput {
    #[serde(default)]
    recommendations: Vec<RecommendationInput>,
    #[serde(default)]
    scale_events: Vec<ScaleEventInput>,
    /// Seconds since the ready replicas caught up with the newest scale-up.
    capacity_age_seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecommendationInput {
    replicas: i32,
    age_seconds: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScaleEventInput {
    replica_change: i32,
    age_seconds: f64,
}

impl RecommendationInput {
    fn checked(&self, field: &str) -> Result<Recommendation, InvalidInput> {
        age_valid(field, self.age_seconds)?;
        Ok(Recommendation {
            replicas: self.replicas,
            age_seconds: self.age_seconds,
        })
    }
}

impl ScaleEventInput {
    fn checked(&self, field: &str) -> Result<ScaleEvent, InvalidInput> {
        age_valid(field, self.age_seconds)?;
        Ok(ScaleEvent {
            replica_change: self.replica_change,
            age_seconds: self.age_seconds,
        })
    }
}

/// The answer printed by `headroom decide`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DecideOutput {
    pub desired_replicas: i32,
    pub reason: String,
    pub limited_by: decision::Limit,
    pub proposals: Vec<ProposalOutput>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ProposalOutput {
    pub name: String,
    pub replicas: Option<i32>,
}

/// Parse, validate and decide.
pub fn decide_json(text: &str) -> Result<DecideOutput, InvalidInput> {
    let raw: DecideInput = parse_json(text)?;
    let input = validate(raw)?;
    let d = decision::decide(&input);
    Ok(DecideOutput {
        desired_replicas: d.desired_replicas,
        reason: d.reason,
        limited_by: d.limited_by,
        proposals: d.proposals.into_iter().map(ProposalOutput::from).collect(),
    })
}

impl From<decision::Proposal> for ProposalOutput {
    fn from(p: decision::Proposal) -> Self {
        ProposalOutput {
            name: p.name,
            replicas: p.replicas,
        }
    }
}

/// One JSON document and nothing after it; errors name the field.
fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, InvalidInput> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            "input".to_string()
        } else {
            path
        };
        invalid(field, e.into_inner().to_string())
    })?;
    de.end().map_err(|e| {
        invalid(
            "input",
            format!("trailing characters after the document ({e})"),
        )
    })?;
    Ok(value)
}

fn validate(raw: DecideInput) -> Result<decision::Input, InvalidInput> {
    if raw.max_replicas < 1 {
        return Err(invalid(
            "maxReplicas",
            format!("must be at least 1, got {}", raw.max_replicas),
        ));
    }
    if raw.min_replicas < 0 {
        return Err(invalid(
            "minReplicas",
            format!("must not be negative, got {}", raw.min_replicas),
        ));
    }
    if raw.min_replicas > raw.max_replicas {
        return Err(invalid(
            "minReplicas",
            format!(
                "must not exceed maxReplicas ({} > {})",
                raw.min_replicas, raw.max_replicas
            ),
        ));
    }
    if raw.current_replicas < 0 {
        return Err(invalid(
            "currentReplicas",
            format!("must not be negative, got {}", raw.current_replicas),
        ));
    }
    let ready = raw.ready_replicas.unwrap_or(raw.current_replicas);
    if ready < 0 {
        return Err(invalid(
            "readyReplicas",
            format!("must not be negative, got {ready}"),
        ));
    }
    if raw.downscale_stabilization_seconds < 0 {
        return Err(invalid(
            "downscaleStabilizationSeconds",
            "must not be negative",
        ));
    }
    let tolerance = match raw.tolerance {
        None => decision::Tolerance::default(),
        Some(ToleranceInput::Both(t)) => {
            non_negative("tolerance", t)?;
            decision::Tolerance::uniform(t)
        }
        Some(ToleranceInput::PerDirection(p)) => {
            let up = p.scale_up.unwrap_or(0.1);
            let down = p.scale_down.unwrap_or(0.1);
            non_negative("tolerance.scaleUp", up)?;
            non_negative("tolerance.scaleDown", down)?;
            decision::Tolerance {
                scale_up: up,
                scale_down: down,
                down_margin: 0.0,
            }
        }
    };
    if let Some(b) = &raw.behavior {
        rules_valid("behavior.scaleUp", b.scale_up.as_ref())?;
        rules_valid("behavior.scaleDown", b.scale_down.as_ref())?;
    }
    let mut signals = Vec::with_capacity(raw.signals.len());
    for (i, s) in raw.signals.into_iter().enumerate() {
        if s.name.is_empty() {
            return Err(invalid(format!("signals[{i}].name"), "must not be empty"));
        }
        if signals.iter().any(|o: &SignalValue| o.name == s.name) {
            return Err(invalid(
                format!("signals[{i}].name"),
                format!("duplicate signal name {:?}", s.name),
            ));
        }
        if !(s.target.is_finite() && s.target > 0.0) {
            return Err(invalid(
                format!("signals[{i}].target"),
                format!("must be greater than 0, got {}", s.target),
            ));
        }
        if let Some(w) = s.lookback_seconds {
            age_valid(&format!("signals[{i}].lookbackSeconds"), w)?;
        }
        if let Some(v) = s.value
            && v < 0.0
        {
            return Err(invalid(
                format!("signals[{i}].value"),
                format!("must not be negative, got {v}"),
            ));
        }
        signals.push(SignalValue {
            name: s.name,
            target_type: s.target_type,
            target: s.target,
            value: s.value,
            up_only: s.up_only,
            lookback_seconds: s.lookback_seconds,
        });
    }
    let mut history = History::default();
    for (i, r) in raw.history.recommendations.iter().enumerate() {
        let field = format!("history.recommendations[{i}].ageSeconds");
        history.recommendations.push(r.checked(&field)?);
    }
    for (i, e) in raw.history.scale_events.iter().enumerate() {
        let field = format!("history.scaleEvents[{i}].ageSeconds");
        history.scale_events.push(e.checked(&field)?);
    }
    if let Some(a) = raw.history.capacity_age_seconds {
        age_valid("history.capacityAgeSeconds", a)?;
        history.capacity_age_seconds = Some(a);
    }
    Ok(decision::Input {
        min_replicas: raw.min_replicas,
        max_replicas: raw.max_replicas,
        behavior: raw.behavior,
        tolerance,
        current_replicas: raw.current_replicas,
        ready_replicas: ready,
        signals,
        history,
        downscale_stabilization_seconds: raw.downscale_stabilization_seconds,
    })
}

fn non_negative(field: &str, v: f64) -> Result<(), InvalidInput> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(field, format!("must be a number >= 0, got {v}")))
    }
}

fn age_valid(field: &str, v: f64) -> Result<(), InvalidInput> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(field, format!("must be seconds >= 0, got {v}")))
    }
}

fn rules_valid(field: &str, rules: Option<&ScalingRules>) -> Result<(), InvalidInput> {
    match crate::plan::rules_errors(field, rules).into_iter().next() {
        Some(e) => Err(invalid(e.field, e.message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "minReplicas": 1, "maxReplicas": 10,
      "behavior": { "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]} },
      "tolerance": 0.1,
      "currentReplicas": 3,
      "readyReplicas": 3,
      "signals": [ {"name": "q", "targetType": "AverageValue", "target": 100, "value": 450},
                   {"name": "p95", "targetType": "Value", "target": 0.3, "value": null} ],
      "history": { "recommendations": [{"replicas": 5, "ageSeconds": 30}],
                   "scaleEvents": [{"replicaChange": 2, "ageSeconds": 40}, {"replicaChange": -1, "ageSeconds": 200}] }
    }"#;

    #[test]
    fn the_documented_example_decides() {
        let out = decide_json(EXAMPLE).unwrap();
        // q proposes ceil(450/100) = 5; p95 is unavailable but 5 > 3, so scale up is allowed.
        // Scale-up policy: 100% per 15s from 3 (the +2 event is 40s old) → up to 6; 5 fits.
        assert_eq!(out.desired_replicas, 5);
        assert_eq!(out.limited_by, decision::Limit::None);
        assert_eq!(
            out.proposals,
            vec![
                ProposalOutput {
                    name: "q".into(),
                    replicas: Some(5)
                },
                ProposalOutput {
                    name: "p95".into(),
                    replicas: None
                }
            ]
        );
        let json = serde_json::to_value(&out).unwrap();
        for key in ["desiredReplicas", "reason", "limitedBy", "proposals"] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["limitedBy"], "None");
    }

    #[test]
    fn tolerance_per_direction_and_defaults() {
        let out = decide_json(
            r#"{"maxReplicas": 10, "currentReplicas": 4, "tolerance": {"scaleUp": 0.5},
                "signals": [{"name": "q", "targetType": "AverageValue", "target": 100, "value": 560}]}"#,
        )
        .unwrap();
        // ratio 560/400 = 1.4 is within a 0.5 scale-up tolerance.
        assert_eq!(out.desired_replicas, 4);
    }

    fn err(text: &str) -> String {
        decide_json(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("{").starts_with("input:"), "{}", err("{"));
        assert!(err(r#"{"currentReplicas": 1}"#).contains("maxReplicas"));
        assert!(
            err(r#"{"maxReplicas": 0, "currentReplicas": 1}"#)
                .starts_with("maxReplicas: must be at least 1")
        );
        assert!(
            err(r#"{"minReplicas": 5, "maxReplicas": 2, "currentReplicas": 1}"#)
                .starts_with("minReplicas:")
        );
        let e = err(
            r#"{"maxReplicas": 5, "currentReplicas": 1, "signals": [{"name": "q", "targetType": "AverageValue", "target": -1, "value": 1}]}"#,
        );
        assert!(
            e.starts_with("signals[0].target: must be greater than 0"),
            "{e}"
        );
        let e = err(
            r#"{"maxReplicas": 5, "currentReplicas": 1, "signals": [{"name": "q", "targetType": "Bogus", "target": 1, "value": 1}]}"#,
        );
        assert!(e.starts_with("signals[0].targetType:"), "{e}");
        let e = err(r#"{"maxReplicas": 5, "currentReplicas": "x"}"#);
        assert!(e.starts_with("currentReplicas:"), "{e}");
        let e = err(
            r#"{"maxReplicas": 5, "currentReplicas": 1, "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 0}]}}}"#,
        );
        assert!(
            e.starts_with("behavior.scaleUp.policies[0].periodSeconds:"),
            "{e}"
        );
        let e = err(r#"{"maxReplicas": 5, "currentReplicas": 1, "sigals": []}"#);
        assert!(e.contains("unknown field `sigals`"), "{e}");
        let e = err(
            r#"{"maxReplicas": 5, "currentReplicas": 1, "signals": [{"name": "a", "targetType": "Value", "target": 1, "value": 1}, {"name": "a", "targetType": "Value", "target": 1, "value": 1}]}"#,
        );
        assert!(e.starts_with("signals[1].name: duplicate"), "{e}");
    }
}
