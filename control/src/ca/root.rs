//! The root a control plane generates on first start, when its CA
//! directory is empty: an ECDSA P-256 key and a self-signed certificate
//! valid ten years, as Istio's self-signed CA does.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use super::lifetime::ROOT_TTL;
use super::pem::PemCert;
use super::{CaError, serial, validity};

/// A new root key and certificate for `trust_domain`.
pub fn generate(trust_domain: &str) -> Result<(KeyPair, PemCert), CaError> {
    let sign = |source| CaError::Sign {
        subject: format!("the root of {trust_domain}"),
        source,
    };
    let key = KeyPair::generate().map_err(sign)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = root_name(trust_domain);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.not_before, params.not_after) = validity(ROOT_TTL);
    params.serial_number = Some(serial());
    let cert = params.self_signed(&key).map_err(sign)?;
    Ok((key, PemCert::from_der(cert.der().clone())))
}

/// `O=<trust domain>, CN=Loupe root CA`: Istio names its root's
/// organization after the trust domain too.
fn root_name(trust_domain: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, trust_domain);
    dn.push(DnType::CommonName, "Loupe root CA");
    dn
}
