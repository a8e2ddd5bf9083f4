//! The console over HTTPS (`loupe console --tls-cert FILE --tls-key FILE`):
//! a certificate chain and its private key in PEM, served with rustls
//! (ALPN `h2`, `http/1.1`). Session cookies are then marked `Secure`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the console's certificate and key are.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// PEM certificates, leaf first.
    pub cert: PathBuf,
    /// The leaf's PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {}: {message}", path.display())]
    Cert { path: PathBuf, message: String },
    #[error("--tls-key {}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("--tls-cert and --tls-key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The rustls server configuration of `files`, or what is wrong with them.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        message: format!("no usable PEM private key ({e})"),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |message: String| TlsError::Cert {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("cannot read it ({e})")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(err("no certificate in it".into()));
    }
    Ok(certs)
}
