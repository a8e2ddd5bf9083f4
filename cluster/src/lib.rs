//! `loupe-cluster` is Loupe's client side of the Kubernetes API. Mostly the
//! control plane's cluster mode (`loupe control --kubernetes`): the same
//! control plane as local mode (CA, Postgres store with its history,
//! publisher, push stream over TLS), fed by the Kubernetes API instead of
//! the operator's files. Also the operator's commands that talk to a
//! cluster: `loupe install` ([`install`]) and `loupe dashboard`
//! ([`dashboard`]).
//!
//! - Config: Istio's own CRDs watched and mirrored into the store, each
//!   object validated, the invalid ones reported on the object, each
//!   revision by the Kubernetes user who wrote it ([`authors`]), console
//!   edits written back with server-side apply ([`config`]).
//! - Registry: Services, EndpointSlices and Pods, in Istio's shapes
//!   ([`registry`], followed by [`platform`]), never what proxies claim.
//! - Authentication: the pod's projected service-account token, checked by
//!   TokenReview and bound to its pod ([`token_review`]).
//! - One CA for all replicas, kept in a Secret as istiod keeps it
//!   ([`ca_secret`]).
//! - Trust: the root certificate in every namespace's `istio-ca-root-cert`
//!   ConfigMap ([`root_cert`]); the webhooks' `caBundle` ([`webhooks`]).
//! - One writer: a Lease elects the replica that writes ([`leader`]); every
//!   replica serves proxies.
//!
//! The webhooks themselves (injection, validation) and the manifests live
//! in `loupe-k8s`, which needs no API server.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod authors;
pub mod ca_secret;
pub mod config;
pub mod dashboard;
pub mod install;
pub mod leader;
pub mod platform;
pub mod registry;
pub mod root_cert;
pub mod token_review;
pub mod webhooks;

/// The field manager of everything Loupe writes with server-side apply.
pub const FIELD_MANAGER: &str = "loupe";

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use loupe_control::ControlPlane;
use loupe_control::ca::CaOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// `loupe control --kubernetes`'s options.
#[derive(Clone, Debug)]
pub struct Options {
    pub database_url: String,
    /// Where proxies connect (gRPC over TLS).
    pub listen: SocketAddr,
    /// Where the API server sends AdmissionReviews (HTTPS), if anywhere.
    pub webhook_listen: Option<SocketAddr>,
    pub ca: CaOptions,
    pub endpoint_grace: Duration,
    pub trace_sampling: f64,
    /// The control plane's own namespace (its Lease, its Events).
    pub namespace: String,
    /// This replica's name in the election (the pod's name).
    pub identity: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the Kubernetes API (in a pod: its service account; outside: KUBECONFIG)")]
    Client(#[source] kube::Error),
    #[error(
        "no Kubernetes cluster to talk to: {0}. Point KUBECONFIG at a kubeconfig (or create ~/.kube/config), or pass --context"
    )]
    Kubeconfig(String),
    #[error(transparent)]
    Control(#[from] loupe_control::ControlError),
    #[error("cannot listen on {addr} (choose another --webhook-listen)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    CaSecret(#[from] ca_secret::CaSecretError),
    #[error(transparent)]
    Tls(#[from] loupe_control::tls::TlsError),
}

/// The parts of cluster mode that run beside a control plane: the config
/// mirror, the registry, the root ConfigMaps, the election. Dropping it
/// stops them.
pub struct Cluster {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Whether this replica leads.
    pub leader: watch::Receiver<bool>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How long a proxy's stream waits for its pod to appear in the registry
/// (the pod's watch event may arrive after the proxy connects).
pub const PLATFORM_WAIT: Duration = Duration::from_secs(5);

/// Makes `control` a cluster-mode control plane over `client`: proxies
/// authenticate by TokenReview, the registry and config come from the
/// cluster. `leader` decides who writes (see [`leader::elect`]).
pub fn attach(
    client: kube::Client,
    control: ControlPlane,
    leader: watch::Receiver<bool>,
    reporter: kube::runtime::events::Reporter,
) -> (ControlPlane, Cluster) {
    let control =
        control.with_authenticator(Arc::new(token_review::TokenReviewer::new(client.clone())));
    control.publisher().wait_for_platform(PLATFORM_WAIT);
    let mirror = config::ConfigMirror::start(client.clone(), control.store().clone(), reporter);
    let tasks = vec![
        tokio::spawn(mirror.run(leader.clone())),
        tokio::spawn(platform::follow(
            client.clone(),
            control.publisher().clone(),
        )),
        tokio::spawn(root_cert::publish(
            client,
            control.ca().clone(),
            leader.clone(),
        )),
    ];
    (control, Cluster { tasks, leader })
}

/// A client of the cluster named by KUBECONFIG (or `~/.kube/config`) and
/// `context` (its current context when `None`), or, inside a pod, of the
/// cluster the pod runs in — as `kubectl` finds it.
pub async fn connect(context: Option<String>) -> Result<kube::Client, ClusterError> {
    let config = match context {
        None => kube::Config::infer()
            .await
            // Its Display already says everything its sources say.
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?,
        Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
            context: Some(context),
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(ClusterError::Client)
}

/// Runs cluster mode until Ctrl-C or SIGTERM.
pub async fn serve(opts: Options) -> Result<(), ClusterError> {
    let client = connect(None).await?;
    let source = ca_secret::sync(client.clone(), &opts.namespace, &opts.ca).await?;
    tracing::info!(secret = source, namespace = %opts.namespace, "CA files from the cluster");
    let pool = loupe_db::connect(&opts.database_url, 8)
        .await
        .map_err(loupe_control::ControlError::from)?;
    let control =
        ControlPlane::start_with_settings(pool, &opts.ca, opts.endpoint_grace, opts.trace_sampling)
            .await?;
    let leader = leader::elect(client.clone(), &opts.namespace, opts.identity.clone());
    let reporter = kube::runtime::events::Reporter {
        controller: loupe_k8s::manifest::CONTROL_SERVICE.into(),
        instance: Some(opts.identity.clone()),
    };
    let control = control.with_server_names(loupe_k8s::webhook::service_dns_names());
    let (control, _cluster) = attach(client.clone(), control, leader.clone(), reporter);
    let listener = TcpListener::bind(opts.listen).await.map_err(|source| {
        loupe_control::ControlError::Bind {
            addr: opts.listen,
            source,
        }
    })?;
    let _webhooks = match opts.webhook_listen {
        Some(addr) => Some(
            webhooks::start(
                client,
                control.ca().clone(),
                addr,
                leader,
                Some(authors::recorder(control.store().pool().clone())),
            )
            .await?,
        ),
        None => None,
    };
    tracing::info!(listen = %opts.listen, webhooks = ?opts.webhook_listen, "control plane serving in cluster mode");
    control
        .serve(listener, loupe_control::shutdown_signal())
        .await?;
    Ok(())
}
