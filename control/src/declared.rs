//! The registry of local mode, from the operator's declarations in Istio's
//! shapes for workloads outside Kubernetes: each `WorkloadEntry` (address,
//! ports, labels, service account) and the `ServiceEntry` hosts whose
//! `workloadSelector` picks it (loupe-model's
//! [`service_endpoints`](loupe_model::registry::service_endpoints)
//! computes the endpoints). Built once per config version.
//!
//! It answers two questions:
//! - what a credential's WorkloadEntry declares ([`Declarations::workload`]),
//!   which bounds what its proxy may claim and the identity the CA issues;
//! - every service's endpoints ([`Declarations::services`]): addresses,
//!   labels and SPIFFE identities as declared, never as a proxy claims them.
//!   A WorkloadEntry is an endpoint while a proxy authenticated as that
//!   entry is connected (its stream is the entry's health, as Istio's
//!   auto-registered entries are unhealthy without their proxy); a
//!   ServiceEntry's inline endpoints and DNS hosts always are.

use std::collections::{BTreeMap, BTreeSet};

use loupe_model::Resource;
use loupe_model::registry::service_endpoints;
use loupe_model::resource::Kind;
use loupe_push::{Endpoint, Service, ServicePort};

use crate::authn::claims::Declared;

/// Istio's service account for a workload that names none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// A WorkloadEntry, by (namespace, name).
pub type EntryKey = (String, String);

/// One endpoint of one host, and the WorkloadEntry behind it (if any).
#[derive(Clone, Debug)]
struct HostEndpoint {
    host: String,
    endpoint: Endpoint,
    entry: Option<EntryKey>,
}

/// Istio's endpoint label for workloads with a sidecar.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// Every declared workload and every service endpoint of one config.
#[derive(Clone, Debug, Default)]
pub struct Declarations {
    workloads: BTreeMap<EntryKey, Declared>,
    endpoints: Vec<HostEndpoint>,
    /// Each host's virtual IPs and ports, from the ServiceEntries declaring it.
    hosts: BTreeMap<String, HostShape>,
}

/// What captured traffic needs to know of a host: the addresses apps
/// connect to and the protocol of each port.
#[derive(Clone, Debug, Default)]
struct HostShape {
    addresses: Vec<String>,
    ports: Vec<ServicePort>,
}

impl Declarations {
    pub fn from_resources(resources: &[Resource], trust_domain: &str) -> Declarations {
        let mut workloads = BTreeMap::new();
        // The last definition of an entry wins, as kubectl apply leaves it.
        for r in resources {
            if let Resource::WorkloadEntry(we) = r {
                let namespace = we.metadata.namespace().to_string();
                let name = we.metadata.name.clone();
                workloads.insert(
                    (namespace.clone(), name.clone()),
                    Declared {
                        namespace,
                        name,
                        address: we.spec.address.clone(),
                        ports: we.spec.ports.clone(),
                        labels: we.spec.labels.clone(),
                        service_account: we
                            .spec
                            .service_account
                            .clone()
                            .filter(|sa| !sa.is_empty())
                            .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string()),
                        hosts: BTreeSet::new(),
                    },
                );
            }
        }
        let mut hosts: BTreeMap<String, HostShape> = BTreeMap::new();
        for r in resources {
            if let Resource::ServiceEntry(se) = r {
                for host in &se.spec.hosts {
                    let shape = hosts.entry(host.clone()).or_default();
                    for a in &se.spec.addresses {
                        if !shape.addresses.contains(a) {
                            shape.addresses.push(a.clone());
                        }
                    }
                    for p in &se.spec.ports {
                        if !shape.ports.iter().any(|q| q.number == p.number) {
                            shape.ports.push(ServicePort {
                                number: p.number,
                                name: p.name.clone(),
                                protocol: p.protocol.to_ascii_uppercase(),
                            });
                        }
                    }
                }
            }
        }
        let mut endpoints = Vec::new();
        for service in service_endpoints(resources) {
            for e in service.endpoints {
                if e.address.is_empty() {
                    // Reached only through its network's gateway: not modelled.
                    continue;
                }
                let entry = (e.entry.kind == Kind::WorkloadEntry)
                    .then(|| (e.entry.namespace.clone(), e.entry.name.clone()));
                if let Some(key) = &entry
                    && let Some(declared) = workloads.get_mut(key)
                {
                    declared.hosts.insert(service.host.clone());
                }
                let service_account = e.service_account.clone().unwrap_or_default();
                let identity = match (&entry, &e.service_account) {
                    // A WorkloadEntry always has an identity (`default` when unnamed).
                    (Some(key), _) => workloads
                        .get(key)
                        .map(|d| {
                            loupe_model::SpiffeId::new(
                                trust_domain,
                                &d.namespace,
                                &d.service_account,
                            )
                            .uri()
                        })
                        .unwrap_or_default(),
                    (None, Some(sa)) => {
                        loupe_model::SpiffeId::new(trust_domain, &e.entry.namespace, sa).uri()
                    }
                    (None, None) => String::new(),
                };
                let service_account = match &entry {
                    Some(key) => workloads
                        .get(key)
                        .map(|d| d.service_account.clone())
                        .unwrap_or(service_account),
                    None => service_account,
                };
                let mut labels: std::collections::HashMap<String, String> =
                    e.labels.into_iter().collect();
                if entry.is_some() {
                    // A WorkloadEntry is an endpoint only while its Loupe
                    // sidecar is connected: Istio's label for "has a
                    // sidecar", which auto mTLS reads (unless declared).
                    labels
                        .entry(TLS_MODE_LABEL.to_string())
                        .or_insert_with(|| "istio".to_string());
                }
                endpoints.push(HostEndpoint {
                    host: service.host.clone(),
                    endpoint: Endpoint {
                        address: join_host_port(&e.address, e.port),
                        labels,
                        workload: e.entry.name.clone(),
                        namespace: e.entry.namespace.clone(),
                        service_account,
                        identity,
                        service_port: service.port.number,
                    },
                    entry,
                });
            }
        }
        Declarations {
            workloads,
            endpoints,
            hosts,
        }
    }

    /// The WorkloadEntry `namespace/name`, with the hosts that select it.
    pub fn workload(&self, namespace: &str, name: &str) -> Option<&Declared> {
        self.workloads
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Every host with at least one endpoint, sorted by host; endpoints
    /// sorted by address, one per address. WorkloadEntries count only when
    /// in `connected`.
    pub fn services(&self, connected: &BTreeSet<EntryKey>) -> Vec<Service> {
        let mut hosts: BTreeMap<&str, BTreeMap<&str, &Endpoint>> = BTreeMap::new();
        for he in &self.endpoints {
            if he
                .entry
                .as_ref()
                .is_some_and(|key| !connected.contains(key))
            {
                continue;
            }
            hosts
                .entry(he.host.as_str())
                .or_default()
                .entry(he.endpoint.address.as_str())
                .or_insert(&he.endpoint);
        }
        hosts
            .into_iter()
            .map(|(host, endpoints)| {
                let shape = self.hosts.get(host).cloned().unwrap_or_default();
                Service {
                    host: host.to_string(),
                    endpoints: endpoints.into_values().cloned().collect(),
                    addresses: shape.addresses,
                    ports: shape.ports,
                }
            })
            .collect()
    }
}

/// `host:port`, bracketing IPv6 literals.
fn join_host_port(host: &str, port: u32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKINFO: &str = "
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec:
  address: 127.0.0.1
  ports: {http: 9081}
  labels: {app: reviews, version: v1}
  serviceAccount: bookinfo-reviews
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, namespace: default}
spec:
  address: 127.0.0.1
  ports: {http: 9083}
  labels: {app: reviews, version: v3}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.internal]
  resolution: DNS
  ports: [{number: 5432, name: tcp, protocol: TCP}]
";

    fn declarations() -> Declarations {
        let parsed = loupe_model::parse_documents("t.yaml", BOOKINFO);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        Declarations::from_resources(&parsed.resources, "cluster.local")
    }

    fn key(name: &str) -> EntryKey {
        ("default".to_string(), name.to_string())
    }

    #[test]
    fn entries_know_the_hosts_that_select_them() {
        let d = declarations();
        let v1 = d.workload("default", "reviews-v1").unwrap();
        assert_eq!(v1.address, "127.0.0.1");
        assert_eq!(v1.service_account, "bookinfo-reviews");
        assert_eq!(
            v1.hosts.iter().collect::<Vec<_>>(),
            ["reviews.default.svc.cluster.local"]
        );
        assert_eq!(
            d.workload("default", "reviews-v3").unwrap().service_account,
            "default",
            "Istio's default service account"
        );
        assert!(d.workload("default", "ratings-v1").is_none());
        assert!(d.workload("shop", "reviews-v1").is_none());
    }

    #[test]
    fn endpoints_are_declared_and_count_while_their_proxy_is_connected() {
        let d = declarations();
        let only_v1: BTreeSet<EntryKey> = [key("reviews-v1")].into_iter().collect();
        let services = d.services(&only_v1);
        let hosts: Vec<&str> = services.iter().map(|s| s.host.as_str()).collect();
        assert_eq!(hosts, ["db.internal", "reviews.default.svc.cluster.local"]);
        let reviews = &services[1].endpoints;
        assert_eq!(reviews.len(), 1);
        let e = &reviews[0];
        assert_eq!(e.address, "127.0.0.1:9081");
        assert_eq!(e.workload, "reviews-v1");
        assert_eq!(e.service_account, "bookinfo-reviews");
        assert_eq!(
            e.identity,
            "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
        );
        assert_eq!(e.labels.get("version").map(String::as_str), Some("v1"));
        assert_eq!(e.service_port, 9080);
        // What captured traffic routes by: the virtual IP and the ports' protocols.
        assert_eq!(services[1].addresses, ["10.96.0.10"]);
        let ports: Vec<(u32, &str, &str)> = services[1]
            .ports
            .iter()
            .map(|p| (p.number, p.name.as_str(), p.protocol.as_str()))
            .collect();
        assert_eq!(ports, [(9080, "http", "HTTP")]);
        assert!(services[0].addresses.is_empty());
        assert_eq!(services[0].ports[0].protocol, "TCP");
        // The DNS host needs no proxy, and has no identity.
        assert_eq!(services[0].endpoints[0].address, "db.internal:5432");
        assert_eq!(services[0].endpoints[0].identity, "");

        let both: BTreeSet<EntryKey> = [key("reviews-v1"), key("reviews-v3")].into_iter().collect();
        let all = d.services(&both);
        let addrs: Vec<&str> = all[1]
            .endpoints
            .iter()
            .map(|e| e.address.as_str())
            .collect();
        assert_eq!(addrs, ["127.0.0.1:9081", "127.0.0.1:9083"]);
        assert_eq!(
            all[1].endpoints[1].identity,
            "spiffe://cluster.local/ns/default/sa/default"
        );
        let none = d.services(&BTreeSet::new());
        assert_eq!(none.len(), 1, "no connected proxy: only the DNS host");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
    }
}
