//! The proxy's configuration: each control-plane snapshot compiled once
//! into a [`MeshConfig`] (route table, subsets, endpoint sets, metric edges)
//! and published through a [`ConfigStore`]. Requests load the current
//! config once when they start and keep that `Arc` to the end, so a swap
//! never changes a request mid-flight.

pub mod backend;
pub mod compile;
pub mod fail_closed;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use loupe_model::route::{CompiledRoute, Router};

pub use backend::{Backend, Endpoint, UpstreamSecurity};
pub use compile::{CompileError, compile};

use crate::capture::Protocol;
use crate::outbound::policy::RoutePolicy;
use crate::telemetry::metrics::Edge;
use crate::transport::UpstreamTarget;

/// One service of the mesh with its endpoints, whole and per subset.
pub struct ServiceEntry {
    /// FQDN: `reviews.default.svc.cluster.local`.
    pub host: Arc<str>,
    /// Every endpoint of the service (a route without a subset).
    pub all: Arc<Backend>,
    /// Subsets defined by DestinationRules for this host, by name.
    pub subsets: HashMap<Box<str>, Arc<Backend>>,
    /// The metrics edge for requests that reach no endpoint of this service.
    pub unreached: Arc<Edge>,
    /// This proxy's peer-metadata header for calls to this service.
    pub peer_header: http::HeaderValue,
}

impl ServiceEntry {
    /// The backend for `subset`, `None` when no DestinationRule defines it.
    pub fn backend(&self, subset: Option<&str>) -> Option<&Arc<Backend>> {
        match subset {
            None => Some(&self.all),
            Some(name) => self.subsets.get(name),
        }
    }
}

/// A service port that captured outbound traffic reaches by virtual IP.
pub struct Captured {
    pub service: Arc<ServiceEntry>,
    pub port: u16,
    pub protocol: Protocol,
}

/// A compiled snapshot.
pub struct MeshConfig {
    pub version: u64,
    pub router: Router,
    /// By FQDN and by every name an app in this proxy's namespace may use
    /// for it (`reviews`, `reviews.default`, `reviews.default.svc`).
    services: HashMap<Box<str>, Arc<ServiceEntry>>,
    /// The policies of every VirtualService route, by [`route_id`].
    pub route_policies: HashMap<usize, Arc<RoutePolicy>>,
    /// For traffic no VirtualService routes (Istio's default retries).
    pub default_policy: Arc<RoutePolicy>,
    /// Header names some route matches on (lower-case): only these are
    /// copied into the request the router sees.
    pub matched_headers: Vec<String>,
    /// `namespace/name` of the Gateways whose selector matches this proxy,
    /// in snapshot order (gateway mode routes through them).
    pub gateways: Vec<String>,
    /// AuthorizationPolicies compiled; `None` when the config has none, so
    /// the inbound path skips authorization entirely.
    pub authorizer: Option<Arc<loupe_model::authz::Authorizer>>,
    /// The PeerAuthentications visible to this proxy (resolved per inbound
    /// connection with `loupe_model::peer_auth`).
    pub peer_authentications: Vec<loupe_model::Resource>,
    /// Istio's root namespace (mesh-wide policies).
    pub root_namespace: String,
    /// Per endpoint address: the identity its certificate must carry and
    /// the protocol to offer, for the mTLS connector.
    pub upstreams: HashMap<Box<str>, UpstreamTarget>,
    /// The RequestAuthentication rules selecting this workload.
    pub authenticator: crate::inbound::authn::Authenticator,
    /// Span sampling and reporting for this workload (Telemetry API).
    pub tracing: crate::telemetry::sampling::Tracing,
    /// What `/config_dump` shows.
    pub dump: serde_json::Value,
    /// Captured outbound traffic: each service's virtual IP and port.
    pub captured: HashMap<SocketAddr, Captured>,
    /// The protocol of each port this workload serves as an endpoint, and
    /// the service (FQDN) of that port.
    pub inbound_ports: HashMap<u16, (Protocol, Arc<str>)>,
    /// For the DNS proxy: every name an app here may use for a service
    /// with virtual IPs (lower case, no trailing dot) → those IPs.
    pub dns: HashMap<Box<str>, Vec<Ipv4Addr>>,
}

impl MeshConfig {
    /// The service an app means by `host` (no port), if the mesh knows it.
    pub fn service(&self, host: &str) -> Option<&Arc<ServiceEntry>> {
        self.services.get(host)
    }

    /// The service port a captured connection to `original_dst` is for.
    pub fn captured(&self, original_dst: SocketAddr) -> Option<&Captured> {
        self.captured.get(&original_dst)
    }

    /// How the connector reaches the endpoint at `address` over mTLS.
    pub fn upstream(&self, address: &str) -> Option<&UpstreamTarget> {
        self.upstreams.get(address)
    }

    /// The PeerAuthentication mode of this workload's inbound `port`.
    pub fn inbound_mtls(
        &self,
        this: &crate::identity::Workload,
        port: u16,
    ) -> loupe_model::peer_auth::MtlsMode {
        loupe_model::peer_auth::effective_mtls_mode(
            &self.peer_authentications,
            &self.root_namespace,
            &this.namespace,
            &this.labels,
            port,
        )
    }

    /// The compiled policy of a route the router selected.
    pub fn policy(&self, route: &CompiledRoute) -> Arc<RoutePolicy> {
        self.route_policies
            .get(&route_id(route))
            .cloned()
            .unwrap_or_else(|| self.default_policy.clone())
    }
}

/// Identifies a compiled route by its address: the router owns its routes
/// in heap buffers that never move while the config lives, so the lookup
/// per request is one integer hash instead of hashing resource names.
pub fn route_id(route: &CompiledRoute) -> usize {
    route as *const CompiledRoute as usize
}

/// Where the current config lives; `None` until the first snapshot.
#[derive(Default)]
pub struct ConfigStore {
    current: ArcSwapOption<MeshConfig>,
}

impl ConfigStore {
    pub fn load(&self) -> Option<Arc<MeshConfig>> {
        self.current.load_full()
    }

    pub fn store(&self, config: MeshConfig) {
        self.current.store(Some(Arc::new(config)));
    }

    pub fn is_ready(&self) -> bool {
        self.current.load().is_some()
    }

    /// The current span policies (every trace, before the first config).
    pub fn tracing(&self) -> crate::telemetry::sampling::Tracing {
        self.current
            .load()
            .as_ref()
            .map(|c| c.tracing)
            .unwrap_or_default()
    }
}
