//! Stage 2, observe: the plan's queries, answered through the shared observer, folded with
//! the policy's own recent readings (trends, "regularly").

use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::Context;
use super::history;
use super::read::Read;
use crate::api::ScalingPolicySpec;
use crate::metrics::{self, Source, promql::Scope};
use crate::plan::{Measure, Observation, QueryError};

/// Runs the plan's queries; the pods (for CPU) and the Prometheus client are read once.
pub(super) async fn observe(ctx: &Context, read: &Read<'_>) -> Observation {
    let (plan, ns) = (&read.plan, read.ns.as_str());
    let needs_pods = plan
        .queries()
        .iter()
        .any(|q| matches!(q.measure, Measure::CpuUtilization { .. }));
    let pods: Result<Vec<String>, QueryError> = match (&read.target.selector, needs_pods) {
        (_, false) => Ok(vec![]),
        (None, true) => Err(QueryError::Unavailable(
            "the target's scale status has no selector, so its pods cannot be found".into(),
        )),
        (Some(sel), true) => ctx
            .resolver
            .pods(&ctx.client, ns, sel)
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string())),
    };
    let prometheus = prometheus_for(&read.policy.spec, ctx, ns).await;
    let scope = Scope {
        namespace: ns,
        pods: pods.as_deref().map_err(Clone::clone),
        cross_namespace: ctx.settings.allow_cross_namespace_queries,
        limits: ctx.settings.limits,
    };
    // Trends and "regularly" come from this policy's own recent readings.
    let mut rings = ctx.state.take_rings(&read.key);
    let queries = history::queries(plan.queries(), &rings);
    let raw = metrics::observe(&ctx.batcher, &prometheus, &queries, &scope).await;
    let observation = history::fold(plan.queries(), raw, &mut rings, Instant::now());
    ctx.state.put_rings(&read.key, rings);
    observation
}

/// The Prometheus a policy reads (its own, if the admin allows it) and the token for it.
pub(crate) async fn prometheus_for(
    spec: &ScalingPolicySpec,
    ctx: &Context,
    ns: &str,
) -> Result<(Source, crate::metrics::Prometheus), QueryError> {
    let source = spec.prometheus.as_ref();
    let address = source
        .and_then(|p| p.address.clone())
        .unwrap_or_else(|| ctx.settings.prometheus_url.clone());
    // Checked before anything is sent, so a policy cannot probe other endpoints.
    let address = ctx
        .settings
        .allows(&address)
        .map_err(|e| QueryError::Unavailable(format!("spec.prometheus.address: {e}")))?;
    let token = match source.and_then(|p| p.bearer_token_secret_ref.as_ref()) {
        None => None,
        Some(r) => Some(token(ctx, ns, &r.name, &r.key).await?),
    };
    // A policy's own Prometheus or token is shared with no other namespace.
    let tenant = source
        .is_some_and(|p| p.address.is_some() || p.bearer_token_secret_ref.is_some())
        .then(|| ns.to_string());
    let client = ctx.prometheus(&address, token.clone())?;
    Ok((
        Source {
            address,
            token,
            tenant,
        },
        client,
    ))
}

/// The bearer token in Secret `name`, key `key`, of the policy's namespace.
async fn token(ctx: &Context, ns: &str, name: &str, key: &str) -> Result<String, QueryError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = secrets.get(name).await.map_err(|e| {
        QueryError::Unavailable(format!(
            "spec.prometheus.bearerTokenSecretRef: cannot read Secret {name}: {e}"
        ))
    })?;
    let bytes = secret
        .data
        .and_then(|d| d.get(key).cloned())
        .ok_or_else(|| {
            QueryError::Unavailable(format!(
                "spec.prometheus.bearerTokenSecretRef: Secret {name} has no key {key}"
            ))
        })?;
    Ok(String::from_utf8_lossy(&bytes.0).into_owned())
}
