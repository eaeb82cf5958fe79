//! `/readyz` is not ready while the operator lacks a right its work needs (a binding removed,
//! a ClusterRole edited): probes, rollouts and `kubectl get pods` show it, not only the logs.
//! Checked with SelfSubjectAccessReviews, which every authenticated user may create.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

/// What the operator must be able to do: (group, resource, subresource, verb).
const NEEDED: [(&str, &str, &str, &str); 4] = [
    ("headroom.dev", "scalingpolicies", "", "list"),
    ("headroom.dev", "scalingpolicies", "", "watch"),
    ("headroom.dev", "scalingpolicies", "status", "patch"),
    ("apps", "deployments", "scale", "patch"),
];

/// How often the rights are checked again.
const EVERY: Duration = Duration::from_secs(30);

/// The first right the operator lacks, as `cannot patch scalingpolicies/status`; None when it
/// has them all. Errors of the review itself are returned as errors, not as a lack.
pub async fn missing(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Option<String>, kube::Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (group, resource, sub, verb) in NEEDED {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    subresource: (!sub.is_empty()).then(|| sub.into()),
                    verb: Some(verb.into()),
                    namespace: namespace.map(Into::into),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api.create(&PostParams::default(), &review).await?;
        if !answer.status.is_some_and(|s| s.allowed) {
            let what = if sub.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}/{sub}")
            };
            return Ok(Some(format!("cannot {verb} {what}")));
        }
    }
    Ok(None)
}

/// Keeps `lacking` up to date; a review that fails leaves the last answer standing.
pub async fn watch(client: Client, namespace: Option<String>, lacking: Arc<Mutex<Option<String>>>) {
    loop {
        match missing(&client, namespace.as_deref()).await {
            Ok(m) => {
                if let Some(what) = &m {
                    tracing::warn!(%what, "missing RBAC: not ready");
                }
                if let Ok(mut l) = lacking.lock() {
                    *l = m;
                }
            }
            Err(e) => tracing::debug!(error = %e, "access review failed"),
        }
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    use super::*;

    /// An API server that allows every review except `denied` (resource/subresource verb).
    fn reviewing(denied: &'static str) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let body = request
                    .into_body()
                    .collect_bytes()
                    .await
                    .unwrap_or_default();
                let review: Value = serde_json::from_slice(&body).unwrap_or_default();
                let a = &review["spec"]["resourceAttributes"];
                let asked = format!(
                    "{}{}{} {}",
                    a["resource"].as_str().unwrap_or_default(),
                    if a["subresource"].is_string() {
                        "/"
                    } else {
                        ""
                    },
                    a["subresource"].as_str().unwrap_or_default(),
                    a["verb"].as_str().unwrap_or_default()
                );
                let mut answer = review.clone();
                answer["status"] = json!({"allowed": asked != denied});
                if let Ok(r) = Response::builder().body(Body::from(answer.to_string().into_bytes()))
                {
                    send.send_response(r);
                }
            }
        });
        Client::new(service, "default")
    }

    #[tokio::test]
    async fn a_missing_right_is_named_and_all_rights_are_none() {
        let lacking = missing(&reviewing("scalingpolicies/status patch"), Some("team-a")).await;
        assert_eq!(
            lacking.ok().flatten().as_deref(),
            Some("cannot patch scalingpolicies/status")
        );
        let lacking = missing(&reviewing("scalingpolicies list"), None).await;
        assert_eq!(
            lacking.ok().flatten().as_deref(),
            Some("cannot list scalingpolicies")
        );
        let all = missing(&reviewing("nothing"), None).await;
        assert!(matches!(all, Ok(None)), "{all:?}");
    }
}
