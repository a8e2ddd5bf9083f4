//! DestinationRule client TLS against the server side's PeerAuthentication:
//! a DR that sends plaintext (`DISABLE`) to workloads that require mTLS
//! (`STRICT`), or Istio mTLS (`ISTIO_MUTUAL`) to workloads that accept only
//! plaintext (`DISABLE`), breaks every connection (503s).
//!
//! Without a service registry the analyzer assumes Kubernetes' usual
//! layout: `NAME.NS.svc.cluster.local` is served by workloads in `NS`
//! labelled `app: NAME` (plus the subset's labels), on the same port
//! number as the service port.

use std::collections::{BTreeMap, BTreeSet};

use crate::analyze::{Diagnostic, Severity};
use crate::authz::DEFAULT_ROOT_NAMESPACE;
use crate::host::{self, CLUSTER_DOMAIN};
use crate::networking::DestinationRule;
use crate::networking::traffic_policy::{ClientTlsMode, TrafficPolicy};
use crate::peer_auth::{self, MtlsMode};
use crate::resource::Resource;

pub(super) fn check(resources: &[Resource], out: &mut Vec<Diagnostic>) {
    if !resources
        .iter()
        .any(|r| matches!(r, Resource::PeerAuthentication(_)))
    {
        return;
    }
    let namespaces: BTreeSet<&str> = resources.iter().map(|r| r.meta().namespace()).collect();
    for r in resources {
        let Resource::DestinationRule(dr) = r else {
            continue;
        };
        let fqdn = host::fqdn(&dr.spec.host, dr.metadata.namespace(), |n| {
            namespaces.contains(n)
        });
        let Some((service, namespace)) = in_mesh_service(&fqdn) else {
            continue;
        };
        let mut labels = BTreeMap::new();
        if service != "*" {
            labels.insert("app".to_string(), service.to_string());
        }
        let target = Target {
            resource: r.key().to_string(),
            host: &fqdn,
            namespace,
            resources,
        };
        if let Some(tp) = &dr.spec.traffic_policy {
            target.policy(out, "spec.trafficPolicy", tp, &labels);
        }
        subsets(&target, dr, &labels, out);
    }
}

fn subsets(
    target: &Target<'_>,
    dr: &DestinationRule,
    labels: &BTreeMap<String, String>,
    out: &mut Vec<Diagnostic>,
) {
    for (i, subset) in dr.spec.subsets.iter().enumerate() {
        if let Some(tp) = &subset.traffic_policy {
            let mut labels = labels.clone();
            labels.extend(subset.labels.clone());
            target.policy(
                out,
                &format!("spec.subsets[{i}].trafficPolicy"),
                tp,
                &labels,
            );
        }
    }
}

/// `NAME.NS.svc.cluster.local` (or `*.NS.svc.cluster.local`) → (NAME, NS).
fn in_mesh_service(fqdn: &str) -> Option<(&str, &str)> {
    let rest = fqdn.strip_suffix(CLUSTER_DOMAIN)?.strip_suffix('.')?;
    let (name, namespace) = rest.split_once('.')?;
    (!namespace.contains('.') && !namespace.contains('*')).then_some((name, namespace))
}

struct Target<'a> {
    resource: String,
    host: &'a str,
    namespace: &'a str,
    resources: &'a [Resource],
}

impl Target<'_> {
    fn policy(
        &self,
        out: &mut Vec<Diagnostic>,
        path: &str,
        tp: &TrafficPolicy,
        labels: &BTreeMap<String, String>,
    ) {
        if let Some(mode) = tp.tls.as_ref().and_then(|t| t.mode) {
            self.compare(out, &format!("{path}.tls.mode"), mode, labels, None);
        }
        for (i, port_level) in tp.port_level_settings.iter().enumerate() {
            let port = port_level
                .port
                .as_ref()
                .and_then(|p| p.number)
                .and_then(|n| u16::try_from(n).ok());
            if let Some(mode) = port_level.tls.as_ref().and_then(|t| t.mode) {
                let path = format!("{path}.portLevelSettings[{i}].tls.mode");
                self.compare(out, &path, mode, labels, port);
            }
        }
    }

    fn compare(
        &self,
        out: &mut Vec<Diagnostic>,
        path: &str,
        client: ClientTlsMode,
        labels: &BTreeMap<String, String>,
        port: Option<u16>,
    ) {
        // Port 0 never matches a portLevelMtls entry: the workload-wide mode.
        let server = peer_auth::resolve(
            self.resources,
            DEFAULT_ROOT_NAMESPACE,
            self.namespace,
            labels,
            port.unwrap_or(0),
        );
        let Some(policy) = server.policy else {
            return;
        };
        let on_port = port.map(|p| format!(" on port {p}")).unwrap_or_default();
        let message = match (client, server.mode) {
            (ClientTlsMode::Disable, MtlsMode::Strict) => format!(
                "TLS mode DISABLE sends plaintext to {}, but PeerAuthentication {policy} \
                 requires mTLS (STRICT){on_port}: every request will fail. Use ISTIO_MUTUAL \
                 (or remove the tls setting), or relax the PeerAuthentication to PERMISSIVE",
                self.host
            ),
            (ClientTlsMode::IstioMutual, MtlsMode::Disable) => format!(
                "TLS mode ISTIO_MUTUAL sends mTLS to {}, but PeerAuthentication {policy} \
                 disables mTLS (DISABLE){on_port}: every request will fail. Use DISABLE \
                 here, or set the PeerAuthentication to PERMISSIVE or STRICT",
                self.host
            ),
            _ => return,
        };
        out.push(Diagnostic {
            severity: Severity::Error,
            resource: self.resource.clone(),
            path: path.to_string(),
            message,
        });
    }
}
