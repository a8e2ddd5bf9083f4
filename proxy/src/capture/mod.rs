//! Transparent capture, as Istio's sidecar runs it: the init command
//! ([`iptables`]) redirects the workload's TCP to the proxy — outbound to
//! 15001, inbound to 15006 — and the proxy asks the kernel where each
//! connection was going (`SO_ORIGINAL_DST`). The original destination
//! decides what happens: a service's virtual IP and port routes as that
//! service (HTTP through the request path, anything else as TCP, see
//! [`tcp`]); any other destination passes through untouched (Istio's
//! `PassthroughCluster`, `ALLOW_ANY`) or is refused (`BlackHoleCluster`,
//! `REGISTRY_ONLY`). Inbound, the original port is the app's port.
//!
//! A port's protocol is Istio's: the port's `protocol`, else its name's
//! prefix (`http-web`, `grpc`, `tcp-db`), else sniffed from the first bytes.

pub mod inbound;
pub mod iptables;
pub mod outbound;
pub mod tcp;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::Admin;
use crate::cli::Args;
use crate::config::ConfigStore;
use crate::context::ProxyContext;
use crate::listen::{self, Accept, Limits, Listener, MeshAccept};
use crate::telemetry::metrics::Metrics;
use crate::{StartError, bind};

/// Istio's capture ports.
pub const OUTBOUND_PORT: u16 = 15001;
pub const INBOUND_PORT: u16 = 15006;
pub const DNS_PORT: u16 = 15053;
pub const ADMIN_PORT: u16 = 15090;
pub const HEALTH_PORT: u16 = 15021;
/// The UID (and GID) the proxy runs as, whose own traffic is not captured.
pub const PROXY_UID: u32 = 1337;

/// Where the capture listeners listen: `port` on every address.
pub fn any(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], port))
}

/// Serves one worker's sockets of the captured traffic: outbound 15001
/// (sorted by original destination) and inbound 15006 (mesh mTLS or
/// plaintext to the app's original port).
pub fn serve_traffic(
    ctx: &Arc<ProxyContext>,
    policy: outbound::OutboundTrafficPolicy,
    outbound: Listener,
    inbound: Listener,
    drain: &watch::Receiver<bool>,
    limits: Limits,
) -> Vec<JoinHandle<()>> {
    let state = Arc::new(outbound::OutboundCapture {
        ctx: ctx.clone(),
        policy,
    });
    let handler_ctx = ctx.clone();
    let outbound = tokio::spawn(listen::serve(
        outbound,
        drain.clone(),
        Accept::CapturedOutbound(state),
        limits,
        ctx.metrics.clone(),
        move |req, peer| {
            crate::outbound::handle(
                handler_ctx.clone(),
                crate::outbound::Traffic::Sidecar,
                req,
                peer,
            )
        },
    ));

    let state = Arc::new(inbound::InboundCapture {
        ctx: ctx.clone(),
        mesh: MeshAccept::new(ctx, 0),
    });
    let app = Arc::new(crate::inbound::Inbound {
        ctx: ctx.clone(),
        // Each request goes to its connection's original port instead.
        app: http::uri::Authority::from_static("127.0.0.1:80"),
    });
    let inbound = tokio::spawn(listen::serve(
        inbound,
        drain.clone(),
        Accept::CapturedInbound(state),
        limits,
        ctx.metrics.clone(),
        move |req, peer| crate::inbound::handle(app.clone(), req, peer),
    ));
    vec![outbound, inbound]
}

/// Binds and serves, on the main runtime, what capture adds besides the
/// traffic: health on 15021 (every address) and the DNS proxy on
/// 127.0.0.1:15053.
pub async fn serve_health_and_dns(
    args: &Args,
    store: Arc<ConfigStore>,
    metrics: Arc<Metrics>,
    admin: Arc<Admin>,
    drain: &watch::Receiver<bool>,
    limits: Limits,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let health = Listener::new(bind("health", any(HEALTH_PORT)).await?, "health", limits);
    let health = tokio::spawn(listen::serve(
        health,
        drain.clone(),
        Accept::Plain,
        limits,
        metrics,
        move |req, _| crate::admin::handle(admin.clone(), req),
    ));

    // On loopback, as Istio's: iptables REDIRECTs the queries to 127.0.0.1,
    // and a reply must leave from that address for conntrack to map it back.
    let dns_addr = SocketAddr::from(([127, 0, 0, 1], DNS_PORT));
    let dns = crate::dns::DnsProxy::bind(dns_addr, store, args.dns_upstream)
        .await
        .map_err(|source| StartError::Bind {
            listener: "dns",
            addr: dns_addr,
            source,
        })?;
    Ok(vec![health, tokio::spawn(dns.serve(drain.clone()))])
}

/// A request extension: where the captured connection it came on was
/// going (`SO_ORIGINAL_DST`), and the app's authority for that port —
/// built once per connection, so requests only clone it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginalDst {
    pub addr: SocketAddr,
    /// `127.0.0.1:PORT`: where the app listens for inbound traffic to it.
    pub app: http::uri::Authority,
}

impl OriginalDst {
    pub fn new(addr: SocketAddr) -> OriginalDst {
        let app = http::uri::Authority::try_from(format!("127.0.0.1:{}", addr.port()))
            .unwrap_or_else(|_| http::uri::Authority::from_static("127.0.0.1:80"));
        OriginalDst { addr, app }
    }
}

/// Where a redirected connection was going before iptables sent it to us;
/// a connection made to the listener itself reports the listener's address.
pub fn original_dst(stream: &TcpStream) -> io::Result<SocketAddr> {
    let sock = socket2::SockRef::from(stream);
    let addr = if stream.local_addr()?.is_ipv6() {
        sock.original_dst_v6()?
    } else {
        sock.original_dst_v4()?
    };
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP address"))
}

/// How the proxy handles a port's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1, HTTP/2, gRPC: through the request path (routes, policies,
    /// request metrics).
    Http,
    /// Opaque bytes (TCP, and TLS/HTTPS the proxy does not terminate).
    Tcp,
    /// Nothing declared: sniffed from the client's first bytes.
    Sniff,
}

impl Protocol {
    /// Istio's protocol selection for a service port: `protocol`, else the
    /// name's prefix before `-`, else sniffing.
    pub fn of(protocol: &str, name: &str) -> Protocol {
        let declared = if protocol.is_empty() {
            name.split('-').next().unwrap_or("")
        } else {
            protocol
        };
        let declared = declared.to_ascii_uppercase();
        match declared.as_str() {
            "" => Protocol::Sniff,
            "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" => Protocol::Http,
            // A name without a known prefix says nothing.
            d if protocol.is_empty() && !KNOWN.contains(&d) => Protocol::Sniff,
            _ => Protocol::Tcp,
        }
    }
}

/// Istio's protocol names (besides the HTTP family).
const KNOWN: [&str; 8] = [
    "HTTPS", "TCP", "TLS", "MONGO", "MYSQL", "REDIS", "UDP", "GRPC-WEB",
];

/// How long sniffing waits for a client's first bytes before calling the
/// connection TCP (server-first protocols send nothing).
const SNIFF_TIMEOUT: Duration = Duration::from_millis(200);

/// Whether the client opens with HTTP: an HTTP/1.x request line (a method
/// token then a space) or HTTP/2's preface.
pub async fn sniff_http(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 16];
    let peek = async {
        loop {
            let n = stream.peek(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return false;
            }
            if let Some(answer) = looks_like_http(&buf[..n]) {
                return answer;
            }
            if n == buf.len() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(SNIFF_TIMEOUT, peek)
        .await
        .unwrap_or(false)
}

/// `Some` once the bytes decide.
fn looks_like_http(bytes: &[u8]) -> Option<bool> {
    const METHODS: [&[u8]; 10] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
        b"PRI * HTTP/2.0",
    ];
    let mut undecided = false;
    for m in METHODS {
        let n = bytes.len().min(m.len());
        if bytes[..n] == m[..n] {
            if n == m.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided { None } else { Some(false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_selection_follows_istio() {
        assert_eq!(Protocol::of("HTTP", "x"), Protocol::Http);
        assert_eq!(Protocol::of("grpc", ""), Protocol::Http);
        assert_eq!(Protocol::of("TCP", "http"), Protocol::Tcp);
        assert_eq!(Protocol::of("", "http-web"), Protocol::Http);
        assert_eq!(Protocol::of("", "tcp-postgres"), Protocol::Tcp);
        assert_eq!(Protocol::of("", "mongo"), Protocol::Tcp);
        assert_eq!(Protocol::of("", "web"), Protocol::Sniff);
        assert_eq!(Protocol::of("", ""), Protocol::Sniff);
        assert_eq!(Protocol::of("TLS", ""), Protocol::Tcp);
    }

    #[test]
    fn sniffing_tells_http_from_other_bytes() {
        assert_eq!(looks_like_http(b"GET / HTTP/1.1\r\n"), Some(true));
        assert_eq!(looks_like_http(b"PRI * HTTP/2.0\r\n"), Some(true));
        assert_eq!(looks_like_http(b"PO"), None);
        assert_eq!(
            looks_like_http(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
            Some(false)
        );
        assert_eq!(looks_like_http(b"\x16\x03\x01"), Some(false));
    }
}
