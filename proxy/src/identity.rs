//! Who this proxy speaks for: the workload's name, namespace, service account
//! and labels, and the Istio identities derived from them once at start-up
//! (principal, canonical service and revision, app and version).

use std::collections::BTreeMap;
use std::sync::Arc;

/// The trust domain of SPIFFE principals (`cluster.local/ns/NS/sa/SA`).
pub const TRUST_DOMAIN: &str = "cluster.local";

/// Istio's word for a value it cannot know (`source_workload="unknown"`).
pub const UNKNOWN: &str = "unknown";

/// One workload's identity, as metrics, spans and routing name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Workload {
    pub name: Arc<str>,
    pub namespace: Arc<str>,
    pub service_account: Arc<str>,
    pub labels: BTreeMap<String, String>,
}

impl Workload {
    pub fn new(
        name: &str,
        namespace: &str,
        service_account: &str,
        labels: BTreeMap<String, String>,
    ) -> Workload {
        Workload {
            name: name.into(),
            namespace: namespace.into(),
            service_account: service_account.into(),
            labels,
        }
    }

    /// The workload Istio reports when it knows nothing about a peer.
    pub fn unknown() -> Workload {
        Workload::new(UNKNOWN, UNKNOWN, "", BTreeMap::new())
    }

    /// `cluster.local/ns/NS/sa/SA`, the SPIFFE identity without its scheme;
    /// `unknown` without a service account.
    pub fn principal(&self) -> String {
        if self.service_account.is_empty() {
            return UNKNOWN.to_string();
        }
        format!(
            "{TRUST_DOMAIN}/ns/{}/sa/{}",
            self.namespace, self.service_account
        )
    }

    /// The `app` label (or `app.kubernetes.io/name`), `unknown` without one.
    pub fn app(&self) -> &str {
        self.label("app")
            .or_else(|| self.label("app.kubernetes.io/name"))
            .unwrap_or(UNKNOWN)
    }

    /// The `version` label (or `app.kubernetes.io/version`), `unknown` without one.
    pub fn version(&self) -> &str {
        self.label("version")
            .or_else(|| self.label("app.kubernetes.io/version"))
            .unwrap_or(UNKNOWN)
    }

    /// Istio's canonical service: the `service.istio.io/canonical-name`
    /// label, else the app label, else the workload name.
    pub fn canonical_service(&self) -> &str {
        self.label("service.istio.io/canonical-name")
            .or_else(|| self.label("app.kubernetes.io/name"))
            .or_else(|| self.label("app"))
            .unwrap_or(&self.name)
    }

    /// Istio's canonical revision: the `service.istio.io/canonical-revision`
    /// label, else the version label, else `latest`.
    pub fn canonical_revision(&self) -> &str {
        self.label("service.istio.io/canonical-revision")
            .or_else(|| self.label("app.kubernetes.io/version"))
            .or_else(|| self.label("version"))
            .unwrap_or("latest")
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Turns a service name as an app writes it (`reviews`, `reviews.default`,
/// `reviews.default.svc`, FQDN) into its FQDN, resolving short names in
/// `namespace` as Kubernetes DNS search paths do (the model's rule).
pub fn service_fqdn(name: &str, namespace: &str) -> String {
    loupe_model::host::fqdn(name, namespace, |_| true)
}

pub use loupe_model::host::split_port as split_authority;

/// The service's short name and namespace from its FQDN
/// (`reviews.default.svc.cluster.local` → `reviews`, `default`).
pub fn service_name_namespace(fqdn: &str) -> (&str, &str) {
    let mut parts = fqdn.splitn(3, '.');
    let name = parts.next().unwrap_or(fqdn);
    let namespace = parts.next().unwrap_or(UNKNOWN);
    (name, namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_follow_istio_defaults() {
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "reviews".to_string());
        let w = Workload::new("reviews-v1", "default", "bookinfo-reviews", labels);
        assert_eq!(
            w.principal(),
            "cluster.local/ns/default/sa/bookinfo-reviews"
        );
        assert_eq!(w.app(), "reviews");
        assert_eq!(w.version(), "unknown");
        assert_eq!(w.canonical_service(), "reviews");
        assert_eq!(w.canonical_revision(), "latest");
        assert_eq!(
            service_name_namespace("reviews.default.svc.cluster.local"),
            ("reviews", "default")
        );
    }
}
