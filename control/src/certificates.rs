//! The CA's gRPC face (`loupe.push.v1.Certificates/CreateCertificate`,
//! Istio's `IstioCertificateService` shape): an authenticated proxy sends a
//! CSR and gets a certificate for the identity of the WorkloadEntry its
//! credential is bound to — `spiffe://TD/ns/<entry ns>/sa/<entry
//! serviceAccount>` — and for nothing else.

use std::sync::Arc;
use std::time::Duration;

use loupe_push::certificates_server::Certificates;
use loupe_push::{CertificateRequest, CertificateResponse};
use tonic::{Request, Response, Status};

use crate::authn::{self, Authenticator};
use crate::ca::{CaError, CertificateAuthority};
use crate::snapshot::Publisher;

#[derive(Clone)]
pub struct CertificateService {
    ca: Arc<CertificateAuthority>,
    authenticator: Arc<dyn Authenticator>,
    /// Where the declared WorkloadEntries are (the current config).
    publisher: Arc<Publisher>,
}

impl CertificateService {
    pub fn new(
        ca: Arc<CertificateAuthority>,
        authenticator: Arc<dyn Authenticator>,
        publisher: Arc<Publisher>,
    ) -> Self {
        CertificateService {
            ca,
            authenticator,
            publisher,
        }
    }
}

#[tonic::async_trait]
impl Certificates for CertificateService {
    async fn create_certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let who = authn::authenticate(self.authenticator.as_ref(), &request).await?;
        let peer = request.remote_addr();
        let req = request.into_inner();
        let declared = self
            .publisher
            .declared_now(&who.namespace, &who.workload_entry)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "cannot read the config to issue a certificate");
                Status::unavailable("cannot read the config now; retry")
            })?
            .ok_or_else(|| {
                tracing::warn!(%who, ?peer, "certificate refused: no such WorkloadEntry");
                Status::failed_precondition(format!(
                    "the credential is for {who}, which is not in the config store: apply it first"
                ))
            })?;
        let identity = self
            .ca
            .identity(&declared.namespace, &declared.service_account);
        let requested = u64::try_from(req.validity_duration).map_err(|_| {
            Status::invalid_argument(format!(
                "validity_duration {} is negative",
                req.validity_duration
            ))
        })?;
        match self
            .ca
            .sign_csr(&req.csr, &identity, Duration::from_secs(requested))
        {
            Ok(issued) => Ok(Response::new(CertificateResponse {
                cert_chain: issued.cert_chain,
                trust_bundle: issued.trust_bundle,
            })),
            Err(error @ CaError::WrongIdentity { .. }) => {
                tracing::warn!(%who, ?peer, %error, "certificate refused");
                Err(Status::permission_denied(error.to_string()))
            }
            Err(error @ CaError::BadCsr(_)) => Err(Status::invalid_argument(error.to_string())),
            Err(error) => {
                tracing::error!(%who, %error, "signing failed");
                Err(Status::internal("signing the certificate failed"))
            }
        }
    }
}
