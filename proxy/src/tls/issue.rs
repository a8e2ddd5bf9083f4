//! Certificate issuance and rotation: make a fresh key pair, send a CSR for
//! this workload's SPIFFE ID to the control plane's `CreateCertificate`,
//! install the answer, and do it again at half of the certificate's
//! lifetime (Istio's agent renews the same way). A failed renewal is
//! retried with capped backoff while the current certificate serves on.

use std::sync::Arc;
use std::time::Duration;

use loupe_model::SpiffeId;
use loupe_push::CertificateRequest;
use loupe_push::certificates_client::CertificatesClient;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};

use super::credentials::{CredentialStore, Credentials, CredentialsError};
use crate::control::{ControlError, ControlPlane};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("making the key pair or CSR failed: {0}")]
    Csr(#[from] rcgen::Error),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("the CA refused the CSR: {}", .0.message())]
    Refused(tonic::Status),
    #[error("the CA's answer is unusable: {0}")]
    Answer(#[from] CredentialsError),
}

pub struct Issuer {
    pub control: ControlPlane,
    pub id: SpiffeId,
    /// Requested lifetime; `None` = the CA's default.
    pub ttl: Option<Duration>,
    pub store: Arc<CredentialStore>,
}

const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

impl Issuer {
    /// Runs forever: issue, wait for half-life, renew.
    pub async fn run(self) {
        let mut retry = RETRY_MIN;
        loop {
            match self.issue().await {
                Ok(credentials) => {
                    let renew_in = credentials.renew_in();
                    tracing::info!(
                        identity = %self.id,
                        serial = %credentials.leaf.serial_number,
                        expires = credentials.leaf.expiration_time,
                        renew_in = ?renew_in,
                        "workload certificate installed"
                    );
                    self.store.install(credentials);
                    retry = RETRY_MIN;
                    tokio::time::sleep(renew_in).await;
                }
                Err(error) => {
                    tracing::warn!(identity = %self.id, %error, retry_in = ?retry, "certificate issuance failed");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    pub async fn issue(&self) -> Result<Credentials, IssueError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(self.id.uri().try_into()?)];
        let csr = params.serialize_request(&key)?.pem()?;
        let channel = self.control.connect().await?;
        let answer = CertificatesClient::new(channel)
            .create_certificate(self.control.request(CertificateRequest {
                csr,
                validity_duration: self.ttl.map(|t| t.as_secs() as i64).unwrap_or(0),
            }))
            .await
            .map_err(IssueError::Refused)?
            .into_inner();
        Ok(Credentials::build(
            &self.id,
            &answer.cert_chain,
            key.serialize_der(),
            &answer.trust_bundle,
        )?)
    }
}
