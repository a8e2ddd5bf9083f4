//! One issued certificate and everything built from it once: the rustls
//! server configuration of the inbound side, the client configurations of
//! the outbound side (one offering HTTP/2, one HTTP/1.1), and what the
//! admin port's `/certs` shows. A rotation builds a new [`Credentials`] and
//! swaps it in; connections already open keep the one they started with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use loupe_model::SpiffeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Serialize;

use super::alpn;
use super::verify::{MeshServerVerifier, spiffe_ids};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("the CA answered no certificate chain")]
    NoChain,
    #[error("the CA answered no trust bundle (root certificates)")]
    NoRoots,
    #[error("{what} is not valid PEM: {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("a root certificate of the trust bundle is unusable: {0}")]
    Root(#[source] rustls::Error),
    #[error("the issued certificate names {got:?}, not this workload's {want}")]
    Identity { want: String, got: Vec<String> },
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

/// A certificate as `/certs` shows it (Envoy's admin `/certs` fields).
#[derive(Clone, Debug, Serialize)]
pub struct CertInfo {
    pub subject_alt_names: Vec<String>,
    pub serial_number: String,
    /// Seconds since the Unix epoch.
    pub valid_from: i64,
    pub expiration_time: i64,
    pub days_until_expiration: i64,
}

impl CertInfo {
    fn of(der: &CertificateDer<'_>) -> Option<CertInfo> {
        let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let validity = c.validity();
        let not_after = validity.not_after.timestamp();
        let now = now_secs();
        let mut sans: Vec<String> = spiffe_ids(der).iter().map(SpiffeId::uri).collect();
        if sans.is_empty() {
            sans.push(c.subject().to_string());
        }
        Some(CertInfo {
            subject_alt_names: sans,
            serial_number: c.raw_serial_as_string().replace(':', ""),
            valid_from: validity.not_before.timestamp(),
            expiration_time: not_after,
            days_until_expiration: (not_after - now).max(0) / 86_400,
        })
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One issued workload certificate with its configurations.
pub struct Credentials {
    pub id: SpiffeId,
    pub leaf: CertInfo,
    pub roots: Vec<CertInfo>,
    pub server: Arc<ServerConfig>,
    /// Offers `istio-h2` (HTTP/2 between sidecars).
    pub client_h2: Arc<ClientConfig>,
    /// Offers `istio-http/1.1`.
    pub client_http1: Arc<ClientConfig>,
    /// Opaque TCP to another sidecar (ALPN `istio`).
    pub client_tcp: Arc<ClientConfig>,
}

impl Credentials {
    /// Builds from the CA's answer: the chain (leaf first, PEM), this
    /// proxy's own key (PKCS#8 DER), and the trust bundle (PEM roots).
    pub fn build(
        id: &SpiffeId,
        chain_pem: &[String],
        key_pkcs8_der: Vec<u8>,
        roots_pem: &[String],
    ) -> Result<Credentials, CredentialsError> {
        let chain = pem_certs("the certificate chain", chain_pem)?;
        let leaf_der = chain.first().ok_or(CredentialsError::NoChain)?;
        let got = spiffe_ids(leaf_der);
        if got.as_slice() != std::slice::from_ref(id) {
            return Err(CredentialsError::Identity {
                want: id.uri(),
                got: got.iter().map(SpiffeId::uri).collect(),
            });
        }
        let roots_der = pem_certs("the trust bundle", roots_pem)?;
        if roots_der.is_empty() {
            return Err(CredentialsError::NoRoots);
        }
        let mut roots = RootCertStore::empty();
        for r in &roots_der {
            roots.add(r.clone()).map_err(CredentialsError::Root)?;
        }
        let roots = Arc::new(roots);
        let key = PrivateKeyDer::Pkcs8(key_pkcs8_der.into());
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let config_err = |e: rustls::Error| CredentialsError::Config(e.to_string());

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| CredentialsError::Config(e.to_string()))?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config_err)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_err)?;
        server.alpn_protocols = alpn::server();

        let client = |protocol: &[u8]| -> Result<Arc<ClientConfig>, CredentialsError> {
            let verifier =
                MeshServerVerifier::new(roots.clone(), provider.signature_verification_algorithms);
            let mut c = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(config_err)?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(config_err)?;
            c.alpn_protocols = vec![protocol.to_vec()];
            Ok(Arc::new(c))
        };
        Ok(Credentials {
            id: id.clone(),
            leaf: CertInfo::of(leaf_der).ok_or(CredentialsError::NoChain)?,
            roots: roots_der.iter().filter_map(CertInfo::of).collect(),
            server: Arc::new(server),
            client_h2: client(alpn::ISTIO_H2)?,
            client_http1: client(alpn::ISTIO_HTTP11)?,
            client_tcp: client(alpn::ISTIO)?,
        })
    }

    /// When to renew: at half of the lifetime left (Istio's agent renews at
    /// half-life; counting from now, not from a backdated not-before, keeps
    /// a short-lived certificate from renewing at once).
    pub fn renew_in(&self) -> Duration {
        let left = self.leaf.expiration_time - now_secs();
        Duration::from_millis((left * 500).max(1000) as u64)
    }
}

fn pem_certs(
    what: &'static str,
    pems: &[String],
) -> Result<Vec<CertificateDer<'static>>, CredentialsError> {
    let mut out = Vec::new();
    for pem in pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            out.push(cert.map_err(|e| CredentialsError::Pem {
                what,
                detail: e.to_string(),
            })?);
        }
    }
    Ok(out)
}

/// The workload's current credentials. `required` says whether this proxy
/// runs with an identity at all (started with a CA root and a credential):
/// then mesh traffic is mTLS and nothing is sent in plaintext instead.
#[derive(Default)]
pub struct CredentialStore {
    current: ArcSwapOption<Credentials>,
    pub required: bool,
    /// Certificates installed since start (the first one included).
    pub rotations: AtomicU64,
}

impl CredentialStore {
    pub fn new(required: bool) -> CredentialStore {
        CredentialStore {
            current: ArcSwapOption::empty(),
            required,
            rotations: AtomicU64::new(0),
        }
    }

    pub fn load(&self) -> Option<Arc<Credentials>> {
        self.current.load_full()
    }

    pub fn install(&self, credentials: Credentials) {
        self.current.store(Some(Arc::new(credentials)));
        self.rotations.fetch_add(1, Relaxed);
    }

    /// Ready to serve: no identity needed, or one installed.
    pub fn is_ready(&self) -> bool {
        !self.required || self.current.load().is_some()
    }

    /// What `/certs` serves.
    pub fn dump(&self) -> serde_json::Value {
        match self.load() {
            None => serde_json::json!({
                "certificates": [],
                "identity_required": self.required,
                "rotations": self.rotations.load(Relaxed),
            }),
            Some(c) => serde_json::json!({
                "certificates": [{
                    "identity": c.id.uri(),
                    "cert_chain": [c.leaf],
                    "ca_cert": c.roots,
                }],
                "identity_required": self.required,
                "rotations": self.rotations.load(Relaxed),
            }),
        }
    }
}
