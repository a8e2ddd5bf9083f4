//! Istio's TCP metrics, for connections the proxy carries as opaque bytes:
//! `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total`,
//! `istio_tcp_sent_bytes_total` (towards the destination) and
//! `istio_tcp_received_bytes_total` (back from it), with the same labels
//! as the request metrics and `request_protocol="tcp"`. Edges are interned
//! once and capped like the HTTP ones.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::metrics::{EdgeSpec, MAX_EDGES};

/// Picks one counter of an edge.
type Counter = fn(&TcpEdge) -> &AtomicU64;

/// One TCP edge's counters.
#[derive(Default)]
pub struct TcpEdge {
    pub opened: AtomicU64,
    pub closed: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

#[derive(Default)]
pub struct TcpMetrics {
    edges: Mutex<HashMap<String, Arc<TcpEdge>>>,
}

impl TcpMetrics {
    /// The interned TCP edge for `spec`; past [`MAX_EDGES`], one shared
    /// overflow edge (all labels `unknown`).
    pub fn edge(&self, spec: &EdgeSpec<'_>) -> Arc<TcpEdge> {
        let mut labels = spec.render_for("tcp");
        let mut edges = self.edges.lock().unwrap_or_else(|e| e.into_inner());
        if edges.len() >= MAX_EDGES && !edges.contains_key(&labels) {
            let unknown = crate::identity::Workload::unknown();
            labels = EdgeSpec {
                reporter: spec.reporter,
                source: &unknown,
                destination: &unknown,
                destination_service: crate::identity::UNKNOWN,
                security_policy: crate::identity::UNKNOWN,
            }
            .render_for("tcp");
        }
        edges.entry(labels).or_default().clone()
    }

    /// Appends the four counters in Prometheus text.
    pub fn render(&self, out: &mut String) {
        let edges: Vec<(String, Arc<TcpEdge>)> = self
            .edges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let counters: [(&str, &str, Counter); 4] = [
            (
                "istio_tcp_connections_opened_total",
                "TCP connections opened.",
                |e| &e.opened,
            ),
            (
                "istio_tcp_connections_closed_total",
                "TCP connections closed.",
                |e| &e.closed,
            ),
            (
                "istio_tcp_sent_bytes_total",
                "Bytes sent towards the destination on TCP connections.",
                |e| &e.sent,
            ),
            (
                "istio_tcp_received_bytes_total",
                "Bytes received from the destination on TCP connections.",
                |e| &e.received,
            ),
        ];
        for (name, help, pick) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, edge) in &edges {
                let _ = writeln!(
                    out,
                    "{name}{{{labels},response_flags=\"-\"}} {}",
                    pick(edge).load(Relaxed)
                );
            }
        }
    }
}

/// Counts one connection on `edge`: opened now, closed (with its byte
/// counts) when dropped.
pub struct TcpConnection {
    edge: Arc<TcpEdge>,
}

impl TcpConnection {
    pub fn open(edge: Arc<TcpEdge>) -> TcpConnection {
        edge.opened.fetch_add(1, Relaxed);
        TcpConnection { edge }
    }

    pub fn bytes(&self, sent: u64, received: u64) {
        self.edge.sent.fetch_add(sent, Relaxed);
        self.edge.received.fetch_add(received, Relaxed);
    }
}

impl Drop for TcpConnection {
    fn drop(&mut self) {
        self.edge.closed.fetch_add(1, Relaxed);
    }
}
