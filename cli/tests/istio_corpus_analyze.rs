//! An independent corpus of `istioctl analyze`-style findings, written from
//! istio.io's VirtualService / DestinationRule / Gateway /
//! AuthorizationPolicy / PeerAuthentication reference (field types, enums,
//! validation rules) and issue 2 item 2, run through the built
//! `loupe analyze --output json` exactly as item 6 specifies.
//!
//! Each case lists the findings that must be present (severity, resource as
//! `Kind/namespace/name` or the file name, and a YAML path fragment), the
//! exact number of errors, and the exit code (1 iff any error).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

struct Case {
    name: &'static str,
    yaml: &'static str,
    /// (severity, resource, path fragment; "" for any) that must be reported.
    must: &'static [(&'static str, &'static str, &'static str)],
    /// How many error-severity diagnostics Istio's rules allow. A range where
    /// the issue names the finding but not its severity (two
    /// DestinationRules / VirtualServices for one host, DR TLS vs
    /// PeerAuthentication): istioctl reports some of these as errors, some
    /// as warnings, and either is defensible.
    errors: std::ops::RangeInclusive<usize>,
}

fn temp_file(text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("loupe-corpus-analyze-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!(
        "case-{}.yaml",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn analyze(files: &[PathBuf]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["analyze", "--output", "json"])
        .args(files)
        .output()
        .expect("run loupe");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stdout)
}

const DR_REVIEWS: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
";

trait IntoRange {
    fn into_range(self) -> std::ops::RangeInclusive<usize>;
}
impl IntoRange for usize {
    fn into_range(self) -> std::ops::RangeInclusive<usize> {
        self..=self
    }
}
impl IntoRange for std::ops::RangeInclusive<usize> {
    fn into_range(self) -> std::ops::RangeInclusive<usize> {
        self
    }
}

fn cases() -> Vec<Case> {
    macro_rules! case {
        ($name:expr, $yaml:expr, [$(($s:expr, $r:expr, $p:expr)),* $(,)?], $errors:expr) => {
            Case { name: $name, yaml: $yaml, must: &[$(($s, $r, $p)),*], errors: $errors.into_range() }
        };
    }
    vec![
        case!(
            "bookinfo request routing with its DestinationRule is clean",
            concat!(
                "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
",
                "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"
            ),
            [],
            0
        ),
        case!(
            "YAML syntax error: one error naming the file",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: x\n spec: [\n",
            [("error", "FILE", "")],
            1
        ),
        case!(
            "non-Istio kinds (Service, Deployment) are skipped",
            "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec: {ports: [{port: 9080}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews-v1}\nspec: {replicas: 1, whatever: true}\n",
            [],
            0
        ),
        case!(
            "missing metadata.namespace means default; unknown destination host is not an error",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ext}\nspec:\n  hosts: [nowhere]\n  http:\n  - route: [{destination: {host: not-in-any-registry}}]\n",
            [],
            0
        ),
        case!(
            "unknown field is a warning, not an error",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n    timeOut: 5s\n",
            [("warning", "VirtualService/default/reviews", "timeOut")],
            0
        ),
        case!(
            "DestinationRule loadBalancer enum is case-sensitive (round_robin)",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  trafficPolicy: {loadBalancer: {simple: round_robin}}\n",
            [("error", "DestinationRule/default/r", "loadBalancer")],
            1
        ),
        case!(
            "ROUND_ROBIN / LEAST_REQUEST are valid",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: LEAST_REQUEST}\n    portLevelSettings:\n    - port: {number: 9080}\n      loadBalancer: {simple: ROUND_ROBIN}\n",
            [],
            0
        ),
        case!(
            "DestinationRule tls mode enum (Istio_Mutual) is rejected",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  trafficPolicy: {tls: {mode: Istio_Mutual}}\n",
            [("error", "DestinationRule/default/r", "tls")],
            1
        ),
        case!(
            "Gateway server tls mode enum is case-sensitive (simple)",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [\"*\"]\n    tls: {mode: simple, credentialName: cert}\n",
            [("error", "Gateway/default/gw", "")],
            1
        ),
        case!(
            "PeerAuthentication mtls mode enum is case-sensitive (strict)",
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: strict}\n",
            [("error", "PeerAuthentication/istio-system/default", "")],
            1
        ),
        case!(
            "AuthorizationPolicy action enum is case-sensitive (allow)",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n  action: allow\n  rules: [{}]\n",
            [("error", "AuthorizationPolicy/foo/p", "")],
            1
        ),
        case!(
            "timeout without unit is not a duration",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n    timeout: \"10\"\n",
            [("error", "VirtualService/default/reviews", "timeout")],
            1
        ),
        case!(
            "perTryTimeout garbage is not a duration",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n    retries: {attempts: 3, perTryTimeout: two-seconds}\n",
            [("error", "VirtualService/default/reviews", "perTryTimeout")],
            1
        ),
        case!(
            "valid durations: 0.5s, 100ms, 1m, 1h, 30ms (DestinationRule examples)",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n    timeout: 0.5s\n    retries: {attempts: 3, perTryTimeout: 100ms}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews-cb}\nspec:\n  host: reviews\n  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 100, connectTimeout: 30ms}}\n    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}\n",
            [],
            0
        ),
        case!(
            "fault fixedDelay bad duration",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n  - fault: {delay: {percentage: {value: 100}, fixedDelay: 7seconds}}\n    route: [{destination: {host: ratings}}]\n",
            [("error", "VirtualService/default/ratings", "fixedDelay")],
            1
        ),
        case!(
            "RE2 has no lookahead: (?=...) in a uri regex is invalid",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api}\nspec:\n  hosts: [api]\n  http:\n  - match: [{uri: {regex: \"/api/(?=v1).*\"}}]\n    route: [{destination: {host: api}}]\n",
            [("error", "VirtualService/default/api", "uri")],
            1
        ),
        case!(
            "RE2 has no backreferences: \\1 in a header regex is invalid",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api}\nspec:\n  hosts: [api]\n  http:\n  - match: [{headers: {x-id: {regex: \"(a)\\\\1\"}}}]\n    route: [{destination: {host: api}}]\n",
            [("error", "VirtualService/default/api", "headers")],
            1
        ),
        case!(
            "unbalanced parenthesis in a queryParams regex is invalid",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api}\nspec:\n  hosts: [api]\n  http:\n  - match: [{queryParams: {id: {regex: \"([0-9]+\"}}}]\n    route: [{destination: {host: api}}]\n",
            [("error", "VirtualService/default/api", "queryParams")],
            1
        ),
        case!(
            "valid RE2 regexes are fine",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api}\nspec:\n  hosts: [api]\n  http:\n  - match: [{uri: {regex: \"^/api/v[0-9]+/(users|groups)/[^/]+$\"}, headers: {cookie: {regex: \"^(.*?;)?(user=jason)(;.*)?$\"}}}]\n    route: [{destination: {host: api}}]\n",
            [],
            0
        ),
        case!(
            "negative weight is an error",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - {destination: {host: reviews}, weight: -10}\n    - {destination: {host: ratings}, weight: 110}\n",
            [("error", "VirtualService/default/reviews", "weight")],
            1
        ),
        case!(
            "weights summing to 90 are a warning only (Istio splits by weight / sum)",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - {destination: {host: reviews}, weight: 60}\n    - {destination: {host: ratings}, weight: 30}\n",
            [("warning", "VirtualService/default/reviews", "route")],
            0
        ),
        case!(
            "all-zero weights across several destinations is an error",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - {destination: {host: reviews}, weight: 0}\n    - {destination: {host: ratings}, weight: 0}\n",
            [("error", "VirtualService/default/reviews", "route")],
            1
        ),
        case!(
            "single destination without weight is fine (implicitly 100)",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n",
            [],
            0
        ),
        case!(
            "route to a subset the DestinationRule does not define",
            concat!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v3}}]\n---\n",
                "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"
            ),
            [("error", "VirtualService/default/reviews", "subset")],
            1
        ),
        case!(
            "subset defined by a DR using the FQDN host in another namespace resolves",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: ops}\nspec:\n  host: reviews.default.svc.cluster.local\n  subsets: [{name: v1, labels: {version: v1}}]\n",
            [],
            0
        ),
        case!(
            "subset of a DR for a short host in another namespace does not count",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: prod}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n",
            [("error", "VirtualService/default/reviews", "subset")],
            1
        ),
        case!(
            "VirtualService bound to a Gateway that does not exist",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bookinfo}\nspec:\n  hosts: [\"*\"]\n  gateways: [bookinfo-gateway]\n  http:\n  - route: [{destination: {host: productpage}}]\n",
            [("error", "VirtualService/default/bookinfo", "gateways")],
            1
        ),
        case!(
            "gateway `mesh` is reserved, not missing; an existing gateway in another namespace by ns/name resolves",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bookinfo}\nspec:\n  hosts: [bookinfo.example.com]\n  gateways: [mesh, istio-system/ingress]\n  http:\n  - route: [{destination: {host: productpage}}]\n",
            [],
            0
        ),
        case!(
            "a short gateway name resolves in the VirtualService's own namespace",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bookinfo, namespace: default}\nspec:\n  hosts: [\"*\"]\n  gateways: [ingress]\n  http:\n  - route: [{destination: {host: productpage}}]\n",
            [("error", "VirtualService/default/bookinfo", "gateways")],
            1
        ),
        case!(
            "match-level gateway that does not exist",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{gateways: [nope]}]\n    route: [{destination: {host: reviews}}]\n",
            [("error", "VirtualService/default/reviews", "gateways")],
            1
        ),
        case!(
            "duplicate subset names in one DestinationRule",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v1, labels: {version: v2}}\n",
            [("error", "DestinationRule/default/reviews", "subsets")],
            1
        ),
        case!(
            "two DestinationRules for the same host (short and FQDN) are reported",
            concat!(
                "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
",
                "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews-2}\nspec:\n  host: reviews.default.svc.cluster.local\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"
            ),
            [("", "DestinationRule/default/reviews-2", "")],
            0..=2
        ),
        case!(
            "two VirtualServices for the same host are reported",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews}}]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\nspec:\n  hosts: [reviews.default.svc.cluster.local]\n  http: [{route: [{destination: {host: reviews}}]}]\n",
            [("", "VirtualService/default/b", "hosts")],
            0..=2
        ),
        case!(
            "same short host in different namespaces is two different hosts: no conflict",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: default}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews}}]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: prod}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews}}]}]\n",
            [],
            0
        ),
        // Istio's webhook accepts a host-less VirtualService as a delegate
        // (PILOT_ENABLE_VIRTUAL_SERVICE_DELEGATE defaults on): not an error.
        case!(
            "VirtualService without hosts is a delegate: warned when nothing delegates to it",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: nohosts}\nspec:\n  http: [{route: [{destination: {host: reviews}}]}]\n",
            [("warning", "VirtualService/default/nohosts", "hosts")],
            0
        ),
        case!(
            "DestinationRule without host is invalid",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: nohost}\nspec:\n  subsets: [{name: v1, labels: {version: v1}}]\n",
            [("error", "DestinationRule/default/nohost", "host")],
            1
        ),
        case!(
            "AuthorizationPolicy with an invalid HTTP method",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: get-only, namespace: foo}\nspec:\n  selector: {matchLabels: {app: httpbin}}\n  action: ALLOW\n  rules:\n  - to: [{operation: {methods: [FETCH]}}]\n",
            [("error", "AuthorizationPolicy/foo/get-only", "methods")],
            1
        ),
        case!(
            "PeerAuthentication portLevelMtls without a selector",
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ns-wide, namespace: foo}\nspec:\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n",
            [("error", "PeerAuthentication/foo/ns-wide", "portLevelMtls")],
            1
        ),
        case!(
            "DestinationRule tls DISABLE contradicts a STRICT PeerAuthentication",
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec:\n  mtls: {mode: STRICT}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews-plain}\nspec:\n  host: reviews.default.svc.cluster.local\n  trafficPolicy: {tls: {mode: DISABLE}}\n",
            [("", "DestinationRule/default/reviews-plain", "")],
            0..=1
        ),
        case!(
            "port number out of range",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, port: {number: 70000}}}]\n",
            [("error", "VirtualService/default/reviews", "")],
            1
        ),
        case!(
            "a wrongly typed field (hosts as a string) is a schema error",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: reviews\n  http: [{route: [{destination: {host: reviews}}]}]\n",
            [("error", "VirtualService/default/reviews", "")],
            1
        ),
        case!(
            "wildcard host * on a VirtualService bound to the mesh is rejected (Istio validation)",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: star}\nspec:\n  hosts: [\"*\"]\n  http: [{route: [{destination: {host: a}}]}]\n",
            [("error", "VirtualService/default/star", "hosts")],
            1
        ),
        case!(
            "wildcard host * with gateways [gw, mesh] is rejected too",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: star}\nspec:\n  hosts: [\"*\"]\n  gateways: [gw, mesh]\n  http: [{route: [{destination: {host: a}}]}]\n",
            [("error", "VirtualService/default/star", "hosts")],
            1
        ),
        case!(
            "wildcard host * on a gateway-only VirtualService is fine (bookinfo-gateway)",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: star}\nspec:\n  hosts: [\"*\"]\n  gateways: [gw]\n  http: [{route: [{destination: {host: a}}]}]\n",
            [],
            0
        ),
        case!(
            "overlapping hosts in one VirtualService (*.com, *.foo.com) are duplicates",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: dup}\nspec:\n  hosts: [\"*.com\", \"*.foo.com\"]\n  http: [{route: [{destination: {host: a}}]}]\n",
            [("error", "VirtualService/default/dup", "hosts[1]")],
            1
        ),
        case!(
            "Gateway port protocol is case-insensitive in Istio (http)",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: http}, hosts: [\"*\"]}]\n",
            [],
            0
        ),
        case!(
            "HTTPS Gateway server without tls",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [\"*\"]}]\n",
            [("error", "Gateway/default/gw", "tls")],
            1
        ),
        case!(
            "http route with both route and redirect",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: a}}]\n    redirect: {uri: /x}\n",
            [("error", "VirtualService/default/r", "http[0]")],
            1
        ),
        case!(
            "percentages above 100 and negative retry attempts",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: a}}]\n    fault: {abort: {percentage: {value: 150}, httpStatus: 500}}\n    retries: {attempts: -1}\n    mirror: {host: b}\n    mirrorPercentage: {value: 200}\n",
            [
                ("error", "VirtualService/default/r", "fault"),
                ("error", "VirtualService/default/r", "retries"),
                ("error", "VirtualService/default/r", "mirrorPercentage")
            ],
            3
        ),
        case!(
            "`1d` is not a Go duration",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: a}}]\n    timeout: 1d\n",
            [("error", "VirtualService/default/r", "timeout")],
            1
        ),
        case!(
            "an empty file and a comments-only file are clean",
            "# nothing\n---\n---\n",
            [],
            0
        ),
        case!(
            "StringMatch is a oneof: exact and prefix together is an error",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: a}}]\n",
            [("error", "VirtualService/default/r", "uri")],
            1
        ),
        case!(
            "negative duration and an unknown retryOn policy",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: a}}]\n    timeout: -1s\n    retries: {attempts: 2, retryOn: \"5xx,bogus-policy,503\"}\n",
            [
                ("error", "VirtualService/default/r", "timeout"),
                ("error", "VirtualService/default/r", "retryOn")
            ],
            2
        ),
        case!(
            "retryOn with Istio's documented policies and status codes is fine",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: a}}]\n    retries: {attempts: 3, perTryTimeout: 2s, retryOn: \"gateway-error,connect-failure,refused-stream,503\"}\n",
            [],
            0
        ),
        case!(
            "lookahead in an authority regex",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - match: [{authority: {regex: \"foo(?=bar)\"}}]\n    route: [{destination: {host: a}}]\n",
            [("error", "VirtualService/default/r", "authority")],
            1
        ),
        case!(
            "bad enum inside a subset's trafficPolicy",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy: {tls: {mode: istio_mutual}}\n",
            [(
                "error",
                "DestinationRule/default/r",
                "subsets[0].trafficPolicy"
            )],
            1
        ),
        case!(
            "ignoreUriCase on a uri regex has no effect in Istio: warning",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - match: [{uri: {regex: \"/API/.*\"}, ignoreUriCase: true}]\n    route: [{destination: {host: a}}]\n",
            [("warning", "VirtualService/default/r", "ignoreUriCase")],
            0
        ),
        case!(
            "queryParams prefix is not supported by Istio: warning",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - match: [{queryParams: {v: {prefix: \"1\"}}}]\n    route: [{destination: {host: a}}]\n",
            [("warning", "VirtualService/default/r", "queryParams")],
            0
        ),
        // istio.io IST0132 VirtualServiceHostNotFoundInGateway (Warning).
        case!(
            "VirtualService host not among its Gateway's hosts (IST0132): warning",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: testing-gateway, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - hosts: [testing.com]\n    port: {name: http, number: 80, protocol: HTTP}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: testing-service, namespace: default}\nspec:\n  gateways: [istio-system/testing-gateway]\n  hosts: [wrong.com]\n  http:\n  - match: [{uri: {prefix: /}}]\n    route: [{destination: {host: ratings}}]\n",
            [(
                "warning",
                "VirtualService/default/testing-service",
                "hosts[0]"
            )],
            0
        ),
        case!(
            "VirtualService host served by its Gateway (testing.com) is clean",
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: testing-gateway, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - hosts: [\"*.com\"]\n    port: {name: http, number: 80, protocol: HTTP}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: testing-service, namespace: default}\nspec:\n  gateways: [istio-system/testing-gateway]\n  hosts: [testing.com]\n  http:\n  - route: [{destination: {host: ratings}}]\n",
            [],
            0
        ),
        case!(
            "v1alpha3 and v1beta1 apiVersions are accepted",
            "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a]\n  http: [{route: [{destination: {host: a}}]}]\n---\napiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: a}\nspec:\n  host: a\n",
            [],
            0
        ),
    ]
}

#[test]
fn istio_analyze_corpus() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let file = temp_file(case.yaml);
        let file_name = file.display().to_string();
        let (code, got, raw) = analyze(std::slice::from_ref(&file));
        let Some(diags) = got.as_array() else {
            failures.push(format!("{}: output is not a JSON array: {raw}", case.name));
            continue;
        };
        for d in diags {
            for key in ["severity", "resource", "path", "message"] {
                if !d[key].is_string() {
                    failures.push(format!(
                        "{}: diagnostic without string `{key}`: {d}",
                        case.name
                    ));
                }
            }
        }
        let errors = diags.iter().filter(|d| d["severity"] == "error").count();
        if !case.errors.contains(&errors) {
            failures.push(format!(
                "{}: {errors} error(s), Istio's rules give {:?}: {raw}",
                case.name, case.errors
            ));
        }
        let want_code = if errors > 0 { 1 } else { 0 };
        if code != want_code {
            failures.push(format!("{}: exit {code}, want {want_code}", case.name));
        }
        for (severity, resource, path) in case.must {
            let resource = if *resource == "FILE" {
                file_name.as_str()
            } else {
                resource
            };
            let found = diags.iter().any(|d| {
                (severity.is_empty() || d["severity"] == *severity)
                    && d["resource"] == resource
                    && d["path"].as_str().is_some_and(|p| p.contains(path))
                    && d["message"].as_str().is_some_and(|m| !m.is_empty())
            });
            if !found {
                failures.push(format!(
                    "{}: no {severity} for {resource} at a path containing `{path}`: {raw}",
                    case.name
                ));
            }
        }
        // Clean as Istio sees it: only Loupe's own "not yet enforced" notes.
        let istio_findings = diags
            .iter()
            .filter(|d| {
                !d["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not yet enforced"))
            })
            .count();
        if *case.errors.end() == 0 && case.must.is_empty() && istio_findings > 0 {
            failures.push(format!(
                "{}: clean config yet diagnostics: {raw}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) over {} analyze cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A syntax error names the file, says the line (counted over the whole
/// multi-document file), and is the file's only finding.
#[test]
fn syntax_error_line_number_in_second_document() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ok}\nspec:\n  hosts: [a]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: broken\nspec:\n  host: \"reviews\n  subsets: []\n";
    let file = temp_file(yaml);
    let (code, got, raw) = analyze(std::slice::from_ref(&file));
    assert_eq!(code, 1, "{raw}");
    let diags = got.as_array().expect("array");
    let errors: Vec<_> = diags.iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(errors.len(), 1, "{raw}");
    assert_eq!(errors[0]["resource"], file.display().to_string());
    let message = errors[0]["message"].as_str().expect("message");
    // The unclosed quote opens on line 12; YAML reports it there or at the
    // end of the input (line 13/14), never at a line of the first document.
    assert!(
        ["line 12", "line 13", "line 14"]
            .iter()
            .any(|l| message.contains(l)),
        "{message}"
    );
}

#[test]
fn tab_indentation_error_reports_its_line() {
    let file = temp_file(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n\tname: x\n",
    );
    let (code, got, raw) = analyze(std::slice::from_ref(&file));
    assert_eq!(code, 1, "{raw}");
    let diags = got.as_array().expect("array");
    assert_eq!(diags.len(), 1, "{raw}");
    assert!(
        diags[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 4")),
        "{raw}"
    );
}

/// References resolve across files: the subset is defined in another file.
#[test]
fn cross_file_subset_reference_resolves() {
    let vs = temp_file(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v2}}]\n",
    );
    let dr = temp_file(DR_REVIEWS);
    let (code, got, raw) = analyze(&[vs.clone(), dr]);
    assert_eq!((code, got), (0, serde_json::json!([])), "{raw}");
    // Without the DestinationRule file the same subset is an error.
    let (code, _, raw) = analyze(&[vs]);
    assert_eq!(code, 1, "{raw}");
}

/// A good file next to a broken one: the broken one gives exactly one error
/// naming it; the good one is still analyzed.
#[test]
fn broken_file_does_not_hide_findings_in_other_files() {
    let broken = temp_file("kind: [\n");
    let good = temp_file(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - {destination: {host: r}, weight: 30}\n    - {destination: {host: s}, weight: 30}\n",
    );
    let (code, got, raw) = analyze(&[broken.clone(), good]);
    assert_eq!(code, 1, "{raw}");
    let diags = got.as_array().expect("array");
    let for_broken: Vec<_> = diags
        .iter()
        .filter(|d| d["resource"] == broken.display().to_string())
        .collect();
    assert_eq!(for_broken.len(), 1, "{raw}");
    assert_eq!(for_broken[0]["severity"], "error");
    assert!(
        diags
            .iter()
            .any(|d| d["resource"] == "VirtualService/default/r" && d["severity"] == "warning"),
        "{raw}"
    );
}

/// A `.json` file is read like YAML (JSON is YAML); its findings use the
/// same contract.
#[test]
fn json_input_file() {
    let dir =
        std::env::temp_dir().join(format!("loupe-corpus-analyze-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("vs.json");
    std::fs::write(
        &file,
        r#"{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"j"},"spec":{"hosts":["j"],"http":[{"route":[{"destination":{"host":"j"},"weight":-1}]}]}}"#,
    )
    .expect("write");
    let (code, got, raw) = analyze(std::slice::from_ref(&file));
    assert_eq!(code, 1, "{raw}");
    assert_eq!(got[0]["resource"], "VirtualService/default/j", "{raw}");
    assert_eq!(got[0]["path"], "spec.http[0].route[0].weight", "{raw}");
}

/// Usage errors exit 2: no file, an unknown flag, a file that does not exist,
/// an unknown output format.
#[test]
fn usage_errors_exit_2() {
    let loupe = || Command::new(env!("CARGO_BIN_EXE_loupe"));
    let code = |args: &[&str]| {
        loupe()
            .args(args)
            .output()
            .expect("run loupe")
            .status
            .code()
    };
    let ok = temp_file("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    let ok = ok.to_str().expect("utf-8 path");
    assert_eq!(code(&["analyze"]), Some(2));
    assert_eq!(code(&["analyze", "--bogus", ok]), Some(2));
    assert_eq!(code(&["analyze", "--output", "yaml", ok]), Some(2));
    assert_eq!(
        code(&["analyze", "/nonexistent/loupe/corpus.yaml"]),
        Some(2)
    );
    assert_eq!(code(&["analyze", ok]), Some(0));
}

/// bookinfo's task flow: `virtual-service-all-v1.yaml` then
/// `virtual-service-reviews-test-v2.yaml` both define VirtualService
/// `reviews`; applied together the second replaces the first. That is worth
/// a warning, not a "two VirtualServices for one host" error.
#[test]
fn redefinition_across_files_is_not_a_host_conflict() {
    let all_v1 = temp_file(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
    );
    let test_v2 = temp_file(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
    );
    let dr = temp_file(DR_REVIEWS);
    let (code, got, raw) = analyze(&[all_v1, test_v2, dr]);
    assert_eq!(code, 0, "{raw}");
    let diags = got.as_array().expect("array");
    assert!(diags.iter().all(|d| d["severity"] == "warning"), "{raw}");
}
