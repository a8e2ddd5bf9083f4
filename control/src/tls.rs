//! TLS on the control plane's gRPC port: every connection is TLS (HTTP/2
//! by ALPN) with a server certificate from the mesh CA, renewed at
//! half-life while the control plane runs and whenever the CA reloads; a plaintext client gets no
//! further than a failed handshake. Handshakes run off the accept loop, so
//! a slow or silent client holds up no one else, and at most
//! [`MAX_CONNECTIONS`] connections are open at once (more are closed on
//! arrival, logged).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::ca::{CaError, CertificateAuthority};

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections at most (one per proxy, handshakes included).
pub const MAX_CONNECTIONS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("issuing the control plane's server certificate failed")]
    Certificate(#[from] CaError),
    #[error("the server certificate's key is unusable: {0}")]
    Key(#[source] rustls::Error),
    #[error("building the TLS server configuration failed: {0}")]
    Config(#[source] rustls::Error),
}

/// The crypto the control plane's TLS uses (explicit, so it does not
/// depend on which providers other crates enabled in rustls).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A rustls server configuration whose certificate (SANs: `localhost`,
/// 127.0.0.1, `ips` and the DNS `names`) the CA issues and renews.
pub fn server_config(
    ca: Arc<CertificateAuthority>,
    ips: Vec<IpAddr>,
    names: Vec<String>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let resolver = RenewingCertificate::new(ca, ips, names, provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The server certificate in use, replaced by a fresh one once past
/// half-life (checked on each handshake: cheap, and nothing to schedule).
struct RenewingCertificate {
    ca: Arc<CertificateAuthority>,
    ips: Vec<IpAddr>,
    names: Vec<String>,
    provider: Arc<CryptoProvider>,
    /// The certificate, when to renew it, and the CA generation it is from.
    current: Mutex<(Arc<CertifiedKey>, SystemTime, u64)>,
}

impl std::fmt::Debug for RenewingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewingCertificate")
            .field("ips", &self.ips)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl RenewingCertificate {
    fn new(
        ca: Arc<CertificateAuthority>,
        ips: Vec<IpAddr>,
        names: Vec<String>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let first = issue(&ca, &ips, &names, &provider)?;
        Ok(RenewingCertificate {
            ca,
            ips,
            names,
            provider,
            current: Mutex::new(first),
        })
    }
}

fn issue(
    ca: &CertificateAuthority,
    ips: &[IpAddr],
    names: &[String],
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, SystemTime, u64), TlsError> {
    let generation = ca.generation();
    let cert = ca.server_certificate(ips, names)?;
    let key = provider
        .key_provider
        .load_private_key(cert.key)
        .map_err(TlsError::Key)?;
    let lifetime = cert
        .not_after
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let renew_at = SystemTime::now() + lifetime / 2;
    Ok((
        Arc::new(CertifiedKey::new(cert.chain, key)),
        renew_at,
        generation,
    ))
}

impl ResolvesServerCert for RenewingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // Past half-life, or the CA changed (a reloaded directory: the
        // certificate must chain to what signs now).
        if SystemTime::now() >= current.1 || self.ca.generation() != current.2 {
            match issue(&self.ca, &self.ips, &self.names, &self.provider) {
                Ok(fresh) => {
                    tracing::info!("renewed the control plane's server certificate");
                    *current = fresh;
                }
                // The old one is still valid for the second half of its life.
                Err(error) => tracing::warn!(%error, "renewing the server certificate failed"),
            }
        }
        Some(current.0.clone())
    }
}

/// The TLS connections accepted on `listener`, for tonic's
/// `serve_with_incoming`. Failed handshakes (plaintext clients, clients
/// that distrust the root) are logged and dropped, never yielded.
/// Accepting stops when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> ReceiverStream<Result<Capped, std::io::Error>> {
    incoming_capped(listener, config, MAX_CONNECTIONS)
}

/// [`incoming`] with at most `max` connections open at once.
pub fn incoming_capped(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    max: usize,
) -> ReceiverStream<Result<Capped, std::io::Error>> {
    let acceptor = TlsAcceptor::from(config);
    let (tx, rx) = mpsc::channel(16);
    let open = Arc::new(Semaphore::new(max));
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        // EMFILE and friends: back off rather than spin.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                tracing::warn!(%peer, max, "connection cap reached; connection closed");
                continue;
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx
                            .send(Ok(Capped {
                                stream: tls,
                                _permit: permit,
                            }))
                            .await;
                    }
                    Ok(Err(error)) => {
                        tracing::info!(%peer, %error, "TLS handshake refused (a plaintext client, or one that does not trust the mesh root?)");
                    }
                    Err(_) => {
                        tracing::info!(%peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// A TLS connection that holds its place under the connection cap until
/// it closes.
pub struct Capped {
    stream: TlsStream<TcpStream>,
    _permit: OwnedSemaphorePermit,
}

impl tonic::transport::server::Connected for Capped {
    type ConnectInfo = <TlsStream<TcpStream> as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
