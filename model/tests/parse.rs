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

/// A "billion laughs" body: ten anchors, each a list of ten aliases of the
/// one before, and then aliases of the last until the body is 1 MiB.
fn alias_bomb() -> String {
    let mut text = String::from("apiVersion: networking.istio.io/v1\nkind: VirtualService\n");
    text.push_str("metadata: {name: bomb}\nspec:\n  a0: &a0 [\"lol\"]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "  a{i}: &a{i} [{}]\n",
            vec![format!("*a{p}"); 10].join(",")
        ));
    }
    text.push_str("  hosts:\n");
    while text.len() < 1024 * 1024 {
        text.push_str("  - *a9\n");
    }
    text
}

#[test]
fn alias_bomb_is_refused_before_it_expands() {
    let text = alias_bomb();
    let started = std::time::Instant::now();
    let parsed = parse_documents("bomb.yaml", &text);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(500),
        "took {took:?}"
    );
    // Expanded, it would be gigabytes; refused, the process stays small.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0);
        assert!(peak_kib < 256 * 1024, "peak resident {peak_kib} KiB");
    }
    assert!(parsed.resources.is_empty());
    assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.resource, "bomb.yaml");
    assert!(d.message.contains("document 1"), "{}", d.message);
    assert!(d.message.contains("`&a0` at line 5"), "{}", d.message);
    assert!(
        d.message
            .contains("expand the alias; anchors and aliases are not accepted"),
        "{}",
        d.message
    );
}

#[test]
fn an_alias_is_refused_and_earlier_documents_kept() {
    let text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b}\nspec: {host: *h}\n";
    let parsed = parse_documents("f.yaml", text);
    assert_eq!(parsed.resources.len(), 1);
    assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
    let m = &parsed.diagnostics[0].message;
    assert!(m.contains("document 2 has an alias `*h` at line 9"), "{m}");
}

#[test]
fn a_star_in_a_value_is_not_an_alias() {
    let text = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec:\n  rules:\n  - to:\n    - operation: {paths: [\"/api/*\"], hosts: ['*']}\n";
    let parsed = parse_documents("f.yaml", text);
    assert_eq!(parsed.resources.len(), 1, "{:?}", parsed.diagnostics);
}

#[test]
fn too_many_documents_are_refused() {
    let one = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a}\n";
    let text = vec![one; loupe_model::MAX_DOCUMENTS + 1].join("---\n");
    let parsed = parse_documents("many.yaml", &text);
    assert_eq!(parsed.resources.len(), loupe_model::MAX_DOCUMENTS);
    let last = parsed.diagnostics.last().expect("a diagnostic");
    assert_eq!(last.severity, Severity::Error);
    assert!(
        last.message.contains("more than 1000 documents"),
        "{}",
        last.message
    );
}

#[test]
fn too_large_an_input_is_refused() {
    let text = format!("# {}\n", "x".repeat(loupe_model::MAX_INPUT_BYTES));
    let parsed = parse_documents("big.yaml", &text);
    assert!(parsed.resources.is_empty());
    assert_eq!(parsed.diagnostics.len(), 1);
    assert!(parsed.diagnostics[0].message.contains("at most 4 MiB"));
}

/// The event pass in front of serde_yaml_ng must not refuse real manifests:
/// every YAML file the repository ships reads without a YAML error.
#[test]
fn the_guard_admits_every_manifest_in_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = ["deploy/demo", "model/tests/data", "cli/tests/corpus/authz"];
    let mut files = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let parsed = parse_documents("f.yaml", &text);
                for d in &parsed.diagnostics {
                    assert!(
                        !d.message.contains("YAML") && !d.message.contains("anchor"),
                        "{}: {}",
                        path.display(),
                        d.message
                    );
                }
                files += 1;
            }
        }
    }
    assert!(files >= 20, "{files} files");
}
