//! `loupe-proxy` is Loupe's data plane: the sidecar beside each workload and
//! the ingress gateway. It owns the listeners (outbound from the app,
//! inbound to the app, the gateway's, the admin port), routing and load
//! balancing from the control plane's pushed Istio config, retries,
//! timeouts and faults, Istio-standard metrics and OTLP spans.
//!
//! It does not own the meaning of the config (`loupe-model` does: the proxy
//! compiles its `Router` once per snapshot) nor the push protocol
//! (`loupe-push`). It links nothing of the control plane or the console.
//!
//! The request path, by module: [`listen`] accepts → [`outbound`]
//! (`route` → `policy` → `forward`, `mirror`) or [`inbound`]
//! (`authorize` → app), with [`peer`] metadata between the two sides,
//! through the upstream client of [`transport`]; [`observe`] records each
//! exchange into [`telemetry`] when its response ends. [`discovery`] keeps
//! [`config`] current; [`admin`] exposes it. The [`traffic`] listeners run
//! on `--concurrency` [`workers`], one thread and runtime each; the
//! control-plane client, the exporter and admin on the main thread.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod capture;
pub mod cli;
pub mod config;
pub mod context;
pub mod control;
pub mod discovery;
pub mod dns;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod listen;
pub mod observe;
pub mod outbound;
pub mod peer;
pub mod telemetry;
pub mod tls;
pub mod traffic;
pub mod transport;
pub mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use loupe_push::Hello;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::Admin;
use crate::cli::Args;
use crate::config::ConfigStore;
use crate::context::ProxyContext;
use crate::control::ControlPlane;
use crate::discovery::Discovery;
use crate::identity::Workload;
use crate::listen::{Accept, Listener};
use crate::telemetry::export::{self, SpanSink};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::span::string_attr;
use crate::tls::CredentialStore;
use crate::tls::issue::Issuer;
use crate::traffic::TrafficListeners;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid arguments: {0}")]
    Args(String),
    #[error("cannot listen on {addr} for the {listener} listener: {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--app {0:?} is not HOST:PORT")]
    App(String),
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start data-path worker {index}: {source}")]
    Worker {
        index: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("--otlp {url:?} is not a valid collector URL: {source}")]
    Otlp {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

pub(crate) async fn bind(
    listener: &'static str,
    addr: SocketAddr,
) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            listener,
            addr,
            source,
        })
}

/// How long a draining proxy waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds every listener, starts the control-plane client and the span
/// exporter, and serves until `shutdown` completes; then drains: listeners
/// stop accepting, requests in flight finish (up to 5 s), and the spans
/// still queued are exported.
pub async fn run(args: Args, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    args.check().map_err(StartError::Args)?;
    let this = Workload::new(
        &args.workload,
        &args.namespace,
        &args.service_account,
        args.labels(),
    );
    let metrics = Arc::new(Metrics::default());
    let store = Arc::new(ConfigStore::default());
    let read = |what: &'static str, path: &std::path::PathBuf| {
        std::fs::read_to_string(path).map_err(|source| StartError::Read {
            what,
            path: path.clone(),
            source,
        })
    };
    let root_pem = args
        .ca_root
        .as_ref()
        .map(|p| read("the CA root (--ca-root)", p))
        .transpose()?;
    let token = args
        .token_file
        .as_ref()
        .map(|p| read("the workload credential (--token-file)", p))
        .transpose()?;
    let control = ControlPlane::new(args.control.clone(), root_pem, token.as_deref());
    let credentials = Arc::new(CredentialStore::new(token.is_some()));

    let (spans, exporter) = match &args.otlp {
        Some(url) => export::spawn(
            url,
            resource_attributes(&this),
            span_attributes(&this, args.gateway),
            metrics.clone(),
        )
        .map(|(sink, task)| (sink, Some(task)))
        .map_err(|source| StartError::Otlp {
            url: url.clone(),
            source,
        })?,
        None => (SpanSink::disabled(metrics.clone()), None),
    };
    let (drain_tx, drain) = watch::channel(false);
    let limits = args.limits();
    let mut listeners = Vec::new();
    // Every traffic socket is bound before anything is served, so a port
    // in use fails the start instead of one worker.
    let mut traffic = TrafficListeners::bind(&args)?;
    let inbound_address = traffic.inbound_address();
    let context = || {
        Arc::new(ProxyContext::new(
            this.clone(),
            store.clone(),
            metrics.clone(),
            spans.clone(),
            credentials.clone(),
        ))
    };

    let admin = bind("admin", args.admin_addr()).await?;
    let admin_state = Arc::new(Admin {
        store: store.clone(),
        metrics: metrics.clone(),
        credentials: credentials.clone(),
    });
    let health_state = admin_state.clone();
    listeners.push(tokio::spawn(listen::serve(
        Listener::new(admin, "admin", limits),
        drain.clone(),
        Accept::Plain,
        limits,
        metrics.clone(),
        move |req, _| admin::handle(admin_state.clone(), req),
    )));
    if args.capture {
        listeners.extend(
            capture::serve_health_and_dns(
                &args,
                store.clone(),
                metrics.clone(),
                health_state,
                &drain,
                limits,
            )
            .await?,
        );
    }
    let mut workers = Vec::new();
    for i in 0..traffic.workers() {
        let worker = traffic.worker(i, context());
        let drain = drain.clone();
        let done = workers::spawn(i, move || worker.serve(drain))
            .map_err(|source| StartError::Worker { index: i, source })?;
        workers.push(done);
    }
    drop(spans);

    let hello = Hello {
        workload: args.workload.clone(),
        namespace: args.namespace.clone(),
        service_account: args.service_account.clone(),
        labels: this
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        inbound_address,
        metrics_address: match (args.capture, args.pod_ip) {
            (true, Some(ip)) => SocketAddr::new(ip, args.admin_addr().port()).to_string(),
            _ => args.admin_addr().to_string(),
        },
        services: args.services(),
        gateway: args.gateway,
    };
    tracing::info!(
        workload = %args.workload,
        namespace = %args.namespace,
        gateway = args.gateway,
        inbound = ?args.inbound,
        outbound = ?args.outbound,
        listen = ?args.listen,
        admin = %args.admin_addr(),
        capture = args.capture,
        control = %args.control,
        workers = workers.len(),
        "loupe-proxy started"
    );
    let issuer = credentials.required.then(|| {
        tokio::spawn(
            Issuer {
                control: control.clone(),
                id: loupe_model::SpiffeId::new(
                    &args.trust_domain,
                    &args.namespace,
                    &args.service_account,
                ),
                ttl: args.cert_ttl.map(Duration::from_secs),
                store: credentials.clone(),
            }
            .run(),
        )
    });
    // With an identity, the proxy says Hello (and so becomes an endpoint
    // others route to) only once it holds a certificate to serve mTLS with.
    let certified = credentials.clone();
    let discovery = tokio::spawn(async move {
        while !certified.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Discovery {
            control,
            hello,
            this,
            store,
            metrics,
        }
        .run()
        .await
    });

    shutdown.await;
    tracing::info!(timeout = ?DRAIN_TIMEOUT, "draining: no new connections, finishing requests in flight");
    let _ = drain_tx.send(true);
    discovery.abort();
    if let Some(issuer) = issuer {
        issuer.abort();
    }
    let drained = futures::future::join(
        futures::future::join_all(listeners),
        futures::future::join_all(workers),
    );
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!("requests still in flight after the drain timeout; closing them");
    }
    // The last span senders went with the workers' contexts; the exporter
    // then flushes.
    if let Some(exporter) = exporter {
        let _ = tokio::time::timeout(Duration::from_secs(2), exporter).await;
    }
    Ok(())
}

/// OTLP resource attributes: `service.name` is the canonical service (the
/// app label), as Istio names services in traces.
fn resource_attributes(this: &Workload) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    vec![
        string_attr("service.name", this.canonical_service()),
        string_attr("service.namespace", &*this.namespace),
        string_attr("service.version", this.canonical_revision()),
        string_attr("k8s.namespace.name", &*this.namespace),
        string_attr("k8s.workload.name", &*this.name),
    ]
}

/// Attributes Envoy puts on every span in Istio.
fn span_attributes(
    this: &Workload,
    gateway: bool,
) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    let kind = if gateway { "router" } else { "sidecar" };
    vec![
        string_attr(
            "node_id",
            format!(
                "{kind}~127.0.0.1~{}.{}~{}.svc.cluster.local",
                this.name, this.namespace, this.namespace
            ),
        ),
        string_attr("component", "proxy"),
        string_attr("istio.canonical_service", this.canonical_service()),
        string_attr("istio.canonical_revision", this.canonical_revision()),
        string_attr("istio.namespace", &*this.namespace),
        string_attr("istio.mesh_id", "cluster.local"),
    ]
}
