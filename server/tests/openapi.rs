//! `/api/openapi.json` and the router come from the same place
//! (`loupe_server::api_routes`): these tests pin that every route is
//! documented, every documented operation is routed, and the document
//! has the routes and schemas the console's users script against.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::Harness;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// `(METHOD, /api/path)` of every operation in the document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(loupe_server::openapi::document()).expect("serialize");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Routes can only be registered through utoipa-axum's `routes!`, which
/// fails to compile for a handler without `#[utoipa::path]` and adds the
/// route and its documentation together. A plain axum `.route(...)` would
/// add a route the document does not know: none may exist. And the
/// handlers named in `routes!(...)` are as many as the document's
/// operations, so none is lost on the way.
#[test]
fn every_route_is_registered_with_its_documentation() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut handlers = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for forbidden in [
            ".route(",
            ".route_service(",
            "routing::get",
            "routing::post",
            "routing::put",
            "routing::delete",
            "routing::{",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} registers a route with `{forbidden}`: use `OpenApiRouter::routes(routes!(handler))` \
                 with a `#[utoipa::path]` on the handler, so /api/openapi.json lists it",
                file.display()
            );
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("routes!(") {
            rest = &rest[at + "routes!(".len()..];
            let end = rest.find(')').expect("routes!( closes");
            handlers += rest[..end]
                .split(',')
                .filter(|h| !h.trim().is_empty())
                .count();
        }
    }
    assert_eq!(
        handlers,
        documented().len(),
        "handlers in routes!(...) vs operations in the document: {:?}",
        documented()
    );
}

#[test]
fn the_document_has_the_consoles_routes_and_types() {
    let ops = documented();
    for (method, path) in [
        ("GET", "/api/graph"),
        ("GET", "/api/traces"),
        ("GET", "/api/traces/{trace_id}"),
        ("GET", "/api/config"),
        ("POST", "/api/config"),
        ("GET", "/api/config/{kind}/{namespace}/{name}"),
        ("PUT", "/api/config/{kind}/{namespace}/{name}"),
        ("DELETE", "/api/config/{kind}/{namespace}/{name}"),
        ("GET", "/api/config/{kind}/{namespace}/{name}/history"),
        ("POST", "/api/config/{kind}/{namespace}/{name}/rollback"),
        ("GET", "/api/proxy-status"),
        ("GET", "/api/metrics"),
        ("GET", "/api/canary"),
        ("GET", "/api/audit"),
        ("POST", "/api/login"),
        ("GET", "/api/openapi.json"),
    ] {
        assert!(
            ops.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not in the document: {ops:?}"
        );
    }
    let doc = serde_json::to_value(loupe_server::openapi::document()).expect("serialize");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for schema in [
        "Graph",
        "Node",
        "Edge",
        "Health",
        "Metrics",
        "MetricsPoint",
        "TraceSummary",
        "Trace",
        "Span",
        "Resource",
        "ResourceWithHistory",
        "Revision",
        "Applied",
        "ProxyStatusList",
        "ErrorBody",
        "Diagnostic",
    ] {
        assert!(
            schemas.contains_key(schema),
            "no schema {schema}: {:?}",
            schemas.keys()
        );
    }
    // The graph's query parameters are documented.
    let params: Vec<&str> = doc["paths"]["/api/graph"]["get"]["parameters"]
        .as_array()
        .expect("graph parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        params,
        ["type", "window", "namespaces", "inject_service_nodes"]
    );
    // So are trace search's, the edge a trace crossed and the sort among them.
    let params: Vec<&str> = doc["paths"]["/api/traces"]["get"]["parameters"]
        .as_array()
        .expect("trace search parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in [
        "service",
        "lookback",
        "sort",
        "source_workload",
        "source_app",
        "source_namespace",
        "destination_workload",
        "destination_service",
        "destination_namespace",
    ] {
        assert!(
            params.contains(&name),
            "no trace search parameter {name}: {params:?}"
        );
    }
}

/// The other direction: each documented operation reaches a handler (not
/// the API's fallback 404 nor axum's 405), and the document itself is
/// served at `/api/openapi.json`.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let h = Harness::start().await;
    for (method, path) in documented() {
        let uri = path
            .replace("{trace_id}", "0af7651916cd43dd8448eb211c80319c")
            .replace("{kind}", "VirtualService")
            .replace("{namespace}", "default")
            .replace("{name}", "reviews");
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(&uri)
            .header("authorization", format!("Bearer {}", h.token))
            .body(Body::empty())
            .expect("request");
        if path == "/api/events" {
            // The stream never ends: its status and type are enough.
            req.headers_mut()
                .insert("accept", "text/event-stream".parse().unwrap());
            let resp = h.app().oneshot(req).await.expect("infallible");
            assert_eq!(resp.status(), StatusCode::OK, "{method} {uri}");
            continue;
        }
        let resp = h.app().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {text}"
        );
        assert!(
            !text.contains("no API endpoint at"),
            "{method} {uri} is documented but not routed: {text}"
        );
    }

    let (status, doc) = h.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    assert!(doc["paths"]["/api/graph"]["get"].is_object());
}
