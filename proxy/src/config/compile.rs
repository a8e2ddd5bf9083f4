//! Snapshot → [`MeshConfig`], once per snapshot: resources parsed with
//! `loupe-model` and compiled into its `Router`; DestinationRule subsets
//! resolved to endpoint sets; a metrics edge built per endpoint. Any
//! resource that does not parse refuses the whole snapshot (NACK), so the
//! proxy never runs half a config — except a security resource, which
//! fails closed instead ([`super::fail_closed`]).

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use loupe_model::Resource;
use loupe_model::authz::Authorizer;
use loupe_model::networking::Subset;
use loupe_model::route::Router;
use loupe_push::Snapshot;
use serde::Deserialize;
use serde_json::json;

use super::backend::{LoadBalancer, UpstreamSecurity};
use super::fail_closed;
use super::{Backend, Captured, Endpoint, MeshConfig, ServiceEntry, route_id};
use crate::capture::Protocol;
use crate::identity::{TRUST_DOMAIN, Workload, service_fqdn};
use crate::outbound::policy::RoutePolicy;
use crate::telemetry::metrics::{EdgeSpec, Metrics, Reporter};
use crate::telemetry::sampling::Tracing;
use crate::tls::origination::Origination;
use crate::transport::UpstreamTarget;

/// The endpoint label by which Istio marks workloads with a sidecar.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// Istio's root namespace, when the control plane sends no mesh settings.
const ROOT_NAMESPACE: &str = "istio-system";

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("resource {resource}: not a Kubernetes JSON object: {source}")]
    Json {
        resource: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("resource {resource}: {message} (at {path})")]
    Invalid {
        resource: String,
        path: String,
        message: String,
    },
    #[error(
        "service {host}: endpoint {workload} has address {address:?}, expected host:port of its inbound listener"
    )]
    EndpointAddress {
        host: String,
        workload: String,
        address: String,
    },
    #[error("resource {resource}: TLS origination: {message}")]
    Origination { resource: String, message: String },
}

/// The few fields the proxy reads straight from the Kubernetes object; the
/// meaning of everything else (routes, matches) is `loupe-model`'s.
#[derive(Deserialize)]
struct Object {
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(rename = "metadata")]
    _metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = "name")]
    _name: String,
}

pub fn compile(
    snapshot: &Snapshot,
    this: &Workload,
    metrics: &Metrics,
) -> Result<MeshConfig, CompileError> {
    let mut resources = Vec::with_capacity(snapshot.resources.len());
    let mut objects = Vec::with_capacity(snapshot.resources.len());
    let mut failed_closed = Vec::new();
    for r in &snapshot.resources {
        let (value, parsed) = match parse_resource(r) {
            Ok(ok) => ok,
            Err(error) => {
                // A security resource fails closed; anything else refuses the snapshot.
                let object = serde_json::from_str::<serde_json::Value>(&r.json).ok();
                let Some(f) = fail_closed::stand_in(
                    &r.kind,
                    &r.namespace,
                    &r.name,
                    object.as_ref(),
                    error.to_string(),
                ) else {
                    return Err(error);
                };
                tracing::error!(resource = %f.resource, error = %f.error, "security resource does not compile: it fails closed (denies / STRICT for what it selects)");
                let stand_in = fail_closed::stand_in_resource(&f).ok_or(error)?;
                failed_closed.push(json!({ "resource": f.resource, "error": f.error, "standIn": serde_json::from_str::<serde_json::Value>(&f.stand_in).unwrap_or_default() }));
                stand_in
            }
        };
        resources.extend(parsed);
        objects.push(value);
    }
    metrics.security_failed_closed.store(
        failed_closed.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );

    // DestinationRule subsets per host; the first definition of a subset
    // wins, as when Istio merges DestinationRules for one host.
    let mut subsets: HashMap<String, Vec<&Subset>> = HashMap::new();
    let mut host_lb: HashMap<String, LoadBalancer> = HashMap::new();
    let mut host_security: HashMap<String, UpstreamSecurity> = HashMap::new();
    let mut host_origination: HashMap<String, Arc<Origination>> = HashMap::new();
    let mut host_h2: HashMap<String, bool> = HashMap::new();
    let mesh = snapshot.mesh.clone().unwrap_or_default();
    let root_namespace = if mesh.root_namespace.is_empty() {
        ROOT_NAMESPACE.to_string()
    } else {
        mesh.root_namespace.clone()
    };
    let trust_domain = if mesh.trust_domain.is_empty() {
        TRUST_DOMAIN.to_string()
    } else {
        mesh.trust_domain.clone()
    };
    let mesh_h2 = snapshot.mesh.as_ref().is_none_or(|m| m.h2_upgrade);
    let mut gateways = Vec::new();
    for r in &resources {
        match r {
            Resource::DestinationRule(dr) => {
                let host = service_fqdn(&dr.spec.host, dr.metadata.namespace());
                let policy = dr.spec.traffic_policy.as_ref();
                if let Some(lb) = LoadBalancer::of(policy) {
                    host_lb.entry(host.clone()).or_insert(lb);
                }
                if let Some(sec) = UpstreamSecurity::of(policy) {
                    host_security.entry(host.clone()).or_insert(sec);
                }
                if let Some(tls) = policy.and_then(|p| p.tls.as_ref())
                    && !host_origination.contains_key(&host)
                    && let Some(origination) =
                        Origination::of(tls, &host, h2_upgrade(policy).unwrap_or(false))
                {
                    let origination = origination.map_err(|e| CompileError::Origination {
                        resource: format!(
                            "DestinationRule/{}/{}",
                            dr.metadata.namespace(),
                            dr.metadata.name
                        ),
                        message: e.to_string(),
                    })?;
                    host_origination.insert(host.clone(), origination);
                }
                if let Some(h2) = h2_upgrade(policy) {
                    host_h2.entry(host.clone()).or_insert(h2);
                }
                let list = subsets.entry(host).or_default();
                for s in &dr.spec.subsets {
                    if !list.iter().any(|have| have.name == s.name) {
                        list.push(s);
                    }
                }
            }
            Resource::Gateway(gw) => {
                let selected = gw
                    .spec
                    .selector
                    .iter()
                    .all(|(k, v)| this.labels.get(k) == Some(v));
                if selected {
                    gateways.push(format!("{}/{}", gw.metadata.namespace(), gw.metadata.name));
                }
            }
            _ => {}
        }
    }

    let peer_authentications: Vec<Resource> = resources
        .iter()
        .filter(|r| r.kind() == loupe_model::Kind::PeerAuthentication)
        .cloned()
        .collect();
    let mut upstreams: HashMap<Box<str>, UpstreamTarget> = HashMap::new();
    let mut services = HashMap::new();
    let mut captured = HashMap::new();
    let mut inbound_ports = HashMap::new();
    let mut dns: HashMap<Box<str>, Vec<Ipv4Addr>> = HashMap::new();
    let mut dump_endpoints = serde_json::Map::new();
    for svc in &snapshot.services {
        let host: Arc<str> = svc.host.as_str().into();
        let h2 = host_h2.get(svc.host.as_str()).copied().unwrap_or(mesh_h2);
        let mut endpoints = Vec::with_capacity(svc.endpoints.len());
        for ep in &svc.endpoints {
            let authority = http::uri::Authority::try_from(ep.address.as_str()).map_err(|_| {
                CompileError::EndpointAddress {
                    host: svc.host.clone(),
                    workload: ep.workload.clone(),
                    address: ep.address.clone(),
                }
            })?;
            if authority.port_u16().is_none() {
                return Err(CompileError::EndpointAddress {
                    host: svc.host.clone(),
                    workload: ep.workload.clone(),
                    address: ep.address.clone(),
                });
            }
            let workload = Workload::new(
                &ep.workload,
                &ep.namespace,
                &ep.service_account,
                ep.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            let edge = metrics.edge(&EdgeSpec {
                reporter: Reporter::Source,
                source: this,
                destination: &workload,
                destination_service: &host,
                security_policy: "unknown",
            });
            // Secure naming: the identity the registry gives, else the one
            // its namespace and service account make.
            let identity = loupe_model::SpiffeId::parse(&ep.identity).unwrap_or_else(|_| {
                loupe_model::SpiffeId::new(&trust_domain, &ep.namespace, &ep.service_account)
            });
            upstreams
                .entry(ep.address.as_str().into())
                .or_insert(UpstreamTarget { identity, h2 });
            // Auto mTLS, as Istio: only to endpoints that have a sidecar
            // (Istio's `security.istio.io/tlsMode: istio` label) and whose
            // PeerAuthentication is not DISABLE.
            let has_sidecar =
                workload.labels.get(TLS_MODE_LABEL).map(String::as_str) == Some("istio");
            let accepts_mtls = has_sidecar
                && loupe_model::peer_auth::effective_mtls_mode(
                    &peer_authentications,
                    &root_namespace,
                    &ep.namespace,
                    &workload.labels,
                    0,
                ) != loupe_model::peer_auth::MtlsMode::Disable;
            endpoints.push(Arc::new(Endpoint {
                socket: ep.address.parse::<SocketAddr>().ok(),
                authority,
                workload,
                edge,
                active: AtomicUsize::new(0),
                accepts_mtls,
                service_port: u16::try_from(ep.service_port).unwrap_or(0),
            }));
            if ep.workload == *this.name
                && ep.namespace == *this.namespace
                && let Some(p) = svc.ports.iter().find(|p| p.number == ep.service_port)
            {
                inbound_ports
                    .entry(u16::try_from(p.number).unwrap_or(0))
                    .or_insert((Protocol::of(&p.protocol, &p.name), host.clone()));
            }
        }
        let mut by_subset = HashMap::new();
        let mut dump_subsets = serde_json::Map::new();
        // A subset's own traffic policy overrides the host's.
        let lb = host_lb.get(svc.host.as_str()).copied().unwrap_or_default();
        let security = host_security
            .get(svc.host.as_str())
            .copied()
            .unwrap_or_default();
        let origination = host_origination.get(svc.host.as_str()).cloned();
        for s in subsets.get(svc.host.as_str()).into_iter().flatten() {
            let members: Vec<Arc<Endpoint>> = endpoints
                .iter()
                .filter(|e| {
                    s.labels
                        .iter()
                        .all(|(k, v)| e.workload.labels.get(k) == Some(v))
                })
                .cloned()
                .collect();
            dump_subsets.insert(
                s.name.clone(),
                json!({
                    "labels": s.labels,
                    "endpoints": members.iter().map(|e| e.authority.as_str()).collect::<Vec<_>>(),
                }),
            );
            by_subset.insert(
                s.name.clone().into_boxed_str(),
                Arc::new(
                    Backend::new(
                        host.clone(),
                        Some(s.name.as_str().into()),
                        members,
                        LoadBalancer::of(s.traffic_policy.as_ref()).unwrap_or(lb),
                    )
                    .with_security(
                        UpstreamSecurity::of_subset(s.traffic_policy.as_ref()).unwrap_or(security),
                    )
                    .with_origination(origination.clone()),
                ),
            );
        }
        dump_endpoints.insert(
            svc.host.clone(),
            json!({
                "endpoints": svc.endpoints.iter().map(|e| json!({
                    "address": e.address,
                    "workload": e.workload,
                    "namespace": e.namespace,
                    "serviceAccount": e.service_account,
                    "labels": e.labels,
                })).collect::<Vec<_>>(),
                "subsets": dump_subsets,
            }),
        );
        let unreached = metrics.edge(&EdgeSpec {
            reporter: Reporter::Source,
            source: this,
            destination: &Workload::unknown(),
            destination_service: &host,
            security_policy: "unknown",
        });
        let entry = Arc::new(ServiceEntry {
            host: host.clone(),
            all: Arc::new(
                Backend::new(host.clone(), None, endpoints, lb)
                    .with_security(security)
                    .with_origination(origination),
            ),
            subsets: by_subset,
            unreached,
            peer_header: crate::peer::encode(this, &host),
        });
        // Virtual IPs: single addresses (a CIDR block is not captured by
        // address; `loupe analyze` says so).
        let vips: Vec<Ipv4Addr> = svc
            .addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        for vip in &vips {
            for p in &svc.ports {
                let Ok(port) = u16::try_from(p.number) else {
                    continue;
                };
                captured
                    .entry(SocketAddr::from((*vip, port)))
                    .or_insert_with(|| Captured {
                        service: entry.clone(),
                        port,
                        protocol: Protocol::of(&p.protocol, &p.name),
                    });
            }
        }
        for alias in aliases(&svc.host, &this.namespace) {
            if !vips.is_empty() {
                dns.entry(alias.to_ascii_lowercase().into())
                    .or_insert_with(|| vips.clone());
            }
            services.entry(alias).or_insert_with(|| entry.clone());
        }
    }

    let router = Router::new(&resources);
    let mut route_policies = HashMap::new();
    let mut matched_headers = BTreeSet::new();
    for vs in router.services() {
        for route in &vs.routes {
            route_policies.insert(route_id(route), Arc::new(RoutePolicy::compile(route)));
            for m in &route.spec.matches {
                let names = m.headers.keys().chain(m.without_headers.keys());
                matched_headers.extend(names.map(|h| h.to_ascii_lowercase()));
            }
        }
    }

    let tracing = Tracing::resolve(
        &resources,
        &root_namespace,
        this,
        mesh.trace_sampling_basis_points,
    );
    Ok(MeshConfig {
        version: snapshot.version,
        router,
        route_policies,
        default_policy: Arc::new(RoutePolicy::service_default()),
        matched_headers: matched_headers.into_iter().collect(),
        authorizer: resources
            .iter()
            .any(|r| r.kind() == loupe_model::Kind::AuthorizationPolicy)
            .then(|| Arc::new(Authorizer::new(&resources, &root_namespace))),
        services,
        gateways: gateways.clone(),
        authenticator: crate::inbound::authn::Authenticator::compile(
            &loupe_model::request_auth::jwt_rules_for(
                &resources,
                &root_namespace,
                &this.namespace,
                &this.labels,
            ),
            &snapshot.jwks,
        ),
        tracing,
        peer_authentications,
        root_namespace,
        upstreams,
        captured,
        inbound_ports,
        dns,
        dump: json!({
            "version": snapshot.version,
            "resources": objects,
            "failedClosed": failed_closed,
            "services": dump_endpoints,
            "gateways": gateways,
            "tracing": {
                "client": { "samplingPercent": f64::from(tracing.client.basis_points) / 100.0, "reportSpans": tracing.client.report },
                "server": { "samplingPercent": f64::from(tracing.server.basis_points) / 100.0, "reportSpans": tracing.server.report },
            },
        }),
    })
}

/// One pushed resource: its object, and what the model makes of it; an
/// error for JSON that is not a Kubernetes object or a resource the model
/// refuses.
fn parse_resource(
    r: &loupe_push::Resource,
) -> Result<(serde_json::Value, Vec<Resource>), CompileError> {
    let name = format!("{}/{}/{}", r.kind, r.namespace, r.name);
    let value: serde_json::Value =
        serde_json::from_str(&r.json).map_err(|source| CompileError::Json {
            resource: name.clone(),
            source,
        })?;
    // The shape every Kubernetes object has; the model reads the rest.
    Object::deserialize(&value).map_err(|source| CompileError::Json {
        resource: name.clone(),
        source,
    })?;
    let parsed = loupe_model::parse_documents(&name, &r.json);
    if let Some(d) = parsed
        .diagnostics
        .iter()
        .find(|d| d.severity == loupe_model::Severity::Error)
    {
        return Err(CompileError::Invalid {
            resource: d.resource.clone(),
            path: d.path.clone(),
            message: d.message.clone(),
        });
    }
    Ok((value, parsed.resources))
}

/// Whether a DestinationRule's `connectionPool.http` says to upgrade to
/// HTTP/2 (`h2UpgradePolicy`; `useClientProtocol` keeps the app's HTTP/1.1).
fn h2_upgrade(policy: Option<&loupe_model::networking::TrafficPolicy>) -> Option<bool> {
    use loupe_model::networking::traffic_policy::H2UpgradePolicy;
    let http = policy?.connection_pool.as_ref()?.http.as_ref()?;
    if http.use_client_protocol == Some(true) {
        return Some(false);
    }
    match http.h2_upgrade_policy? {
        H2UpgradePolicy::Upgrade => Some(true),
        H2UpgradePolicy::DoNotUpgrade => Some(false),
        H2UpgradePolicy::Default => None,
    }
}

/// The names an app in `namespace` may use for `fqdn`.
fn aliases(fqdn: &str, namespace: &str) -> Vec<Box<str>> {
    let mut out = vec![fqdn.into()];
    let suffix = format!(".svc.{TRUST_DOMAIN}");
    if let Some(name_ns) = fqdn.strip_suffix(&suffix) {
        out.push(name_ns.into());
        out.push(format!("{name_ns}.svc").into_boxed_str());
        if let Some((name, ns)) = name_ns.split_once('.')
            && ns == namespace
        {
            out.push(name.into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use loupe_push::{Endpoint as PushEndpoint, Resource, Service};

    fn endpoint(addr: &str, workload: &str, version: &str) -> PushEndpoint {
        PushEndpoint {
            address: addr.to_string(),
            labels: [("app", "reviews"), ("version", version)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            workload: workload.to_string(),
            namespace: "default".to_string(),
            service_account: "bookinfo-reviews".to_string(),
            identity: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews".to_string(),
            service_port: 0,
        }
    }

    fn snapshot(dr_json: &str) -> Snapshot {
        Snapshot {
            version: 7,
            resources: vec![Resource {
                kind: "DestinationRule".to_string(),
                namespace: "default".to_string(),
                name: "reviews".to_string(),
                json: dr_json.to_string(),
            }],
            services: vec![Service {
                host: "reviews.default.svc.cluster.local".to_string(),
                endpoints: vec![
                    endpoint("127.0.0.1:1001", "reviews-v1", "v1"),
                    endpoint("127.0.0.1:1002", "reviews-v2", "v2"),
                    endpoint("127.0.0.1:1003", "reviews-v2b", "v2"),
                ],
                ..Default::default()
            }],
            mesh: None,
            jwks: Default::default(),
        }
    }

    const DR: &str = r#"{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule",
        "metadata":{"name":"reviews","namespace":"default"},
        "spec":{"host":"reviews","subsets":[{"name":"v1","labels":{"version":"v1"}},
                                             {"name":"v2","labels":{"version":"v2"}}]}}"#;

    #[test]
    fn subsets_select_endpoints_by_labels_and_short_names_resolve() {
        let metrics = Metrics::default();
        let this = Workload::new(
            "productpage-v1",
            "default",
            "bookinfo-productpage",
            Default::default(),
        );
        let config = compile(&snapshot(DR), &this, &metrics).expect("compiles");
        assert_eq!(config.version, 7);
        let svc = config.service("reviews").expect("short name resolves");
        assert!(Arc::ptr_eq(
            svc,
            config
                .service("reviews.default.svc.cluster.local")
                .expect("fqdn")
        ));
        assert!(config.service("reviews.default").is_some());
        let v2 = svc.backend(Some("v2")).expect("subset v2");
        let addrs: Vec<&str> = v2.endpoints.iter().map(|e| e.authority.as_str()).collect();
        assert_eq!(addrs, vec!["127.0.0.1:1002", "127.0.0.1:1003"]);
        assert_eq!(svc.backend(None).map(|b| b.endpoints.len()), Some(3));
        assert!(svc.backend(Some("v9")).is_none());
    }

    #[test]
    fn a_resource_that_is_not_json_refuses_the_snapshot() {
        let metrics = Metrics::default();
        let this = Workload::unknown();
        let err = compile(&snapshot("{not json"), &this, &metrics)
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("DestinationRule/default/reviews"),
            "{err}"
        );
    }

    #[test]
    fn an_endpoint_without_a_port_refuses_the_snapshot() {
        let metrics = Metrics::default();
        let mut s = snapshot(DR);
        s.services[0].endpoints[0].address = "reviews-v1".to_string();
        let err = compile(&s, &Workload::unknown(), &metrics)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("reviews-v1"), "{err}");
    }
}
