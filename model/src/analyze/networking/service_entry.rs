//! ServiceEntry and WorkloadEntry checks, as istiod's validation webhook
//! makes them: hosts, addresses, ports and protocols, how the resolution
//! mode constrains the endpoints, and each endpoint's address, ports and
//! service account. Across resources: a `workloadSelector` that selects no
//! WorkloadEntry gives the host no endpoints (warning: pods may match in a
//! cluster, and the model has no pods).

use std::collections::HashMap;
use std::net::IpAddr;

use super::{Context, Sink};
use crate::analyze::{Diagnostic, Severity};
use crate::authz::Cidr;
use crate::host::{is_dns_label, is_fqdn, is_wildcard_domain};
use crate::networking::{
    LabelSelector, Resolution, ServiceEntry, ServicePort, WorkloadEntry, WorkloadEntrySpec,
};
use crate::resource::Resource;

/// The protocols Istio parses for a service port (any case); empty means
/// the proxy sniffs.
const PROTOCOLS: &[&str] = &[
    "HTTP",
    "HTTPS",
    "HTTP2",
    "HTTP_PROXY",
    "GRPC",
    "GRPC-WEB",
    "TCP",
    "TLS",
    "UDP",
    "MONGO",
    "REDIS",
    "MYSQL",
];

const UNIX_PREFIX: &str = "unix://";

/// WorkloadEntry fields of multi-network and locality-aware load balancing.
fn workload_fields_not_enforced(spec: &WorkloadEntrySpec, path: &str, sink: &mut Sink<'_>) {
    if spec.network.is_some() {
        sink.not_enforced(
            format!("{path}.network"),
            "`network` (multi-network meshes)",
        );
    }
    if spec.locality.is_some() {
        sink.not_enforced(
            format!("{path}.locality"),
            "`locality` (locality-aware load balancing)",
        );
    }
    if spec.weight.is_some_and(|w| w > 1) {
        sink.not_enforced(
            format!("{path}.weight"),
            "`weight` (endpoints are picked evenly)",
        );
    }
}

pub(super) fn check(se: &ServiceEntry, sink: &mut Sink<'_>) {
    let spec = &se.spec;
    let resolution = spec.resolution();
    // Single virtual IPs route captured traffic (`loupe-proxy --capture`);
    // a CIDR block is not matched by address.
    for (i, address) in spec.addresses.iter().enumerate() {
        if address.contains('/') {
            sink.not_enforced(
                format!("spec.addresses[{i}]"),
                "a CIDR block in `addresses` (captured traffic is matched by single virtual IPs)",
            );
        }
    }
    if !spec.subject_alt_names.is_empty() {
        sink.not_enforced(
            "spec.subjectAltNames",
            "`subjectAltNames` (secure naming checks the endpoint's registered SPIFFE ID)",
        );
    }
    for (i, e) in spec.endpoints.iter().enumerate() {
        workload_fields_not_enforced(e, &format!("spec.endpoints[{i}]"), sink);
    }
    if spec.hosts.is_empty() {
        sink.error(
            "spec.hosts",
            "the ServiceEntry has no hosts; list the DNS names it adds to the mesh",
        );
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        let path = format!("spec.hosts[{i}]");
        if host == "*" {
            sink.error(
                path,
                "`*` alone is not a valid ServiceEntry host; name the domain, e.g. `*.example.com`",
            );
        } else if !is_wildcard_domain(host) {
            sink.error(
                path,
                format!(
                    "{host:?} is not a DNS name (a wildcard is only allowed as the first label, \
                     e.g. `*.example.com`)"
                ),
            );
        } else if matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
            && spec.endpoints.is_empty()
            && !is_fqdn(host)
        {
            let why = if spec.workload_selector.is_some() {
                "a workloadSelector gives no endpoint addresses to resolve, so the host itself is"
            } else {
                "without endpoints the proxy resolves the host itself, so it is"
            };
            sink.error(
                path,
                format!(
                    "{host:?} cannot be resolved with resolution {}: {why} resolved and must be a \
                     fully qualified name. Use a concrete host, list endpoints, or use \
                     resolution NONE for wildcard hosts",
                    resolution.as_str()
                ),
            );
        }
    }

    let mut cidr = false;
    for (i, address) in spec.addresses.iter().enumerate() {
        cidr |= address.contains('/');
        if !Cidr::is_valid(address) {
            sink.error(
                format!("spec.addresses[{i}]"),
                format!(
                    "{address:?} is not an IP address or CIDR block, e.g. 240.0.0.1 or 10.0.0.0/16"
                ),
            );
        }
    }
    if cidr && !matches!(resolution, Resolution::None | Resolution::Static) {
        sink.error(
            "spec.addresses",
            format!(
                "CIDR blocks in addresses are only allowed with resolution NONE or STATIC, not {}",
                resolution.as_str()
            ),
        );
    }

    ports(sink, &spec.ports);

    let selector = spec.workload_selector.as_ref();
    if let Some(selector) = selector {
        if !spec.endpoints.is_empty() {
            sink.error(
                "spec.workloadSelector",
                "workloadSelector and endpoints are mutually exclusive: select WorkloadEntries \
                 by label, or list the endpoints inline, not both",
            );
        }
        labels(sink, "spec.workloadSelector.labels", selector);
    }
    match resolution {
        Resolution::None => {
            if !spec.endpoints.is_empty() {
                sink.error(
                    "spec.endpoints",
                    "resolution NONE forwards to the address the caller dialled, so endpoints \
                     are not allowed: remove them, or use resolution STATIC or DNS",
                );
            }
            if selector.is_some() {
                sink.warning(
                    "spec.workloadSelector",
                    "resolution NONE ignores the workloadSelector (traffic goes to the address \
                     the caller dialled): use resolution STATIC to send it to the selected workloads",
                );
            }
        }
        Resolution::Static if spec.endpoints.is_empty() && selector.is_none() => sink.warning(
            "spec.endpoints",
            "resolution STATIC without endpoints or a workloadSelector gives the hosts no \
             endpoints, so requests to them fail (503): list endpoints with IP addresses",
        ),
        Resolution::DnsRoundRobin if spec.endpoints.len() > 1 => sink.error(
            "spec.endpoints",
            "resolution DNS_ROUND_ROBIN allows at most one endpoint; use resolution DNS for \
             several",
        ),
        _ => {}
    }
    let port_names: Vec<&str> = spec.ports.iter().map(|p| p.name.as_str()).collect();
    for (j, endpoint) in spec.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{j}]");
        endpoint_address(sink, &path, endpoint, resolution);
        for name in endpoint.ports.keys() {
            if !port_names.contains(&name.as_str()) {
                sink.error(
                    format!("{path}.ports.{name}"),
                    format!(
                        "the ServiceEntry has no port named {name:?} (its ports: {}); endpoint \
                         ports are keyed by the service port's name",
                        port_names.join(", ")
                    ),
                );
            }
        }
        workload(sink, &path, endpoint);
    }

    if resolution != Resolution::None && spec.hosts.len() > 1 {
        let opaque = spec.ports.iter().find(|p| !routes_by_name(&p.protocol));
        if let Some(port) = opaque {
            sink.error(
                "spec.hosts",
                format!(
                    "several hosts share port {} ({}), which is neither HTTP nor TLS, so the \
                     proxy cannot tell the hosts apart: use one ServiceEntry per host, or \
                     resolution NONE",
                    port.number,
                    if port.protocol.is_empty() {
                        "no protocol"
                    } else {
                        &port.protocol
                    }
                ),
            );
        }
    }
    export_to(sink, &spec.export_to);
}

/// HTTP carries the host in `:authority`, TLS in SNI; other protocols carry
/// no name.
fn routes_by_name(protocol: &str) -> bool {
    matches!(
        protocol.to_ascii_uppercase().as_str(),
        "HTTP" | "HTTP2" | "HTTP_PROXY" | "GRPC" | "GRPC-WEB" | "HTTPS" | "TLS"
    )
}

fn ports(sink: &mut Sink<'_>, ports: &[ServicePort]) {
    let mut numbers: HashMap<u32, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, port) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        if !(1..=65535).contains(&port.number) {
            sink.error(
                format!("{path}.number"),
                format!("port {} is outside 1–65535", port.number),
            );
        } else if let Some(first) = numbers.insert(port.number, i) {
            sink.error(
                format!("{path}.number"),
                format!(
                    "port {} is also spec.ports[{first}]; each port number may appear once",
                    port.number
                ),
            );
            numbers.insert(port.number, first);
        }
        if let Some(target) = port.target_port
            && !(1..=65535).contains(&target)
        {
            sink.error(
                format!("{path}.targetPort"),
                format!("target port {target} is outside 1–65535"),
            );
        }
        if !is_dns_label(&port.name) {
            sink.error(
                format!("{path}.name"),
                format!(
                    "port name {:?} is not a DNS label; name the port with letters, digits and \
                     `-`, e.g. `http` or `tcp-db`",
                    port.name
                ),
            );
        } else if let Some(first) = names.insert(port.name.as_str(), i) {
            sink.error(
                format!("{path}.name"),
                format!(
                    "port name {:?} is also used by spec.ports[{first}]; port names must be unique",
                    port.name
                ),
            );
            names.insert(port.name.as_str(), first);
        }
        if !port.protocol.is_empty()
            && !PROTOCOLS.contains(&port.protocol.to_ascii_uppercase().as_str())
        {
            sink.error(
                format!("{path}.protocol"),
                format!(
                    "protocol {:?} is not one of {} (or empty to let the proxy detect it)",
                    port.protocol,
                    PROTOCOLS.join(", ")
                ),
            );
        }
    }
}

/// What a ServiceEntry's resolution requires of an inline endpoint's address.
fn endpoint_address(
    sink: &mut Sink<'_>,
    path: &str,
    endpoint: &WorkloadEntrySpec,
    resolution: Resolution,
) {
    let address = endpoint.address.as_str();
    if address.is_empty() {
        // Reached through its network's gateway: nothing to check here.
        if endpoint.network.is_none() {
            sink.error(
                format!("{path}.address"),
                "the endpoint has no address; set an IP (or a DNS name with resolution DNS), or \
                 `network` for a workload behind another network's gateway",
            );
        }
        return;
    }
    let ip = address.parse::<IpAddr>().is_ok();
    match resolution {
        Resolution::Static if !ip && !address.starts_with(UNIX_PREFIX) => sink.error(
            format!("{path}.address"),
            format!(
                "{address:?} is not an IP address: resolution STATIC uses addresses as they are \
                 (or unix:///path); use resolution DNS for DNS names"
            ),
        ),
        Resolution::Dns | Resolution::DnsRoundRobin if !ip && !is_fqdn(address) => sink.error(
            format!("{path}.address"),
            format!("{address:?} is neither an IP address nor a DNS name"),
        ),
        _ => {}
    }
}

pub(super) fn check_workload_entry(we: &WorkloadEntry, sink: &mut Sink<'_>) {
    let spec = &we.spec;
    workload_fields_not_enforced(spec, "spec", sink);
    let address = spec.address.as_str();
    if address.is_empty() {
        if spec.network.is_none() {
            sink.error(
                "spec.address",
                "the WorkloadEntry has no address; set the workload's IP (or DNS name), or \
                 `network` for a workload behind another network's gateway",
            );
        }
    } else if !address.starts_with(UNIX_PREFIX)
        && address.parse::<IpAddr>().is_err()
        && !is_fqdn(address)
    {
        sink.error(
            "spec.address",
            format!("{address:?} is neither an IP address, a DNS name nor unix:///path"),
        );
    }
    workload(sink, "spec", spec);
}

/// What a WorkloadEntry and an inline endpoint share: ports, labels,
/// service account.
fn workload(sink: &mut Sink<'_>, path: &str, spec: &WorkloadEntrySpec) {
    for (name, port) in &spec.ports {
        if !is_dns_label(name) {
            sink.error(
                format!("{path}.ports.{name}"),
                format!("port name {name:?} is not a DNS label (letters, digits and `-`)"),
            );
        }
        if !(1..=65535).contains(port) {
            sink.error(
                format!("{path}.ports.{name}"),
                format!("port {port} is outside 1–65535"),
            );
        }
    }
    for (k, v) in &spec.labels {
        if k.is_empty() || k.contains('*') || v.contains('*') {
            sink.error(
                format!("{path}.labels.{k}"),
                format!("{k:?}: {v:?} is not a valid label (no empty keys, no wildcards)"),
            );
        }
    }
    if let Some(sa) = &spec.service_account
        && (!is_dns_label(sa) || sa.bytes().any(|b| b.is_ascii_uppercase()))
    {
        sink.error(
            format!("{path}.serviceAccount"),
            format!(
                "{sa:?} is not a service account name: lower-case letters, digits and `-`, at \
                 most 63 characters"
            ),
        );
    }
}

fn labels(sink: &mut Sink<'_>, path: &str, selector: &LabelSelector) {
    for (k, v) in &selector.labels {
        if k.is_empty() {
            sink.error(
                path,
                format!("empty label key (value {v:?}): remove it or name the label"),
            );
        } else if k.contains('*') || v.contains('*') {
            sink.error(
                format!("{path}.{k}"),
                format!(
                    "wildcards are not supported in selectors ({k}={v}): use exact label values"
                ),
            );
        }
    }
}

/// `.`, `*`, `~` or namespace names; `~` (no one) alone.
fn export_to(sink: &mut Sink<'_>, export_to: &[String]) {
    for (i, entry) in export_to.iter().enumerate() {
        let path = format!("spec.exportTo[{i}]");
        if !matches!(entry.as_str(), "." | "*" | "~") && !is_dns_label(entry) {
            sink.error(
                path,
                format!("{entry:?} is not `.`, `*`, `~` or a namespace name"),
            );
        } else if entry == "~" && export_to.len() > 1 {
            sink.error(
                path,
                "`~` (visible to no one) cannot be combined with other exportTo entries",
            );
        } else if export_to[..i].contains(entry) {
            sink.error(path, format!("{entry:?} is listed twice"));
        }
    }
}

/// A `workloadSelector` that selects no WorkloadEntry of its namespace.
pub(super) fn check_selectors(
    resources: &[Resource],
    ctx: &Context<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let live = |i: &usize| !ctx.superseded.contains(i);
    let entries: Vec<&WorkloadEntry> = resources
        .iter()
        .enumerate()
        .filter(|(i, _)| live(i))
        .filter_map(|(_, r)| match r {
            Resource::WorkloadEntry(we) => Some(we),
            _ => None,
        })
        .collect();
    for (i, r) in resources.iter().enumerate() {
        let Resource::ServiceEntry(se) = r else {
            continue;
        };
        let Some(selector) = &se.spec.workload_selector else {
            continue;
        };
        // Both set, or a wildcard label, is already an error; NONE ignores
        // the selector.
        let invalid = selector
            .labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.contains('*') || v.contains('*'));
        if !live(&i)
            || invalid
            || !se.spec.endpoints.is_empty()
            || se.spec.resolution() == Resolution::None
        {
            continue;
        }
        let namespace = se.metadata.namespace();
        let selects = entries
            .iter()
            .any(|we| we.metadata.namespace() == namespace && selector.matches(&we.spec.labels));
        if !selects {
            let wanted: Vec<String> = selector
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push(Diagnostic {
                severity: Severity::Warning,
                resource: r.key().to_string(),
                path: "spec.workloadSelector.labels".into(),
                message: format!(
                    "the workloadSelector ({}) selects no WorkloadEntry in namespace {namespace}, \
                     so its hosts have no endpoints unless pods carry these labels: check the \
                     labels, or the namespace of the WorkloadEntries",
                    wanted.join(", ")
                ),
            });
        }
    }
}
