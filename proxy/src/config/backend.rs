//! Backends: the endpoint set of one service, or of one of its subsets
//! (Envoy's "cluster"), with round-robin endpoint selection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::identity::Workload;
use crate::telemetry::metrics::Edge;

/// One endpoint: a workload's inbound listener.
pub struct Endpoint {
    /// Where its inbound listener is (`127.0.0.1:15006`), parsed once.
    pub authority: http::uri::Authority,
    /// The same as a socket address when it is one (for span attributes).
    pub socket: Option<SocketAddr>,
    pub workload: Workload,
    /// The metrics edge this proxy → this endpoint, for the service that
    /// listed it; built when the config is compiled.
    pub edge: Arc<Edge>,
}

/// The endpoints of one service, or of one subset of it.
pub struct Backend {
    /// FQDN of the service.
    pub host: Arc<str>,
    pub subset: Option<Arc<str>>,
    pub endpoints: Vec<Arc<Endpoint>>,
    next: AtomicUsize,
}

impl Backend {
    pub fn new(host: Arc<str>, subset: Option<Arc<str>>, endpoints: Vec<Arc<Endpoint>>) -> Backend {
        Backend {
            host,
            subset,
            endpoints,
            next: AtomicUsize::new(0),
        }
    }

    /// The next endpoint in round-robin order, `None` when there is none.
    pub fn pick(&self) -> Option<&Arc<Endpoint>> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Relaxed) % self.endpoints.len();
        self.endpoints.get(i)
    }

    /// Envoy's cluster name, which Istio users know from traces and config
    /// dumps: `outbound|9080|v1|reviews.default.svc.cluster.local`.
    pub fn cluster_name(&self, port: u16) -> String {
        format!(
            "outbound|{port}|{}|{}",
            self.subset.as_deref().unwrap_or(""),
            self.host
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::{EdgeSpec, Metrics, Reporter};

    #[test]
    fn round_robin_visits_every_endpoint_in_turn() {
        let metrics = Metrics::default();
        let w = Workload::unknown();
        let edge = metrics.edge(&EdgeSpec {
            reporter: Reporter::Source,
            source: &w,
            destination: &w,
            destination_service: "unknown",
            security_policy: "unknown",
        });
        let eps = (0..3)
            .map(|i| {
                Arc::new(Endpoint {
                    authority: http::uri::Authority::try_from(format!("127.0.0.1:{}", 1000 + i))
                        .expect("valid authority"),
                    socket: None,
                    workload: w.clone(),
                    edge: edge.clone(),
                })
            })
            .collect();
        let b = Backend::new("r".into(), None, eps);
        let ports: Vec<u16> = (0..6)
            .filter_map(|_| b.pick())
            .filter_map(|e| e.authority.port_u16())
            .collect();
        assert_eq!(ports, vec![1000, 1001, 1002, 1000, 1001, 1002]);
        assert!(Backend::new("r".into(), None, Vec::new()).pick().is_none());
    }
}
