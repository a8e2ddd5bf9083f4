//! Leaf certificates: a workload's, from its own CSR (only the public key
//! is taken from it — never its requested extensions, validity or CA
//! flag), and the control plane's own TLS server certificate.

use std::time::Duration;

use loupe_model::SpiffeId;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, ExtendedKeyUsagePurpose,
    IsCa, KeyUsagePurpose, PublicKeyData, SanType,
};

use super::{CaError, Signing, serial, validity};

/// A CSR's URI SAN, checked against the identity its sender authenticated as.
pub(super) fn checked_csr(
    csr_pem: &str,
    identity: &SpiffeId,
) -> Result<CertificateSigningRequestParams, CaError> {
    let csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| CaError::BadCsr(e.to_string()))?;
    let authenticated = identity.uri();
    let requested: Vec<String> = csr
        .params
        .subject_alt_names
        .iter()
        .map(|san| match san {
            SanType::URI(uri) => uri.as_str().to_string(),
            SanType::DnsName(name) => format!("DNS:{}", name.as_str()),
            SanType::IpAddress(ip) => format!("IP:{ip}"),
            SanType::Rfc822Name(mail) => format!("email:{}", mail.as_str()),
            other => format!("{other:?}"),
        })
        .collect();
    if requested != [authenticated.as_str()] {
        let requested = match requested.as_slice() {
            [] => "no URI SAN".to_string(),
            [one] => one.clone(),
            many => format!("the SANs [{}]", many.join(", ")),
        };
        return Err(CaError::WrongIdentity {
            requested,
            authenticated,
        });
    }
    Ok(csr)
}

/// What an mTLS peer certificate needs: usable by both ends of a
/// connection, never a CA.
fn leaf_params(sans: Vec<SanType>, lifetime: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    // No subject, as Istio's workload certificates: the identity is the
    // SAN (rcgen then marks the SAN extension critical, per RFC 5280).
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial());
    (params.not_before, params.not_after) = validity(lifetime);
    params
}

impl Signing {
    pub(super) fn sign_leaf(
        &self,
        public_key: &impl PublicKeyData,
        sans: Vec<SanType>,
        lifetime: Duration,
        subject: &str,
    ) -> Result<Vec<u8>, CaError> {
        let params = leaf_params(sans, lifetime);
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(|source| CaError::Sign {
                subject: subject.to_string(),
                source,
            })?;
        Ok(cert.der().to_vec())
    }
}
