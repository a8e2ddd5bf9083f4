//! The networking analyzer, table-driven: each case is a small config and the
//! one diagnostic Istio's semantics call for (severity, resource, path).

use loupe_model::analyze::{Diagnostic, Severity, has_errors};
use loupe_model::{analyze, parse_documents};

const DR_REVIEWS: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
";

fn vs(http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n{http}"
    )
}

fn diagnose(text: &str) -> Vec<Diagnostic> {
    let parsed = parse_documents("case.yaml", text);
    let mut all = parsed.diagnostics;
    all.extend(analyze(&parsed.resources));
    all
}

#[test]
fn istio_reference_examples_are_clean() {
    let examples = [
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bookinfo.yaml"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/routing.yaml"),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/destination_rules.yaml"
        ),
    ];
    for path in examples {
        let text = std::fs::read_to_string(path).expect("fixture");
        // Clean as Istio sees them; Loupe only adds what its proxies do not
        // enforce yet (stated, never silent).
        let found: Vec<_> = diagnose(&text)
            .into_iter()
            .filter(|d| !d.message.contains("not yet enforced"))
            .collect();
        assert!(found.is_empty(), "{path}: {found:#?}");
    }
}

#[test]
fn each_problem_gives_its_diagnostic() {
    use Severity::{Error, Warning};
    let route = |weights: &[&str]| {
        let mut s = String::from("  - route:\n");
        for (i, w) in weights.iter().enumerate() {
            s.push_str(&format!(
                "    - destination: {{host: reviews, subset: v{}}}\n",
                i % 2 + 1
            ));
            if !w.is_empty() {
                s.push_str(&format!("      weight: {w}\n"));
            }
        }
        s
    };
    // (config, severity, resource, path, words the message must contain)
    let cases: Vec<(String, Severity, &str, &str, &str)> = vec![
        (
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [testing.com]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: testing}\nspec:\n  hosts: [wrong.com]\n  gateways: [istio-system/gw]\n  http: [{route: [{destination: {host: ratings}}]}]\n".to_string(),
            Warning,
            "VirtualService/default/testing",
            "spec.hosts[0]",
            "istio-system/gw",
        ),
        (
            vs("  - match: [{uri: {regex: \"/API/.*\"}, ignoreUriCase: true}]\n    route: [{destination: {host: reviews}}]\n"),
            Warning,
            "VirtualService/default/reviews",
            "spec.http[0].match[0].ignoreUriCase",
            "(?i)",
        ),
        (
            vs("  - match: [{queryParams: {v: {prefix: \"1\"}}}]\n    route: [{destination: {host: reviews}}]\n"),
            Warning,
            "VirtualService/default/reviews",
            "spec.http[0].match[0].queryParams.v.prefix",
            "prefix",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: star}\nspec:\n  hosts: [\"*\"]\n  http: [{route: [{destination: {host: a}}]}]\n".to_string(),
            Error,
            "VirtualService/default/star",
            "spec.hosts[0]",
            "mesh",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: dup}\nspec:\n  hosts: [\"*.com\", \"*.foo.com\"]\n  http: [{route: [{destination: {host: a}}]}]\n".to_string(),
            Error,
            "VirtualService/default/dup",
            "spec.hosts[1]",
            "duplicates",
        ),
        (
            format!("{DR_REVIEWS}---\n{}", vs(&route(&["50", "40"]))),
            Warning,
            "VirtualService/default/reviews",
            "spec.http[0].route",
            "sum to 90",
        ),
        (
            format!("{DR_REVIEWS}---\n{}", vs(&route(&["0", "0"]))),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].route",
            "weight 0",
        ),
        (
            format!("{DR_REVIEWS}---\n{}", vs(&route(&["", ""]))),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].route",
            "weight 0",
        ),
        (
            format!("{DR_REVIEWS}---\n{}", vs(&route(&["110", "-10"]))),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].route[1].weight",
            "negative",
        ),
        (
            format!("{DR_REVIEWS}---\n{}", vs("  - route:\n    - destination: {host: reviews, subset: v3}\n")),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].route[0].destination.subset",
            "v3",
        ),
        (
            vs("  - route:\n    - destination: {host: reviews, subset: v1}\n"),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].route[0].destination.subset",
            "no DestinationRule",
        ),
        (
            vs("  - route:\n    - destination: {host: reviews}\n    timeout: 1.5 s\n"),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].timeout",
            "duration",
        ),
        (
            vs("  - route:\n    - destination: {host: reviews}\n    retries: {attempts: 3, perTryTimeout: 2}\n"),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].retries.perTryTimeout",
            "duration",
        ),
        (
            vs("  - route:\n    - destination: {host: reviews}\n    retries: {attempts: 2, retryOn: '5xx,gateway_error,503'}\n"),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].retries.retryOn",
            "gateway_error",
        ),
        (
            vs("  - match:\n    - uri: {regex: '/(a'}\n    route:\n    - destination: {host: reviews}\n"),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].match[0].uri.regex",
            "RE2",
        ),
        (
            vs("  - match:\n    - headers: {x-id: {regex: '(?<=a)b'}}\n    route:\n    - destination: {host: reviews}\n"),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].match[0].headers.x-id.regex",
            "RE2",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: shop}\nspec:\n  hosts: [r]\n  gateways: [edge]\n  http:\n  - route:\n    - destination: {host: r}\n".to_string(),
            Error,
            "VirtualService/shop/r",
            "spec.gateways[0]",
            "shop/edge",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d\n  subsets:\n  - {name: v1}\n  - {name: v1}\n".to_string(),
            Error,
            "DestinationRule/default/d",
            "spec.subsets[1].name",
            "duplicate",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d\n  trafficPolicy:\n    connectionPool:\n      tcp: {connectTimeout: soon}\n".to_string(),
            Error,
            "DestinationRule/default/d",
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            "duration",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d\n  trafficPolicy:\n    loadBalancer: {simple: LEAST_conn}\n".to_string(),
            Error,
            "DestinationRule/default/d",
            "spec.trafficPolicy.loadBalancer.simple",
            "case-sensitive",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d\n  subsets:\n  - name: v1\n    trafficPolicy:\n      tls: {mode: Mutual}\n".to_string(),
            Error,
            "DestinationRule/default/d",
            "spec.subsets[0].trafficPolicy.tls.mode",
            "ISTIO_MUTUAL",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d.example.com\n  subsets:\n  - name: v1\n    trafficPolicy:\n      tls: {mode: SIMPLE}\n".to_string(),
            Warning,
            "DestinationRule/default/d",
            "spec.subsets[0].trafficPolicy.tls.mode",
            "per host",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, subjectAltNames: ['spiffe://cluster.local/ns/a/sa/b']}\n".to_string(),
            Error,
            "DestinationRule/default/d",
            "spec.trafficPolicy.tls.subjectAltNames[0]",
            "DNS",
        ),
        (
            vs("  - route:\n    - destination: {host: reviews}\n    fault:\n      abort: {httpStatus: 503, percentage: {value: 150}}\n"),
            Error,
            "VirtualService/default/reviews",
            "spec.http[0].fault.abort.percentage.value",
            "0–100",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n".to_string(),
            Error,
            "Gateway/default/g",
            "spec.servers[0].tls",
            "HTTPS",
        ),
    ];
    for (text, severity, resource, path, words) in cases {
        // The problem's own diagnostic; "not yet enforced" notes aside.
        let found: Vec<_> = diagnose(&text)
            .into_iter()
            .filter(|d| !d.message.contains("not yet enforced"))
            .collect();
        let hit = found.iter().find(|d| d.path == path);
        let Some(d) = hit else {
            panic!("no diagnostic at {path} for\n{text}\nfound: {found:#?}");
        };
        assert_eq!(d.severity, severity, "{d:?}");
        assert_eq!(d.resource, resource, "{d:?}");
        assert!(
            d.message.contains(words),
            "{words:?} not in {:?}",
            d.message
        );
        assert_eq!(
            found.len(),
            1,
            "exactly one diagnostic expected for\n{text}\n{found:#?}"
        );
    }
}

#[test]
fn two_virtual_services_for_one_host_on_the_mesh() {
    let text = format!(
        "{}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews-b}}\nspec:\n  hosts: [reviews.default.svc.cluster.local]\n  http:\n  - route:\n    - destination: {{host: reviews}}\n",
        vs("  - route:\n    - destination: {host: reviews}\n")
    );
    let found = diagnose(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|d| d.severity == Severity::Error && d.path == "spec.hosts[0]")
    );
    assert!(found[0].message.contains("default/reviews-b"));
}

#[test]
fn gateway_and_mesh_virtual_services_for_one_host_do_not_conflict() {
    let text = format!(
        "{}---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw}}\nspec:\n  servers:\n  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: ['*']\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: edge}}\nspec:\n  hosts: [reviews]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {{host: reviews}}\n",
        vs("  - route:\n    - destination: {host: reviews}\n")
    );
    assert_eq!(diagnose(&text), []);
}

#[test]
fn two_destination_rules_for_one_host() {
    let text = format!(
        "{DR_REVIEWS}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews-tls}}\nspec:\n  host: reviews.default.svc.cluster.local\n  trafficPolicy:\n    tls: {{mode: ISTIO_MUTUAL}}\n"
    );
    let found = diagnose(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|d| d.path == "spec.host" && d.severity == Severity::Error)
    );
}

#[test]
fn unknown_destination_hosts_are_not_errors() {
    let found = diagnose(&vs(
        "  - route:\n    - destination: {host: nowhere.example.org}\n",
    ));
    assert_eq!(found, []);
}

#[test]
fn cross_file_references_resolve() {
    let files = [
        DR_REVIEWS.to_string(),
        vs("  - route:\n    - destination: {host: reviews, subset: v2}\n"),
    ];
    let mut resources = Vec::new();
    for (i, text) in files.iter().enumerate() {
        resources.extend(parse_documents(&format!("f{i}.yaml"), text).resources);
    }
    assert!(!has_errors(&analyze(&resources)));
}

#[test]
fn the_same_resource_twice_is_a_warning() {
    let text = format!("{DR_REVIEWS}---\n{DR_REVIEWS}");
    let found: Vec<Diagnostic> = diagnose(&text)
        .into_iter()
        .filter(|d| d.path == "metadata.name")
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(found[0].resource, "DestinationRule/default/reviews");
}

/// Two definitions of one VirtualService / DestinationRule (bookinfo's
/// `virtual-service-all-v1.yaml` then `virtual-service-reviews-test-v2.yaml`)
/// are one resource after `kubectl apply`: a warning, never a "two rules for
/// one host" error against itself.
#[test]
fn a_redefined_resource_does_not_conflict_with_itself() {
    let vs = |subset: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{{destination: {{host: reviews, subset: {subset}}}}}]\n"
        )
    };
    let text = format!(
        "{DR_REVIEWS}---\n{DR_REVIEWS}---\n{}---\n{}",
        vs("v1"),
        vs("v2")
    );
    let found = diagnose(&text);
    assert!(!has_errors(&found), "{found:#?}");
    assert_eq!(found.len(), 2, "one redefinition warning each: {found:#?}");
}

#[test]
fn traffic_policy_fields_the_proxies_ignore_are_stated() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
    connectionPool:
      tcp: {maxConnections: 10}
      http: {http1MaxPendingRequests: 5, h2UpgradePolicy: UPGRADE}
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: LEAST_REQUEST}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - headers:
      request: {set: {x-a: b}}
    corsPolicy: {allowOrigins: [{exact: https://a.example}]}
    route:
    - destination: {host: reviews}
  tcp:
  - route:
    - destination: {host: reviews}
";
    let stated: Vec<String> = diagnose(text)
        .into_iter()
        .filter(|d| d.severity == Severity::Warning && d.message.contains("not yet enforced"))
        .map(|d| d.path)
        .collect();
    for path in [
        "spec.trafficPolicy.loadBalancer.consistentHash",
        "spec.trafficPolicy.connectionPool.tcp",
        "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests",
        "spec.trafficPolicy.outlierDetection",
        "spec.trafficPolicy.portLevelSettings",
        "spec.http[0].headers",
        "spec.http[0].corsPolicy",
        "spec.tcp",
    ] {
        assert!(
            stated.iter().any(|p| p == path),
            "{path} not stated: {stated:#?}"
        );
    }
    // What the proxies do enforce gets no such note.
    assert!(
        !stated.iter().any(|p| p.ends_with("h2UpgradePolicy")),
        "{stated:#?}"
    );
}
