//! The registry of cluster mode: Kubernetes Services, EndpointSlices and
//! Pods in Istio's shapes, as Istio's own Kubernetes registry models them
//! (a ServiceEntry per Service, a workload per Pod), for the control plane's
//! declarations ([`loupe_control::snapshot::Publisher::set_platform`]).
//!
//! - Each **Service** is a ServiceEntry: host `NAME.NS.svc.cluster.local`,
//!   its cluster IPs as addresses, its ports with the protocol of their
//!   `appProtocol` (else the proxy reads the port name, as Istio does).
//!   ExternalName Services are DNS ServiceEntries of their external name.
//! - Its **endpoints** are the ready addresses of its EndpointSlices
//!   (`conditions.ready`, absent meaning ready, as the API documents it),
//!   each on the slice's port of the same name (so named target ports work).
//! - An endpoint whose **Pod** has the injected sidecar (Istio's
//!   `sidecar.istio.io/status` annotation) is that pod's WorkloadEntry
//!   (address, labels, service account): its proxy authenticates as the pod
//!   (see [`crate::token_review`]), and it is an endpoint while that proxy is
//!   connected and the slice says ready. The ServiceEntry selects it by the
//!   label [`ENDPOINT_LABEL_PREFIX`]`SERVICE`, which the translation sets on
//!   exactly the pods its slices list as ready. Every injected pod has a
//!   WorkloadEntry (a pod not ready yet still connects to get its config).
//! - Any other endpoint (a pod without the sidecar, an address with no pod)
//!   is an inline endpoint: always reachable, in plaintext.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use loupe_k8s::inject::STATUS_ANNOTATION;
use loupe_model::Resource;
use loupe_model::meta::ObjectMeta;
use loupe_model::networking::{
    LabelSelector, Location, Resolution, ServiceEntry, ServiceEntrySpec, ServicePort,
    WorkloadEntry, WorkloadEntrySpec,
};

/// The label (`endpoints.loupe.io/SERVICE: ready`) by which a Service's
/// ServiceEntry selects the WorkloadEntries of its ready pods.
pub const ENDPOINT_LABEL_PREFIX: &str = "endpoints.loupe.io/";
const READY: &str = "ready";
/// The label EndpointSlices carry with their Service's name.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// The WorkloadEntries and ServiceEntries of the cluster's Services, their
/// EndpointSlices and their Pods (see the module comment).
pub fn platform_resources(
    services: &[Service],
    slices: &[EndpointSlice],
    pods: &[Pod],
) -> Vec<Resource> {
    let mut workloads: BTreeMap<(String, String), WorkloadEntry> = pods
        .iter()
        .filter_map(|pod| Some((key_of(&pod.metadata)?, workload_entry(pod)?)))
        .collect();
    let pods_by_key: HashMap<(String, String), &Pod> = pods
        .iter()
        .filter_map(|pod| Some((key_of(&pod.metadata)?, pod)))
        .collect();
    let mut out = Vec::with_capacity(services.len() + workloads.len());
    for service in services {
        let Some((namespace, name)) = key_of(&service.metadata) else {
            continue;
        };
        let spec = service.spec.clone().unwrap_or_default();
        let selector_label = format!("{ENDPOINT_LABEL_PREFIX}{name}");
        let mut entry = ServiceEntrySpec {
            hosts: vec![format!("{name}.{namespace}.{CLUSTER_DOMAIN}")],
            addresses: spec
                .cluster_ips
                .clone()
                .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
                .unwrap_or_default()
                .into_iter()
                .filter(|ip| !ip.is_empty() && ip != "None")
                .collect(),
            ports: service_ports(&spec),
            location: Some(Location::MeshInternal),
            resolution: Some(Resolution::Static),
            ..Default::default()
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            entry.resolution = Some(Resolution::Dns);
            entry.location = Some(Location::MeshExternal);
            if let Some(external) = spec.external_name.filter(|n| !n.is_empty()) {
                entry.endpoints.push(WorkloadEntrySpec {
                    address: external,
                    ..Default::default()
                });
            }
            out.push(service_entry(&namespace, &name, entry));
            continue;
        }
        let mut selects_pods = false;
        for slice in slices.iter().filter(|s| {
            s.metadata.namespace.as_deref() == Some(namespace.as_str())
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    == Some(&name)
        }) {
            let ports: BTreeMap<String, u32> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p.name.clone().unwrap_or_default(),
                        u32::try_from(p.port?).ok()?,
                    ))
                })
                .collect();
            for endpoint in &slice.endpoints {
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !ready {
                    continue;
                }
                let pod_key = endpoint
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| {
                        Some((
                            r.namespace.clone().unwrap_or_else(|| namespace.clone()),
                            r.name.clone()?,
                        ))
                    });
                if let Some(we) = pod_key.as_ref().and_then(|k| workloads.get_mut(k)) {
                    we.spec
                        .labels
                        .insert(selector_label.clone(), READY.to_string());
                    for (port_name, port) in &ports {
                        we.spec.ports.entry(port_name.clone()).or_insert(*port);
                    }
                    selects_pods = true;
                    continue;
                }
                let pod = pod_key.as_ref().and_then(|k| pods_by_key.get(k));
                for address in &endpoint.addresses {
                    entry.endpoints.push(WorkloadEntrySpec {
                        address: address.clone(),
                        ports: ports.clone(),
                        labels: pod
                            .and_then(|p| p.metadata.labels.clone())
                            .unwrap_or_default(),
                        service_account: pod.map(|p| service_account(p)),
                        ..Default::default()
                    });
                }
            }
        }
        if selects_pods {
            entry.workload_selector = Some(LabelSelector {
                labels: BTreeMap::from([(selector_label, READY.to_string())]),
            });
        }
        out.push(service_entry(&namespace, &name, entry));
    }
    out.extend(workloads.into_values().map(Resource::WorkloadEntry));
    out
}

/// `(namespace, name)` of an object that has both.
fn key_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<(String, String)> {
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

/// The WorkloadEntry of a pod with the injected sidecar and an IP that is
/// neither finished nor being deleted.
fn workload_entry(pod: &Pod) -> Option<WorkloadEntry> {
    let injected = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(STATUS_ANNOTATION));
    let status = pod.status.as_ref()?;
    let finished = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    if !injected || finished || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let address = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
    Some(WorkloadEntry {
        metadata: ObjectMeta {
            name: pod.metadata.name.clone()?,
            namespace: pod.metadata.namespace.clone(),
            ..Default::default()
        },
        spec: WorkloadEntrySpec {
            address,
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            service_account: Some(service_account(pod)),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The pod's service account (`default` when it names none, as Kubernetes does).
pub fn service_account(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|sa| !sa.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

fn service_entry(namespace: &str, name: &str, spec: ServiceEntrySpec) -> Resource {
    Resource::ServiceEntry(ServiceEntry {
        metadata: ObjectMeta {
            name: name.to_string(),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        spec,
        ..Default::default()
    })
}

/// The Service's ports, each with the protocol of its `appProtocol` (empty
/// when it has none: the proxy then reads the port's name, as Istio does).
fn service_ports(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> Vec<ServicePort> {
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let number = u32::try_from(p.port).ok()?;
            let target_port = match &p.target_port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                    u32::try_from(*n).ok()
                }
                _ => None,
            };
            Some(ServicePort {
                number,
                protocol: p
                    .app_protocol
                    .as_deref()
                    .map(app_protocol)
                    .unwrap_or_default(),
                name: p.name.clone().unwrap_or_default(),
                target_port,
            })
        })
        .collect()
}

/// Istio's protocol for a port's `appProtocol`.
fn app_protocol(value: &str) -> String {
    match value.to_ascii_lowercase().as_str() {
        "kubernetes.io/h2c" | "http2" => "HTTP2".into(),
        "kubernetes.io/ws" | "kubernetes.io/wss" => "HTTP".into(),
        "grpc-web" => "GRPC-WEB".into(),
        other => match other {
            "http" | "https" | "grpc" | "tcp" | "tls" | "mongo" | "redis" | "mysql" | "udp" => {
                other.to_ascii_uppercase()
            }
            _ => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("a Kubernetes object")
    }

    fn pod(name: &str, ip: &str, injected: bool, sa: &str) -> Pod {
        let annotations = if injected {
            serde_json::json!({ STATUS_ANNOTATION: "{\"containers\":[\"loupe-proxy\"]}" })
        } else {
            serde_json::json!({})
        };
        from_json(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                "labels": {"app": "reviews", "version": "v1"}, "annotations": annotations},
            "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "reviews"}]},
            "status": {"phase": "Running", "podIP": ip}
        }))
    }

    fn fixtures() -> (Vec<Service>, Vec<EndpointSlice>, Vec<Pod>) {
        let service: Service = from_json(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "reviews", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "selector": {"app": "reviews"},
                "ports": [{"name": "http", "port": 9080, "targetPort": "web", "protocol": "TCP"}]}
        }));
        let slice: EndpointSlice = from_json(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "reviews-abcde", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "reviews"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.5"], "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "reviews-v1-a"}},
                {"addresses": ["10.244.0.6"], "conditions": {"ready": false},
                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "reviews-v1-b"}},
                {"addresses": ["10.244.0.7"],
                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "reviews-v1-c"}}
            ]
        }));
        let pods = vec![
            pod("reviews-v1-a", "10.244.0.5", true, "bookinfo-reviews"),
            pod("reviews-v1-b", "10.244.0.6", true, "bookinfo-reviews"),
            pod("reviews-v1-c", "10.244.0.7", false, "bookinfo-reviews"),
        ];
        (vec![service], vec![slice], pods)
    }

    #[test]
    fn services_pods_and_slices_become_istio_entries() {
        let (services, slices, pods) = fixtures();
        let resources = platform_resources(&services, &slices, &pods);
        let se = resources
            .iter()
            .find_map(|r| match r {
                Resource::ServiceEntry(se) => Some(se),
                _ => None,
            })
            .expect("a ServiceEntry");
        assert_eq!(se.spec.hosts, ["reviews.default.svc.cluster.local"]);
        assert_eq!(se.spec.addresses, ["10.96.0.10"]);
        assert_eq!(se.spec.ports[0].number, 9080);
        // Not ready (b) is left out; the pod without a sidecar (c) is inline.
        assert_eq!(se.spec.endpoints.len(), 1);
        assert_eq!(se.spec.endpoints[0].address, "10.244.0.7");
        assert_eq!(se.spec.endpoints[0].ports["http"], 8080);
        assert_eq!(
            se.spec.endpoints[0].service_account.as_deref(),
            Some("bookinfo-reviews")
        );
        let selector = se.spec.workload_selector.as_ref().expect("selects pods");
        let entries: Vec<&WorkloadEntry> = resources
            .iter()
            .filter_map(|r| match r {
                Resource::WorkloadEntry(we) => Some(we),
                _ => None,
            })
            .collect();
        // Both injected pods have an entry (b connects before it is ready)...
        assert_eq!(entries.len(), 2);
        let a = entries
            .iter()
            .find(|we| we.metadata.name == "reviews-v1-a")
            .unwrap();
        let b = entries
            .iter()
            .find(|we| we.metadata.name == "reviews-v1-b")
            .unwrap();
        // ...but only the ready one is selected, on the slice's target port.
        assert!(selector.matches(&a.spec.labels));
        assert!(!selector.matches(&b.spec.labels));
        assert_eq!(a.spec.ports["http"], 8080);
        assert_eq!(a.spec.address, "10.244.0.5");
        assert_eq!(a.spec.service_account.as_deref(), Some("bookinfo-reviews"));

        let endpoints = loupe_model::registry::service_endpoints(&resources);
        let mut addresses: Vec<String> = endpoints
            .iter()
            .flat_map(|s| {
                s.endpoints
                    .iter()
                    .map(|e| format!("{}:{}", e.address, e.port))
            })
            .collect();
        addresses.sort();
        assert_eq!(addresses, ["10.244.0.5:8080", "10.244.0.7:8080"]);
    }

    #[test]
    fn app_protocol_names_istio_protocols() {
        assert_eq!(app_protocol("kubernetes.io/h2c"), "HTTP2");
        assert_eq!(app_protocol("grpc"), "GRPC");
        assert_eq!(app_protocol("example.com/custom"), "");
    }
}
