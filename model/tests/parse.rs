//! Parsing: multi-document YAML and JSON into typed resources, diagnostics
//! for what does not fit, and printing back.

use loupe_model::analyze::Severity;
use loupe_model::{Kind, Resource, parse_documents, to_yaml};

fn bookinfo() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bookinfo.yaml"
    ))
    .expect("fixture")
}

#[test]
fn bookinfo_parses_istio_kinds_and_skips_others() {
    let parsed = parse_documents("bookinfo.yaml", &bookinfo());
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let kinds: Vec<Kind> = parsed.resources.iter().map(Resource::kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::VirtualService,
            Kind::DestinationRule,
            Kind::Gateway,
            Kind::VirtualService
        ]
    );
    let Resource::VirtualService(vs) = &parsed.resources[0] else {
        panic!("not a VS")
    };
    assert_eq!(vs.metadata.namespace(), "default");
    assert_eq!(vs.spec.http[1].route[0].weight, Some(75));
    assert_eq!(vs.spec.http[1].timeout.as_deref(), Some("1.5s"));
    assert_eq!(
        vs.spec.http[0].matches[0].headers["end-user"]
            .exact
            .as_deref(),
        Some("jason")
    );
    let Resource::DestinationRule(dr) = &parsed.resources[1] else {
        panic!("not a DR")
    };
    assert_eq!(dr.api_version, "networking.istio.io/v1beta1");
    assert_eq!(dr.spec.subsets.len(), 3);
    let od = dr
        .spec
        .traffic_policy
        .as_ref()
        .and_then(|t| t.outlier_detection.as_ref());
    assert_eq!(od.and_then(|o| o.consecutive_5xx_errors), Some(7));
}

#[test]
fn print_then_parse_is_identity_and_keeps_api_version() {
    let parsed = parse_documents("bookinfo.yaml", &bookinfo());
    let printed = to_yaml(&parsed.resources);
    assert!(printed.contains("apiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata:"));
    let again = parse_documents("printed.yaml", &printed);
    assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
    assert_eq!(again.resources, parsed.resources);
}

#[test]
fn resource_json_is_the_whole_kubernetes_object() {
    let parsed = parse_documents("bookinfo.yaml", &bookinfo());
    let json = serde_json::to_value(&parsed.resources[1]).expect("serialize");
    assert_eq!(json["apiVersion"], "networking.istio.io/v1beta1");
    assert_eq!(json["kind"], "DestinationRule");
    assert_eq!(json["metadata"]["name"], "reviews");
    assert_eq!(
        json["spec"]["subsets"][1]["trafficPolicy"]["loadBalancer"]["simple"],
        "ROUND_ROBIN"
    );
    let back: Resource = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, parsed.resources[1]);
}

#[test]
fn json_input_parses() {
    let text = r#"{"apiVersion":"networking.istio.io/v1","kind":"VirtualService",
      "metadata":{"name":"r","namespace":"prod"},"spec":{"hosts":["r"],"http":[{"route":[{"destination":{"host":"r"}}]}]}}"#;
    let parsed = parse_documents("r.json", text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(
        parsed.resources[0].key().to_string(),
        "VirtualService/prod/r"
    );
}

#[test]
fn kubectl_list_items_are_read() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: a, uid: x, resourceVersion: \"1\"}\n  spec: {host: a}\n  status: {}\n";
    let parsed = parse_documents("list.yaml", text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(parsed.resources.len(), 1);
}

#[test]
fn kubernetes_gateway_api_gateway_is_skipped() {
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  gatewayClassName: istio\n  listeners: []\n";
    let parsed = parse_documents("g.yaml", text);
    assert!(parsed.resources.is_empty());
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
}

#[test]
fn unknown_fields_are_warnings_with_their_path() {
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      wieght: 10\n";
    let parsed = parse_documents("r.yaml", text);
    assert_eq!(parsed.resources.len(), 1, "the resource is still read");
    assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.resource, "VirtualService/default/r");
    assert_eq!(d.path, "spec.http[0].route[0].wieght");
}

#[test]
fn schema_errors_name_resource_and_path() {
    // Table: (document, expected path, text the message must contain).
    let cases = [
        (
            "kind: DestinationRule\napiVersion: networking.istio.io/v1\nmetadata: {name: d, namespace: ns}\nspec:\n  host: d\n  trafficPolicy:\n    loadBalancer: {simple: round_robin}\n",
            "DestinationRule/ns/d",
            "spec.trafficPolicy.loadBalancer.simple",
            "case-sensitive",
        ),
        (
            "kind: VirtualService\napiVersion: networking.istio.io/v1\nmetadata: {name: v}\nspec:\n  http:\n  - route:\n    - destination: {host: a}\n      weight: heavy\n",
            "VirtualService/default/v",
            "spec.http[0].route[0].weight",
            "line 8",
        ),
        (
            "kind: DestinationRule\napiVersion: networking.istio.io/v1\nmetadata: {name: d}\nspec:\n  host: d\n  trafficPolicy:\n    tls: {mode: istio_mutual}\n",
            "DestinationRule/default/d",
            "spec.trafficPolicy.tls.mode",
            "ISTIO_MUTUAL",
        ),
    ];
    for (text, resource, path, needle) in cases {
        let parsed = parse_documents("f.yaml", text);
        assert!(parsed.resources.is_empty(), "{text}");
        let d = &parsed.diagnostics[0];
        assert_eq!(d.severity, Severity::Error, "{text}");
        assert_eq!(d.resource, resource);
        assert_eq!(d.path, path);
        assert!(d.message.contains(needle), "{}", d.message);
    }
}

#[test]
fn yaml_syntax_error_has_line_and_keeps_earlier_documents() {
    let text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a}\n---\nkind: [\n";
    let parsed = parse_documents("broken.yaml", text);
    assert_eq!(parsed.resources.len(), 1);
    assert_eq!(parsed.diagnostics.len(), 1);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.resource, "broken.yaml");
    assert!(d.message.contains("line 7"), "{}", d.message);
}

#[test]
fn missing_name_is_an_error_naming_the_file() {
    let parsed = parse_documents(
        "x.yaml",
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nspec: {}\n",
    );
    assert!(parsed.resources.is_empty());
    assert_eq!(parsed.diagnostics[0].resource, "x.yaml");
    assert_eq!(parsed.diagnostics[0].path, "metadata.name");
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "---\n---\n",
        "42",
        "- 1\n- [",
        "{{{{",
        "kind: VirtualService\nmetadata: 3\n",
        "\t\tkey: : :",
        "&a [*a]",
    ] {
        let _ = parse_documents("junk", text);
    }
}

#[test]
fn tab_indented_json_parses() {
    let text = "{\n\t\"apiVersion\": \"networking.istio.io/v1\",\n\t\"kind\": \"DestinationRule\",\n\t\"metadata\": {\"name\": \"t\"},\n\t\"spec\": {\"host\": \"t\"}\n}\n";
    let parsed = parse_documents("t.json", text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(parsed.resources.len(), 1);
}
