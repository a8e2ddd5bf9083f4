//! The trust bundle (`root-cert.pem`): every root a peer's chain may end
//! at. Normally one; two while a root is rotated (see the module comment of
//! [`crate::ca`]).

use super::pem::{PemCert, certificates};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustBundle {
    roots: Vec<PemCert>,
}

impl TrustBundle {
    /// Parses `root-cert.pem`: one or more self-signed CA certificates.
    pub fn parse(text: &str) -> Result<TrustBundle, String> {
        let mut roots: Vec<PemCert> = Vec::new();
        for cert in certificates(text)? {
            let parsed = cert.parse()?;
            if !parsed.is_ca() {
                return Err(format!(
                    "{} is not a CA certificate (basicConstraints CA:FALSE)",
                    parsed.subject()
                ));
            }
            if !cert.is_self_signed() {
                return Err(format!(
                    "{} is not self-signed: the trust bundle holds roots only (intermediates go in cert-chain.pem)",
                    parsed.subject()
                ));
            }
            if !roots.contains(&cert) {
                roots.push(cert);
            }
        }
        if roots.is_empty() {
            return Err("holds no root certificate".into());
        }
        Ok(TrustBundle { roots })
    }

    pub fn from_root(root: PemCert) -> TrustBundle {
        TrustBundle { roots: vec![root] }
    }

    pub fn roots(&self) -> &[PemCert] {
        &self.roots
    }

    pub fn contains(&self, cert: &PemCert) -> bool {
        self.roots.contains(cert)
    }

    /// Each root's PEM (the protocol's `trust_bundle`).
    pub fn pems(&self) -> Vec<String> {
        self.roots.iter().map(|r| r.pem.clone()).collect()
    }

    /// The file's contents: the roots, concatenated.
    pub fn to_pem(&self) -> String {
        self.roots.iter().map(|r| r.pem.as_str()).collect()
    }

    /// The root that issued `cert`, if any.
    pub fn root_of(&self, cert: &PemCert) -> Option<&PemCert> {
        self.roots
            .iter()
            .find(|r| *r == cert || cert.is_signed_by(r))
    }
}
