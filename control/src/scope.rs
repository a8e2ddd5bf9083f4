//! Which proxies see which resource, with Istio's visibility rules, so each
//! proxy receives what applies to it rather than the whole mesh's config:
//!
//! - `VirtualService` / `DestinationRule` / `ServiceEntry`: `spec.exportTo` (`*` everyone,
//!   `.` the resource's own namespace, `~` no one, or namespace names);
//!   empty means everyone, Istio's default.
//! - `AuthorizationPolicy` / `PeerAuthentication` / `RequestAuthentication` / `Telemetry`: workloads of their own
//!   namespace only, unless they live in the root namespace (`istio-system`),
//!   where they are mesh-wide.
//! - `Gateway`: everyone (VirtualServices of any namespace bind to it).
//! - `WorkloadEntry`: no proxy. Its endpoints travel as the snapshot's
//!   `services` (as Istio sends them by EDS, not as config), so no proxy
//!   learns the whole inventory.
//!
//! Scopes are computed once per config; filtering a snapshot per proxy is a
//! pass over precomputed scopes.

use loupe_model::Resource;

/// The namespace whose security policies apply mesh-wide (Istio's default).
pub const ROOT_NAMESPACE: &str = loupe_model::authz::DEFAULT_ROOT_NAMESPACE;

/// The namespaces whose proxies see a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Mesh,
    Namespaces(Vec<String>),
}

impl Scope {
    pub fn of(resource: &Resource) -> Scope {
        let own = resource.meta().namespace();
        match resource {
            Resource::Gateway(_) => Scope::Mesh,
            Resource::WorkloadEntry(_) => Scope::Namespaces(Vec::new()),
            Resource::ServiceEntry(se) => export_to(&se.spec.export_to, own),
            Resource::VirtualService(vs) => export_to(&vs.spec.export_to, own),
            Resource::DestinationRule(dr) => export_to(&dr.spec.export_to, own),
            Resource::AuthorizationPolicy(_)
            | Resource::PeerAuthentication(_)
            | Resource::RequestAuthentication(_)
            | Resource::Telemetry(_) => {
                if own == ROOT_NAMESPACE {
                    Scope::Mesh
                } else {
                    Scope::Namespaces(vec![own.to_string()])
                }
            }
        }
    }

    pub fn includes(&self, namespace: &str) -> bool {
        match self {
            Scope::Mesh => true,
            Scope::Namespaces(list) => list.iter().any(|n| n == namespace),
        }
    }
}

fn export_to(list: &[String], own: &str) -> Scope {
    if list.is_empty() || list.iter().any(|n| n == "*") {
        return Scope::Mesh;
    }
    Scope::Namespaces(
        list.iter()
            .filter(|n| n.as_str() != "~")
            .map(|n| if n == "." { own.to_string() } else { n.clone() })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Resource {
        let parsed = loupe_model::parse_documents("test", yaml);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        parsed.resources.into_iter().next().expect("one resource")
    }

    #[test]
    fn export_to_decides_networking_visibility() {
        let vs = |export: &str| {
            parse(&format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r, namespace: shop}}\nspec:\n  hosts: [r]\n{export}  http:\n  - route:\n    - destination: {{host: r}}\n"
            ))
        };
        assert_eq!(Scope::of(&vs("")), Scope::Mesh);
        assert_eq!(Scope::of(&vs("  exportTo: ['*']\n")), Scope::Mesh);
        let local = Scope::of(&vs("  exportTo: ['.', 'web']\n"));
        assert!(local.includes("shop") && local.includes("web") && !local.includes("default"));
        assert!(!Scope::of(&vs("  exportTo: ['~']\n")).includes("shop"));
    }

    #[test]
    fn security_policies_apply_in_their_namespace_or_mesh_wide_from_the_root() {
        let ap = |ns: &str| {
            parse(&format!(
                "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: deny, namespace: {ns}}}\nspec: {{}}\n"
            ))
        };
        let local = Scope::of(&ap("shop"));
        assert!(local.includes("shop") && !local.includes("default"));
        assert_eq!(Scope::of(&ap("istio-system")), Scope::Mesh);
    }
}
