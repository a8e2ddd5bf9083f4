//! Opaque TCP: bytes both ways between the downstream connection and an
//! upstream one until either side closes, counted into Istio's TCP metrics
//! as they flow (not only at the end, so a long-lived connection shows up
//! while it lives). Each direction is closed on its own (half-close), as
//! protocols like PostgreSQL's termination expect.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::telemetry::tcp::TcpConnection;

/// How long an upstream TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Copies until both directions are done; returns (sent, received).
pub async fn relay<D, U>(downstream: D, upstream: U, metrics: &TcpConnection) -> (u64, u64)
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut dr, mut dw) = tokio::io::split(downstream);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let up = pump(&mut dr, &mut uw, |n| metrics.bytes(n, 0));
    let down = pump(&mut ur, &mut dw, |n| metrics.bytes(0, n));
    tokio::join!(up, down)
}

async fn pump<R, W>(from: &mut R, to: &mut W, count: impl Fn(u64)) -> u64
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        total += n as u64;
        count(n as u64);
    }
    let _ = to.shutdown().await;
    total
}
