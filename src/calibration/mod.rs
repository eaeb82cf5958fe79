//! The I/O around `capacity`: reads a policy's own series over its calibration window from
//! Prometheus, confined to its namespace, and estimates its traffic headroom. Shared by
//! `headroom whatif` and the operator, so both say the same.

mod series;

use std::time::Duration;

pub use series::{Series, series};

use crate::api::{ScalingPolicySpec, TargetRef};
use crate::capacity::{Estimate, Limits, Reading, estimate};
use crate::metrics::{Prometheus, QueryError};
use crate::plan::Plan;

/// Readings per calibration: enough points for the fit, few enough for one range query.
const POINTS: f64 = 240.0;

/// What one calibration read and concluded.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub readings: Vec<Reading>,
    pub limits: Limits,
    pub estimate: Estimate,
    /// "requests/s" or "jobs/s".
    pub load_unit: &'static str,
    /// Series that could not be read, each with its query: their resources say Unknown.
    pub errors: Vec<String>,
    pub span_seconds: u64,
}

/// Why there is no estimate at all.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// The policy names no load, or a query cannot be confined to its namespace.
    #[error("{0}")]
    Policy(QueryError),
    #[error("the load ({query}) could not be read: {error}")]
    Load { query: String, error: QueryError },
    #[error("max connections ({query}) could not be read: {error}")]
    MaxConnections { query: String, error: QueryError },
}

impl CalibrationError {
    /// Refused by the operator's own limits (cost, size), not failed in Prometheus.
    pub fn refused(&self) -> bool {
        let (CalibrationError::Policy(e)
        | CalibrationError::Load { error: e, .. }
        | CalibrationError::MaxConnections { error: e, .. }) = self;
        matches!(e, QueryError::OverLimit(_))
    }
}

/// A regex of the names a target's pods have had over the window: a Deployment's pods are
/// `<name>-<hash>-<suffix>`, a StatefulSet's `<name>-<ordinal>`.
pub fn pods_of(target: &TargetRef) -> String {
    let name = regex_escape(&target.name);
    match target.kind.as_str() {
        "Deployment" => format!("{name}-[a-z0-9]+-[a-z0-9]+"),
        "StatefulSet" => format!("{name}-[0-9]+"),
        _ => format!("{name}-.+"),
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// Reads `spec`'s series in `namespace` over the `span` ending at `end` (Unix seconds) and
/// estimates each resource's headroom. `pods`: a regex of the target's pod names.
pub async fn calibrate(
    prometheus: &Prometheus,
    spec: &ScalingPolicySpec,
    plan: &Plan,
    namespace: &str,
    pods: &str,
    end: i64,
    span: Duration,
) -> Result<Calibration, CalibrationError> {
    let mut limits = Limits::from_plan(plan, None);
    let series =
        series(spec, plan, limits.app, namespace, pods).map_err(CalibrationError::Policy)?;
    if let Some(q) = &series.max_connections {
        let max = prometheus
            .scalar(q)
            .await
            .map_err(|error| CalibrationError::MaxConnections {
                query: q.clone(),
                error,
            })?;
        limits = Limits::from_plan(plan, Some(max));
    }
    let span_seconds = span.as_secs().max(60);
    let start = end - i64::try_from(span_seconds).unwrap_or(i64::MAX);
    let step = (span_seconds as f64 / POINTS).max(1.0);
    let load = prometheus
        .range_between(&series.load, start, end, step)
        .await
        .map_err(|error| CalibrationError::Load {
            query: series.load.clone(),
            error,
        })?;
    // A series that cannot be read leaves its resource Unknown, and says why.
    let mut errors = vec![];
    let mut optional = async |q: &Option<String>| {
        let q = q.as_deref()?;
        prometheus
            .range_between(q, start, end, step)
            .await
            .map_err(|e| errors.push(format!("{q}: {e}")))
            .ok()
    };
    let app = optional(&series.app).await;
    let database = optional(&series.database_cpu).await;
    // Pods without a CPU limit run no CFS periods: no throttling series is not an error.
    let throttled = match &series.throttled {
        Some(q) => match prometheus.range_between(q, start, end, step).await {
            Err(QueryError::Empty) => None,
            other => other.map_err(|e| errors.push(format!("{q}: {e}"))).ok(),
        },
        None => None,
    };
    let at = |s: &Option<Vec<(f64, f64)>>, t: f64| {
        s.as_ref()
            .and_then(|v| v.iter().find(|(x, _)| (x - t).abs() < step / 2.0))
            .map(|(_, v)| *v)
    };
    let readings: Vec<Reading> = load
        .iter()
        .map(|&(t, l)| Reading {
            at: t,
            load: l,
            app: at(&app, t),
            database_cpu: at(&database, t),
            throttled: at(&throttled, t),
        })
        .collect();
    Ok(Calibration {
        estimate: estimate(&readings, &limits),
        readings,
        limits,
        load_unit: series.load_unit,
        errors,
        span_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: &str, name: &str) -> TargetRef {
        TargetRef {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_calibration_refused_by_a_limit_is_told_from_one_that_failed() {
        let load = |error| CalibrationError::Load {
            query: "q".into(),
            error,
        };
        assert!(load(QueryError::OverLimit("too costly".into())).refused());
        assert!(!load(QueryError::Empty).refused());
    }

    #[test]
    fn pods_are_matched_by_how_their_kind_names_them() {
        let re = |t: &TargetRef| regex::Regex::new(&format!("^(?:{})$", pods_of(t)));
        let Ok(web) = re(&target("Deployment", "web")) else {
            panic!("regex")
        };
        assert!(web.is_match("web-7d9f8c6b5-x2kqz"));
        // Another Deployment whose name starts with this one's has one more dash-part.
        assert!(!web.is_match("web-admin-7d9f8c6b5-x2kqz"));
        let Ok(db) = re(&target("StatefulSet", "db.v2")) else {
            panic!("regex")
        };
        assert!(db.is_match("db.v2-0") && !db.is_match("dbxv2-0") && !db.is_match("db.v2-a"));
    }
}
