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
//! (`route` → `policy` → `forward`) or [`inbound`] (`authorize` → app),
//! through the upstream client of [`transport`]; [`observe`] records each
//! exchange into [`telemetry`] when its response ends. [`discovery`] keeps
//! [`config`] current; [`admin`] exposes it.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod context;
pub mod discovery;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod listen;
pub mod observe;
pub mod outbound;
pub mod peer;
pub mod telemetry;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use loupe_push::Hello;
use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::cli::Args;
use crate::config::ConfigStore;
use crate::context::ProxyContext;
use crate::discovery::Discovery;
use crate::identity::Workload;
use crate::inbound::Inbound;
use crate::outbound::Traffic;
use crate::telemetry::export::{self, SpanSink};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::span::string_attr;

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
    #[error("--otlp {url:?} is not a valid collector URL: {source}")]
    Otlp {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            listener,
            addr,
            source,
        })
}

/// Binds every listener, starts the control-plane client and the span
/// exporter, and serves until the process ends. Returns only on a start-up
/// error.
pub async fn run(args: Args) -> Result<(), StartError> {
    args.check().map_err(StartError::Args)?;
    let this = Workload::new(
        &args.workload,
        &args.namespace,
        &args.service_account,
        args.labels(),
    );
    let metrics = Arc::new(Metrics::default());
    let store = Arc::new(ConfigStore::default());

    let spans = match &args.otlp {
        Some(url) => export::spawn(
            url,
            resource_attributes(&this),
            span_attributes(&this, args.gateway),
            metrics.clone(),
        )
        .map_err(|source| StartError::Otlp {
            url: url.clone(),
            source,
        })?,
        None => SpanSink::disabled(metrics.clone()),
    };
    let ctx = Arc::new(ProxyContext::new(
        this.clone(),
        store.clone(),
        metrics.clone(),
        spans,
    ));

    let admin = bind("admin", args.admin).await?;
    let admin_state = Arc::new(Admin {
        store: store.clone(),
        metrics: metrics.clone(),
    });
    tokio::spawn(listen::serve(admin, "admin", move |req, _| {
        admin::handle(admin_state.clone(), req)
    }));

    let mut inbound_address = String::new();
    if let (Some(addr), Some(app)) = (args.inbound, &args.app) {
        let app = ::http::uri::Authority::try_from(app.as_str())
            .ok()
            .filter(|a| a.port_u16().is_some())
            .ok_or_else(|| StartError::App(app.clone()))?;
        let listener = bind("inbound", addr).await?;
        inbound_address = listener.local_addr().unwrap_or(addr).to_string();
        let state = Arc::new(Inbound {
            ctx: ctx.clone(),
            app,
        });
        tokio::spawn(listen::serve(listener, "inbound", move |req, peer| {
            inbound::handle(state.clone(), req, peer)
        }));
    }
    if let Some(addr) = args.outbound {
        let listener = bind("outbound", addr).await?;
        let ctx = ctx.clone();
        tokio::spawn(listen::serve(listener, "outbound", move |req, peer| {
            outbound::handle(ctx.clone(), Traffic::Sidecar, req, peer)
        }));
    }
    if let (true, Some(addr)) = (args.gateway, args.listen) {
        let listener = bind("gateway", addr).await?;
        if inbound_address.is_empty() {
            inbound_address = listener.local_addr().unwrap_or(addr).to_string();
        }
        let ctx = ctx.clone();
        tokio::spawn(listen::serve(listener, "gateway", move |req, peer| {
            outbound::handle(ctx.clone(), Traffic::Gateway, req, peer)
        }));
    }

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
        metrics_address: args.admin.to_string(),
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
        admin = %args.admin,
        control = %args.control,
        "loupe-proxy started"
    );
    Discovery {
        url: args.control.clone(),
        hello,
        this,
        store,
        metrics,
    }
    .run()
    .await;
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
