//! RequestAuthentication selection: which JWT rules a workload enforces,
//! as Istio picks them. A policy applies to a workload when
//!
//! 1. it lives in the workload's namespace or in the root namespace
//!    (mesh-wide), and
//! 2. it has no `selector` (namespace- or mesh-wide), or its selector's
//!    labels are among the workload's, or — with `targetRef(s)`, which
//!    attach to gateways rather than sidecars — the workload is the
//!    referenced Gateway (labelled `gateway.networking.k8s.io/gateway-name`).
//!
//! Every applying policy's rules are enforced together: a request with a
//! token no rule accepts is rejected (401), a request without a token passes
//! unauthenticated, for AuthorizationPolicy to decide
//! (`requestPrincipals: ["*"]` requires one). Verifying tokens and fetching
//! JWKS is the proxy's job; this only says which rules it verifies with.

use std::collections::{BTreeMap, HashMap};

use crate::authz::GATEWAY_NAME_LABEL;
use crate::resource::Resource;
use crate::security::{JwtRule, RequestAuthentication};

/// The JWT rules of every RequestAuthentication that applies to the
/// workload (`namespace`, `labels`): the root namespace's policies, then
/// the workload namespace's, each in input order. A resource defined twice
/// counts once, its last definition.
pub fn jwt_rules_for<'r>(
    resources: &'r [Resource],
    root_namespace: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<&'r JwtRule> {
    let policies = policies_for(resources, root_namespace, namespace, labels);
    let (root, own): (Vec<_>, Vec<_>) = policies
        .into_iter()
        .partition(|p| p.metadata.namespace() == root_namespace && namespace != root_namespace);
    root.into_iter()
        .chain(own)
        .flat_map(|p| &p.spec.jwt_rules)
        .collect()
}

/// The RequestAuthentications that apply to the workload, in input order.
pub fn policies_for<'r>(
    resources: &'r [Resource],
    root_namespace: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<&'r RequestAuthentication> {
    let mut last = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        last.insert(r.key(), i);
    }
    resources
        .iter()
        .enumerate()
        .filter(|(i, r)| last.get(&r.key()) == Some(i))
        .filter_map(|(_, r)| match r {
            Resource::RequestAuthentication(p) => Some(p),
            _ => None,
        })
        .filter(|p| {
            let ns = p.metadata.namespace();
            (ns == namespace || ns == root_namespace) && selects(p, labels)
        })
        .collect()
}

fn selects(p: &RequestAuthentication, labels: &BTreeMap<String, String>) -> bool {
    let spec = &p.spec;
    let refs: Vec<_> = spec.target_ref.iter().chain(&spec.target_refs).collect();
    if !refs.is_empty() {
        return labels.get(GATEWAY_NAME_LABEL).is_some_and(|gateway| {
            refs.iter()
                .any(|r| r.kind == "Gateway" && r.name == *gateway)
        });
    }
    spec.selector.as_ref().is_none_or(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_documents;

    const POLICIES: &str = "
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: mesh, namespace: istio-system}
spec:
  jwtRules: [{issuer: mesh-issuer}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: mesh-httpbin, namespace: istio-system}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules: [{issuer: mesh-httpbin-issuer}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: foo-wide, namespace: foo}
spec:
  jwtRules: [{issuer: foo-issuer}, {issuer: foo-second}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules: [{issuer: httpbin-issuer}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: other, namespace: bar}
spec:
  jwtRules: [{issuer: bar-issuer}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ingress, namespace: foo}
spec:
  targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: edge}
  jwtRules: [{issuer: edge-issuer}]
";

    fn issuers(namespace: &str, labels: &[(&str, &str)]) -> Vec<String> {
        let resources = parse_documents("p.yaml", POLICIES).resources;
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        jwt_rules_for(&resources, "istio-system", namespace, &labels)
            .into_iter()
            .map(|r| r.issuer.clone())
            .collect()
    }

    #[test]
    fn root_then_namespace_then_selected() {
        assert_eq!(
            issuers("foo", &[("app", "httpbin")]),
            [
                "mesh-issuer",
                "mesh-httpbin-issuer",
                "foo-issuer",
                "foo-second",
                "httpbin-issuer"
            ]
        );
        assert_eq!(
            issuers("foo", &[("app", "sleep")]),
            ["mesh-issuer", "foo-issuer", "foo-second"]
        );
        assert_eq!(issuers("baz", &[]), ["mesh-issuer"]);
    }

    #[test]
    fn target_refs_attach_to_their_gateway_only() {
        let gateway = [("gateway.networking.k8s.io/gateway-name", "edge")];
        assert!(issuers("foo", &gateway).contains(&"edge-issuer".to_string()));
        assert!(!issuers("foo", &[("app", "edge")]).contains(&"edge-issuer".to_string()));
    }
}
