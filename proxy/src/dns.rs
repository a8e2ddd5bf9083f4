//! The sidecar's DNS proxy (Istio's DNS capture, 15053): the app's UDP DNS
//! queries, redirected here by `loupe-proxy iptables --redirect-dns`, are
//! answered from the mesh's registry — an `A` query for a service name
//! (any name the app may use: `reviews`, `reviews.default`,
//! `reviews.default.svc.cluster.local`) gets the service's virtual IPs, an
//! `AAAA` query for one gets an empty answer so the client uses IPv4 — and
//! every other query is forwarded as it is to the upstream resolver (the
//! proxy's own queries are not captured) and its answer relayed back.
//! Forwarding is bounded: past [`MAX_IN_FLIGHT`] outstanding queries new
//! ones are dropped (the client retries), so a flood cannot grow memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType, rdata};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use crate::config::ConfigStore;

/// Outstanding forwarded queries at most.
pub const MAX_IN_FLIGHT: usize = 256;
/// How long the upstream resolver may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// TTL of the answers for service names (Istio's DNS proxy uses 30 s).
const TTL: u32 = 30;

pub struct DnsProxy {
    socket: Arc<UdpSocket>,
    store: Arc<ConfigStore>,
    upstream: Option<SocketAddr>,
}

impl DnsProxy {
    /// Binds `addr`; the upstream is `upstream`, else the first nameserver
    /// of `/etc/resolv.conf`.
    pub async fn bind(
        addr: SocketAddr,
        store: Arc<ConfigStore>,
        upstream: Option<SocketAddr>,
    ) -> std::io::Result<DnsProxy> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let upstream = upstream.or_else(|| {
            let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
            resolv_conf_nameserver(&conf)
        });
        if upstream.is_none() {
            tracing::warn!(
                "DNS proxy: no upstream resolver (/etc/resolv.conf names none); names outside the mesh get SERVFAIL"
            );
        }
        Ok(DnsProxy {
            socket,
            store,
            upstream,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub async fn serve(self, mut drain: watch::Receiver<bool>) {
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut buf = vec![0u8; 4096];
        loop {
            let received = tokio::select! {
                r = self.socket.recv_from(&mut buf) => r,
                _ = drain.wait_for(|d| *d) => return,
            };
            let Ok((n, client)) = received else {
                continue;
            };
            let query = &buf[..n];
            match self.answer(query) {
                Answer::Reply(bytes) => {
                    let _ = self.socket.send_to(&bytes, client).await;
                }
                Answer::Drop => {}
                Answer::Forward => {
                    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                        continue;
                    };
                    let socket = self.socket.clone();
                    let upstream = self.upstream;
                    let query = query.to_vec();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let reply = match upstream {
                            Some(up) => forward(&query, up).await,
                            None => None,
                        };
                        let reply = reply.or_else(|| servfail(&query));
                        if let Some(reply) = reply {
                            let _ = socket.send_to(&reply, client).await;
                        }
                    });
                }
            }
        }
    }

    fn answer(&self, query: &[u8]) -> Answer {
        let Ok(message) = Message::from_vec(query) else {
            return Answer::Drop;
        };
        if message.message_type() != MessageType::Query || message.queries().len() != 1 {
            return Answer::Forward;
        }
        let q = &message.queries()[0];
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let Some(config) = self.store.load() else {
            return Answer::Forward;
        };
        let Some(vips) = config.dns.get(name.as_str()) else {
            return Answer::Forward;
        };
        let mut reply = response(&message, ResponseCode::NoError);
        reply.set_authoritative(true);
        if q.query_type() == RecordType::A {
            for ip in vips {
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::A(rdata::A(*ip)),
                ));
            }
        }
        match reply.to_vec() {
            Ok(bytes) => Answer::Reply(bytes),
            Err(_) => Answer::Drop,
        }
    }
}

enum Answer {
    Reply(Vec<u8>),
    Forward,
    Drop,
}

fn response(query: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code);
    for q in query.queries() {
        reply.add_query(q.clone());
    }
    reply
}

fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let message = Message::from_vec(query).ok()?;
    response(&message, ResponseCode::ServFail).to_vec().ok()
}

/// Sends `query` to `upstream` from a fresh socket and waits for the reply
/// with the same id.
async fn forward(query: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let bind: SocketAddr = if upstream.is_ipv6() {
        "[::]:0".parse().ok()?
    } else {
        "0.0.0.0:0".parse().ok()?
    };
    let socket = UdpSocket::bind(bind).await.ok()?;
    socket.send_to(query, upstream).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let wait = async {
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.ok()?;
            if from == upstream && n >= 2 && buf[..2] == query[..2] {
                return Some(buf[..n].to_vec());
            }
        }
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, wait)
        .await
        .ok()
        .flatten()
}

/// The first `nameserver` of a resolv.conf, port 53.
fn resolv_conf_nameserver(conf: &str) -> Option<SocketAddr> {
    conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_first_nameserver() {
        let conf = "# generated\nsearch default.svc.cluster.local\nnameserver 10.88.0.1\nnameserver 1.1.1.1\n";
        assert_eq!(
            resolv_conf_nameserver(conf),
            Some("10.88.0.1:53".parse().unwrap())
        );
        assert_eq!(resolv_conf_nameserver("search x\n"), None);
    }
}
