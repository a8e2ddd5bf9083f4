//! Backends: the endpoint set of one service, or of one of its subsets
//! (Envoy's "cluster"), and how an endpoint is picked for each request:
//! round robin unless the DestinationRule's `loadBalancer.simple` says
//! `RANDOM` or `LEAST_REQUEST` (power of two choices, as Envoy does).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use loupe_model::networking::TrafficPolicy;
use loupe_model::networking::traffic_policy::{ClientTlsMode, SimpleLb};
use rand::Rng;

/// Endpoint selection of a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalancer {
    #[default]
    RoundRobin,
    Random,
    LeastRequest,
}

impl LoadBalancer {
    /// The policy a DestinationRule (or subset) traffic policy names, if any.
    pub fn of(policy: Option<&TrafficPolicy>) -> Option<LoadBalancer> {
        match policy?.load_balancer.as_ref()?.simple? {
            SimpleLb::Random => Some(LoadBalancer::Random),
            SimpleLb::LeastRequest | SimpleLb::LeastConn => Some(LoadBalancer::LeastRequest),
            SimpleLb::RoundRobin => Some(LoadBalancer::RoundRobin),
            SimpleLb::Unspecified | SimpleLb::Passthrough => None,
        }
    }
}

use crate::identity::Workload;
use crate::telemetry::metrics::Edge;
use crate::tls::origination::Origination;
use crate::transport::UpstreamClient;

/// How the outbound side secures connections to a backend's endpoints:
/// the DestinationRule's `trafficPolicy.tls.mode` for the host or subset,
/// else Istio's auto mTLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamSecurity {
    /// No DestinationRule TLS: mTLS to every endpoint whose
    /// PeerAuthentication accepts it (not DISABLE).
    #[default]
    Auto,
    /// `ISTIO_MUTUAL`: mesh mTLS, always.
    IstioMutual,
    /// `DISABLE`: plaintext.
    Disable,
    /// `SIMPLE` or `MUTUAL`: TLS origination to a destination outside the
    /// mesh, through the backend's own client ([`crate::tls::origination`]).
    Originate,
}

impl UpstreamSecurity {
    /// What a DestinationRule's host-level traffic policy's `tls` says, if
    /// anything.
    pub fn of(policy: Option<&TrafficPolicy>) -> Option<UpstreamSecurity> {
        match policy?.tls.as_ref()?.mode? {
            ClientTlsMode::IstioMutual => Some(UpstreamSecurity::IstioMutual),
            ClientTlsMode::Disable => Some(UpstreamSecurity::Disable),
            ClientTlsMode::Simple | ClientTlsMode::Mutual => Some(UpstreamSecurity::Originate),
        }
    }

    /// What a subset's traffic policy says. Origination is per host (the
    /// endpoints' connections are shared by every subset), so a subset's
    /// `SIMPLE`/`MUTUAL` is not run (`loupe analyze` says so): the host's holds.
    pub fn of_subset(policy: Option<&TrafficPolicy>) -> Option<UpstreamSecurity> {
        Self::of(policy).filter(|s| *s != UpstreamSecurity::Originate)
    }
}

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
    /// Requests sent and not yet answered (for LEAST_REQUEST).
    pub active: AtomicUsize,
    /// It has a sidecar and its PeerAuthentication accepts mTLS (is not
    /// DISABLE): auto mTLS uses it.
    pub accepts_mtls: bool,
    /// The service port it serves (0: every port).
    pub service_port: u16,
}

/// Counts a request as active on its endpoint until dropped.
pub struct ActiveRequest<'a>(&'a Endpoint);

impl Endpoint {
    pub fn start_request(&self) -> ActiveRequest<'_> {
        self.active.fetch_add(1, Relaxed);
        ActiveRequest(self)
    }
}

impl Drop for ActiveRequest<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// The endpoints of one service, or of one subset of it.
pub struct Backend {
    /// FQDN of the service.
    pub host: Arc<str>,
    pub subset: Option<Arc<str>>,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub lb: LoadBalancer,
    pub security: UpstreamSecurity,
    /// With [`UpstreamSecurity::Originate`]: the client that originates
    /// the DestinationRule's TLS.
    pub origination: Option<Arc<Origination>>,
    next: AtomicUsize,
}

impl Backend {
    pub fn new(
        host: Arc<str>,
        subset: Option<Arc<str>>,
        endpoints: Vec<Arc<Endpoint>>,
        lb: LoadBalancer,
    ) -> Backend {
        Backend {
            host,
            subset,
            endpoints,
            lb,
            security: UpstreamSecurity::Auto,
            origination: None,
            next: AtomicUsize::new(0),
        }
    }

    pub fn with_security(mut self, security: UpstreamSecurity) -> Backend {
        self.security = security;
        self
    }

    /// Sets the origination client, used while the security is
    /// [`UpstreamSecurity::Originate`].
    pub fn with_origination(mut self, origination: Option<Arc<Origination>>) -> Backend {
        if self.security == UpstreamSecurity::Originate {
            self.origination = origination;
        }
        self
    }

    /// The client for this backend: its origination's, else `mesh`.
    pub fn client<'a>(&'a self, mesh: &'a UpstreamClient) -> &'a UpstreamClient {
        self.origination.as_ref().map_or(mesh, |o| &o.client)
    }

    /// The URI scheme that selects the connect stack for `endpoint`:
    /// `https` is TLS (mesh mTLS, or origination), `http` plaintext (see `transport`).
    pub fn scheme(&self, endpoint: &Endpoint, has_identity: bool) -> &'static str {
        if self.security == UpstreamSecurity::Originate || self.mtls_to(endpoint, has_identity) {
            "https"
        } else {
            "http"
        }
    }

    /// Whether a connection to `endpoint` is mesh mTLS. A proxy without an
    /// identity of its own (started without a credential) speaks plaintext
    /// unless a DestinationRule demands `ISTIO_MUTUAL`, which then fails.
    pub fn mtls_to(&self, endpoint: &Endpoint, has_identity: bool) -> bool {
        match self.security {
            UpstreamSecurity::IstioMutual => true,
            UpstreamSecurity::Disable | UpstreamSecurity::Originate => false,
            UpstreamSecurity::Auto => has_identity && endpoint.accepts_mtls,
        }
    }

    /// The endpoint for the next request, `None` when there is none.
    pub fn pick(&self) -> Option<&Arc<Endpoint>> {
        let n = self.endpoints.len();
        if n <= 1 {
            return self.endpoints.first();
        }
        let i = match self.lb {
            LoadBalancer::RoundRobin => self.next.fetch_add(1, Relaxed) % n,
            LoadBalancer::Random => rand::rng().random_range(0..n),
            LoadBalancer::LeastRequest => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..n)) % n;
                let load = |i: usize| self.endpoints[i].active.load(Relaxed);
                if load(b) < load(a) { b } else { a }
            }
        };
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
                    active: AtomicUsize::new(0),
                    accepts_mtls: true,
                    service_port: 0,
                })
            })
            .collect::<Vec<_>>();
        let b = Backend::new("r".into(), None, eps.clone(), LoadBalancer::RoundRobin);
        let ports: Vec<u16> = (0..6)
            .filter_map(|_| b.pick())
            .filter_map(|e| e.authority.port_u16())
            .collect();
        assert_eq!(ports, vec![1000, 1001, 1002, 1000, 1001, 1002]);
        assert!(
            Backend::new("r".into(), None, Vec::new(), LoadBalancer::Random)
                .pick()
                .is_none()
        );

        // LEAST_REQUEST avoids the busy endpoint whenever it is compared.
        let busy = eps[0].clone();
        let _active = busy.start_request();
        let lr = Backend::new("r".into(), None, eps, LoadBalancer::LeastRequest);
        for _ in 0..50 {
            let picked = lr.pick().and_then(|e| e.authority.port_u16());
            assert_ne!(picked, Some(1000));
        }
    }
}
