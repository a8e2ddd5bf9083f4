//! The captured inbound listener (15006): connections from other sidecars
//! (mesh mTLS) or plain clients to one of the app's ports. The original
//! destination's port is the app's port, and PeerAuthentication is decided
//! for that port. HTTP (ALPN `istio-h2`/`istio-http/1.1`, or a port whose
//! protocol is HTTP, or sniffed) goes back to the listener for the request
//! path (authorization, metrics, spans) and on to `127.0.0.1:PORT`; opaque
//! TCP (ALPN `istio`, a TCP port, or sniffed) is relayed to the app's port
//! and counted in Istio's TCP metrics with the caller's principal.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::tcp::{CONNECT_TIMEOUT, relay};
use super::{OriginalDst, Protocol, original_dst, sniff_http};
use crate::context::ProxyContext;
use crate::identity::{UNKNOWN, Workload};
use crate::listen::{Connection, MeshAccept, mesh_handshake};
use crate::telemetry::metrics::{EdgeSpec, Reporter};
use crate::telemetry::tcp::TcpConnection;
use crate::tls::alpn;

pub struct InboundCapture {
    pub ctx: Arc<ProxyContext>,
    pub mesh: MeshAccept,
}

impl InboundCapture {
    /// `Some` for a connection to serve as HTTP; `None` once it has been
    /// relayed as TCP or refused.
    pub async fn dispatch(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(Connection, OriginalDst)> {
        let local = stream.local_addr().ok()?;
        let dst = original_dst(&stream).ok().filter(|d| *d != local);
        let Some(dst) = dst else {
            // Nothing to forward to: only redirected connections name the app's port.
            tracing::debug!(%peer, "connection to the inbound capture port itself; closed");
            return None;
        };
        let port = dst.port();
        let connection = mesh_handshake(&self.mesh, stream, peer, port).await?;
        let declared = self
            .ctx
            .store
            .load()
            .and_then(|c| c.inbound_ports.get(&port).cloned());
        let http = match &connection {
            Connection::Mtls(tls, _) => {
                let negotiated = tls.get_ref().1.alpn_protocol();
                negotiated != Some(alpn::ISTIO)
            }
            Connection::Plain(stream) => match declared.as_ref().map(|d| d.0) {
                Some(Protocol::Http) => true,
                Some(Protocol::Tcp) => false,
                Some(Protocol::Sniff) | None => sniff_http(stream).await,
            },
        };
        if http {
            return Some((connection, OriginalDst::new(dst)));
        }
        let service = declared.map(|d| d.1);
        self.relay_to_app(connection, port, service.as_deref())
            .await;
        None
    }

    async fn relay_to_app(&self, connection: Connection, port: u16, service: Option<&str>) {
        let app = SocketAddr::from(([127, 0, 0, 1], port));
        let Ok(Ok(upstream)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(app)).await
        else {
            tracing::debug!(%app, "TCP: the app does not accept connections");
            return;
        };
        let _ = upstream.set_nodelay(true);
        let (source, policy) = match &connection {
            Connection::Mtls(_, id) => (caller(id), "mutual_tls"),
            Connection::Plain(_) => (Workload::unknown(), "none"),
        };
        let edge = self.ctx.metrics.tcp.edge(&EdgeSpec {
            reporter: Reporter::Destination,
            source: &source,
            destination: &self.ctx.this,
            destination_service: service.unwrap_or(UNKNOWN),
            security_policy: policy,
        });
        let metrics = TcpConnection::open(edge);
        match connection {
            Connection::Mtls(tls, _) => {
                relay(*tls, upstream, &metrics).await;
            }
            Connection::Plain(stream) => {
                relay(stream, upstream, &metrics).await;
            }
        }
    }
}

/// The caller of a TCP connection as its certificate names it (no peer
/// metadata rides on opaque TCP): its namespace and service account.
fn caller(id: &crate::tls::PeerIdentity) -> Workload {
    Workload::new(
        UNKNOWN,
        &id.id.namespace,
        &id.id.service_account,
        Default::default(),
    )
}
