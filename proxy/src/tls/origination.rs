//! TLS origination (a DestinationRule's `trafficPolicy.tls` with `mode:
//! SIMPLE` or `MUTUAL`, Istio's egress TLS origination): the app sends
//! plain HTTP, the sidecar opens TLS to the destination outside the mesh.
//!
//! As Istio documents the fields: the server's chain is verified against
//! `caCertificates` (a PEM file), else the system's roots; its name must
//! match one of `subjectAltNames` when given, else the SNI; `sni` is sent,
//! else the service's host; `insecureSkipVerify` skips both checks;
//! `MUTUAL` presents `clientCertificate` with `privateKey`. Files are read
//! when the config is compiled, so a missing or bad file refuses that
//! snapshot (NACK, last good config kept) instead of failing requests.
//! Each setting has its own connection pool: a changed setting (or a
//! changed file) never reuses a connection made under the old one, and an
//! unchanged one keeps its connections across snapshots.
//! `credentialName` (a Kubernetes Secret) and `caCrl` are not read in local
//! mode; `loupe analyze` says so.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

use loupe_model::networking::traffic_policy::{ClientTlsMode, ClientTlsSettings};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::transport::UpstreamClient;

/// How to open TLS to one destination outside the mesh, and the pooled
/// client that does it.
pub struct Origination {
    pub client: UpstreamClient,
    /// The settings and the files' contents it was built from: a snapshot
    /// that changes neither gets this same origination (and its pooled
    /// connections) back; one that changes either gets a new pool.
    fingerprint: u64,
}

impl std::fmt::Debug for Origination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origination")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The originations alive now (their fingerprints tell them apart).
static LIVE: Mutex<Vec<Weak<Origination>>> = Mutex::new(Vec::new());

#[derive(Debug, thiserror::Error)]
pub enum OriginationError {
    #[error("{field} {path}: {reason}")]
    File {
        field: &'static str,
        path: String,
        reason: String,
    },
    #[error("{field} {value:?} is not a DNS name or IP address")]
    Name { field: &'static str, value: String },
    #[error("MUTUAL needs `clientCertificate` and `privateKey` (files on the proxy's host)")]
    NoClientCertificate,
    #[error("{0}")]
    Tls(String),
}

impl Origination {
    /// The origination `tls` asks for toward `host`; `None` for modes that
    /// are not origination. `h2` offers HTTP/2 by ALPN (else HTTP/1.1 only).
    pub fn of(
        tls: &ClientTlsSettings,
        host: &str,
        h2: bool,
    ) -> Option<Result<Arc<Origination>, OriginationError>> {
        let mutual = match tls.mode? {
            ClientTlsMode::Simple => false,
            ClientTlsMode::Mutual => true,
            ClientTlsMode::Disable | ClientTlsMode::IstioMutual => return None,
        };
        let mut files = Files::new(tls, host, h2);
        let built = build(tls, host, mutual, h2, &mut files);
        Some(built.map(|(config, name)| {
            let fingerprint = files.hasher.finish();
            let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
            live.retain(|w| w.strong_count() > 0);
            if let Some(same) = live
                .iter()
                .filter_map(Weak::upgrade)
                .find(|o| o.fingerprint == fingerprint)
            {
                return same;
            }
            let origination = Arc::new(Origination {
                client: crate::transport::origination_client(config, name),
                fingerprint,
            });
            live.push(Arc::downgrade(&origination));
            origination
        }))
    }
}

/// Reads an origination's files, hashing them with its settings.
struct Files {
    hasher: DefaultHasher,
}

impl Files {
    fn new(tls: &ClientTlsSettings, host: &str, h2: bool) -> Files {
        let mut hasher = DefaultHasher::new();
        format!("{tls:?}").hash(&mut hasher);
        (host, h2).hash(&mut hasher);
        Files { hasher }
    }

    fn read(&mut self, field: &'static str, path: &str) -> Result<Vec<u8>, OriginationError> {
        let bytes = std::fs::read(path).map_err(|e| file_error(field, path, e))?;
        bytes.hash(&mut self.hasher);
        Ok(bytes)
    }
}

fn build(
    tls: &ClientTlsSettings,
    host: &str,
    mutual: bool,
    h2: bool,
    files: &mut Files,
) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), OriginationError> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let sni = tls.sni.as_deref().unwrap_or(host);
    let server_name = name_of("sni", sni)?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify == Some(true) {
        Arc::new(SkipVerification(provider.clone()))
    } else {
        let roots = match tls.ca_certificates.as_deref().filter(|p| !p.is_empty()) {
            Some(path) => {
                let pem = files.read("caCertificates", path)?;
                roots_from("caCertificates", path, &pem)?
            }
            None => system_roots()?,
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| OriginationError::Tls(e.to_string()))?;
        let names = tls
            .subject_alt_names
            .iter()
            .map(|s| name_of("subjectAltNames", s))
            .collect::<Result<Vec<_>, _>>()?;
        Arc::new(NamedVerifier { webpki, names })
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OriginationError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = if mutual {
        let (Some(cert), Some(key)) = (
            tls.client_certificate.as_deref(),
            tls.private_key.as_deref(),
        ) else {
            return Err(OriginationError::NoClientCertificate);
        };
        let chain = CertificateDer::pem_slice_iter(&files.read("clientCertificate", cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_error("clientCertificate", cert, e))?;
        let key = PrivateKeyDer::from_pem_slice(&files.read("privateKey", key)?)
            .map_err(|e| file_error("privateKey", key, e))?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| OriginationError::Tls(format!("clientCertificate/privateKey: {e}")))?
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((Arc::new(config), server_name))
}

fn name_of(field: &'static str, value: &str) -> Result<ServerName<'static>, OriginationError> {
    ServerName::try_from(value.to_string()).map_err(|_| OriginationError::Name {
        field,
        value: value.to_string(),
    })
}

fn file_error(field: &'static str, path: &str, e: impl std::fmt::Display) -> OriginationError {
    OriginationError::File {
        field,
        path: path.to_string(),
        reason: e.to_string(),
    }
}

fn roots_from(
    field: &'static str,
    path: &str,
    pem: &[u8],
) -> Result<RootCertStore, OriginationError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(field, path, e))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(file_error(field, path, "no CA certificate in it"));
    }
    Ok(roots)
}

/// The host's CA certificates (none found: a clear error, as for a bad file).
fn system_roots() -> Result<RootCertStore, OriginationError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(OriginationError::Tls(
            "no `caCertificates` given and no system CA certificates found on this host".into(),
        ));
    }
    Ok(roots)
}

/// The chain to the roots, and the name: one of `subjectAltNames` when
/// given, else the SNI (webpki's own check).
#[derive(Debug)]
struct NamedVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.names.is_empty() {
            return self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp,
                now,
            );
        }
        let mut last = None;
        for name in &self.names {
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, name, ocsp, now)
            {
                Ok(ok) => return Ok(ok),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(rustls::Error::General("no subjectAltNames".into())))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `insecureSkipVerify: true`: any chain and name (the handshake's
/// signatures are still checked, so the server holds the key it shows).
#[derive(Debug)]
struct SkipVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
