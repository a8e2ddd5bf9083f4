//! Peer verification. Both sides verify the peer's chain up to the mesh's
//! trust bundle with webpki; identities are SPIFFE URI SANs. The inbound
//! side records the caller's identity for authorization, metrics and
//! spans; the outbound side, once the handshake is done and before any
//! request is written, compares the server's identity with the one the
//! control plane registered for the endpoint.

use std::sync::Arc;

use loupe_model::SpiffeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Who is on the other end of a mesh mTLS connection, from its certificate.
/// Rides in request extensions: no header can set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub id: SpiffeId,
}

impl PeerIdentity {
    /// The identity in the peer's leaf certificate, if it carries exactly
    /// one SPIFFE workload ID.
    pub fn of(certs: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
        let leaf = certs.first()?;
        let mut ids = spiffe_ids(leaf);
        let id = ids.pop()?;
        ids.is_empty().then_some(PeerIdentity { id })
    }
}

/// Every URI SAN of `cert` that is a SPIFFE workload identity.
pub fn spiffe_ids(cert: &CertificateDer<'_>) -> Vec<SpiffeId> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(uri) => SpiffeId::parse(uri).ok(),
            _ => None,
        })
        .collect()
}

/// Verifies the server's chain to the trust bundle and leaves its name to
/// the connector: mesh certificates name SPIFFE IDs, not DNS names.
#[derive(Debug)]
pub struct MeshServerVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl MeshServerVerifier {
    pub fn new(roots: Arc<RootCertStore>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        MeshServerVerifier { roots, algorithms }
    }
}

impl ServerCertVerifier for MeshServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if spiffe_ids(end_entity).is_empty() {
            return Err(rustls::Error::General(
                "the server's certificate carries no SPIFFE ID".into(),
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
