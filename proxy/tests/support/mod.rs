//! The test harness: real peers on real sockets around a proxy — a gRPC
//! Discovery server serving snapshots the test controls, an OTLP trace
//! collector, HTTP upstream apps — and a launcher for the `loupe-proxy`
//! binary (or the same proxy as an in-process task).
#![allow(dead_code)]

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

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
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

// ---------------------------------------------------------------------------
// Control plane peer

/// What proxies told the control plane.
#[derive(Default)]
pub struct Seen {
    pub hellos: Vec<Hello>,
    pub acks: Vec<u64>,
    pub nacks: Vec<(u64, String)>,
}

/// A Discovery server that pushes whatever snapshot the test sets.
#[derive(Clone)]
pub struct ControlPlane {
    snapshot: watch::Sender<Option<Snapshot>>,
    pub seen: Arc<Mutex<Seen>>,
    pub addr: SocketAddr,
    runtime: Arc<Mutex<RuntimeGuard>>,
}

/// Shuts its runtime down without blocking (tests drop it in async code).
struct RuntimeGuard(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct DiscoveryPeer {
    snapshot: watch::Receiver<Option<Snapshot>>,
    seen: Arc<Mutex<Seen>>,
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<Snapshot, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Discovery for DiscoveryPeer {
    type StreamStream = SnapshotStream;

    async fn stream(
        &self,
        request: tonic::Request<tonic::Streaming<ProxyMessage>>,
    ) -> Result<tonic::Response<Self::StreamStream>, tonic::Status> {
        let mut incoming = request.into_inner();
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = incoming.message().await {
                let mut seen = seen.lock().expect("seen lock");
                match msg.message {
                    Some(Message::Hello(h)) => seen.hellos.push(h),
                    Some(Message::Ack(a)) => seen.acks.push(a.version),
                    Some(Message::Nack(n)) => seen.nacks.push((n.version, n.error)),
                    None => {}
                }
            }
        });
        let out = WatchStream::new(self.snapshot.clone()).filter_map(|s| s.map(Ok));
        Ok(tonic::Response::new(Box::pin(out)))
    }
}

impl ControlPlane {
    pub async fn start() -> ControlPlane {
        Self::start_on(0).await
    }

    /// Serves on `port` (0: any) from a runtime of its own, so that
    /// [`ControlPlane::stop`] can drop every connection at once, as a
    /// crashed control plane would.
    pub async fn start_on(port: u16) -> ControlPlane {
        Self::start_with(port, watch::channel(None).0, Arc::default())
    }

    fn start_with(
        port: u16,
        snapshot: watch::Sender<Option<Snapshot>>,
        seen: Arc<Mutex<Seen>>,
    ) -> ControlPlane {
        let listener = std::net::TcpListener::bind(addr(port)).expect("bind control plane");
        listener.set_nonblocking(true).expect("nonblocking");
        let local = listener.local_addr().expect("control addr");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("control plane runtime");
        let peer = DiscoveryPeer {
            snapshot: snapshot.subscribe(),
            seen: seen.clone(),
        };
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            tonic::transport::Server::builder()
                .add_service(DiscoveryServer::new(peer))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
        });
        ControlPlane {
            snapshot,
            seen,
            addr: local,
            runtime: Arc::new(Mutex::new(RuntimeGuard(Some(runtime)))),
        }
    }

    /// Kills the server and every stream it has.
    pub fn stop(&self) {
        if let Some(rt) = self.runtime.lock().expect("runtime").0.take() {
            rt.shutdown_background();
        }
    }

    /// A new server on the same port, with the same snapshot and record.
    pub fn restart(&self) -> ControlPlane {
        self.stop();
        Self::start_with(self.addr.port(), self.snapshot.clone(), self.seen.clone())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, snapshot: Snapshot) {
        self.snapshot.send_replace(Some(snapshot));
    }

    pub fn acked(&self, version: u64) -> bool {
        self.seen.lock().expect("seen").acks.contains(&version)
    }

    pub fn nack(&self, version: u64) -> Option<String> {
        self.seen
            .lock()
            .expect("seen")
            .nacks
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, e)| e.clone())
    }

    /// Waits until every proxy connected so far (`proxies` of them) ACKed `version`.
    pub async fn wait_ack(&self, version: u64, proxies: usize) {
        eventually(
            &format!("{proxies} ACKs of version {version}"),
            Duration::from_secs(10),
            || async {
                let n = self
                    .seen
                    .lock()
                    .expect("seen")
                    .acks
                    .iter()
                    .filter(|v| **v == version)
                    .count();
                (n >= proxies).then_some(())
            },
        )
        .await
    }
}

// ---------------------------------------------------------------------------
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
    }
}

pub fn service(name: &str, endpoints: Vec<Endpoint>) -> Service {
    Service {
        host: format!("{name}.default.svc.cluster.local"),
        endpoints,
    }
}

// ---------------------------------------------------------------------------
// Upstream apps

/// What an upstream app saw of one request.
#[derive(Clone, Debug)]
pub struct Seen1 {
    pub path: String,
    pub headers: http::HeaderMap,
}

/// An HTTP app that answers `NAME` (its workload) and records requests.
pub struct App {
    pub addr: SocketAddr,
    pub name: String,
    pub requests: Arc<Mutex<Vec<Seen1>>>,
}

impl App {
    pub async fn start(name: &str) -> App {
        Self::start_with(name, 200).await
    }

    /// An app that answers every request with `status`.
    pub async fn start_with(name: &str, status: u16) -> App {
        let listener = TcpListener::bind(addr(0)).await.expect("bind app");
        let local = listener.local_addr().expect("app addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (rec, body_name) = (requests.clone(), name.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (rec, body_name) = (rec.clone(), body_name.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (rec, body_name) = (rec.clone(), body_name.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            rec.lock().expect("rec").push(Seen1 {
                                path: path.clone(),
                                headers: req.headers().clone(),
                            });
                            // `/echo` answers with the request body; `/slow` after 500 ms.
                            let body = match path.as_str() {
                                "/echo" => req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default(),
                                "/slow" => {
                                    tokio::time::sleep(Duration::from_millis(500)).await;
                                    Bytes::from(body_name)
                                }
                                _ => Bytes::from(body_name),
                            };
                            let mut resp = Response::new(Full::new(body));
                            *resp.status_mut() =
                                http::StatusCode::from_u16(status).expect("status");
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        App {
            addr: local,
            name: name.to_string(),
            requests,
        }
    }

    pub fn count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }

    pub fn last(&self) -> Option<Seen1> {
        self.requests.lock().expect("requests").last().cloned()
    }
}

// ---------------------------------------------------------------------------
// OTLP collector peer

#[derive(Clone, Default)]
pub struct Collector {
    /// (service.name, span)
    pub spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("spans");
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push((service.clone(), s));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    pub async fn start() -> (Collector, SocketAddr) {
        let c = Collector::default();
        let listener = TcpListener::bind(addr(0)).await.expect("bind collector");
        let local = listener.local_addr().expect("collector addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(c.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (c, local)
    }

    pub fn of_trace(&self, trace_id: &[u8]) -> Vec<(String, Span)> {
        self.spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|(_, s)| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

pub fn attr(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            Value::BoolValue(b) => Some(b.to_string()),
            _ => None,
        })
}

// ---------------------------------------------------------------------------
// Proxies

/// The flags of one proxy; `args()` renders the exact command line.
#[derive(Clone, Debug)]
pub struct ProxySpec {
    pub workload: String,
    pub app_label: String,
    pub version: String,
    pub inbound: Option<SocketAddr>,
    pub app: Option<SocketAddr>,
    pub outbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub control: String,
    pub otlp: Option<String>,
    pub gateway_listen: Option<SocketAddr>,
}

impl ProxySpec {
    pub fn sidecar(workload: &str, app: &str, version: &str, control: &str) -> ProxySpec {
        ProxySpec {
            workload: workload.to_string(),
            app_label: app.to_string(),
            version: version.to_string(),
            inbound: None,
            app: None,
            outbound: None,
            admin: addr(free_port()),
            control: control.to_string(),
            otlp: None,
            gateway_listen: None,
        }
    }

    pub fn with_inbound(mut self, app: SocketAddr) -> ProxySpec {
        self.inbound = Some(addr(free_port()));
        self.app = Some(app);
        self
    }

    pub fn with_outbound(mut self) -> ProxySpec {
        self.outbound = Some(addr(free_port()));
        self
    }

    pub fn with_otlp(mut self, collector: SocketAddr) -> ProxySpec {
        self.otlp = Some(format!("http://{collector}"));
        self
    }

    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--workload".into(),
            self.workload.clone(),
            "--namespace".into(),
            "default".into(),
            "--service-account".into(),
            format!("bookinfo-{}", self.app_label),
            "--label".into(),
            format!("app={}", self.app_label),
            "--label".into(),
            format!("version={}", self.version),
            "--admin".into(),
            self.admin.to_string(),
            "--control".into(),
            self.control.clone(),
        ];
        if let (Some(i), Some(app)) = (self.inbound, self.app) {
            a.extend([
                "--inbound".into(),
                i.to_string(),
                "--app".into(),
                app.to_string(),
            ]);
        }
        if let Some(o) = self.outbound {
            a.extend(["--outbound".into(), o.to_string()]);
        }
        if let Some(l) = self.gateway_listen {
            a.extend(["--gateway".into(), "--listen".into(), l.to_string()]);
            a.extend(["--label".into(), "istio=ingressgateway".into()]);
        }
        if let Some(o) = &self.otlp {
            a.extend(["--otlp".into(), o.clone()]);
        }
        a
    }

    /// Runs the real `loupe-proxy` binary.
    pub fn spawn_binary(&self) -> ProxyProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_loupe-proxy"))
            .args(self.args())
            .env("RUST_LOG", "loupe_proxy=debug,info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start loupe-proxy");
        ProxyProcess { child }
    }

    /// Runs the same proxy as a task of the test's runtime.
    pub fn spawn_task(&self) -> tokio::task::JoinHandle<()> {
        use clap::Parser;
        let mut argv = vec!["loupe-proxy".to_string()];
        argv.extend(self.args());
        let args = loupe_proxy::cli::Args::try_parse_from(argv).expect("valid args");
        tokio::spawn(async move {
            if let Err(e) = loupe_proxy::run(args).await {
                panic!("proxy failed to start: {e}");
            }
        })
    }

    /// Waits until `/ready` says 200.
    pub async fn wait_ready(&self) {
        let admin = self.admin;
        eventually(
            &format!("{} ready", self.workload),
            Duration::from_secs(15),
            || async move {
                let (status, _) = get(admin, "localhost", "/ready").await.ok()?;
                (status == 200).then_some(())
            },
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        get(self.admin, "localhost", "/stats/prometheus")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

/// A `loupe-proxy` child process, killed when dropped.
pub struct ProxyProcess {
    child: Child,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
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
