//! An independent corpus of Istio routing semantics, written from istio.io's
//! VirtualService / DestinationRule / Gateway reference and the
//! traffic-management tasks (bookinfo request routing, traffic shifting,
//! fault injection, timeouts, mirroring), run through the built `loupe route`
//! binary exactly as issue 2 item 6 specifies the CLI contract.
//!
//! Each case names the documented behaviour it checks; the judgement calls
//! and the disagreements found are in `corpus/README.md`. `expect` is partial:
//! every key it lists must equal the decision's value for that key.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

struct Case {
    name: &'static str,
    config: &'static str,
    request: Value,
    gateway: Option<&'static str>,
    expect: Value,
}

fn temp_file(text: &str, ext: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("loupe-corpus-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.{ext}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn run_route(config: &str, request: &Value, gateway: Option<&str>) -> (i32, Value, String) {
    let cfg = temp_file(config, "yaml");
    let req = temp_file(&request.to_string(), "json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loupe"));
    cmd.args(["route", "--output", "json", "-f"])
        .arg(&cfg)
        .arg("--request")
        .arg(&req);
    if let Some(gw) = gateway {
        cmd.args(["--gateway", gw]);
    }
    let out = cmd.output().expect("run loupe");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// A sidecar request from productpage (bookinfo) in `default`.
fn req(host: &str, path: &str, headers: Value) -> Value {
    json!({
        "source": {"principal": "cluster.local/ns/default/sa/bookinfo-productpage",
                   "namespace": "default", "ip": "10.0.0.5",
                   "labels": {"app": "productpage", "version": "v1"}},
        "destination": {"namespace": "default", "port": 9080},
        "request": {"method": "GET", "path": path, "host": host, "headers": headers}
    })
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    base.pointer_mut(parent).expect("parent")[key] = value;
    base
}

fn r(host: &str, subset: Option<&str>, port: Option<u16>, weight: f64) -> Value {
    json!({"host": host, "subset": subset, "port": port, "weight": weight})
}

const REVIEWS: &str = "reviews.default.svc.cluster.local";

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name, config, request, gateway, expect| {
        cases.push(Case {
            name,
            config,
            request,
            gateway,
            expect,
        })
    };

    // --- bookinfo request routing task -----------------------------------
    const ALL_V1: &str = r#"
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"#;
    add(
        "virtual-service-all-v1: single destination without weight is 100%, port is the called port",
        ALL_V1,
        req("reviews:9080", "/reviews/0", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0)],
               "fault": null, "timeout_ms": null, "retries": null,
               "rewrite": null, "redirect": null, "mirror": null}),
    );
    add(
        "short request host and FQDN request host select the same VirtualService",
        ALL_V1,
        req("reviews.default.svc.cluster.local:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0)]}),
    );
    const JASON: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
"#;
    add(
        "header exact end-user=jason -> v2",
        JASON,
        req("reviews:9080", "/", json!({"end-user": "jason"})),
        None,
        json!({"routes": [r(REVIEWS, Some("v2"), Some(9080), 100.0)]}),
    );
    add(
        "header names match case-insensitively (End-User)",
        JASON,
        req("reviews:9080", "/", json!({"End-User": "jason"})),
        None,
        json!({"routes": [r(REVIEWS, Some("v2"), Some(9080), 100.0)]}),
    );
    add(
        "header values match case-sensitively: Jason is not jason -> falls through to v1",
        JASON,
        req("reviews:9080", "/", json!({"end-user": "Jason"})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0)]}),
    );
    add(
        "no end-user header -> first route skipped, catch-all v1",
        JASON,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0)]}),
    );

    // --- traffic shifting task --------------------------------------------
    const SPLIT_50: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
"#;
    add(
        "virtual-service-reviews-50-v3: 50/50",
        SPLIT_50,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 50.0),
                          r(REVIEWS, Some("v3"), Some(9080), 50.0)]}),
    );
    const SPLIT_90: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v2}
      weight: 10
"#;
    add(
        "canary 90/10",
        SPLIT_90,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 90.0),
                          r(REVIEWS, Some("v2"), Some(9080), 10.0)]}),
    );
    add(
        "weights not summing to 100 are split by weight / sum (1:3 -> 25/75)",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 1
    - destination: {host: reviews, subset: v2}
      weight: 3
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 25.0),
                          r(REVIEWS, Some("v2"), Some(9080), 75.0)]}),
    );
    add(
        "weight-0 destination is dropped; the rest gets 100",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 100
    - destination: {host: reviews, subset: v2}
      weight: 0
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0)]}),
    );
    add(
        "three-way split 20/30/50 keeps destination order",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 20}
    - {destination: {host: reviews, subset: v2}, weight: 30}
    - {destination: {host: reviews, subset: v3}, weight: 50}
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 20.0),
                          r(REVIEWS, Some("v2"), Some(9080), 30.0),
                          r(REVIEWS, Some("v3"), Some(9080), 50.0)]}),
    );

    // --- HTTPMatchRequest: uri ----------------------------------------------
    const URI: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: [productpage]
  http:
  - name: exact-login
    match:
    - uri: {exact: /login}
    route:
    - destination: {host: login}
  - name: prefix-static
    match:
    - uri: {prefix: /static}
    route:
    - destination: {host: static}
  - name: regex-api
    match:
    - uri: {regex: "/api/v[0-9]+/products"}
    route:
    - destination: {host: api}
  - name: ignore-case
    match:
    - uri: {prefix: /Admin}
      ignoreUriCase: true
    route:
    - destination: {host: admin}
"#;
    let pp = |path: &str| req("productpage:9080", path, json!({}));
    let only = |host: &str| json!({"routes": [r(host, None, Some(9080), 100.0)]});
    add(
        "uri exact matches the same path",
        URI,
        pp("/login"),
        None,
        only("login.default.svc.cluster.local"),
    );
    add(
        "uri exact ignores the query string (Envoy path match)",
        URI,
        pp("/login?next=/x"),
        None,
        only("login.default.svc.cluster.local"),
    );
    add(
        "uri prefix matches a longer path",
        URI,
        pp("/static/css/app.css"),
        None,
        only("static.default.svc.cluster.local"),
    );
    add(
        "uri regex must match the whole path (RE2 full match)",
        URI,
        pp("/api/v1/products"),
        None,
        only("api.default.svc.cluster.local"),
    );
    add(
        "uri regex does not match a path with a trailing extra segment",
        URI,
        pp("/api/v1/products/7"),
        None,
        json!({"routes": []}),
    );
    add(
        "uri exact is case-sensitive without ignoreUriCase",
        URI,
        pp("/LOGIN"),
        None,
        json!({"routes": []}),
    );
    add(
        "ignoreUriCase makes the prefix case-insensitive",
        URI,
        pp("/admin/users"),
        None,
        only("admin.default.svc.cluster.local"),
    );
    add(
        "no route matches -> empty routes",
        URI,
        pp("/nothing-here"),
        None,
        json!({"routes": [], "timeout_ms": null, "retries": null}),
    );

    add(
        "uri prefix is a plain string prefix (/static matches /staticfiles), as Envoy",
        URI,
        pp("/staticfiles/a.js"),
        None,
        only("static.default.svc.cluster.local"),
    );
    add(
        "uri regex ignores the query string (Envoy matches the path without it)",
        URI,
        pp("/api/v2/products?page=3"),
        None,
        only("api.default.svc.cluster.local"),
    );
    add(
        "header presence: an empty StringMatch ({}) matches any value",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{headers: {x-debug: {}}}]
    route: [{destination: {host: ratings, subset: debug}}]
  - route: [{destination: {host: ratings, subset: v1}}]
"#,
        req("ratings:9080", "/", json!({"x-debug": "anything"})),
        None,
        json!({"routes": [r("ratings.default.svc.cluster.local", Some("debug"), Some(9080), 100.0)]}),
    );
    add(
        "delegate: the root's match picks the delegate, whose routes decide",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /reviews}}]
    delegate: {name: reviews-delegate, namespace: default}
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-delegate, namespace: default}
spec:
  http:
  - match: [{uri: {prefix: /reviews/v3}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - route: [{destination: {host: reviews, subset: v2}}]
"#,
        req("reviews:9080", "/reviews/v3/1", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v3"), Some(9080), 100.0)]}),
    );
    add(
        "mesh: the most specific host wins (exact api.example.com over *.example.com)",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild}
spec:
  hosts: ["*.example.com"]
  http: [{route: [{destination: {host: wild}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  http: [{route: [{destination: {host: api}}]}]
"#,
        req("api.example.com", "/", json!({})),
        None,
        json!({"routes": [r("api.default.svc.cluster.local", None, Some(9080), 100.0)]}),
    );
    add(
        "weights 1:2 give percentages 33.33 / 66.67 (weight / sum)",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 1}
    - {destination: {host: reviews, subset: v2}, weight: 2}
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0 / 3.0),
                          r(REVIEWS, Some("v2"), Some(9080), 200.0 / 3.0)]}),
    );

    const IGNORE_CASE_REGEX: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api]
  http:
  - match: [{uri: {regex: "/API/v[0-9]+"}, ignoreUriCase: true}]
    route: [{destination: {host: api, subset: regex}}]
"#;
    add(
        "ignoreUriCase applies only to exact and prefix: a uri regex stays case-sensitive",
        IGNORE_CASE_REGEX,
        req("api:9080", "/api/v1", json!({})),
        None,
        json!({"routes": []}),
    );
    add(
        "uri regex with ignoreUriCase still matches its own case",
        IGNORE_CASE_REGEX,
        req("api:9080", "/API/v1", json!({})),
        None,
        json!({"routes": [r("api.default.svc.cluster.local", Some("regex"), Some(9080), 100.0)]}),
    );

    // --- headers / queryParams / withoutHeaders / method / authority -----------
    const MATCHES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - name: query
    match:
    - queryParams:
        debug: {exact: "true"}
    route:
    - destination: {host: ratings, subset: debug}
  - name: header-prefix
    match:
    - headers:
        user-agent: {prefix: Mozilla}
    route:
    - destination: {host: ratings, subset: browser}
  - name: header-regex
    match:
    - headers:
        x-tenant: {regex: "t[0-9]+"}
    route:
    - destination: {host: ratings, subset: tenant}
  - name: post
    match:
    - method: {exact: POST}
    route:
    - destination: {host: ratings, subset: writer}
  - name: without-cookie
    match:
    - withoutHeaders:
        cookie: {regex: ".*session=.*"}
      uri: {prefix: /anon}
    route:
    - destination: {host: ratings, subset: anon}
  - name: or-of-matches
    match:
    - uri: {prefix: /alpha}
    - uri: {prefix: /beta}
    route:
    - destination: {host: ratings, subset: ab}
"#;
    let rt = |path: &str, headers: Value| req("ratings:9080", path, headers);
    let sub = |s: &str| json!({"routes": [r("ratings.default.svc.cluster.local", Some(s), Some(9080), 100.0)]});
    add(
        "queryParams exact debug=true",
        MATCHES,
        rt("/x?debug=true", json!({})),
        None,
        sub("debug"),
    );
    add(
        "queryParams exact does not match debug=false",
        MATCHES,
        rt("/x?debug=false", json!({})),
        None,
        json!({"routes": []}),
    );
    add(
        "header prefix",
        MATCHES,
        rt("/x", json!({"user-agent": "Mozilla/5.0"})),
        None,
        sub("browser"),
    );
    add(
        "header regex is a full match (t12 matches t[0-9]+)",
        MATCHES,
        rt("/x", json!({"x-tenant": "t12"})),
        None,
        sub("tenant"),
    );
    add(
        "header regex is a full match (t12x does not match t[0-9]+)",
        MATCHES,
        rt("/x", json!({"x-tenant": "t12x"})),
        None,
        json!({"routes": []}),
    );
    add(
        "method exact POST",
        MATCHES,
        with(rt("/x", json!({})), "/request/method", json!("POST")),
        None,
        sub("writer"),
    );
    add(
        "withoutHeaders: header absent -> matches",
        MATCHES,
        rt("/anon/1", json!({})),
        None,
        sub("anon"),
    );
    add(
        "withoutHeaders: header present with a non-matching value -> matches",
        MATCHES,
        rt("/anon/1", json!({"cookie": "theme=dark"})),
        None,
        sub("anon"),
    );
    add(
        "withoutHeaders: header matching -> route skipped",
        MATCHES,
        rt("/anon/1", json!({"cookie": "a=1; session=abc"})),
        None,
        json!({"routes": []}),
    );
    add(
        "several match blocks are ORed (second one matches)",
        MATCHES,
        rt("/beta/1", json!({})),
        None,
        sub("ab"),
    );
    add(
        "conditions within one match block are ANDed (uri alone is not enough)",
        MATCHES,
        rt("/anon", json!({"cookie": "session=1"})),
        None,
        json!({"routes": []}),
    );

    // --- sourceLabels, sourceNamespace, port ---------------------------------
    const SOURCE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match:
    - sourceLabels: {app: reviews, version: v2}
    route:
    - destination: {host: ratings, subset: v2}
  - match:
    - sourceNamespace: canary
    route:
    - destination: {host: ratings, subset: canary}
  - match:
    - port: 8080
    route:
    - destination: {host: ratings, subset: alt, port: {number: 8080}}
  - route:
    - destination: {host: ratings, subset: v1}
"#;
    let from_reviews = |version: &str| {
        with(
            rt("/", json!({})),
            "/source/labels",
            json!({"app": "reviews", "version": version}),
        )
    };
    add(
        "sourceLabels match the calling workload's labels",
        SOURCE,
        from_reviews("v2"),
        None,
        sub("v2"),
    );
    add(
        "sourceLabels need every label (version v1 != v2)",
        SOURCE,
        from_reviews("v1"),
        None,
        sub("v1"),
    );
    add(
        "sourceNamespace",
        SOURCE,
        with(
            with(
                req("ratings.default.svc.cluster.local:9080", "/", json!({})),
                "/source/namespace",
                json!("canary"),
            ),
            "/source/principal",
            json!("cluster.local/ns/canary/sa/x"),
        ),
        None,
        sub("canary"),
    );
    add(
        "port match on the called port, destination port number wins",
        SOURCE,
        with(
            req("ratings:8080", "/", json!({})),
            "/destination/port",
            json!(8080),
        ),
        None,
        json!({"routes": [r("ratings.default.svc.cluster.local", Some("alt"), Some(8080), 100.0)]}),
    );
    add(
        "port match does not apply to another port",
        SOURCE,
        rt("/", json!({})),
        None,
        sub("v1"),
    );

    // --- hosts: namespaces, FQDN, wildcards, default route ------------------------
    add(
        "short request host resolves in the caller's namespace (DNS search path): canary client -> ratings.canary",
        SOURCE,
        with(
            with(rt("/", json!({})), "/source/namespace", json!("canary")),
            "/source/principal",
            json!("cluster.local/ns/canary/sa/x"),
        ),
        None,
        json!({"routes": [r("ratings.canary.svc.cluster.local", None, Some(9080), 100.0)]}),
    );
    add(
        "no VirtualService for the host -> default route to the host itself",
        ALL_V1,
        req("details:9080", "/details/0", json!({})),
        None,
        json!({"routes": [r("details.default.svc.cluster.local", None, Some(9080), 100.0)],
               "retries": null, "timeout_ms": null}),
    );
    add(
        "short host in a VirtualService in namespace prod means reviews.prod, not reviews.default",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: prod}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"#,
        req("reviews.default.svc.cluster.local:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, None, Some(9080), 100.0)]}),
    );
    add(
        "FQDN host in a VirtualService of another namespace applies (exportTo defaults to *)",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: ops}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v3}
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v3"), Some(9080), 100.0)]}),
    );
    add(
        "destination short host expands in the VirtualService's namespace",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: ratings}
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r("ratings.default.svc.cluster.local", None, Some(9080), 100.0)]}),
    );
    add(
        "wildcard host *.example.com matches api.example.com",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ext}
spec:
  hosts: ["*.example.com"]
  http:
  - route:
    - destination: {host: egress.default.svc.cluster.local}
"#,
        req("api.example.com", "/", json!({})),
        None,
        json!({"routes": [r("egress.default.svc.cluster.local", None, Some(9080), 100.0)]}),
    );
    add(
        "explicit destination port number is used",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, port: {number: 9090}}
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, None, Some(9090), 100.0)]}),
    );
    add(
        "first matching route wins even if a later one is more specific",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {exact: /reviews/1}}]
    route: [{destination: {host: reviews, subset: v2}}]
"#,
        req("reviews:9080", "/reviews/1", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0)]}),
    );

    // --- gateways binding -------------------------------------------------------
    const GW: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static}}]
    route:
    - destination: {host: productpage, port: {number: 9080}}
"#;
    add(
        "bookinfo-gateway VS applies through the gateway",
        GW,
        req("bookinfo.example.com", "/productpage", json!({})),
        Some("default/bookinfo-gateway"),
        json!({"routes": [r("productpage.default.svc.cluster.local", None, Some(9080), 100.0)]}),
    );
    add(
        "gateway-only VS does not apply to sidecar traffic -> default route",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-gw}
spec:
  hosts: [reviews]
  gateways: [bookinfo-gateway]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, None, Some(9080), 100.0)]}),
    );
    add(
        "VS bound to [gateway, mesh] applies to sidecars too",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-both}
spec:
  hosts: [reviews]
  gateways: [bookinfo-gateway, mesh]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v3"), Some(9080), 100.0)]}),
    );
    add(
        "VS without gateways does not apply at a gateway (implicit mesh only)",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
"#,
        req("reviews.default.svc.cluster.local", "/", json!({})),
        Some("default/bookinfo-gateway"),
        json!({"routes": []}),
    );
    add(
        "match-level gateways: [mesh] match is skipped at the gateway",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  gateways: [mesh, default/bookinfo-gateway]
  http:
  - match: [{gateways: [mesh]}]
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v2}}]
"#,
        req("reviews.default.svc.cluster.local", "/", json!({})),
        Some("default/bookinfo-gateway"),
        json!({"routes": [r(REVIEWS, Some("v2"), Some(9080), 100.0)]}),
    );

    const GW_HOSTS: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["bookinfo.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: star, namespace: default}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  http:
  - route:
    - destination: {host: productpage, port: {number: 9080}}
"#;
    add(
        "gateway: VS host * narrowed to the server's hosts (bookinfo.example.com served)",
        GW_HOSTS,
        req("bookinfo.example.com", "/", json!({})),
        Some("istio-system/gw"),
        json!({"routes": [r("productpage.default.svc.cluster.local", None, Some(9080), 100.0)]}),
    );
    add(
        "gateway: a host none of the Gateway's servers lists gets no route (404)",
        GW_HOSTS,
        req("other.com", "/", json!({})),
        Some("istio-system/gw"),
        json!({"routes": []}),
    );
    add(
        "gateway: a VS bound to another gateway does not apply",
        GW_HOSTS,
        req("bookinfo.example.com", "/", json!({})),
        Some("istio-system/other-gw"),
        json!({"routes": []}),
    );

    // --- outputs: timeout, retries, fault, rewrite, redirect, mirror ----------------
    add(
        "request timeouts task: timeout 0.5s -> 500 ms",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
    timeout: 0.5s
"#,
        req("reviews:9080", "/", json!({})),
        None,
        json!({"timeout_ms": 500, "retries": null}),
    );
    add(
        "retries: attempts, perTryTimeout, retryOn",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings, subset: v1}}]
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,connect-failure,refused-stream
"#,
        req("ratings:9080", "/", json!({})),
        None,
        json!({"retries": {"attempts": 3, "per_try_timeout_ms": 2000,
                           "retry_on": "gateway-error,connect-failure,refused-stream"}}),
    );
    add(
        "retries without perTryTimeout/retryOn -> nulls",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
    retries: {attempts: 5}
"#,
        req("ratings:9080", "/", json!({})),
        None,
        json!({"retries": {"attempts": 5, "per_try_timeout_ms": null, "retry_on": null}}),
    );
    add(
        "rewrite uri",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{uri: {prefix: /ratings}}]
    rewrite: {uri: /v1/bookRatings}
    route: [{destination: {host: ratings, subset: v1}}]
"#,
        req("ratings:9080", "/ratings/1", json!({})),
        None,
        json!({"rewrite": {"uri": "/v1/bookRatings"},
               "routes": [r("ratings.default.svc.cluster.local", Some("v1"), Some(9080), 100.0)]}),
    );
    add(
        "redirect: no destinations, redirect reported",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{uri: {exact: /v1/getProductRatings}}]
    redirect:
      uri: /v1/bookRatings
      authority: newratings.default.svc.cluster.local
"#,
        req("ratings:9080", "/v1/getProductRatings", json!({})),
        None,
        json!({"routes": [],
               "redirect": {"uri": "/v1/bookRatings", "authority": "newratings.default.svc.cluster.local"}}),
    );
    add(
        "mirror (mirroring task): mirror to v2 at 50%",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
      weight: 100
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 50.0}
"#,
        req("httpbin:8000", "/headers", json!({})),
        None,
        json!({"routes": [r("httpbin.default.svc.cluster.local", Some("v1"), Some(8000), 100.0)],
               "mirror": {"host": "httpbin.default.svc.cluster.local", "subset": "v2",
                          "percentage": {"value": 50.0}}}),
    );
    add(
        "fault injection task: delay 7s for jason; fault is reported, routes unchanged",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault:
      delay: {percentage: {value: 100.0}, fixedDelay: 7s}
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings, subset: v1}}]
"#,
        req("ratings:9080", "/", json!({"end-user": "jason"})),
        None,
        json!({"fault": {"delay": {"percentage": {"value": 100.0}, "fixedDelay": "7s"}},
               "routes": [r("ratings.default.svc.cluster.local", Some("v1"), Some(9080), 100.0)]}),
    );
    add(
        "fault applies only to the route that carries it",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault:
      abort: {percentage: {value: 100.0}, httpStatus: 500}
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings, subset: v1}}]
"#,
        req("ratings:9080", "/", json!({"end-user": "bob"})),
        None,
        json!({"fault": null}),
    );
    add(
        "bookinfo with destination-rule-all: DR does not change the VS decision",
        concat!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n",
            "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n",
            "---\n",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n",
            "spec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v3, labels: {version: v3}}\n"
        ),
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v3"), Some(9080), 100.0)]}),
    );
    add(
        "Host without port and no destination.port: the port is unknown (null)",
        ALL_V1,
        with(
            req("reviews", "/", json!({})),
            "/destination/port",
            Value::Null,
        ),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), None, 100.0)]}),
    );
    add(
        "Host without port: the port is destination.port",
        ALL_V1,
        req("reviews", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v1"), Some(9080), 100.0)]}),
    );
    add(
        "several VirtualServices: each host is routed by its own",
        concat!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n",
            "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v2}\n",
            "---\n",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\n",
            "spec:\n  hosts: [ratings]\n  http:\n  - route:\n    - destination: {host: ratings, subset: v1}\n"
        ),
        req("ratings:9080", "/", json!({})),
        None,
        json!({"routes": [r("ratings.default.svc.cluster.local", Some("v1"), Some(9080), 100.0)]}),
    );
    add(
        "bookinfo task flow: a later definition of VirtualService reviews replaces the earlier (kubectl apply)",
        concat!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n",
            "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n",
            "---\n",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n",
            "spec:\n  hosts: [reviews]\n  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n",
            "    route: [{destination: {host: reviews, subset: v2}}]\n",
            "  - route: [{destination: {host: reviews, subset: v1}}]\n"
        ),
        req("reviews:9080", "/", json!({"end-user": "jason"})),
        None,
        json!({"routes": [r(REVIEWS, Some("v2"), Some(9080), 100.0)]}),
    );
    add(
        "non-Istio documents in the config are skipped",
        concat!(
            "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  ports: [{port: 9080, name: http}]\n",
            "---\n",
            "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: reviews}\n",
            "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v2}\n"
        ),
        req("reviews:9080", "/", json!({})),
        None,
        json!({"routes": [r(REVIEWS, Some("v2"), Some(9080), 100.0)]}),
    );
    cases
}

/// Every case, plus the contract every decision must keep: all keys present
/// (null when unset) and a non-empty reason.
#[test]
fn istio_route_corpus() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let (code, got, stderr) = run_route(case.config, &case.request, case.gateway);
        if code != 0 {
            failures.push(format!("{}: exit {code}: {stderr}", case.name));
            continue;
        }
        for (key, want) in case.expect.as_object().expect("expect is an object") {
            if !json_eq(&got[key], want) {
                failures.push(format!(
                    "{}: `{key}` is {} but Istio gives {}",
                    case.name, got[key], want
                ));
            }
        }
        for key in [
            "routes",
            "fault",
            "timeout_ms",
            "retries",
            "rewrite",
            "redirect",
            "mirror",
            "reason",
        ] {
            if got.get(key).is_none() {
                failures.push(format!(
                    "{}: key `{key}` absent (must be present, null if unset)",
                    case.name
                ));
            }
        }
        if got["reason"].as_str().is_none_or(|r| r.is_empty()) {
            failures.push(format!("{}: empty reason", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} route cases disagree with Istio:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Numbers compare by value (100 == 100.0), everything else structurally.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs() < 1e-6
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Exit codes of item 6: 0 with an answer (also when no route matches),
/// 1 when the config does not parse, 2 on usage errors.
#[test]
fn route_exit_codes() {
    let ok_config = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - match: [{uri: {exact: /only}}]\n    route: [{destination: {host: r}}]\n";
    let request = req("r:9080", "/else", json!({}));
    let (code, got, _) = run_route(ok_config, &request, None);
    assert_eq!(code, 0, "no match is still an answer");
    assert_eq!(got["routes"], json!([]));
    assert!(got["reason"].as_str().is_some_and(|r| !r.is_empty()));

    let (code, _, stderr) = run_route("kind: [\n", &request, None);
    assert_eq!(code, 1, "{stderr}");

    let cfg = temp_file(ok_config, "yaml");
    let bad_request = temp_file("{not json", "json");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_loupe"))
            .arg("route")
            .args(args)
            .output()
            .expect("run loupe")
            .status
            .code()
    };
    let f = std::ffi::OsStr::new("-f");
    let r = std::ffi::OsStr::new("--request");
    assert_eq!(run(&[f, cfg.as_os_str()]), Some(2), "--request missing");
    assert_eq!(
        run(&[f, cfg.as_os_str(), r, bad_request.as_os_str()]),
        Some(2),
        "request is not JSON"
    );
    assert_eq!(
        run(&[
            f,
            cfg.as_os_str(),
            r,
            std::ffi::OsStr::new("/nonexistent/request.json")
        ]),
        Some(2),
        "request file missing"
    );
}
