//! Diagnostics for AuthorizationPolicy and PeerAuthentication: each names
//! the resource, the YAML path, and says what is wrong.

mod common;

use loupe_model::analyze::{Severity, analyze};

/// (severity, resource, path) of every diagnostic for `yaml`.
/// Every finding but the "accepted but not yet enforced" notes.
fn findings(yaml: &str) -> Vec<(Severity, String, String)> {
    analyze(&common::resources(yaml))
        .into_iter()
        .filter(|d| !d.message.contains("not yet enforced"))
        .map(|d| {
            assert!(!d.message.is_empty());
            (d.severity, d.resource, d.path)
        })
        .collect()
}

fn has(
    found: &[(Severity, String, String)],
    severity: Severity,
    resource: &str,
    path: &str,
) -> bool {
    found
        .iter()
        .any(|(s, r, p)| *s == severity && r == resource && p == path)
}

#[test]
fn valid_policies_have_no_findings() {
    let found = findings(
        r#"
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  selector:
    matchLabels: {app: httpbin}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sleep"], ipBlocks: ["10.0.0.0/8", "1.2.3.4"]}
    to:
    - operation: {methods: ["GET", "HEAD"], paths: ["/info*"], ports: ["8000"]}
    when:
    - key: request.headers[version]
      values: ["v1"]
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
---
kind: PeerAuthentication
metadata: {name: finance, namespace: foo}
spec:
  selector:
    matchLabels: {app: finance}
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
"#,
    );
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn invalid_http_method_is_an_error_at_its_path() {
    let found = findings(
        "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {methods: [\"GET\", \"get\", \"FETCH\"]}\n",
    );
    let resource = "AuthorizationPolicy/foo/p";
    assert!(
        has(
            &found,
            Severity::Error,
            resource,
            "spec.rules[0].to[0].operation.methods[1]"
        ),
        "{found:?}"
    );
    assert!(
        has(
            &found,
            Severity::Error,
            resource,
            "spec.rules[0].to[0].operation.methods[2]"
        ),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn allow_nothing_is_a_warning() {
    let found = findings("kind: AuthorizationPolicy\nmetadata: {name: allow-nothing}\nspec: {}\n");
    assert_eq!(
        found,
        vec![(
            Severity::Warning,
            "AuthorizationPolicy/default/allow-nothing".into(),
            "spec.rules".into()
        )]
    );
}

#[test]
fn provider_and_custom_go_together() {
    let found = findings(
        "kind: AuthorizationPolicy\nmetadata: {name: a, namespace: foo}\nspec:\n  action: CUSTOM\n  rules: [{}]\n---\nkind: AuthorizationPolicy\nmetadata: {name: b, namespace: foo}\nspec:\n  action: DENY\n  provider: {name: ext}\n  rules: [{}]\n",
    );
    assert!(
        has(
            &found,
            Severity::Error,
            "AuthorizationPolicy/foo/a",
            "spec.provider"
        ),
        "{found:?}"
    );
    assert!(
        has(
            &found,
            Severity::Error,
            "AuthorizationPolicy/foo/b",
            "spec.provider"
        ),
        "{found:?}"
    );
}

#[test]
fn unknown_when_key_and_empty_condition() {
    let found = findings(
        "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - when:\n    - key: request.header[x]\n      values: [\"a\"]\n    - key: source.ip\n",
    );
    let resource = "AuthorizationPolicy/foo/p";
    assert!(
        has(
            &found,
            Severity::Error,
            resource,
            "spec.rules[0].when[0].key"
        ),
        "{found:?}"
    );
    assert!(
        has(&found, Severity::Error, resource, "spec.rules[0].when[1]"),
        "{found:?}"
    );
}

#[test]
fn bad_ip_blocks_ports_and_empty_source() {
    let found = findings(
        "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - from:\n    - source: {ipBlocks: [\"10.0.0.0/40\"]}\n    - {}\n    to:\n    - operation: {ports: [\"http\"]}\n    when:\n    - key: destination.port\n      values: [\"99999\"]\n",
    );
    let resource = "AuthorizationPolicy/foo/p";
    for path in [
        "spec.rules[0].from[0].source.ipBlocks[0]",
        "spec.rules[0].from[1].source",
        "spec.rules[0].to[0].operation.ports[0]",
        "spec.rules[0].when[0].values[0]",
    ] {
        assert!(
            has(&found, Severity::Error, resource, path),
            "{path}: {found:?}"
        );
    }
}

#[test]
fn misplaced_wildcard_is_a_warning() {
    let found = findings(
        "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation: {paths: [\"/api/*/users\"]}\n",
    );
    assert_eq!(
        found,
        vec![(
            Severity::Warning,
            "AuthorizationPolicy/foo/p".into(),
            "spec.rules[0].to[0].operation.paths[0]".into()
        )]
    );
}

#[test]
fn port_level_mtls_needs_a_selector() {
    let found = findings(
        "kind: PeerAuthentication\nmetadata: {name: default, namespace: foo}\nspec:\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n",
    );
    assert_eq!(
        found,
        vec![(
            Severity::Error,
            "PeerAuthentication/foo/default".into(),
            "spec.portLevelMtls".into()
        )]
    );
}

#[test]
fn two_namespace_wide_peer_authentications_warn() {
    let found = findings(
        "kind: PeerAuthentication\nmetadata: {name: a, namespace: foo}\nspec:\n  mtls: {mode: STRICT}\n---\nkind: PeerAuthentication\nmetadata: {name: b, namespace: foo}\nspec:\n  mtls: {mode: DISABLE}\n",
    );
    assert_eq!(
        found,
        vec![(
            Severity::Warning,
            "PeerAuthentication/foo/b".into(),
            "spec.selector".into()
        )]
    );
}

#[test]
fn selector_and_target_ref_are_exclusive() {
    let found = findings(
        "kind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  selector:\n    matchLabels: {app: x}\n  targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\n  rules: [{}]\n",
    );
    assert!(
        has(
            &found,
            Severity::Error,
            "AuthorizationPolicy/foo/p",
            "spec.selector"
        ),
        "{found:?}"
    );
}

const STRICT_DEFAULT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec:\n  mtls: {mode: STRICT}\n";

#[test]
fn destination_rule_disable_against_strict_is_an_error() {
    let yaml = format!(
        "{STRICT_DEFAULT}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews, namespace: default}}\nspec:\n  host: reviews\n  trafficPolicy:\n    tls: {{mode: DISABLE}}\n"
    );
    let found = findings(&yaml);
    assert_eq!(
        found,
        vec![(
            Severity::Error,
            "DestinationRule/default/reviews".into(),
            "spec.trafficPolicy.tls.mode".into()
        )]
    );
    let message = &analyze(&common::resources(&yaml))[0].message;
    assert!(
        message.contains("PeerAuthentication default/default"),
        "{message}"
    );
    assert!(message.contains("ISTIO_MUTUAL"), "{message}");
}

#[test]
fn destination_rule_istio_mutual_against_disable_is_an_error() {
    let yaml = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ratings-plain, namespace: prod}\nspec:\n  selector:\n    matchLabels: {app: ratings}\n  mtls: {mode: DISABLE}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ratings, namespace: default}\nspec:\n  host: ratings.prod.svc.cluster.local\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 9080}\n      tls: {mode: ISTIO_MUTUAL}\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n      tls: {mode: ISTIO_MUTUAL}\n";
    let found = findings(yaml);
    let resource = "DestinationRule/default/ratings";
    assert!(
        has(
            &found,
            Severity::Error,
            resource,
            "spec.trafficPolicy.portLevelSettings[0].tls.mode"
        ),
        "{found:?}"
    );
    assert!(
        has(
            &found,
            Severity::Error,
            resource,
            "spec.subsets[0].trafficPolicy.tls.mode"
        ),
        "{found:?}"
    );
}

#[test]
fn consistent_tls_has_no_finding() {
    // ISTIO_MUTUAL against STRICT; DISABLE for a host outside the mesh; a
    // DISABLE on the port that portLevelMtls exempts.
    let yaml = format!(
        "{STRICT_DEFAULT}---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: legacy, namespace: default}}\nspec:\n  selector:\n    matchLabels: {{app: legacy}}\n  portLevelMtls:\n    8080: {{mode: DISABLE}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews, namespace: default}}\nspec:\n  host: reviews\n  trafficPolicy:\n    tls: {{mode: ISTIO_MUTUAL}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: external, namespace: default}}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    tls: {{mode: DISABLE}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: legacy, namespace: default}}\nspec:\n  host: legacy\n  trafficPolicy:\n    portLevelSettings:\n    - port: {{number: 8080}}\n      tls: {{mode: DISABLE}}\n"
    );
    let found = findings(&yaml);
    assert!(found.is_empty(), "{found:?}");
}
