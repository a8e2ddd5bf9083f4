//! The connection to the control plane, shared by config discovery and
//! certificate issuance: the URL, TLS that trusts the mesh root the proxy
//! was started with (`--ca-root`), and the bearer credential every call
//! carries (`--token-file`: the bootstrap token in local mode, the
//! service-account token on Kubernetes).

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control plane URL {url:?} is invalid: {source}")]
    Url {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot connect to the control plane at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

#[derive(Clone)]
pub struct ControlPlane {
    pub url: String,
    /// PEM of the roots that sign the control plane's server certificate.
    root_pem: Option<String>,
    /// `Bearer TOKEN`.
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl ControlPlane {
    pub fn new(url: String, root_pem: Option<String>, token: Option<&str>) -> ControlPlane {
        ControlPlane {
            url,
            root_pem,
            authorization: token
                .and_then(|t| MetadataValue::try_from(format!("Bearer {}", t.trim())).ok()),
        }
    }

    pub async fn connect(&self) -> Result<Channel, ControlError> {
        let mut endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|source| ControlError::Url {
                url: self.url.clone(),
                source,
            })?
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        if let Some(pem) = &self.root_pem {
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|source| ControlError::Url {
                    url: self.url.clone(),
                    source,
                })?;
        }
        endpoint
            .connect()
            .await
            .map_err(|source| ControlError::Connect {
                url: self.url.clone(),
                source,
            })
    }

    /// `message` as a request carrying the proxy's credential.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        if let Some(v) = &self.authorization {
            req.metadata_mut().insert("authorization", v.clone());
        }
        req
    }
}
