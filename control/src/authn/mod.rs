//! Who is calling: every call on the control plane's gRPC services carries
//! a credential (`authorization: Bearer TOKEN` metadata), and one
//! [`Authenticator`] turns it into the workload it speaks for — or refuses,
//! and the call ends UNAUTHENTICATED before anything else happens.
//!
//! Local mode's authenticator is [`BootstrapTokens`]: random tokens bound
//! to one WorkloadEntry each (`loupe workload token NS/NAME`). Cluster mode
//! (`loupe-cluster`) has the second implementation, over Kubernetes
//! TokenReview, with the pod's projected service-account token as the
//! credential and the pod as the workload; the rest of the control plane
//! sees only [`Authenticated`].
//!
//! What an authenticated proxy may then claim about itself is decided in
//! [`claims`].

mod bootstrap;
pub mod claims;
mod credential;

pub use bootstrap::{BootstrapTokens, hash_token};
pub use credential::{Credential, MAX_CREDENTIAL_LEN};

/// The workload a credential speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub namespace: String,
    /// The name of the WorkloadEntry (local mode) or Pod (cluster mode) the
    /// credential is bound to.
    pub workload_entry: String,
}

impl std::fmt::Display for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WorkloadEntry {}/{}",
            self.namespace, self.workload_entry
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no credential: send `authorization: Bearer TOKEN` metadata (a token from `loupe workload token NS/NAME`)"
    )]
    Missing,
    #[error("the authorization metadata is not `Bearer TOKEN`: {0}")]
    Malformed(String),
    #[error("unknown credential (revoked, replaced by a newer token, or never issued)")]
    Unknown,
    /// A genuine credential that does not bind a workload this control
    /// plane serves (a token not bound to a pod, a pod that is gone).
    #[error("credential refused: {0}")]
    Refused(String),
    /// The authenticator could not decide (its database or API is down).
    #[error("cannot check credentials now: {0}")]
    Unavailable(String),
}

impl From<AuthError> for tonic::Status {
    fn from(e: AuthError) -> tonic::Status {
        match e {
            AuthError::Unavailable(_) => {
                tracing::warn!(error = %e, "authentication failed for want of a backend");
                tonic::Status::unavailable("cannot check credentials now; retry")
            }
            other => tonic::Status::unauthenticated(other.to_string()),
        }
    }
}

/// Turns a credential into the workload it speaks for.
#[tonic::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, credential: &Credential) -> Result<Authenticated, AuthError>;
}

/// Authenticates a gRPC request by its metadata; refusals are logged with
/// the peer address.
pub async fn authenticate<T>(
    authenticator: &dyn Authenticator,
    request: &tonic::Request<T>,
) -> Result<Authenticated, tonic::Status> {
    let peer = request.remote_addr();
    let result = match Credential::from_metadata(request.metadata()) {
        Ok(credential) => authenticator.authenticate(&credential).await,
        Err(e) => Err(e),
    };
    result.map_err(|error| {
        tracing::warn!(?peer, %error, "call refused: not authenticated");
        tonic::Status::from(error)
    })
}
