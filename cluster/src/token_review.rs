//! The authenticator of cluster mode: a proxy's credential is its pod's
//! projected service-account token (audience `istio-ca`, mounted by the
//! injector), and the API server says whose it is (a TokenReview, as istiod
//! checks its callers).
//!
//! The token must be bound to a pod: the review's `extra` names the pod
//! (`authentication.kubernetes.io/pod-name` and `pod-uid`), and that pod
//! must exist now with that UID and run as the token's service account. The
//! workload is then that pod — `Authenticated { namespace, workload_entry:
//! POD }` — and [`loupe_control::authn::claims`] holds the Hello to what the
//! pod is (its WorkloadEntry from [`crate::registry`]): another service
//! account, namespace, label or pod name is refused. A token of a deleted
//! pod, or an unbound token, is refused even while the API server still
//! accepts it.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use loupe_control::authn::{AuthError, Authenticated, Authenticator, Credential};

/// The audience of the projected token (Istio's).
pub const AUDIENCE: &str = "istio-ca";
/// TokenReview `extra` keys of a token bound to a pod.
pub const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";
/// A service account's username: `system:serviceaccount:NS:NAME`.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Authenticates proxies by TokenReview.
pub struct TokenReviewer {
    client: kube::Client,
    audience: String,
}

impl TokenReviewer {
    pub fn new(client: kube::Client) -> Self {
        TokenReviewer {
            client,
            audience: AUDIENCE.to_string(),
        }
    }

    /// Who the API server says the token is: (namespace, service account,
    /// pod name, pod UID).
    async fn review(&self, token: &str) -> Result<(String, String, String, String), AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(format!("TokenReview failed: {e}")))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(match status.error {
                Some(error) if !error.is_empty() => {
                    AuthError::Refused(format!("the API server rejects the token: {error}"))
                }
                _ => AuthError::Unknown,
            });
        }
        if let Some(audiences) = &status.audiences
            && !audiences.iter().any(|a| a == &self.audience)
        {
            return Err(AuthError::Refused(format!(
                "the token is not for audience {:?} (mount a projected token with that audience)",
                self.audience
            )));
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let Some((namespace, service_account)) = username
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            return Err(AuthError::Refused(format!(
                "{username:?} is not a service account (a proxy sends its pod's service-account token)"
            )));
        };
        let extra = user.extra.unwrap_or_default();
        let first = |key: &str| extra.get(key).and_then(|v| v.first()).cloned();
        let (Some(pod), Some(uid)) = (first(POD_NAME_EXTRA), first(POD_UID_EXTRA)) else {
            return Err(AuthError::Refused(format!(
                "the token of {username} is not bound to a pod (use the projected token the injector mounts)"
            )));
        };
        Ok((namespace.to_string(), service_account.to_string(), pod, uid))
    }
}

#[tonic::async_trait]
impl Authenticator for TokenReviewer {
    async fn authenticate(&self, credential: &Credential) -> Result<Authenticated, AuthError> {
        let Credential::Bearer(token) = credential;
        let (namespace, service_account, pod_name, uid) = self.review(token).await?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let pod = pods
            .get_opt(&pod_name)
            .await
            .map_err(|e| {
                AuthError::Unavailable(format!("reading pod {namespace}/{pod_name}: {e}"))
            })?
            .ok_or_else(|| {
                AuthError::Refused(format!("pod {namespace}/{pod_name} of the token is gone"))
            })?;
        if pod.metadata.uid.as_deref() != Some(uid.as_str()) {
            return Err(AuthError::Refused(format!(
                "pod {namespace}/{pod_name} was replaced (the token is for UID {uid})"
            )));
        }
        let runs_as = crate::registry::service_account(&pod);
        if runs_as != service_account {
            return Err(AuthError::Refused(format!(
                "pod {namespace}/{pod_name} runs as service account {runs_as:?}, the token is for {service_account:?}"
            )));
        }
        Ok(Authenticated {
            namespace,
            workload_entry: pod_name,
        })
    }
}
