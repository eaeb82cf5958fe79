//! `headroom decide --policy FILE --observation FILE`: the whole decision the operator would
//! make for a policy (guardrails and audit included) from readings given by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    InvalidInput, ProposalOutput, RecommendationInput, ScaleEventInput, invalid, parse_json,
};
use crate::api::{IndicatorStatus, ScalingPolicy};
use crate::decision::guardrails::{Claim, PredictedPeak};
use crate::decision::{self, History, Limit, Memory, Moment};
use crate::plan::{Observation, Plan, QueryError, Sample, parse_time};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ObservationInput {
    current_replicas: i32,
    #[serde(default)]
    ready_replicas: Option<i32>,
    /// RFC 3339; schedule windows apply only with it.
    #[serde(default)]
    now: Option<String>,
    /// By query key (`p95`, `cpu@short`, `databaseCpu/regularly`, ...): a number, null for
    /// unavailable, or `[[seconds, value], ...]` for a range.
    #[serde(default)]
    values: BTreeMap<String, Option<ValueInput>>,
    #[serde(default)]
    memory: MemoryInput,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ValueInput {
    One(f64),
    Series(Vec<(f64, f64)>),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MemoryInput {
    #[serde(default)]
    recommendations: Vec<RecommendationInput>,
    #[serde(default)]
    scale_events: Vec<ScaleEventInput>,
    capacity_age_seconds: Option<f64>,
    last_spike_age_seconds: Option<f64>,
    /// Other policies sharing the connection budget.
    #[serde(default)]
    connection_budget: Vec<ClaimInput>,
    /// What the learned pattern expects (spec.predictive): the busiest load from now to the
    /// horizon, in the unit of `values["predictive/load"]`, the load now.
    predicted_peak: Option<f64>,
    /// The load the pattern expects now (default: the peak, so no rise is coming).
    predicted_level: Option<f64>,
    /// The pattern's period, for the message (default "learned").
    predicted_pattern: Option<String>,
    /// minReplicas 0: how long the evaluations before this one have seen no demand.
    idle_seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClaimInput {
    name: String,
    pool_size_per_replica: i32,
    held: i32,
    need: i32,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingOutput {
    pub reason: String,
    pub active: bool,
    pub message: String,
}

/// What `decide --policy` prints.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDecision {
    pub desired_replicas: i32,
    pub limited_by: Limit,
    /// `limitedBy: reason`, the one line that answers "why N?".
    pub why: String,
    pub reason: String,
    pub proposals: Vec<ProposalOutput>,
    pub findings: Vec<FindingOutput>,
    pub indicators: Vec<IndicatorStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Readings that were missing or unusable, each with its field.
    pub errors: Vec<String>,
}

fn age(field: &str, v: f64) -> Result<f64, InvalidInput> {
    super::age_valid(field, v).map(|()| v)
}

/// Parses the policy (YAML or JSON) and the observation, and decides.
pub fn decide_policy(policy: &str, observation: &str) -> Result<PolicyDecision, InvalidInput> {
    let de = serde_yaml::Deserializer::from_str(policy);
    let p: ScalingPolicy = serde_path_to_error::deserialize(de).map_err(|e| {
        invalid(
            format!("policy: {}", e.path()),
            format!("not a ScalingPolicy: {}", e.inner()),
        )
    })?;
    let plan = Plan::resolve(&p.spec).map_err(|e| {
        let first =
            e.0.first()
                .cloned()
                .unwrap_or_else(|| crate::plan::FieldError::new("policy", "invalid"));
        invalid(format!("policy: {}", first.field), e.to_string())
    })?;
    let raw: ObservationInput = parse_json(observation)?;

    if raw.current_replicas < 0 {
        return Err(invalid("currentReplicas", "must not be negative"));
    }
    let ready = raw.ready_replicas.unwrap_or(raw.current_replicas);
    if ready < 0 {
        return Err(invalid("readyReplicas", "must not be negative"));
    }
    let unix = raw
        .now
        .as_deref()
        .map(|t| parse_time(t, "now"))
        .transpose()
        .map_err(|e| invalid(e.field, e.message))?;
    let mut obs = Observation::default();
    for (key, value) in raw.values {
        let Some(q) = plan.queries().iter().find(|q| q.key == key) else {
            let known: Vec<&str> = plan.queries().iter().map(|q| q.key.as_str()).collect();
            return Err(invalid(
                format!("values.{key}"),
                format!(
                    "not a reading of this policy; expected one of {}",
                    known.join(", ")
                ),
            ));
        };
        let sample = match value {
            None => Err(QueryError::Empty),
            Some(ValueInput::One(v)) => Ok(Sample::Value(v)),
            Some(ValueInput::Series(s)) => Ok(Sample::Series(s)),
        };
        obs.insert(q.key.clone(), sample);
    }
    let m = raw.memory;
    let mut history = History::default();
    for (i, r) in m.recommendations.iter().enumerate() {
        let field = format!("memory.recommendations[{i}].ageSeconds");
        history.recommendations.push(r.checked(&field)?);
    }
    for (i, e) in m.scale_events.iter().enumerate() {
        let field = format!("memory.scaleEvents[{i}].ageSeconds");
        history.scale_events.push(e.checked(&field)?);
    }
    history.capacity_age_seconds = m
        .capacity_age_seconds
        .map(|a| age("memory.capacityAgeSeconds", a))
        .transpose()?;
    let last_spike_age = m
        .last_spike_age_seconds
        .map(|a| age("memory.lastSpikeAgeSeconds", a))
        .transpose()?;
    let mut neighbours = vec![];
    for (i, c) in m.connection_budget.into_iter().enumerate() {
        if c.pool_size_per_replica < 1 || c.held < 0 || c.need < 0 {
            return Err(invalid(
                format!("memory.connectionBudget[{i}]"),
                "poolSizePerReplica must be at least 1; held and need must not be negative",
            ));
        }
        neighbours.push(Claim {
            name: c.name,
            pool_size: c.pool_size_per_replica,
            held: c.held,
            need: c.need,
        });
    }
    let predicted = match (m.predicted_peak, &plan.predictive) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(invalid(
                "memory.predictedPeak",
                "the policy's spec.predictive is off; set its mode to Observe or Enforce",
            ));
        }
        (Some(r), Some(_)) if !(r.is_finite() && r >= 0.0) => {
            return Err(invalid(
                "memory.predictedPeak",
                format!("must be a load of at least 0, got {r}"),
            ));
        }
        (Some(peak), Some(pp)) => Some(PredictedPeak {
            peak,
            level: m.predicted_level.unwrap_or(peak),
            horizon_seconds: pp.settings.horizon_seconds,
            pattern: m.predicted_pattern.unwrap_or_else(|| "learned".into()),
            min_rise: 1.0 + crate::predict::RISE,
            enforce: pp.enforce,
        }),
    };
    let memory = Memory {
        history,
        last_spike_age,
        budget_name: p.metadata.name.clone().unwrap_or_else(|| "policy".into()),
        neighbours,
        predicted,
        idle_seconds: m.idle_seconds,
    };
    let at = Moment {
        unix,
        current_replicas: raw.current_replicas,
        ready_replicas: ready,
    };
    let ev = decision::evaluate(&plan, &obs, &memory, &at);
    let d = ev.decision;
    Ok(PolicyDecision {
        desired_replicas: d.desired_replicas,
        limited_by: d.limited_by,
        why: format!("{}: {}", d.limited_by.as_str(), d.reason),
        reason: d.reason,
        proposals: d.proposals.into_iter().map(ProposalOutput::from).collect(),
        findings: ev
            .findings
            .into_iter()
            .map(|f| FindingOutput {
                reason: f.reason.to_string(),
                active: f.active,
                message: f.message,
            })
            .collect(),
        indicators: ev.indicators,
        verdict: ev.verdict.map(|v| v.as_str().to_string()),
        errors: ev.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: headroom.dev/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: w}\nspec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: w}\n  maxReplicas: 20\n  signals:\n    - name: q\n      queue: {query: backlog, targetPerReplica: 100, arrivalRateQuery: arrivals, ratePerReplica: 4}\n  predictive: {mode: Enforce}\n";

    #[test]
    fn decide_explains_a_predicted_rise() {
        // 4 workers keep up with 16 jobs/s; the pattern has 40/s within the horizon.
        let obs = r#"{"currentReplicas": 4, "values": {"q": 100, "q-arrivals": 16, "predictive/load": 16},
                      "memory": {"predictedPeak": 40, "predictedLevel": 16, "predictedPattern": "1h"}}"#;
        let d = decide_policy(POLICY, obs).map_err(|e| e.to_string());
        let Ok(d) = d else { panic!("{d:?}") };
        assert_eq!(
            (d.desired_replicas, d.limited_by),
            (10, Limit::Predicted),
            "{}",
            d.why
        );
        assert!(
            d.why
                .starts_with("Predicted: predicted: the 1h pattern rises 2.5x"),
            "{}",
            d.why
        );
        // Without the load now, nothing is predicted, and the field is named.
        let blind = obs.replace(r#", "predictive/load": 16"#, "");
        let d = decide_policy(POLICY, &blind).map_err(|e| e.to_string());
        let Ok(d) = d else { panic!("{d:?}") };
        assert_eq!(d.desired_replicas, 4);
        assert!(
            d.errors
                .iter()
                .any(|e| e.starts_with("spec.predictive (the load now)")),
            "{:?}",
            d.errors
        );
        // A peak for a policy without predictive scaling is refused.
        let off = POLICY.replace(
            "predictive: {mode: Enforce}",
            "predictive: {mode: Disabled}",
        );
        let e = decide_policy(&off, &blind)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("memory.predictedPeak"), "{e}");
    }
}
