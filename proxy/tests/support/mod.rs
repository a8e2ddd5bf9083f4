//! The test harness: real peers on real sockets around a proxy — a gRPC
//! Discovery server serving snapshots the test controls, an OTLP trace
//! collector, HTTP upstream apps — and a launcher for the `loupe-proxy`
//! binary (or the same proxy as an in-process task).
#![allow(dead_code, unused_imports)]

mod apps;
mod ca;
mod collector;
mod control_plane;
mod proxies;

pub use apps::*;
pub use ca::*;
pub use collector::*;
pub use control_plane::*;
pub use proxies::*;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use loupe_push::discovery_server::{Discovery, DiscoveryServer};
use loupe_push::proxy_message::Message;
use loupe_push::{Endpoint, Hello, ProxyMessage, Resource, Service, Snapshot};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::{TcpListenerStream, WatchStream};
use tokio_stream::{Stream, StreamExt};

/// A port nobody listens on right now, never the same twice in one test
/// process (the kernel may hand a just-released port out again).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().expect("local addr").port();
        let mut given = GIVEN.lock().expect("ports");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// Snapshot building

pub fn resource(kind: &str, name: &str, json: serde_json::Value) -> Resource {
    Resource {
        kind: kind.to_string(),
        namespace: "default".to_string(),
        name: name.to_string(),
        json: json.to_string(),
    }
}

pub fn destination_rule(host: &str, subsets: &[&str]) -> Resource {
    let subsets: Vec<_> = subsets
        .iter()
        .map(|s| serde_json::json!({"name": s, "labels": {"version": s}}))
        .collect();
    resource(
        "DestinationRule",
        host,
        serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": host, "namespace": "default"},
            "spec": {"host": host, "subsets": subsets},
        }),
    )
}

/// A VirtualService sending `host` to its subsets with these weights.
pub fn weighted_virtual_service(host: &str, weights: &[(&str, u32)]) -> Resource {
    let route: Vec<_> = weights
        .iter()
        .map(|(s, w)| serde_json::json!({"destination": {"host": host, "subset": s}, "weight": w}))
        .collect();
    resource(
        "VirtualService",
        host,
        serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": host, "namespace": "default"},
            "spec": {"hosts": [host], "http": [{"route": route}]},
        }),
    )
}

pub fn endpoint(inbound: SocketAddr, workload: &str, app: &str, version: &str) -> Endpoint {
    Endpoint {
        address: inbound.to_string(),
        labels: HashMap::from([
            ("app".to_string(), app.to_string()),
            ("version".to_string(), version.to_string()),
        ]),
        workload: workload.to_string(),
        namespace: "default".to_string(),
        service_account: format!("bookinfo-{app}"),
        identity: format!("spiffe://cluster.local/ns/default/sa/bookinfo-{app}"),
        service_port: 0,
    }
}

/// An endpoint that is a sidecar's inbound listener: Istio's
/// `security.istio.io/tlsMode: istio` label says so, and auto mTLS uses it.
pub fn sidecar_endpoint(inbound: SocketAddr, workload: &str, app: &str, version: &str) -> Endpoint {
    let mut e = endpoint(inbound, workload, app, version);
    e.labels
        .insert("security.istio.io/tlsMode".to_string(), "istio".to_string());
    e
}

pub fn service(name: &str, endpoints: Vec<Endpoint>) -> Service {
    Service {
        host: format!("{name}.default.svc.cluster.local"),
        endpoints,
        ..Default::default()
    }
}

// Client

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// POST `body` to `path`; (status, body).
pub async fn post(
    to: SocketAddr,
    host: &str,
    path: &str,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{to}{path}"))
        .header("host", host)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = client().request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// GET `path` from `to` with `Host: host`; (status, body).
pub async fn get(to: SocketAddr, host: &str, path: &str) -> Result<(u16, String), String> {
    let (status, _, body) = request(to, host, path, &[]).await?;
    Ok((status, body))
}

/// GET with extra headers; (status, response headers, body).
pub async fn request(
    to: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, http::HeaderMap, String), String> {
    let mut req = Request::builder()
        .uri(format!("http://{to}{path}"))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client().request(req))
        .await
        .map_err(|_| "request timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// The value of the `istio_requests_total` series whose labels include all of `labels`.
pub fn requests_total(metrics: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
