//! The series a calibration reads, as PromQL in the policy's namespace: the load, the app
//! tier's usage in replicas' worth, the database's CPU.

use crate::api::ScalingPolicySpec;
use crate::capacity::AppSizing;
use crate::metrics::{promql, scoped};
use std::collections::BTreeMap;

use crate::api::PromDuration;
use crate::plan::{Measure, Plan, PredictedLoad, QueryError};

/// What to ask Prometheus for, each already confined to the namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub load: String,
    /// What the load is, for the printout ("requests/s", "jobs/s").
    pub load_unit: &'static str,
    pub app: Option<String>,
    pub database_cpu: Option<String>,
    pub max_connections: Option<String>,
    /// The app's throttled share of CFS periods, when its CPU signal reads saturation.
    pub throttled: Option<String>,
}

/// The queries for `spec` in `namespace`. `pods`: a regex of the target's pod names.
pub fn series(
    spec: &ScalingPolicySpec,
    plan: &Plan,
    sizing: Option<AppSizing>,
    namespace: &str,
    pods: &str,
) -> Result<Series, QueryError> {
    let histogram = crate::plan::predictive::histogram_of(spec);
    let Some((kind, raw)) = crate::plan::predictive::load_of(spec) else {
        return Err(QueryError::Unavailable(
            "the policy names no load: a latency or concurrency signal, \
             spec.guardrails.creepingLatency.requestRateQuery or a queue's arrivalRateQuery is needed"
                .into(),
        ));
    };
    let load = scoped(&raw, namespace)?;
    let load_unit = match kind {
        PredictedLoad::Requests => "requests/s",
        PredictedLoad::Arrivals => "jobs/s",
    };
    let app = match sizing {
        Some(AppSizing::Cpu { .. }) => {
            let sel = promql::matchers(namespace, &BTreeMap::new())?
                + &format!(",pod=~{}", promql::quote(pods));
            Some(format!(
                "sum(rate(container_cpu_usage_seconds_total{{{sel},container!=\"\",container!=\"POD\"}}[1m])) \
                 / avg(kube_pod_container_resource_requests{{{sel},resource=\"cpu\"}})"
            ))
        }
        // Requests in flight, rendered as the operator renders the concurrency signal.
        Some(AppSizing::Concurrency { .. }) => histogram
            .as_ref()
            .map(|(metric, selector)| {
                let measure = Measure::Concurrency {
                    metric: metric.clone(),
                    selector: selector.clone(),
                    window: PromDuration::from_secs(60),
                };
                let scope = promql::Scope {
                    namespace,
                    pods: Err(QueryError::NotObserved),
                    cross_namespace: false,
                    limits: crate::metrics::Limits::default(),
                };
                promql::render(&measure, &scope)
            })
            .transpose()?,
        None => None,
    };
    let database_cpu = match &plan.indicators.database_cpu {
        Some(_) => spec
            .indicators
            .as_ref()
            .and_then(|i| i.database_cpu.as_ref())
            .map(|d| scoped(&d.query, namespace))
            .transpose()?,
        None => None,
    };
    let max_connections = spec
        .guardrails
        .as_ref()
        .and_then(|g| g.connection_budget.as_ref())
        .filter(|b| b.max_connections.is_none())
        .and_then(|b| b.max_connections_query.as_deref())
        .map(|q| scoped(q, namespace))
        .transpose()?;
    let throttled = plan
        .signals
        .iter()
        .find_map(|s| s.saturation.as_ref())
        .map(|_| {
            let pods = [pods.to_string()];
            let scope = promql::Scope {
                namespace,
                pods: Ok(&pods),
                cross_namespace: false,
                limits: crate::metrics::Limits::default(),
            };
            promql::render(
                &Measure::CpuThrottled {
                    window: PromDuration::from_secs(60),
                },
                &scope,
            )
        })
        .transpose()?;
    Ok(Series {
        load,
        load_unit,
        app,
        database_cpu,
        max_connections,
        throttled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Limits;
    use crate::simulate::{EXAMPLE_WEB, EXAMPLE_WORKER, parse_policy};

    #[test]
    fn the_web_example_reads_its_own_namespace_only() {
        let Ok(web) = parse_policy(EXAMPLE_WEB, "web") else {
            panic!("web")
        };
        let limits = Limits::from_plan(&web.plan, None);
        let s = series(&web.spec, &web.plan, limits.app, "shop", "web-.*")
            .unwrap_or_else(|e| panic!("{e}"));
        // creepingLatency's request rate, scoped to the namespace.
        assert!(s.load.contains(r#"namespace="shop""#), "{}", s.load);
        assert_eq!(s.load_unit, "requests/s");
        let app = s.app.unwrap_or_default();
        assert!(app.contains(r#"namespace="shop",pod=~"web-.*""#), "{app}");
        assert!(
            app.contains("avg(kube_pod_container_resource_requests"),
            "{app}"
        );
        assert!(
            s.database_cpu
                .unwrap_or_default()
                .contains(r#"namespace="shop""#)
        );
        assert!(
            s.max_connections
                .unwrap_or_default()
                .contains("pg_settings_max_connections")
        );
    }

    #[test]
    fn a_worker_is_loaded_by_its_arrivals_and_a_policy_without_load_is_refused() {
        let Ok(worker) = parse_policy(EXAMPLE_WORKER, "worker") else {
            panic!("worker")
        };
        let s = series(&worker.spec, &worker.plan, None, "jobs", "worker-.*")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.load_unit, "jobs/s");
        assert!(s.load.contains("redis_commands_total"));
        let Ok(no_load) = worker.edit(|spec| {
            spec.predictive = None;
            for sig in &mut spec.signals {
                if let Some(q) = &mut sig.queue {
                    q.arrival_rate_query = None;
                    q.rate_per_replica = None;
                }
            }
        }) else {
            panic!("edit")
        };
        let err = series(&no_load.spec, &no_load.plan, None, "jobs", "w-.*").err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("the policy names no load")),
            "a policy without load must be refused"
        );
    }
}
