//! The endpoints ServiceEntries give their hosts, with Istio's semantics, as
//! pure functions the control plane's registry builds on:
//!
//! 1. Each ServiceEntry host × each of its ports is one service (one Envoy
//!    cluster, `outbound|PORT||HOST`), described by a [`ServiceEndpoints`].
//! 2. Its endpoints are the entry's inline `endpoints`, or — with a
//!    `workloadSelector` — the WorkloadEntries *of the entry's namespace*
//!    whose labels carry every selector label (pods the selector also picks
//!    are the caller's to add: the model has no pods).
//! 3. With `DNS`/`DNS_ROUND_ROBIN` resolution and neither endpoints nor a
//!    selector, the host itself is the one endpoint (the proxy resolves it).
//! 4. An endpoint's port for a service port is the entry's
//!    `ports[servicePort.name]`, else the service port's `targetPort`, else
//!    its `number`.
//!
//! Resources defined twice (same kind, namespace and name) count once, the
//! last definition, as `kubectl apply` of the files would leave them.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::identity::SpiffeId;
use crate::networking::{
    Location, Resolution, ServiceEntry, ServicePort, WorkloadEntry, WorkloadEntrySpec,
};
use crate::resource::{Kind, Resource, ResourceKey};

/// One host and port of a ServiceEntry, with its endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoints {
    /// The ServiceEntry that declares the host.
    pub service_entry: ResourceKey,
    /// The host as the entry writes it (possibly a wildcard, `*.example.com`).
    pub host: String,
    pub port: ServicePort,
    pub location: Location,
    pub resolution: Resolution,
    /// In the order the entry lists them, then WorkloadEntries in input order.
    pub endpoints: Vec<ServiceEndpoint>,
}

/// One endpoint of a [`ServiceEndpoints`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoint {
    /// IP, DNS name (resolved by the proxy) or `unix:///path`; empty when
    /// the workload is only reachable through its `network`'s gateway.
    pub address: String,
    /// The port to connect to, resolved for this service port.
    pub port: u32,
    pub labels: BTreeMap<String, String>,
    pub network: Option<String>,
    pub locality: Option<String>,
    /// Load-balancing weight; an absent or zero weight is 1, as in Envoy.
    pub weight: u32,
    /// Service account in `entry.namespace`, when the entry names one.
    pub service_account: Option<String>,
    /// Where the endpoint comes from: a `WorkloadEntry`, or the
    /// `ServiceEntry` itself (inline endpoints, or its host under DNS).
    pub entry: ResourceKey,
}

impl ServiceEndpoint {
    /// The SPIFFE identity the endpoint's certificate must carry (secure
    /// naming), when it has a service account.
    pub fn identity(&self, trust_domain: &str) -> Option<SpiffeId> {
        let sa = self.service_account.as_deref()?;
        Some(SpiffeId::new(trust_domain, &self.entry.namespace, sa))
    }
}

/// The endpoints of every ServiceEntry host and port in `resources`, in the
/// order of the ServiceEntries, their hosts and their ports.
pub fn service_endpoints(resources: &[Resource]) -> Vec<ServiceEndpoints> {
    // The last definition of a key wins.
    let mut last: HashMap<ResourceKey, usize> = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        last.insert(r.key(), i);
    }
    let current = |i: usize, r: &Resource| last.get(&r.key()) == Some(&i);
    let workload_entries: Vec<&WorkloadEntry> = resources
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Resource::WorkloadEntry(we) if current(i, r) => Some(we),
            _ => None,
        })
        .collect();
    resources
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Resource::ServiceEntry(se) if current(i, r) => Some(se),
            _ => None,
        })
        .flat_map(|se| service_entry_endpoints(se, &workload_entries))
        .collect()
}

/// The endpoints of one ServiceEntry's hosts and ports, selecting among
/// `workload_entries` (of any namespace: only the entry's own are used).
pub fn service_entry_endpoints(
    se: &ServiceEntry,
    workload_entries: &[&WorkloadEntry],
) -> Vec<ServiceEndpoints> {
    let namespace = se.metadata.namespace();
    let se_key = ResourceKey {
        kind: Kind::ServiceEntry,
        namespace: namespace.to_string(),
        name: se.metadata.name.clone(),
    };
    let spec = &se.spec;
    let selected: Vec<(&WorkloadEntrySpec, ResourceKey)> = match &spec.workload_selector {
        Some(selector) => workload_entries
            .iter()
            .filter(|we| we.metadata.namespace() == namespace)
            .filter(|we| selector.matches(&we.spec.labels))
            .map(|we| {
                let key = ResourceKey {
                    kind: Kind::WorkloadEntry,
                    namespace: namespace.to_string(),
                    name: we.metadata.name.clone(),
                };
                (&we.spec, key)
            })
            .collect(),
        None => Vec::new(),
    };
    let resolves_host = spec.endpoints.is_empty()
        && spec.workload_selector.is_none()
        && matches!(
            spec.resolution(),
            Resolution::Dns | Resolution::DnsRoundRobin
        );

    let mut out = Vec::with_capacity(spec.hosts.len() * spec.ports.len());
    for host in &spec.hosts {
        for port in &spec.ports {
            let mut endpoints: Vec<ServiceEndpoint> = spec
                .endpoints
                .iter()
                .map(|e| endpoint(e, port, se_key.clone()))
                .chain(
                    selected
                        .iter()
                        .map(|(e, key)| endpoint(e, port, key.clone())),
                )
                .collect();
            if resolves_host && !host.starts_with('*') {
                endpoints.push(ServiceEndpoint {
                    address: host.clone(),
                    port: port.target_port.filter(|p| *p > 0).unwrap_or(port.number),
                    labels: BTreeMap::new(),
                    network: None,
                    locality: None,
                    weight: 1,
                    service_account: None,
                    entry: se_key.clone(),
                });
            }
            out.push(ServiceEndpoints {
                service_entry: se_key.clone(),
                host: host.clone(),
                port: port.clone(),
                location: spec.location(),
                resolution: spec.resolution(),
                endpoints,
            });
        }
    }
    out
}

fn endpoint(e: &WorkloadEntrySpec, port: &ServicePort, entry: ResourceKey) -> ServiceEndpoint {
    let resolved = e
        .ports
        .get(&port.name)
        .copied()
        .filter(|p| *p > 0)
        .or(port.target_port.filter(|p| *p > 0))
        .unwrap_or(port.number);
    ServiceEndpoint {
        address: e.address.clone(),
        port: resolved,
        labels: e.labels.clone(),
        network: e.network.clone(),
        locality: e.locality.clone(),
        weight: e.weight.filter(|w| *w > 0).unwrap_or(1),
        service_account: e.service_account.clone(),
        entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_documents;

    fn resources(yaml: &str) -> Vec<Resource> {
        let parsed = parse_documents("test.yaml", yaml);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        parsed.resources
    }

    const SELECTED: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm-svc, namespace: vms}
spec:
  hosts: [vm.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 9000, name: grpc, protocol: GRPC}
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: vms}
spec:
  address: 10.0.0.1
  labels: {app: vm, version: v1}
  ports: {grpc: 9090}
  serviceAccount: vm-sa
  weight: 3
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: vms}
spec:
  address: 10.0.0.2
  labels: {app: vm}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other-app, namespace: vms}
spec: {address: 10.0.0.3, labels: {app: other}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-elsewhere, namespace: default}
spec: {address: 10.0.0.4, labels: {app: vm}}
";

    #[test]
    fn selector_picks_matching_entries_of_its_namespace_and_resolves_ports() {
        let services = service_endpoints(&resources(SELECTED));
        assert_eq!(services.len(), 2, "one per host and port");
        let http = &services[0];
        assert_eq!(
            (http.host.as_str(), http.port.number),
            ("vm.example.com", 80)
        );
        assert_eq!(http.location, Location::MeshInternal);
        let got: Vec<(&str, u32, &str)> = http
            .endpoints
            .iter()
            .map(|e| (e.address.as_str(), e.port, e.entry.name.as_str()))
            .collect();
        // No `ports.http` on the entries: the service port's targetPort.
        assert_eq!(
            got,
            [("10.0.0.1", 8080, "vm-1"), ("10.0.0.2", 8080, "vm-2")]
        );
        let grpc = &services[1];
        let ports: Vec<u32> = grpc.endpoints.iter().map(|e| e.port).collect();
        // vm-1 names its grpc port; vm-2 falls back to the port number.
        assert_eq!(ports, [9090, 9000]);
        let vm1 = &grpc.endpoints[0];
        assert_eq!(vm1.entry.kind, Kind::WorkloadEntry);
        assert_eq!(vm1.entry.namespace, "vms");
        assert_eq!(vm1.weight, 3);
        assert_eq!(vm1.labels.get("version").map(String::as_str), Some("v1"));
        assert_eq!(
            vm1.identity("cluster.local").map(|id| id.to_string()),
            Some("spiffe://cluster.local/ns/vms/sa/vm-sa".to_string())
        );
        assert_eq!(grpc.endpoints[1].identity("cluster.local"), None);
    }

    #[test]
    fn inline_endpoints_and_dns_hosts() {
        let yaml = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.internal, db2.internal]
  resolution: DNS
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
  endpoints:
  - {address: db-a.internal, ports: {tcp-pg: 6432}, serviceAccount: pg}
  - {address: db-b.internal, weight: 0}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com, '*.wild.example.com']
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS, targetPort: 8443}]
";
        let services = service_endpoints(&resources(yaml));
        assert_eq!(services.len(), 4);
        for db in &services[..2] {
            let got: Vec<(&str, u32, u32)> = db
                .endpoints
                .iter()
                .map(|e| (e.address.as_str(), e.port, e.weight))
                .collect();
            assert_eq!(
                got,
                [("db-a.internal", 6432, 1), ("db-b.internal", 5432, 1)]
            );
            assert_eq!(db.endpoints[0].entry.kind, Kind::ServiceEntry);
            assert_eq!(db.endpoints[0].entry.name, "db");
            assert_eq!(db.endpoints[0].service_account.as_deref(), Some("pg"));
        }
        let api = &services[2];
        let got: Vec<(&str, u32)> = api
            .endpoints
            .iter()
            .map(|e| (e.address.as_str(), e.port))
            .collect();
        assert_eq!(got, [("api.example.com", 8443)], "the host is its endpoint");
        assert!(
            services[3].endpoints.is_empty(),
            "a wildcard resolves nothing"
        );
    }

    #[test]
    fn static_without_endpoints_has_none_and_later_definitions_win() {
        let yaml = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a}
spec:
  hosts: [a.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http}]
  endpoints: [{address: 1.1.1.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a}
spec:
  hosts: [a.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http}]
";
        let services = service_endpoints(&resources(yaml));
        assert_eq!(services.len(), 1);
        assert!(services[0].endpoints.is_empty());
    }
}
