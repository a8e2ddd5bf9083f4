//! Accepting connections: one task per connection, HTTP/1.1 or HTTP/2 —
//! on the app-facing listeners HTTP/2 without TLS ("prior knowledge", as
//! gRPC clients speak it) told apart by its first bytes (`PRI`), on the
//! inbound one by the connection preface — each request handed to a
//! listener's handler with the peer address. On drain the listener stops
//! accepting, idle connections close, and requests in flight finish (as
//! Envoy drains on SIGTERM).
//!
//! The inbound listener accepts mesh mTLS and plaintext on one port and
//! tells them apart by the first byte (a TLS handshake record is 0x16), as
//! Istio's PERMISSIVE mode does. The PeerAuthentication mode in force when
//! the connection arrives decides: STRICT closes plaintext connections
//! (counted), DISABLE closes TLS ones, PERMISSIVE serves both. The caller's
//! identity from the handshake goes into every request's extensions as a
//! [`PeerIdentity`]; a plaintext request has none.
//!
//! Every listener has [`Limits`]: a client must send a request's headers
//! within the header-read timeout (slowloris; over HTTP/2, a connection's
//! first request), and beyond the connection cap
//! a new connection is closed at once and counted
//! (`loupe_proxy_connections_over_limit_total`) while the others are served.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use loupe_model::peer_auth::MtlsMode;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::capture;
use crate::context::ProxyContext;
use crate::http::BoxError;
use crate::telemetry::metrics::Metrics;
use crate::tls::{CredentialStore, PeerIdentity};

/// How long a new connection may take to send its first byte or finish
/// its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener's defences against slow and greedy clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Open connections at most; more are closed as they arrive.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// How a listener accepts connections.
#[derive(Clone)]
pub enum Accept {
    /// Plaintext only (the app-facing outbound side, the gateway, admin).
    Plain,
    /// Mesh mTLS and plaintext on one port, as PeerAuthentication says.
    Mesh(Arc<MeshAccept>),
    /// The captured outbound listener (15001): sorted by original destination.
    CapturedOutbound(Arc<capture::outbound::OutboundCapture>),
    /// The captured inbound listener (15006): mesh mTLS or plaintext to
    /// the app's original port, HTTP or TCP.
    CapturedInbound(Arc<capture::inbound::InboundCapture>),
}

impl Accept {
    /// Whether the listener faces the app (or an external client) in
    /// plaintext, where HTTP/2 comes with prior knowledge.
    fn app_facing(&self) -> bool {
        matches!(self, Accept::Plain | Accept::CapturedOutbound(_))
    }
}

pub struct MeshAccept {
    pub credentials: Arc<CredentialStore>,
    /// The PeerAuthentication mode in force now for an app port.
    pub mode: Box<dyn Fn(u16) -> MtlsMode + Send + Sync>,
    /// The app port of connections that were not redirected.
    pub port: u16,
    pub metrics: Arc<Metrics>,
}

impl MeshAccept {
    /// Accepts as the PeerAuthentication in `ctx`'s config says for this
    /// workload (PERMISSIVE before any config); `port` is the app port of
    /// connections that were not redirected.
    pub fn new(ctx: &Arc<ProxyContext>, port: u16) -> MeshAccept {
        let mode_ctx = ctx.clone();
        MeshAccept {
            credentials: ctx.credentials.clone(),
            mode: Box::new(move |port| match mode_ctx.store.load() {
                Some(config) => config.inbound_mtls(&mode_ctx.this, port),
                None => MtlsMode::Permissive,
            }),
            port,
            metrics: ctx.metrics.clone(),
        }
    }
}

/// A listening socket with its name (in logs) and its connection cap —
/// one cap for the sockets of one listener across the workers.
pub struct Listener {
    pub socket: TcpListener,
    pub name: &'static str,
    pub open: Arc<Semaphore>,
}

impl Listener {
    /// A listener with a cap of its own.
    pub fn new(socket: TcpListener, name: &'static str, limits: Limits) -> Listener {
        Listener {
            socket,
            name,
            open: Arc::new(Semaphore::new(limits.max_connections)),
        }
    }
}

/// Serves until `drain` turns true, then waits for open connections to
/// finish their requests.
pub async fn serve<H, F, B>(
    listener: Listener,
    mut drain: watch::Receiver<bool>,
    accept: Accept,
    limits: Limits,
    metrics: Arc<Metrics>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Listener {
        socket: listener,
        name,
        open,
    } = listener;
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = drain.wait_for(|d| *d) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(listener = name, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            let over = metrics.connections_over_limit.fetch_add(1, Relaxed);
            if over.is_multiple_of(1000) {
                tracing::warn!(listener = name, %peer, max = limits.max_connections, "connection cap reached; closing new connections");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let watcher = graceful.watcher();
        let accept = accept.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let (identity, original) = match &accept {
                Accept::Plain => (Connection::Plain(stream), None),
                Accept::Mesh(mesh) => match mesh_handshake(mesh, stream, peer, mesh.port).await {
                    Some(c) => (c, None),
                    None => return,
                },
                Accept::CapturedOutbound(capture) => match capture.dispatch(stream).await {
                    capture::outbound::Dispatched::Http(s, dst) => (Connection::Plain(s), dst),
                    capture::outbound::Dispatched::Done => return,
                },
                Accept::CapturedInbound(capture) => match capture.dispatch(stream, peer).await {
                    Some((c, dst)) => (c, Some(dst)),
                    None => return,
                },
            };
            // HTTP/1.1's header-read timeout is hyper's; HTTP/2 has none, so
            // a connection must bring its first request in that time.
            let first_request = Arc::new(AtomicBool::new(false));
            let serve = |peer_identity: Option<PeerIdentity>| {
                let first_request = first_request.clone();
                service_fn(move |mut req: Request<Incoming>| {
                    first_request.store(true, Relaxed);
                    if let Some(id) = &peer_identity {
                        req.extensions_mut().insert(id.clone());
                    }
                    if let Some(dst) = &original {
                        req.extensions_mut().insert(dst.clone());
                    }
                    let response = handler(req, peer);
                    async move { Ok::<_, Infallible>(response.await) }
                })
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let served = async move {
                match identity {
                    // The app-facing listeners: HTTP/1.1, or h2c with prior knowledge.
                    Connection::Plain(stream) if accept.app_facing() => {
                        match h2_prior_knowledge(&stream, limits.header_read_timeout).await {
                            None => Ok(()),
                            Some(true) => {
                                let conn = http2::Builder::new(TokioExecutor::new())
                                    .timer(TokioTimer::new())
                                    .serve_connection(TokioIo::new(stream), serve(None));
                                watcher.watch(conn).await.map_err(Into::into)
                            }
                            Some(false) => {
                                // HTTP/1.1, with upgrades (WebSocket).
                                let http1 = builder.http1_only();
                                let conn = http1.serve_connection_with_upgrades(
                                    TokioIo::new(stream),
                                    serve(None),
                                );
                                watcher.watch(conn.into_owned()).await
                            }
                        }
                    }
                    Connection::Plain(stream) => {
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), serve(None));
                        watcher.watch(conn.into_owned()).await
                    }
                    Connection::Mtls(stream, id) => {
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), serve(Some(id)));
                        watcher.watch(conn.into_owned()).await
                    }
                }
            };
            let Some(result) =
                with_first_request(served, &first_request, limits.header_read_timeout).await
            else {
                tracing::debug!(listener = name, %peer, "no request within the header-read timeout; closed");
                return;
            };
            if let Err(error) = result {
                tracing::debug!(listener = name, %peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Runs `conn` to its end, unless no request has arrived on it within
/// `timeout` (`first_request` still false): then drops it, closing the
/// connection, and gives `None`.
async fn with_first_request<F: Future>(
    conn: F,
    first_request: &AtomicBool,
    timeout: Duration,
) -> Option<F::Output> {
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        out = &mut conn => return Some(out),
        _ = tokio::time::sleep(timeout) => {}
    }
    if first_request.load(Relaxed) {
        Some(conn.await)
    } else {
        None
    }
}

/// Whether a plaintext connection opens with HTTP/2's preface
/// (`PRI * HTTP/2.0`) rather than an HTTP/1.1 request line — `PUT`, `POST`
/// and `PATCH` start with `P` too, so three bytes tell; `None` when the
/// client closes or sends nothing in time.
async fn h2_prior_knowledge(stream: &TcpStream, timeout: Duration) -> Option<bool> {
    let peek = async {
        let mut first = [0u8; 3];
        loop {
            let n = stream.peek(&mut first).await.ok()?;
            match n {
                0 => return None,
                _ if first[0] != b'P' => return Some(false),
                3 => return Some(&first == b"PRI"),
                // A request line split after its first byte: rare; wait for more.
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    };
    tokio::time::timeout(timeout, peek).await.ok().flatten()
}

pub enum Connection {
    Plain(TcpStream),
    Mtls(
        Box<tokio_rustls::server::TlsStream<TcpStream>>,
        PeerIdentity,
    ),
}

/// Sorts a connection into mesh mTLS or plaintext and applies the mode;
/// `None` when it is closed instead.
pub(crate) async fn mesh_handshake(
    mesh: &MeshAccept,
    stream: TcpStream,
    peer: SocketAddr,
    port: u16,
) -> Option<Connection> {
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first))
        .await
        .ok()?
        .ok()?;
    if n == 0 {
        return None;
    }
    let mode = (mesh.mode)(port);
    let is_tls = first[0] == 0x16;
    if !is_tls {
        if mode == MtlsMode::Strict {
            mesh.metrics.plaintext_refused.fetch_add(1, Relaxed);
            tracing::debug!(%peer, "plaintext connection refused: PeerAuthentication is STRICT");
            return None;
        }
        return Some(Connection::Plain(stream));
    }
    if mode == MtlsMode::Disable {
        tracing::debug!(%peer, "TLS connection refused: PeerAuthentication is DISABLE");
        return None;
    }
    let Some(credentials) = mesh.credentials.load() else {
        tracing::debug!(%peer, "mTLS connection refused: no workload certificate yet");
        return None;
    };
    let accepted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        TlsAcceptor::from(credentials.server.clone()).accept(stream),
    )
    .await;
    let stream = match accepted {
        Ok(Ok(s)) => s,
        Ok(Err(error)) => {
            mesh.metrics.tls_handshake_failures.fetch_add(1, Relaxed);
            tracing::debug!(%peer, %error, "mTLS handshake failed");
            return None;
        }
        Err(_) => {
            mesh.metrics.tls_handshake_failures.fetch_add(1, Relaxed);
            return None;
        }
    };
    let identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(PeerIdentity::of);
    match identity {
        Some(id) => Some(Connection::Mtls(Box::new(stream), id)),
        None => {
            mesh.metrics.tls_handshake_failures.fetch_add(1, Relaxed);
            tracing::debug!(%peer, "mTLS peer certificate carries no SPIFFE ID");
            None
        }
    }
}
