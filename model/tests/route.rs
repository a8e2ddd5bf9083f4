//! Route selection, table-driven from istio.io's VirtualService reference
//! and traffic-management tasks (see `data/routing.yaml`).

use loupe_model::route::{RouteDecision, Router};
use loupe_model::{Request, parse_documents};
use serde_json::{Value, json};

fn router() -> Router {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/routing.yaml"
    ))
    .expect("fixture");
    let parsed = parse_documents("routing.yaml", &text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    Router::new(&parsed.resources)
}

fn request(v: Value) -> Request {
    serde_json::from_value(v).expect("request json")
}

/// A sidecar request from `default` to `host` with extra HTTP attributes.
fn call(host: &str, path: &str, headers: Value) -> Request {
    request(json!({
        "source": {"principal": "cluster.local/ns/default/sa/productpage", "namespace": "default"},
        "destination": {"namespace": "default", "port": 9080},
        "request": {"method": "GET", "path": path, "host": host, "headers": headers}
    }))
}

fn routes(d: &RouteDecision) -> Vec<(String, Option<String>, Option<u16>, f64)> {
    d.routes
        .iter()
        .map(|r| (r.host.clone(), r.subset.clone(), r.port, r.weight))
        .collect()
}

fn dest(
    host: &str,
    subset: Option<&str>,
    port: Option<u16>,
    weight: f64,
) -> (String, Option<String>, Option<u16>, f64) {
    (host.to_string(), subset.map(str::to_string), port, weight)
}

const REVIEWS: &str = "reviews.default.svc.cluster.local";
const RATINGS: &str = "ratings.default.svc.cluster.local";

#[test]
fn header_match_selects_the_first_matching_route() {
    let r = router();
    let d = r.route(
        &call("reviews:9080", "/reviews/1", json!({"end-user": "jason"})),
        None,
    );
    assert_eq!(routes(&d), [dest(REVIEWS, Some("v2"), Some(9080), 100.0)]);
    let m = d.matched.expect("matched");
    assert_eq!((m.route_index, m.match_index), (0, Some(0)));
    assert!(
        d.reason.contains("default/reviews") && d.reason.contains("jason"),
        "{}",
        d.reason
    );
}

#[test]
fn header_names_match_case_insensitively_and_values_exactly() {
    let r = router();
    let upper = r.route(&call("reviews", "/", json!({"End-User": "jason"})), None);
    assert_eq!(upper.routes[0].subset.as_deref(), Some("v2"));
    let other = r.route(&call("reviews", "/", json!({"end-user": "Jason"})), None);
    assert_eq!(
        other.matched.map(|m| m.route_index),
        Some(2),
        "values are case-sensitive"
    );
}

#[test]
fn route_without_match_splits_by_weight() {
    let d = router().route(&call("reviews", "/", json!({})), None);
    assert_eq!(
        routes(&d),
        [
            dest(REVIEWS, Some("v1"), Some(9080), 75.0),
            dest(REVIEWS, Some("v3"), Some(9080), 25.0)
        ]
    );
    assert_eq!(d.retries, None);
    assert_eq!(d.timeout_ms, None);
}

#[test]
fn source_labels_must_all_be_present() {
    let r = router();
    let mut req = call("reviews", "/", json!({}));
    req.source.labels = [
        ("app".to_string(), "productpage".to_string()),
        ("version".to_string(), "v2".to_string()),
    ]
    .into();
    assert_eq!(r.route(&req, None).routes[0].subset.as_deref(), Some("v3"));
    req.source.labels.remove("version");
    assert_eq!(r.route(&req, None).matched.map(|m| m.route_index), Some(2));
}

#[test]
fn fault_delay_and_abort_in_istio_field_names() {
    let r = router();
    let delay = r.route(&call("ratings", "/", json!({"end-user": "jason"})), None);
    assert_eq!(
        delay.fault,
        Some(json!({"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}}))
    );
    let abort = r.route(&call("ratings", "/faulty/x", json!({})), None);
    assert_eq!(
        abort.fault,
        Some(json!({"abort": {"httpStatus": 503, "percentage": {"value": 50}}}))
    );
}

#[test]
fn redirect_has_no_destinations() {
    let d = router().route(&call("ratings", "/v1/getProductRatings", json!({})), None);
    assert!(d.routes.is_empty());
    assert_eq!(
        d.redirect,
        Some(
            json!({"uri": "/v1/bookRatings", "authority": "newratings.default.svc.cluster.local"})
        )
    );
}

#[test]
fn rewrite_with_ignore_uri_case_and_explicit_port() {
    let d = router().route(&call("ratings", "/RATINGS/7", json!({})), None);
    assert_eq!(d.rewrite, Some(json!({"uri": "/v1/bookRatings"})));
    assert_eq!(routes(&d), [dest(RATINGS, None, Some(8080), 100.0)]);
}

#[test]
fn regex_method_and_query_params_with_timeout_and_retries() {
    let r = router();
    let d = r.route(&call("ratings", "/x?a=1&version=v2", json!({})), None);
    assert_eq!(
        d.matched.as_ref().map(|m| m.route_index),
        Some(4),
        "{}",
        d.reason
    );
    assert_eq!(d.timeout_ms, Some(1500));
    let retries = d.retries.expect("retries");
    assert_eq!(retries.attempts, 3);
    assert_eq!(retries.per_try_timeout_ms, Some(2000));
    assert_eq!(
        retries.retry_on.as_deref(),
        Some("gateway-error,connect-failure,refused-stream")
    );
    // RE2 semantics: the regex must match the whole method.
    let mut post = call("ratings", "/x?version=v2", json!({}));
    post.request.method = Some("GETX".into());
    assert_ne!(r.route(&post, None).matched.map(|m| m.route_index), Some(4));
}

#[test]
fn mirror_is_reported_with_fqdn_host_and_without_headers_excludes() {
    let r = router();
    let d = r.route(&call("ratings", "/other", json!({})), None);
    assert_eq!(d.matched.as_ref().map(|m| m.route_index), Some(5));
    // 100% is Istio's default, so only the destination is shown.
    assert_eq!(d.mirror, Some(json!({"host": RATINGS, "subset": "v2"})));
    let excluded = r.route(
        &call("ratings", "/other", json!({"x-no-mirror": "1"})),
        None,
    );
    assert!(
        excluded.routes.is_empty(),
        "no route matches: {:?}",
        excluded
    );
    assert!(
        excluded.reason.contains("none of its"),
        "{}",
        excluded.reason
    );
}

#[test]
fn port_match_uses_the_host_port_first() {
    let r = router();
    let d = r.route(&call("ratings:9090", "/other", json!({})), None);
    assert!(d.routes.is_empty(), "port 9090 does not match `port: 9080`");
}

#[test]
fn no_virtual_service_routes_to_the_host_itself() {
    let d = router().route(&call("productpage:9080", "/", json!({})), None);
    assert_eq!(
        routes(&d),
        [dest(
            "productpage.default.svc.cluster.local",
            None,
            Some(9080),
            100.0
        )]
    );
    assert!(d.reason.contains("default route"), "{}", d.reason);
}

#[test]
fn short_request_hosts_expand_in_the_source_namespace() {
    let mut req = call("details", "/", json!({"x-canary": "yes-please"}));
    req.source.namespace = Some("prod".into());
    req.source.principal = None;
    let d = router().route(&req, None);
    assert_eq!(
        routes(&d),
        [dest(
            "details.prod.svc.cluster.local",
            Some("canary"),
            Some(9080),
            100.0
        )]
    );
}

#[test]
fn export_to_dot_hides_the_service_from_other_namespaces() {
    let d = router().route(
        &call(
            "details.prod.svc.cluster.local",
            "/",
            json!({"x-canary": "yes"}),
        ),
        None,
    );
    assert!(d.reason.contains("default route"), "{}", d.reason);
}

#[test]
fn wildcard_host_and_match_level_gateways() {
    let r = router();
    let host = "shop.bookinfo.com";
    // Through the gateway the first route's match applies.
    let gw = r.route(
        &call(host, "/api/v1/products/1", json!({})),
        Some("istio-system/bookinfo-gateway"),
    );
    assert_eq!(
        routes(&gw),
        [dest(
            "productpage.default.svc.cluster.local",
            None,
            Some(9080),
            100.0
        )]
    );
    // On the sidecar the first match is restricted to the gateway, so route 2 wins;
    // `reviews.prod` expands as a namespace-qualified name.
    let mesh = r.route(&call(host, "/api/v1/products/1", json!({})), None);
    assert_eq!(
        routes(&mesh),
        [dest(
            "reviews.prod.svc.cluster.local",
            None,
            Some(9080),
            100.0
        )]
    );
}

#[test]
fn gateway_only_virtual_service_needs_the_gateway() {
    let r = router();
    let host = "api.bookinfo.com";
    // Sidecar: `api` is gateway-only, but `*.bookinfo.com` binds mesh too.
    let mesh = r.route(&call(host, "/v2/x", json!({})), None);
    assert_eq!(
        mesh.matched
            .as_ref()
            .map(|m| m.virtual_service.name.as_str()),
        Some("bookinfo")
    );
    let other_gw = r.route(
        &call("nothing.example.org", "/", json!({})),
        Some("istio-system/bookinfo-gateway"),
    );
    assert!(other_gw.routes.is_empty());
    assert!(other_gw.reason.contains("404"), "{}", other_gw.reason);
}

#[test]
fn delegate_routes_decide() {
    let r = router();
    let gw = Some("istio-system/bookinfo-gateway");
    let beta = r.route(&call("api.bookinfo.com", "/v2/beta/x", json!({})), gw);
    assert_eq!(
        routes(&beta),
        [dest(
            "api-v2.prod.svc.cluster.local",
            Some("beta"),
            Some(9080),
            100.0
        )]
    );
    assert_eq!(
        beta.matched.and_then(|m| m.delegate).map(|k| k.name),
        Some("api-v2".to_string())
    );
    let v1 = r.route(&call("api.bookinfo.com", "/v1", json!({})), gw);
    assert_eq!(
        routes(&v1),
        [dest(
            "api-v1.prod.svc.cluster.local",
            None,
            Some(9080),
            100.0
        )]
    );
}

#[test]
fn weights_are_percentages_of_the_sum_and_zero_weights_drop() {
    let text = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split}
spec:
  hosts: [split]
  http:
  - route:
    - destination: {host: a}
      weight: 1
    - destination: {host: b}
      weight: 3
    - destination: {host: c}
      weight: 0
"#;
    let parsed = parse_documents("split.yaml", text);
    let d = Router::new(&parsed.resources).route(&call("split", "/", json!({})), None);
    assert_eq!(
        routes(&d),
        [
            dest("a.default.svc.cluster.local", None, Some(9080), 25.0),
            dest("b.default.svc.cluster.local", None, Some(9080), 75.0)
        ]
    );
}

#[test]
fn decision_json_has_exactly_the_cli_contract_fields() {
    let d = router().route(&call("reviews", "/", json!({})), None);
    let v = serde_json::to_value(&d).expect("json");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "fault",
            "mirror",
            "reason",
            "redirect",
            "retries",
            "rewrite",
            "routes",
            "timeout_ms"
        ]
    );
    assert_eq!(
        v["routes"][0],
        json!({"host": REVIEWS, "subset": "v1", "port": 9080, "weight": 75})
    );
}

#[test]
fn request_without_host_is_explained() {
    let d = router().route(&request(json!({"request": {"path": "/"}})), None);
    assert!(d.routes.is_empty());
    assert!(d.reason.contains("no host"));
}

#[test]
fn partial_mirror_reports_its_percentage() {
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: httpbin}\nspec:\n  hosts: [httpbin]\n  http:\n  - route:\n    - destination: {host: httpbin, subset: v1}\n    mirror: {host: httpbin, subset: v2}\n    mirrorPercentage: {value: 12.5}\n";
    let parsed = parse_documents("mirror.yaml", text);
    let d = Router::new(&parsed.resources).route(&call("httpbin:8000", "/", json!({})), None);
    assert_eq!(
        d.mirror,
        Some(
            json!({"host": "httpbin.default.svc.cluster.local", "subset": "v2", "percentage": {"value": 12.5}})
        )
    );
    assert_eq!(
        routes(&d),
        [dest(
            "httpbin.default.svc.cluster.local",
            Some("v1"),
            Some(8000),
            100.0
        )]
    );
}

/// Istio builds a gateway's virtual hosts from its servers' `hosts` ∩ the
/// bound VirtualService's hosts: a `hosts: ["*"]` VirtualService on a gateway
/// serving only `bookinfo.example.com` does not answer `other.com`, and a
/// `ns/host` server entry admits only VirtualServices of `ns`.
#[test]
fn gateway_serves_only_its_server_hosts() {
    let text = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["bookinfo.example.com", "prod/*.prod.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: star, namespace: default}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  http: [{route: [{destination: {host: productpage}}]}]
"#;
    let parsed = parse_documents("gw.yaml", text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let router = Router::new(&parsed.resources);
    let gw = Some("istio-system/gw");
    let through = |host: &str| router.route(&call(host, "/", json!({})), gw);
    assert_eq!(
        routes(&through("bookinfo.example.com")),
        vec![dest(
            "productpage.default.svc.cluster.local",
            None,
            Some(9080),
            100.0
        )]
    );
    let other = through("other.com");
    assert!(other.routes.is_empty(), "{other:?}");
    assert!(other.reason.contains("404"), "{}", other.reason);
    // `prod/*.prod.example.com` is not for VirtualServices of `default`.
    assert!(through("api.prod.example.com").routes.is_empty());
}

/// The VirtualService reference: "The case will be ignored only in the case
/// of exact and prefix URI matches" (Envoy ignores `case_sensitive` for
/// `safe_regex`).
#[test]
fn ignore_uri_case_does_not_apply_to_regex() {
    let text = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api]
  http:
  - match: [{uri: {regex: "/API/v[0-9]+"}, ignoreUriCase: true}]
    route: [{destination: {host: api, subset: regex}}]
  - match: [{uri: {exact: /API/LIST}, ignoreUriCase: true}]
    route: [{destination: {host: api, subset: exact}}]
"#;
    let parsed = parse_documents("api.yaml", text);
    let router = Router::new(&parsed.resources);
    let subset = |path: &str| {
        router
            .route(&call("api:9080", path, json!({})), None)
            .routes
            .first()
            .and_then(|r| r.subset.clone())
    };
    assert_eq!(subset("/API/v1").as_deref(), Some("regex"));
    assert_eq!(subset("/api/v1"), None, "regex stays case-sensitive");
    assert_eq!(subset("/api/list").as_deref(), Some("exact"));
}

/// bookinfo's `virtual-service-all-v1.yaml` then
/// `virtual-service-reviews-test-v2.yaml`: both define VirtualService
/// `reviews`, and applying them in order leaves the second.
#[test]
fn a_later_definition_of_a_virtual_service_replaces_the_earlier() {
    let text = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"#;
    let router = Router::new(&parse_documents("vs.yaml", text).resources);
    let d = router.route(
        &call("reviews:9080", "/", json!({"end-user": "jason"})),
        None,
    );
    assert_eq!(
        routes(&d),
        vec![dest(REVIEWS, Some("v2"), Some(9080), 100.0)],
        "{}",
        d.reason
    );
}
