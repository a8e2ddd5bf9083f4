//! What a client may hold of a collector listener: at most
//! [`ListenerLimits::max_connections`] connections each (a connection past
//! the cap waits in the kernel's backlog until one closes), at most
//! `max_concurrent_requests` requests being served at once (others wait for
//! a turn), and on HTTP/1 a deadline for a request's headers
//! (`header_read_timeout`) and on OTLP/HTTP one for its body
//! (`body_read_timeout`), so a client that opens connections and sends
//! nothing, or a byte a minute, ties up nothing for long. HTTP/2 (gRPC, and
//! h2c on the HTTP port) has no such header deadline in hyper; there the
//! connection cap bounds what idle connections hold, keepalive pings close
//! dead ones, and gRPC connections are recycled after `max_connection_age`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Bounds of one listener (the OTLP/gRPC and OTLP/HTTP ports each have their own).
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Open connections.
    pub max_connections: usize,
    /// Requests being served at once.
    pub max_concurrent_requests: usize,
    /// How long an HTTP/1 request's headers may take to arrive.
    pub header_read_timeout: Duration,
    /// How long an OTLP/HTTP request's body may take to arrive.
    pub body_read_timeout: Duration,
    /// Streams one HTTP/2 connection may have open.
    pub max_concurrent_streams: u32,
    /// The largest header block a request may send.
    pub max_header_list_bytes: u32,
    /// A gRPC connection is closed gracefully after this long.
    pub max_connection_age: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_connections: 1024,
            max_concurrent_requests: 64,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_concurrent_streams: 100,
            max_header_list_bytes: 64 * 1024,
            max_connection_age: Duration::from_secs(600),
        }
    }
}

/// A connection that holds its slot of the listener's connection cap.
pub struct Limited {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl tonic::transport::server::Connected for Limited {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts a connection only when the cap has room for it.
async fn accept(listener: &TcpListener, slots: &Arc<Semaphore>) -> Limited {
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            // The semaphore is never closed.
            std::future::pending::<()>().await;
            unreachable!();
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return Limited {
                    stream,
                    _slot: slot,
                };
            }
            Err(error) => {
                // Out of file descriptors, or a connection reset before it
                // was accepted: wait a little rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                drop(slot);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The listener's connections, at most `max_connections` open at once (for tonic).
pub fn incoming(
    listener: TcpListener,
    max_connections: usize,
) -> impl Stream<Item = Result<Limited, io::Error>> {
    let slots = Arc::new(Semaphore::new(max_connections));
    futures::stream::unfold((listener, slots), |(listener, slots)| async move {
        let conn = accept(&listener, &slots).await;
        Some((Ok(conn), (listener, slots)))
    })
}

/// Serves `app` (HTTP/1 and h2c) on `listener` within `limits` until
/// `stop` turns true; in-flight requests then get up to 10 s to finish.
pub async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    limits: ListenerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let app = app.layer(tower::limit::ConcurrencyLimitLayer::new(
        limits.max_concurrent_requests,
    ));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_list_bytes as usize);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_bytes)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let conn = tokio::select! {
            conn = accept(&listener, &slots) => conn,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Limited { stream, _slot } = conn;
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "OTLP/HTTP connection ended with an error");
            }
            drop(_slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("OTLP/HTTP connections still open 10 s after shutdown began");
    }
}
