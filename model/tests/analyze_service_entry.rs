//! ServiceEntry and WorkloadEntry: parsing (Istio's examples, unknown
//! fields, printing back), the checks istiod's validation makes, and the
//! endpoints a host gets.

use loupe_model::analyze::{Diagnostic, Severity};
use loupe_model::registry::service_endpoints;
use loupe_model::{Kind, Resource, analyze, parse_documents, to_yaml};

fn examples() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/service_entries.yaml"
    ))
    .expect("fixture")
}

/// Every diagnostic but the statements of what the proxies do not enforce
/// yet (see `fields_not_enforced_yet_are_stated`).
fn diagnose(text: &str) -> Vec<Diagnostic> {
    let parsed = parse_documents("case.yaml", text);
    let mut all = parsed.diagnostics;
    all.extend(analyze(&parsed.resources));
    all.retain(|d| !d.message.contains("not yet enforced"));
    all
}

#[test]
fn fields_not_enforced_yet_are_stated() {
    let text = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db, namespace: default}\nspec:\n  hosts: [db.example.com]\n  addresses: [10.0.0.5, 10.1.0.0/24]\n  subjectAltNames: ['spiffe://cluster.local/ns/db/sa/db']\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.6, locality: us/east, weight: 3}]\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm, namespace: default}\nspec: {address: 10.0.0.7, network: other}\n";
    let parsed = parse_documents("case.yaml", text);
    let stated: Vec<String> = analyze(&parsed.resources)
        .into_iter()
        .filter(|d| d.severity == Severity::Warning && d.message.contains("not yet enforced"))
        .map(|d| format!("{} {}", d.resource, d.path))
        .collect();
    assert!(
        !stated.iter().any(|s| s.ends_with("spec.addresses[0]")),
        "a single virtual IP is enforced (capture): {stated:#?}"
    );
    for want in [
        "ServiceEntry/default/db spec.addresses[1]",
        "ServiceEntry/default/db spec.subjectAltNames",
        "ServiceEntry/default/db spec.endpoints[0].locality",
        "ServiceEntry/default/db spec.endpoints[0].weight",
        "WorkloadEntry/default/vm spec.network",
    ] {
        assert!(
            stated.iter().any(|s| s == want),
            "{want} missing: {stated:#?}"
        );
    }
}

#[test]
fn istio_examples_parse_clean_and_print_back() {
    let text = examples();
    let found = diagnose(&text);
    assert!(found.is_empty(), "{found:#?}");
    let parsed = parse_documents("service_entries.yaml", &text);
    let kinds: Vec<Kind> = parsed.resources.iter().map(Resource::kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == Kind::ServiceEntry).count(),
        6
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == Kind::WorkloadEntry).count(),
        2
    );
    let printed = to_yaml(&parsed.resources);
    assert!(printed.contains("apiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntry\n"));
    assert!(printed.contains("workloadSelector:\n    labels:\n      app: details-legacy"));
    let again = parse_documents("printed.yaml", &printed);
    assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
    assert_eq!(again.resources, parsed.resources);
}

#[test]
fn unknown_fields_are_warnings_with_their_path() {
    let text = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [a.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http, protocl: HTTP}]
  endpoints: [{address: 1.2.3.4, lables: {a: b}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec: {address: 1.2.3.4, serviceaccount: x}
";
    let parsed = parse_documents("case.yaml", text);
    let found: Vec<(&str, &str)> = parsed
        .diagnostics
        .iter()
        .map(|d| (d.resource.as_str(), d.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("ServiceEntry/default/se", "spec.ports[0].protocl"),
            ("ServiceEntry/default/se", "spec.endpoints[0].lables"),
            ("WorkloadEntry/default/we", "spec.serviceaccount"),
        ]
    );
    assert!(
        parsed
            .diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning)
    );
    assert_eq!(parsed.resources.len(), 2);
}

#[test]
fn enum_values_are_case_sensitive_schema_errors() {
    let text = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec: {hosts: [a.example.com], resolution: dns}
";
    let found = diagnose(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Error);
    assert_eq!(found[0].path, "spec.resolution");
}

#[test]
fn kind_names_and_short_names() {
    for s in ["se", "ServiceEntry", "serviceentries", "SE"] {
        assert_eq!(Kind::parse(s), Some(Kind::ServiceEntry), "{s}");
    }
    for s in ["we", "workloadentry", "WorkloadEntries"] {
        assert_eq!(Kind::parse(s), Some(Kind::WorkloadEntry), "{s}");
    }
    assert_eq!(Kind::ServiceEntry.group(), "networking.istio.io");
    assert!(Kind::WorkloadEntry.versions().contains(&"v1alpha3"));
}

fn se(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: se, namespace: shop}}\nspec:\n{spec}"
    )
}

fn we(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: we, namespace: shop}}\nspec:\n{spec}"
    )
}

/// A WorkloadEntry a `workloadSelector: {labels: {app: a}}` selects.
const VM_A: &str = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm-a, namespace: shop}\nspec: {address: 1.1.1.1, labels: {app: a}}\n";

const HTTP: &str = "  ports: [{number: 80, name: http, protocol: HTTP}]\n";

#[test]
fn each_problem_gives_its_diagnostic() {
    use Severity::{Error, Warning};
    const SE: &str = "ServiceEntry/shop/se";
    const WE: &str = "WorkloadEntry/shop/we";
    // (config, severity, resource, path, words the message must contain)
    let cases: Vec<(String, Severity, &str, &str, &str)> = vec![
        (
            se(&format!("  resolution: DNS\n{HTTP}")),
            Error,
            SE,
            "spec.hosts",
            "no hosts",
        ),
        (
            se(&format!("  hosts: ['*']\n{HTTP}")),
            Error,
            SE,
            "spec.hosts[0]",
            "`*` alone",
        ),
        (
            se(&format!("  hosts: [a.*.com]\n{HTTP}")),
            Error,
            SE,
            "spec.hosts[0]",
            "first label",
        ),
        (
            format!(
                "{}---\n{VM_A}",
                se(&format!(
                    "  hosts: ['*.example.com']\n  resolution: DNS\n  workloadSelector: {{labels: {{app: a}}}}\n{HTTP}"
                ))
            ),
            Error,
            SE,
            "spec.hosts[0]",
            "workloadSelector",
        ),
        (
            se(&format!(
                "  hosts: ['*.example.com']\n  resolution: DNS\n{HTTP}"
            )),
            Error,
            SE,
            "spec.hosts[0]",
            "fully qualified",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n  workloadSelector: {{labels: {{app: a}}}}\n  endpoints: [{{address: 1.1.1.1}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.workloadSelector",
            "mutually exclusive",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n  workloadSelector: {{labels: {{app: '*'}}}}\n{HTTP}"
            )),
            Error,
            SE,
            "spec.workloadSelector.labels.app",
            "wildcards",
        ),
        (
            se("  hosts: [a.example.com]\n  ports: [{number: 0, name: http}]\n"),
            Error,
            SE,
            "spec.ports[0].number",
            "1–65535",
        ),
        (
            se("  hosts: [a.example.com]\n  ports: [{number: 70000, name: http}]\n"),
            Error,
            SE,
            "spec.ports[0].number",
            "1–65535",
        ),
        (
            se(
                "  hosts: [a.example.com]\n  ports: [{number: 80, name: http}, {number: 80, name: web}]\n",
            ),
            Error,
            SE,
            "spec.ports[1].number",
            "spec.ports[0]",
        ),
        (
            se(
                "  hosts: [a.example.com]\n  ports: [{number: 80, name: http}, {number: 81, name: http}]\n",
            ),
            Error,
            SE,
            "spec.ports[1].name",
            "unique",
        ),
        (
            se("  hosts: [a.example.com]\n  ports: [{number: 80, name: http_web}]\n"),
            Error,
            SE,
            "spec.ports[0].name",
            "DNS label",
        ),
        (
            se("  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: QUIC}]\n"),
            Error,
            SE,
            "spec.ports[0].protocol",
            "QUIC",
        ),
        (
            se(
                "  hosts: [a.example.com]\n  ports: [{number: 80, name: http, targetPort: 65536}]\n",
            ),
            Error,
            SE,
            "spec.ports[0].targetPort",
            "1–65535",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  addresses: [10.0.0.300]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.addresses[0]",
            "CIDR",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  addresses: [10.0.0.0/8]\n  resolution: DNS\n{HTTP}"
            )),
            Error,
            SE,
            "spec.addresses",
            "NONE or STATIC",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  endpoints: [{{address: 1.1.1.1}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.endpoints",
            "resolution NONE",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints: [{{address: db.example.com}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.endpoints[0].address",
            "STATIC",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints: [{{labels: {{a: b}}}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.endpoints[0].address",
            "no address",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n{HTTP}"
            )),
            Warning,
            SE,
            "spec.endpoints",
            "503",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: DNS_ROUND_ROBIN\n  endpoints: [{{address: a.b}}, {{address: c.d}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.endpoints",
            "at most one",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: DNS\n  endpoints: [{{address: 'not a name'}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.endpoints[0].address",
            "DNS name",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints: [{{address: 1.1.1.1, ports: {{grpc: 9000}}}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.endpoints[0].ports.grpc",
            "no port named",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints: [{{address: 1.1.1.1, serviceAccount: Bad_SA}}]\n{HTTP}"
            )),
            Error,
            SE,
            "spec.endpoints[0].serviceAccount",
            "service account",
        ),
        (
            se(
                "  hosts: [a.example.com, b.example.com]\n  resolution: DNS\n  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]\n",
            ),
            Error,
            SE,
            "spec.hosts",
            "neither HTTP nor TLS",
        ),
        (
            se(
                "  hosts: [a.example.com]\n  resolution: NONE\n  workloadSelector: {labels: {app: a}}\n  ports: [{number: 80, name: http}]\n",
            ),
            Warning,
            SE,
            "spec.workloadSelector",
            "NONE ignores",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  exportTo: ['~', '.']\n{HTTP}"
            )),
            Error,
            SE,
            "spec.exportTo[0]",
            "`~`",
        ),
        (
            se(&format!(
                "  hosts: [a.example.com]\n  resolution: STATIC\n  workloadSelector: {{labels: {{app: vm}}}}\n{HTTP}"
            )),
            Warning,
            SE,
            "spec.workloadSelector.labels",
            "selects no WorkloadEntry in namespace shop",
        ),
        (
            we("  labels: {app: vm}\n"),
            Error,
            WE,
            "spec.address",
            "no address",
        ),
        (
            we("  address: 'not an address'\n"),
            Error,
            WE,
            "spec.address",
            "neither",
        ),
        (
            we("  address: 10.0.0.1\n  ports: {http: 0}\n"),
            Error,
            WE,
            "spec.ports.http",
            "1–65535",
        ),
        (
            we("  address: 10.0.0.1\n  ports: {http: 65536}\n"),
            Error,
            WE,
            "spec.ports.http",
            "1–65535",
        ),
        (
            we("  address: 10.0.0.1\n  serviceAccount: vm.sa\n"),
            Error,
            WE,
            "spec.serviceAccount",
            "service account",
        ),
    ];
    for (config, severity, resource, path, words) in cases {
        let found = diagnose(&config);
        let hit = found
            .iter()
            .find(|d| d.resource == resource && d.path == path);
        match hit {
            Some(d) => {
                assert_eq!(d.severity, severity, "{config}\n{d:?}");
                assert!(
                    d.message.contains(words),
                    "{config}\nmissing {words:?}: {d:?}"
                );
            }
            None => panic!("{config}\nexpected {severity:?} at {resource} {path}, got {found:#?}"),
        }
        assert_eq!(
            found.len(),
            1,
            "{config}\nexactly one diagnostic: {found:#?}"
        );
    }
}

#[test]
fn good_entries_are_clean() {
    for config in [
        // A WorkloadEntry behind another network's gateway needs no address.
        we("  network: vpc-2\n  labels: {app: vm}\n"),
        we("  address: vm-1.example.com\n  ports: {http: 8080}\n  serviceAccount: vm-sa\n"),
        we("  address: unix:///var/run/app.sock\n"),
        // Several hosts are fine on HTTP and TLS ports, and always with NONE.
        se(
            "  hosts: [a.example.com, b.example.com]\n  resolution: DNS\n  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: http}]\n",
        ),
        se(
            "  hosts: [a.example.com, b.example.com]\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n",
        ),
        se(&format!(
            "  hosts: ['*.example.com']\n  resolution: DNS\n  endpoints: [{{address: proxy.example.com}}]\n{HTTP}"
        )),
        se(&format!(
            "  hosts: [a.example.com]\n  addresses: [240.0.0.1, '2001:db8::/32']\n  resolution: STATIC\n  endpoints: [{{address: '2001:db8::1'}}]\n{HTTP}"
        )),
    ] {
        let found = diagnose(&config);
        assert!(found.is_empty(), "{config}\n{found:#?}");
    }
}

#[test]
fn selected_workload_entries_are_the_hosts_endpoints() {
    let parsed = parse_documents("service_entries.yaml", &examples());
    let services = service_endpoints(&parsed.resources);
    let details = services
        .iter()
        .find(|s| s.host == "details.bookinfo.com")
        .expect("details service");
    let got: Vec<(&str, u32, u32, &str)> = details
        .endpoints
        .iter()
        .map(|e| (e.address.as_str(), e.port, e.weight, e.entry.name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("2.2.2.2", 9080, 1, "details-svc-1"),
            ("3.3.3.3", 8080, 2, "details-svc-2")
        ]
    );
    let dns = services
        .iter()
        .find(|s| s.host == "foo.bar.com")
        .expect("dns service");
    let ports: Vec<u32> = dns.endpoints.iter().map(|e| e.port).collect();
    assert_eq!(ports, [8443, 9443]);
    // Three hosts on one port: three services, each resolving its own host.
    let https: Vec<&str> = services
        .iter()
        .filter(|s| s.service_entry.name == "external-svc-https")
        .flat_map(|s| s.endpoints.iter().map(|e| e.address.as_str()))
        .collect();
    assert_eq!(
        https,
        [
            "api.dropboxapi.com",
            "www.googleapis.com",
            "api.facebook.com"
        ]
    );
}
