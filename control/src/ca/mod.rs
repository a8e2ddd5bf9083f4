//! The mesh's certificate authority. It signs workload certificates from
//! the proxies' own CSRs (the private key never leaves the proxy), with the
//! SPIFFE identity `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` as the only
//! SAN, and the control plane's own TLS server certificate.
//!
//! Its key material lives in one directory (`--ca-dir`) in Istio's
//! `cacerts` layout ([`files`]), never in the database:
//!
//! - **Generated root** (the default): on first start, with the directory
//!   empty, the CA generates a root key (`ca-key.pem`, mode 0600) and a
//!   self-signed certificate (`ca-cert.pem`, copied to `root-cert.pem`),
//!   and reuses them on every later start.
//! - **Plugged-in CA**: put Istio's four files there before the first
//!   start — `ca-cert.pem` and `ca-key.pem` (an intermediate CA, which
//!   signs), `root-cert.pem` (the root) and `cert-chain.pem` (ca-cert up to
//!   the root). Leaves are signed with ca-cert/ca-key and sent with
//!   cert-chain's intermediates after them.
//!
//! `root-cert.pem` is the trust bundle proxies start from and receive with
//! every certificate. The control plane re-reads the directory when a file
//! changes (checked every [`RELOAD_INTERVAL`], as istiod follows its
//! plugged-in `cacerts`), so no step below needs a restart; a change that
//! does not open (a key that is not ca-cert's, a half-copied file) is
//! logged and the last good CA keeps signing until the files are whole.
//! The bundle may hold two roots, which is how a root is rotated without a
//! failed handshake (proxies take the new bundle with their next
//! certificate, at the latest one leaf lifetime later):
//!
//! 1. **Trust both.** Append the new root to `root-cert.pem` (old first).
//!    Wait one leaf lifetime (`--cert-ttl`): every proxy now trusts both.
//! 2. **Sign with the new one.** Replace `ca-cert.pem`/`ca-key.pem` (and
//!    `cert-chain.pem`) with the new root's (or an intermediate under it);
//!    keep both roots in `root-cert.pem`. New leaves, and the control
//!    plane's own server certificate, chain to the new root; old leaves
//!    still verify under the old. Wait one leaf lifetime.
//! 3. **Drop the old.** Remove the old root from `root-cert.pem`.
//!
//! The control plane's server certificate follows the signing key, so a
//! proxy must have the two-root bundle before step 2 to keep reaching the
//! control plane (restart proxies that were started with only the old
//! `root-cert.pem` and have not renewed since step 1).

mod bundle;
mod error;
pub mod files;
mod leaf;
pub mod lifetime;
mod load;
mod pem;
mod root;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use loupe_model::SpiffeId;
use rcgen::{Issuer, KeyPair, SanType, SerialNumber};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub use bundle::TrustBundle;
pub use error::CaError;
pub use files::CaDir;
pub use lifetime::Lifetimes;
pub use pem::PemCert;

/// Where the CA keeps its files, and what it issues.
#[derive(Clone, Debug)]
pub struct CaOptions {
    pub dir: PathBuf,
    /// SPIFFE trust domain (`cluster.local`).
    pub trust_domain: String,
    pub lifetimes: Lifetimes,
}

impl CaOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CaOptions {
            dir: dir.into(),
            trust_domain: loupe_model::identity::DEFAULT_TRUST_DOMAIN.to_string(),
            lifetimes: Lifetimes::default(),
        }
    }
}

/// A workload certificate, as `CreateCertificate` answers it.
#[derive(Clone, Debug)]
pub struct Issued {
    /// PEM, leaf first, then any intermediates (never the root).
    pub cert_chain: Vec<String>,
    /// PEM, each root of the bundle.
    pub trust_bundle: Vec<String>,
    pub not_after: SystemTime,
}

/// The control plane's own TLS certificate and key (kept in memory only).
pub struct ServerCertificate {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub not_after: SystemTime,
}

/// How often the CA directory is checked for changed files.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// What signs: the issuer, what follows a leaf, the bundle — replaced
/// whole when the directory changes.
pub(crate) struct Signing {
    issuer: Issuer<'static, KeyPair>,
    /// What follows a leaf (ca-cert when it is not a root, intermediates).
    chain: Vec<PemCert>,
    bundle: TrustBundle,
}

pub struct CertificateAuthority {
    signing: ArcSwap<Signing>,
    /// The files as last read (size and modification time of each).
    seen: Mutex<Vec<Option<(u64, SystemTime)>>>,
    /// Bumped on each reload, so holders of derived state (the server
    /// certificate) know to renew.
    generation: AtomicU64,
    dir: CaDir,
    trust_domain: String,
    lifetimes: Lifetimes,
}

impl CertificateAuthority {
    /// Opens the CA in `opts.dir`, generating a root there on first start.
    pub fn open(opts: &CaOptions) -> Result<Self, CaError> {
        let dir = CaDir::new(&opts.dir);
        let opened = load::open_or_generate(&dir, &opts.trust_domain)?;
        if opened.existed {
            tracing::debug!(signer = %opened.signer.subject(), "signing with an existing CA");
        }
        Ok(CertificateAuthority {
            seen: Mutex::new(stamp(&dir)),
            signing: ArcSwap::from_pointee(Signing {
                issuer: opened.issuer,
                chain: opened.chain,
                bundle: opened.bundle,
            }),
            generation: AtomicU64::new(0),
            dir,
            trust_domain: opts.trust_domain.clone(),
            lifetimes: opts.lifetimes,
        })
    }

    /// Re-reads the directory if a file changed since it was last read:
    /// `Ok(true)` when the CA now signs with what is there; an error (the
    /// last good CA kept) when the files do not open. Each change is tried
    /// once; the next edit is tried again.
    pub fn reload(&self) -> Result<bool, CaError> {
        let now = stamp(&self.dir);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let opened = load::open(&self.dir)?;
        tracing::info!(
            signer = %opened.signer.subject(),
            roots = opened.bundle.roots().len(),
            "CA directory changed: signing with what it holds now"
        );
        self.signing.store(Arc::new(Signing {
            issuer: opened.issuer,
            chain: opened.chain,
            bundle: opened.bundle,
        }));
        self.generation.fetch_add(1, Relaxed);
        Ok(true)
    }

    /// Changes with every successful [`CertificateAuthority::reload`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    /// The roots a peer's chain may end at, now.
    pub fn trust_bundle(&self) -> TrustBundle {
        self.signing.load().bundle.clone()
    }

    /// `<ca-dir>/root-cert.pem`: what proxies (`--ca-root`) start from.
    pub fn root_cert_path(&self) -> PathBuf {
        self.dir.path(files::ROOT_CERT)
    }

    pub fn dir(&self) -> &Path {
        &self.dir.dir
    }

    /// The SPIFFE ID of a service account in this trust domain.
    pub fn identity(&self, namespace: &str, service_account: &str) -> SpiffeId {
        SpiffeId::new(&self.trust_domain, namespace, service_account)
    }

    /// Signs a workload's CSR for `identity`, which the caller has
    /// authenticated. The CSR must ask for exactly that SPIFFE ID as its
    /// URI SAN; anything else is refused, naming both. `requested` zero
    /// means the default lifetime; any request is capped at the maximum.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        identity: &SpiffeId,
        requested: Duration,
    ) -> Result<Issued, CaError> {
        let csr = leaf::checked_csr(csr_pem, identity)?;
        let lifetime = self.lifetimes.choose(requested);
        let uri = identity.uri();
        let san = rcgen::string::Ia5String::try_from(uri.clone())
            .map_err(|e| CaError::BadCsr(format!("{uri}: {e}")))?;
        let signing = self.signing.load();
        let der = signing.sign_leaf(&csr.public_key, vec![SanType::URI(san)], lifetime, &uri)?;
        tracing::info!(identity = %uri, lifetime_s = lifetime.as_secs(), "workload certificate issued");
        let mut cert_chain = vec![pem::encode(&der)];
        cert_chain.extend(signing.chain.iter().map(|c| c.pem.clone()));
        Ok(Issued {
            cert_chain,
            trust_bundle: signing.bundle.pems(),
            not_after: SystemTime::now() + lifetime,
        })
    }

    /// A fresh key and server certificate for the control plane, with DNS
    /// `localhost` and each of `names`, IP 127.0.0.1 and each of `ips` as
    /// SANs. It lives the default leaf lifetime; [`crate::tls`] renews it
    /// at half-life.
    pub fn server_certificate(
        &self,
        ips: &[std::net::IpAddr],
        names: &[String],
    ) -> Result<ServerCertificate, CaError> {
        let subject = "the control plane's server certificate";
        let sign = |source| CaError::Sign {
            subject: subject.to_string(),
            source,
        };
        let key = KeyPair::generate().map_err(sign)?;
        let mut sans = vec![SanType::DnsName(
            rcgen::string::Ia5String::try_from("localhost").map_err(sign)?,
        )];
        for name in names {
            let san =
                SanType::DnsName(rcgen::string::Ia5String::try_from(name.as_str()).map_err(sign)?);
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        for ip in std::iter::once(&loopback).chain(ips) {
            let san = SanType::IpAddress(*ip);
            if !ip.is_unspecified() && !sans.contains(&san) {
                sans.push(san);
            }
        }
        let lifetime = self.lifetimes.default;
        let signing = self.signing.load();
        let der = signing.sign_leaf(&key, sans, lifetime, subject)?;
        let mut chain = vec![CertificateDer::from(der)];
        chain.extend(signing.chain.iter().map(|c| c.der.clone()));
        Ok(ServerCertificate {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            not_after: SystemTime::now() + lifetime,
        })
    }
}

/// Size and modification time of each of the CA's files (`None`: absent).
fn stamp(dir: &CaDir) -> Vec<Option<(u64, SystemTime)>> {
    [
        files::CA_CERT,
        files::CA_KEY,
        files::ROOT_CERT,
        files::CERT_CHAIN,
    ]
    .iter()
    .map(|f| {
        let meta = std::fs::metadata(dir.path(f)).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    })
    .collect()
}

/// A random positive 128-bit serial number (RFC 5280 allows up to 20 octets).
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Not-before slightly in the past (peers' clocks differ), not-after
/// `lifetime` from now.
fn validity(lifetime: Duration) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    let back = Lifetimes::backdate(lifetime);
    let to_time = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
    (
        now - to_time(back),
        now.checked_add(to_time(lifetime))
            .unwrap_or(time::OffsetDateTime::now_utc()),
    )
}

#[cfg(test)]
mod tests;
