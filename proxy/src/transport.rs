//! Upstream connections: one pooled HTTP client per proxy over the connect
//! stack TCP → mesh mTLS → HTTP/2 or HTTP/1.1, as a tower `Service<Uri>`
//! under hyper-util's pool (one multiplexed HTTP/2 connection per
//! endpoint, kept and reused; handshakes are paid once per connection).
//!
//! The scheme says which stack: `http://` is plain TCP (the local app, or a
//! destination whose mTLS is disabled); `https://` is mesh mTLS. For mesh
//! mTLS the connector looks the endpoint up in the current config for the
//! SPIFFE ID the control plane registered it under and whether to offer
//! HTTP/2, verifies the server's chain to the trust bundle, and refuses the
//! connection — before any request is written — when the server's identity
//! is not that one (Istio's secure naming). A destination outside the
//! mesh whose DestinationRule asks for TLS origination has a client of its
//! own ([`origination_client`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::ConfigStore;
use crate::http::{Body, BoxError};
use crate::tls::{CredentialStore, PeerIdentity, alpn};

/// The pooled client every listener forwards through.
pub type UpstreamClient = Client<MeshConnector, Body>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TLS error: no workload certificate yet (the control plane has not issued one)")]
    NoCertificate,
    #[error("TLS error: endpoint {0} is not in the mesh's registry, so its identity is unknown")]
    UnknownEndpoint(String),
    #[error(
        "TLS error: secure naming: endpoint {endpoint} presented {got}, but the registry names {want}"
    )]
    SecureNaming {
        endpoint: String,
        want: String,
        got: String,
    },
    #[error("TLS error: handshake with {endpoint} failed: {source}")]
    Handshake {
        endpoint: String,
        #[source]
        source: io::Error,
    },
}

/// What the outbound side needs to open mTLS to one endpoint.
#[derive(Clone, Debug)]
pub struct UpstreamTarget {
    pub identity: loupe_model::SpiffeId,
    /// Offer `istio-h2` (else `istio-http/1.1`).
    pub h2: bool,
}

#[derive(Clone)]
pub struct MeshConnector {
    tcp: HttpConnector,
    /// Offer only HTTP/1.1 over mesh mTLS (for protocol upgrades).
    http1_only: bool,
    credentials: Arc<CredentialStore>,
    config: Arc<ConfigStore>,
    /// Set: this connector originates this TLS to every endpoint instead
    /// (one client per DestinationRule TLS setting; see
    /// [`crate::tls::origination`]).
    originate: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl tower::Service<Uri> for MeshConnector {
    type Response = MeshStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<MeshStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower::Service::<Uri>::poll_ready(&mut self.tcp, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let credentials = self.credentials.clone();
        let config = self.config.clone();
        let http1_only = self.http1_only;
        let originate = self.originate.clone();
        Box::pin(async move {
            let io = tcp.call(uri.clone()).await?;
            if let Some((tls, name)) = originate {
                let endpoint = uri.authority().map_or("", |a| a.as_str()).to_string();
                let stream = TlsConnector::from(tls)
                    .connect(name, io.into_inner())
                    .await
                    .map_err(|source| ConnectError::Handshake { endpoint, source })?;
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                return Ok(MeshStream::Tls(Box::new(TokioIo::new(stream)), h2));
            }
            if uri.scheme() != Some(&Scheme::HTTPS) {
                return Ok(MeshStream::Plain(io));
            }
            let endpoint = uri
                .authority()
                .map(|a| a.as_str())
                .unwrap_or("")
                .to_string();
            let target = config
                .load()
                .and_then(|c| c.upstream(&endpoint).cloned())
                .ok_or_else(|| ConnectError::UnknownEndpoint(endpoint.clone()))?;
            let credentials = credentials.load().ok_or(ConnectError::NoCertificate)?;
            let tls = if target.h2 && !http1_only {
                credentials.client_h2.clone()
            } else {
                credentials.client_http1.clone()
            };
            let host = uri.host().unwrap_or("");
            let stream = mesh_handshake(io.into_inner(), host, &endpoint, &target, tls).await?;
            let (_, session) = stream.get_ref();
            let h2 = alpn::is_h2(session.alpn_protocol());
            Ok(MeshStream::Tls(Box::new(TokioIo::new(stream)), h2))
        })
    }
}

/// Mesh mTLS over `io` to the endpoint at `endpoint` (`host` is its host
/// part): the server's chain must lead to the trust bundle and carry the
/// SPIFFE ID the registry names (secure naming), else the connection is
/// refused before a byte of the caller's is written.
pub async fn mesh_handshake(
    io: TcpStream,
    host: &str,
    endpoint: &str,
    target: &UpstreamTarget,
    tls: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, ConnectError> {
    let host = host.trim_matches(['[', ']']);
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string()).map_err(|e| ConnectError::Handshake {
            endpoint: endpoint.to_string(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?,
    };
    let stream = TlsConnector::from(tls)
        .connect(name, io)
        .await
        .map_err(|source| ConnectError::Handshake {
            endpoint: endpoint.to_string(),
            source,
        })?;
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(PeerIdentity::of)
        .map(|p| p.id);
    if peer.as_ref() != Some(&target.identity) {
        return Err(ConnectError::SecureNaming {
            endpoint: endpoint.to_string(),
            want: target.identity.uri(),
            got: peer
                .map(|p| p.uri())
                .unwrap_or_else(|| "no SPIFFE ID".into()),
        });
    }
    Ok(stream)
}

/// A connection of the connect stack: plain TCP or mesh mTLS.
pub enum MeshStream {
    Plain(TokioIo<TcpStream>),
    /// With whether ALPN chose HTTP/2.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>, bool),
}

impl Connection for MeshStream {
    fn connected(&self) -> Connected {
        match self {
            MeshStream::Plain(io) => io.connected(),
            MeshStream::Tls(io, h2) => {
                let c = io.inner().get_ref().0.connected();
                if *h2 { c.negotiated_h2() } else { c }
            }
        }
    }
}

impl Read for MeshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshStream::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MeshStream::Tls(io, _) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for MeshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MeshStream::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MeshStream::Tls(io, _) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshStream::Plain(io) => Pin::new(io).poll_flush(cx),
            MeshStream::Tls(io, _) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshStream::Plain(io) => Pin::new(io).poll_shutdown(cx),
            MeshStream::Tls(io, _) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MeshStream::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            MeshStream::Tls(io, _) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MeshStream::Plain(io) => io.is_write_vectored(),
            MeshStream::Tls(io, _) => io.is_write_vectored(),
        }
    }
}

pub fn connector(credentials: Arc<CredentialStore>, config: Arc<ConfigStore>) -> MeshConnector {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(1)));
    // `https://` selects mesh mTLS, layered on this TCP connector.
    tcp.enforce_http(false);
    MeshConnector {
        tcp,
        http1_only: false,
        credentials,
        config,
        originate: None,
    }
}

/// A client that originates `tls` (SNI `server_name`) to every endpoint it
/// is sent to, with a pool of its own (so a changed setting never reuses
/// a connection made under the old one).
pub fn origination_client(
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
) -> UpstreamClient {
    let mut connector = connector(Arc::default(), Arc::default());
    connector.originate = Some((tls, server_name));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .set_host(false)
        .build(connector)
}

/// The upstream client: HTTP/1.1 in plaintext, HTTP/2 over mesh mTLS (ALPN).
pub fn client(credentials: Arc<CredentialStore>, config: Arc<ConfigStore>) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        // The proxy forwards the app's own Host header.
        .set_host(false)
        .build(connector(credentials, config))
}

/// The upstream client for protocol upgrades: HTTP/1.1 on every hop
/// (an upgrade cannot cross HTTP/2 without extended CONNECT).
pub fn http1_client(credentials: Arc<CredentialStore>, config: Arc<ConfigStore>) -> UpstreamClient {
    let mut connector = connector(credentials, config);
    connector.http1_only = true;
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .set_host(false)
        .build(connector)
}

/// The upstream client for gRPC: HTTP/2 on every connection, h2c (prior
/// knowledge) in plaintext — gRPC needs HTTP/2 and trailers end to end.
pub fn h2_client(credentials: Arc<CredentialStore>, config: Arc<ConfigStore>) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .http2_only(true)
        .set_host(false)
        .build(connector(credentials, config))
}
