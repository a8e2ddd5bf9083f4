//! RequestAuthentication: Istio's examples parse clean and print back,
//! each problem istiod's validation (or a careful reviewer) finds gives its
//! diagnostic at its path, and the rules a workload enforces.

use std::collections::BTreeMap;

use loupe_model::analyze::{Diagnostic, Severity};
use loupe_model::request_auth::jwt_rules_for;
use loupe_model::{Kind, Resource, analyze, parse_documents, to_yaml};

const EXAMPLES: &str = r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "issuer-foo"
    jwksUri: https://example.com/.well-known/jwks.json
    audiences: [bookstore_android.apps.example.com, bookstore_web.apps.example.com]
    fromHeaders:
    - name: x-jwt-assertion
      prefix: "Bearer "
    fromParams: [my_token]
    fromCookies: [session]
    outputPayloadToHeader: x-jwt-payload
    forwardOriginalToken: true
    outputClaimToHeaders:
    - header: x-jwt-claim-sub
      claim: sub
    - header: x-jwt-claim-nested
      claim: nested.key.group
    timeout: 10s
---
apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata:
  name: jwt-example
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwks: '{"keys": [{"kty": "RSA", "kid": "test-key", "e": "AQAB", "n": "rXhLm3bQ0Fz2pY8cV1kT7eWjN5gHsD4oUaC9iMqP6tR"}]}'
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: gateway
  namespace: foo
spec:
  targetRefs:
  - kind: Gateway
    group: gateway.networking.k8s.io
    name: edge
  jwtRules:
  - issuer: https://accounts.google.com
"#;

/// Every diagnostic of parsing and analyzing `text`.
fn diagnose(text: &str) -> Vec<Diagnostic> {
    let parsed = parse_documents("case.yaml", text);
    let mut all = parsed.diagnostics;
    all.extend(analyze(&parsed.resources));
    all
}

#[test]
fn enforced_fields_get_no_not_enforced_warning() {
    // The proxies validate tokens (401 for a bad one) and feed
    // request.auth.* to authorization: nothing here is "not yet enforced".
    let parsed = parse_documents("case.yaml", EXAMPLES);
    let found = analyze(&parsed.resources);
    let stated: Vec<_> = found
        .iter()
        .filter(|d| d.severity == Severity::Warning && d.message.contains("not yet enforced"))
        .collect();
    assert!(stated.is_empty(), "{stated:#?}");
}

#[test]
fn istio_examples_parse_clean_and_print_back() {
    let found = diagnose(EXAMPLES);
    assert!(found.is_empty(), "{found:#?}");
    let parsed = parse_documents("ra.yaml", EXAMPLES);
    assert!(
        parsed
            .resources
            .iter()
            .all(|r| r.kind() == Kind::RequestAuthentication)
    );
    let Resource::RequestAuthentication(ra) = &parsed.resources[0] else {
        panic!("not a RequestAuthentication");
    };
    let rule = &ra.spec.jwt_rules[0];
    assert_eq!(rule.from_headers[0].prefix.as_deref(), Some("Bearer "));
    assert_eq!(rule.output_claim_to_headers[1].claim, "nested.key.group");
    assert!(rule.forward_original_token);
    let printed = to_yaml(&parsed.resources);
    assert!(printed.contains("apiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication"));
    let again = parse_documents("printed.yaml", &printed);
    assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
    assert_eq!(again.resources, parsed.resources);
    for s in ["ra", "RequestAuthentication", "requestauthentications"] {
        assert_eq!(Kind::parse(s), Some(Kind::RequestAuthentication), "{s}");
    }
}

#[test]
fn unknown_fields_are_warnings() {
    let found = diagnose(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: r}\nspec:\n  jwtRules:\n  - {issuer: a, jwks_uri: 'https://x.example/jwks'}\n",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(found[0].path, "spec.jwtRules[0].jwks_uri");
}

#[test]
fn each_problem_gives_its_diagnostic() {
    use Severity::{Error, Warning};
    let ra = |spec: &str| {
        format!(
            "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: r, namespace: foo}}\nspec:\n{spec}"
        )
    };
    let rule = |fields: &str| {
        ra(&format!(
            "  jwtRules:\n  - issuer: https://issuer.example\n{fields}"
        ))
    };
    // (config, severity, path, words the message must contain)
    let cases: Vec<(String, Severity, &str, &str)> = vec![
        (
            ra("  jwtRules:\n  - jwksUri: https://a.example/jwks\n"),
            Error,
            "spec.jwtRules[0].issuer",
            "no issuer",
        ),
        (
            ra("  selector: {matchLabels: {app: a}}\n"),
            Warning,
            "spec.jwtRules",
            "no jwtRules",
        ),
        (
            ra(
                "  selector: {matchLabels: {app: a}}\n  targetRef: {kind: Gateway, name: edge}\n  jwtRules: [{issuer: a}]\n",
            ),
            Error,
            "spec.selector",
            "mutually exclusive",
        ),
        (
            ra("  selector: {matchLabels: {app: '*'}}\n  jwtRules: [{issuer: a}]\n"),
            Error,
            "spec.selector.matchLabels.app",
            "wildcards",
        ),
        (
            ra("  jwtRules:\n  - issuer: a\n  - issuer: b\n  - issuer: a\n"),
            Warning,
            "spec.jwtRules[2].issuer",
            "spec.jwtRules[0]",
        ),
        (
            rule("    jwksUri: www.example.com/jwks\n"),
            Error,
            "spec.jwtRules[0].jwksUri",
            "no scheme",
        ),
        (
            rule("    jwksUri: ftp://example.com/jwks\n"),
            Error,
            "spec.jwtRules[0].jwksUri",
            "http or https",
        ),
        (
            rule("    jwksUri: 'https://example.com:99999/jwks'\n"),
            Error,
            "spec.jwtRules[0].jwksUri",
            "host and port",
        ),
        (
            rule("    jwks: '{\"keys\": ['\n"),
            Error,
            "spec.jwtRules[0].jwks",
            "not JSON",
        ),
        (
            rule("    jwks: '{\"keys\": [{\"n\": \"x\"}]}'\n"),
            Error,
            "spec.jwtRules[0].jwks",
            "kty",
        ),
        (
            rule(
                "    jwks: '{\"keys\": [{\"kty\": \"RSA\"}]}'\n    jwksUri: https://a.example/jwks\n",
            ),
            Warning,
            "spec.jwtRules[0].jwksUri",
            "ignored",
        ),
        (
            rule("    audiences: ['']\n"),
            Error,
            "spec.jwtRules[0].audiences[0]",
            "empty audience",
        ),
        (
            rule("    fromHeaders: [{name: 'x jwt'}]\n"),
            Error,
            "spec.jwtRules[0].fromHeaders[0].name",
            "header name",
        ),
        (
            rule("    fromHeaders: [{prefix: 'Bearer '}]\n"),
            Error,
            "spec.jwtRules[0].fromHeaders[0].name",
            "header name",
        ),
        (
            rule("    fromParams: ['']\n"),
            Error,
            "spec.jwtRules[0].fromParams[0]",
            "parameter",
        ),
        (
            rule("    fromCookies: ['a;b']\n"),
            Error,
            "spec.jwtRules[0].fromCookies[0]",
            "cookie",
        ),
        (
            rule("    outputPayloadToHeader: ':authority'\n"),
            Error,
            "spec.jwtRules[0].outputPayloadToHeader",
            "header name",
        ),
        (
            rule("    outputClaimToHeaders: [{header: 'x-sub:', claim: sub}]\n"),
            Error,
            "spec.jwtRules[0].outputClaimToHeaders[0].header",
            "header name",
        ),
        (
            rule("    outputClaimToHeaders: [{header: x-sub}]\n"),
            Error,
            "spec.jwtRules[0].outputClaimToHeaders[0].claim",
            "no claim",
        ),
        (
            rule("    timeout: 5 seconds\n"),
            Error,
            "spec.jwtRules[0].timeout",
            "invalid duration",
        ),
        (
            rule("    timeout: 0s\n"),
            Error,
            "spec.jwtRules[0].timeout",
            "1ms",
        ),
    ];
    for (config, severity, path, words) in cases {
        let found = diagnose(&config);
        let hit = found
            .iter()
            .find(|d| d.resource == "RequestAuthentication/foo/r" && d.path == path);
        match hit {
            Some(d) => {
                assert_eq!(d.severity, severity, "{config}\n{d:?}");
                assert!(
                    d.message.contains(words),
                    "{config}\nmissing {words:?}: {d:?}"
                );
            }
            None => panic!("{config}\nexpected {severity:?} at {path}, got {found:#?}"),
        }
        assert_eq!(
            found.len(),
            1,
            "{config}\nexactly one diagnostic: {found:#?}"
        );
    }
}

#[test]
fn a_workload_enforces_root_namespace_and_own_rules() {
    let resources = parse_documents("ra.yaml", EXAMPLES).resources;
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let issuers = |ns: &str, l: &BTreeMap<String, String>| -> Vec<String> {
        jwt_rules_for(&resources, "istio-system", ns, l)
            .into_iter()
            .map(|r| r.issuer.clone())
            .collect()
    };
    assert_eq!(
        issuers("foo", &labels(&[("app", "httpbin")])),
        ["issuer-foo"]
    );
    assert!(issuers("foo", &labels(&[("app", "sleep")])).is_empty());
    // The root namespace's selector picks ingress gateways of any namespace.
    assert_eq!(
        issuers("istio-ingress", &labels(&[("istio", "ingressgateway")])),
        ["testing@secure.istio.io"]
    );
    assert_eq!(
        issuers(
            "foo",
            &labels(&[("gateway.networking.k8s.io/gateway-name", "edge")])
        ),
        ["https://accounts.google.com"]
    );
}
