//! The captured outbound listener (15001): each connection the app made is
//! sorted by its original destination. A service's virtual IP and HTTP
//! port goes through the request path (returned to the listener to serve
//! as HTTP); a TCP port is relayed to one of the service's endpoints — over
//! mesh mTLS (ALPN `istio`) when the endpoint has a sidecar that accepts
//! it; a destination that is no service passes through as it is
//! (`ALLOW_ANY`) or is closed (`REGISTRY_ONLY`). A connection made to the
//! listener itself (not redirected) is the explicit outbound proxy, as
//! without capture.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use rand::Rng;
use tokio::net::TcpStream;

use super::tcp::{CONNECT_TIMEOUT, relay};
use super::{OriginalDst, Protocol, original_dst, sniff_http};
use crate::config::{Captured, Endpoint};
use crate::context::ProxyContext;
use crate::identity::{UNKNOWN, Workload};
use crate::telemetry::metrics::{EdgeSpec, Reporter};
use crate::telemetry::tcp::TcpConnection;

/// Istio's `outboundTrafficPolicy.mode`: what happens to captured traffic
/// for destinations that are no service of the mesh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficPolicy {
    /// Pass it through to where it was going (`PassthroughCluster`).
    #[default]
    AllowAny,
    /// Close it (`BlackHoleCluster`).
    RegistryOnly,
}

/// What the listener does with a connection after [`dispatch`].
pub enum Dispatched {
    /// Serve it as HTTP; requests carry the original destination, if any.
    Http(TcpStream, Option<OriginalDst>),
    /// Handled (relayed or refused) already.
    Done,
}

/// The captured outbound listener's state.
pub struct OutboundCapture {
    pub ctx: Arc<ProxyContext>,
    pub policy: OutboundTrafficPolicy,
}

impl OutboundCapture {
    pub async fn dispatch(&self, stream: TcpStream) -> Dispatched {
        dispatch(&self.ctx, self.policy, stream).await
    }
}

async fn dispatch(
    ctx: &Arc<ProxyContext>,
    policy: OutboundTrafficPolicy,
    stream: TcpStream,
) -> Dispatched {
    let local = stream.local_addr().ok();
    let dst = match original_dst(&stream) {
        Ok(dst) if Some(dst) != local => dst,
        // Not redirected: the app names the service in Host.
        _ => return Dispatched::Http(stream, None),
    };
    let config = ctx.store.load();
    let captured = config.as_deref().and_then(|c| c.captured(dst));
    match captured {
        Some(c) => {
            let http = match c.protocol {
                Protocol::Http => true,
                Protocol::Tcp => false,
                Protocol::Sniff => sniff_http(&stream).await,
            };
            if http {
                return Dispatched::Http(stream, Some(OriginalDst::new(dst)));
            }
            to_service(ctx, c, stream).await;
        }
        None => match policy {
            OutboundTrafficPolicy::AllowAny => passthrough(ctx, dst, stream).await,
            OutboundTrafficPolicy::RegistryOnly => {
                ctx.metrics.blackholed.fetch_add(1, Relaxed);
                tracing::debug!(%dst, "captured connection to no service refused (REGISTRY_ONLY)");
            }
        },
    }
    Dispatched::Done
}

/// Relays a TCP connection to one endpoint of the captured service port.
async fn to_service(ctx: &Arc<ProxyContext>, c: &Captured, downstream: TcpStream) {
    let backend = &c.service.all;
    let candidates: Vec<&Arc<Endpoint>> = backend
        .endpoints
        .iter()
        .filter(|e| e.service_port == 0 || e.service_port == c.port)
        .collect();
    let Some(endpoint) =
        (!candidates.is_empty()).then(|| candidates[rand::rng().random_range(0..candidates.len())])
    else {
        tracing::debug!(host = %c.service.host, port = c.port, "TCP: no healthy upstream");
        let _ = ctx
            .metrics
            .tcp
            .edge(&spec(ctx, &Workload::unknown(), &c.service.host));
        return;
    };
    let address = endpoint.authority.as_str();
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await;
    let upstream = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(error)) => {
            tracing::debug!(%address, %error, "TCP upstream connect failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%address, "TCP upstream connect timed out");
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let metrics = TcpConnection::open(ctx.metrics.tcp.edge(&spec(
        ctx,
        &endpoint.workload,
        &c.service.host,
    )));
    let credentials = ctx.credentials.load();
    let mtls = backend.mtls_to(endpoint, credentials.is_some());
    if !mtls {
        relay(downstream, upstream, &metrics).await;
        return;
    }
    let (Some(credentials), Some(target)) = (
        credentials,
        ctx.store.load().and_then(|c| c.upstream(address).cloned()),
    ) else {
        tracing::debug!(%address, "TCP: mTLS to an endpoint without a certificate or identity; closed");
        return;
    };
    let host = endpoint.authority.host();
    match crate::transport::mesh_handshake(
        upstream,
        host,
        address,
        &target,
        credentials.client_tcp.clone(),
    )
    .await
    {
        Ok(tls) => {
            relay(downstream, tls, &metrics).await;
        }
        Err(error) => tracing::debug!(%address, %error, "TCP: mTLS to the endpoint failed"),
    }
}

/// `ALLOW_ANY`: to where the app was going, untouched.
async fn passthrough(ctx: &Arc<ProxyContext>, dst: SocketAddr, downstream: TcpStream) {
    ctx.metrics.passthrough.fetch_add(1, Relaxed);
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await;
    let Ok(Ok(upstream)) = connected else {
        tracing::debug!(%dst, "passthrough connect failed");
        return;
    };
    let _ = upstream.set_nodelay(true);
    let metrics = TcpConnection::open(ctx.metrics.tcp.edge(&spec(
        ctx,
        &Workload::unknown(),
        PASSTHROUGH,
    )));
    relay(downstream, upstream, &metrics).await;
}

/// Istio's `destination_service` of traffic to no known service.
const PASSTHROUGH: &str = "PassthroughCluster";

fn spec<'a>(ctx: &'a ProxyContext, destination: &'a Workload, service: &'a str) -> EdgeSpec<'a> {
    EdgeSpec {
        reporter: Reporter::Source,
        source: &ctx.this,
        destination,
        destination_service: if service.is_empty() { UNKNOWN } else { service },
        security_policy: UNKNOWN,
    }
}
