//! Opening a CA directory: the files Istio's `cacerts` layout names
//! (see [`super::files`]), checked against each other before anything is
//! signed with them — the key is ca-cert's key, ca-cert is a CA, and its
//! chain ends at a root of the bundle.

use rcgen::{Issuer, KeyPair, PublicKeyData};

use super::bundle::TrustBundle;
use super::files::{CA_CERT, CA_KEY, CERT_CHAIN, CaDir, ROOT_CERT};
use super::pem::{PemCert, certificates};
use super::{CaError, root};

/// A CA ready to sign.
pub struct Opened {
    pub issuer: Issuer<'static, KeyPair>,
    /// The signing certificate.
    pub signer: PemCert,
    /// What follows a leaf in its chain: ca-cert and cert-chain's
    /// intermediates, never a root of the bundle.
    pub chain: Vec<PemCert>,
    pub bundle: TrustBundle,
    /// False when this start generated the root.
    pub existed: bool,
}

/// Opens the CA in `dir`, generating a root (key 0600) when the
/// directory holds none of its files.
pub fn open_or_generate(dir: &CaDir, trust_domain: &str) -> Result<Opened, CaError> {
    let has_key = dir.exists(CA_KEY);
    let has_cert = dir.exists(CA_CERT);
    match (has_key, has_cert) {
        (true, true) => open(dir),
        (true, false) => Err(incomplete(dir, CA_KEY, CA_CERT)),
        (false, true) => Err(incomplete(dir, CA_CERT, CA_KEY)),
        (false, false) => {
            for other in [ROOT_CERT, CERT_CHAIN] {
                if dir.exists(other) {
                    return Err(incomplete(dir, other, CA_KEY));
                }
            }
            generate(dir, trust_domain)
        }
    }
}

fn generate(dir: &CaDir, trust_domain: &str) -> Result<Opened, CaError> {
    dir.create()?;
    let (key, cert) = root::generate(trust_domain)?;
    // Key first: a crash between the two leaves an Incomplete directory,
    // which refuses to start, rather than a certificate without its key.
    dir.write_private(CA_KEY, &key.serialize_pem())?;
    dir.write_public(CA_CERT, &cert.pem)?;
    dir.write_public(ROOT_CERT, &cert.pem)?;
    tracing::info!(dir = %dir.dir.display(), "generated a new root CA");
    let issuer = Issuer::from_ca_cert_der(&cert.der, key).map_err(|e| bad(dir, CA_CERT, e))?;
    Ok(Opened {
        issuer,
        signer: cert.clone(),
        chain: Vec::new(),
        bundle: TrustBundle::from_root(cert),
        existed: false,
    })
}

/// Opens the CA files that are in `dir` (never generating any).
pub fn open(dir: &CaDir) -> Result<Opened, CaError> {
    dir.check_private_mode(CA_KEY);
    let key = KeyPair::from_pem(&dir.read(CA_KEY)?).map_err(|e| bad(dir, CA_KEY, e))?;
    let signer = single(dir, CA_CERT)?;
    let parsed = signer.parse().map_err(|e| bad(dir, CA_CERT, e))?;
    if !parsed.is_ca() {
        return Err(bad(
            dir,
            CA_CERT,
            "is not a CA certificate (basicConstraints CA:FALSE)",
        ));
    }
    if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(bad(dir, CA_KEY, "is not the key of ca-cert.pem"));
    }
    let bundle = if dir.exists(ROOT_CERT) {
        TrustBundle::parse(&dir.read(ROOT_CERT)?).map_err(|e| bad(dir, ROOT_CERT, e))?
    } else if signer.is_self_signed() {
        let bundle = TrustBundle::from_root(signer.clone());
        dir.write_public(ROOT_CERT, &bundle.to_pem())?;
        bundle
    } else {
        return Err(incomplete(dir, CA_CERT, ROOT_CERT));
    };
    let mut chain: Vec<PemCert> = Vec::new();
    let mut links = vec![signer.clone()];
    if dir.exists(CERT_CHAIN) {
        links.extend(certificates(&dir.read(CERT_CHAIN)?).map_err(|e| bad(dir, CERT_CHAIN, e))?);
    }
    for cert in links {
        if !bundle.contains(&cert) && !chain.contains(&cert) {
            chain.push(cert);
        }
    }
    // ca-cert, then each intermediate issued by the next; the last by a root.
    for pair in chain.windows(2) {
        if !pair[0].is_signed_by(&pair[1]) {
            return Err(bad(
                dir,
                CERT_CHAIN,
                format!(
                    "{} is not issued by {} (list ca-cert's chain in order, up to the root)",
                    pair[0].subject(),
                    pair[1].subject()
                ),
            ));
        }
    }
    let top = chain.last().unwrap_or(&signer);
    if bundle.root_of(top).is_none() {
        return Err(bad(
            dir,
            ROOT_CERT,
            format!(
                "holds no root that issued {} (ca-cert.pem's chain must end at a root of the bundle)",
                top.subject()
            ),
        ));
    }
    let issuer = Issuer::from_ca_cert_der(&signer.der, key).map_err(|e| bad(dir, CA_CERT, e))?;
    tracing::info!(dir = %dir.dir.display(), signer = %signer.subject(), intermediates = chain.len(), roots = bundle.roots().len(), "CA loaded");
    Ok(Opened {
        issuer,
        signer,
        chain,
        bundle,
        existed: true,
    })
}

/// The one certificate of `file`.
fn single(dir: &CaDir, file: &str) -> Result<PemCert, CaError> {
    let mut certs = certificates(&dir.read(file)?).map_err(|e| bad(dir, file, e))?;
    match certs.len() {
        1 => Ok(certs.remove(0)),
        0 => Err(bad(dir, file, "holds no certificate")),
        n => Err(bad(
            dir,
            file,
            format!(
                "holds {n} certificates: it must hold the signing certificate only (its chain goes in cert-chain.pem)"
            ),
        )),
    }
}

fn bad(dir: &CaDir, file: &str, problem: impl std::fmt::Display) -> CaError {
    CaError::BadFile {
        path: dir.path(file),
        problem: problem.to_string(),
    }
}

fn incomplete(dir: &CaDir, present: &'static str, missing: &'static str) -> CaError {
    CaError::Incomplete {
        dir: dir.dir.clone(),
        present,
        missing,
    }
}
