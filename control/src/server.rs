//! The control plane as a running thing: CA + store + registry + publisher +
//! config watcher + the gRPC server (TLS only), started together and
//! stopped together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use loupe_push::certificates_server::CertificatesServer;
use loupe_push::discovery_server::DiscoveryServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::authn::{Authenticator, BootstrapTokens};
use crate::ca::{CaError, CaOptions, CertificateAuthority};
use crate::certificates::CertificateService;
use crate::push::PushService;
use crate::registry::Registry;
use crate::snapshot::{Published, Publisher};
use crate::store::{ConfigStore, StoreError};

/// `loupe control`'s options.
#[derive(Clone, Debug)]
pub struct Options {
    pub database_url: String,
    /// Where proxies connect (gRPC over TLS), e.g. `127.0.0.1:15010`.
    pub listen: SocketAddr,
    /// The certificate authority's directory, trust domain and lifetimes.
    pub ca: CaOptions,
    /// How long a workload whose stream dropped stays an endpoint
    /// ([`crate::registry::ENDPOINT_GRACE`] by default).
    pub endpoint_grace: Duration,
    /// Percent of new traces sampled where no Telemetry resource says
    /// otherwise ([`crate::mesh::DEFAULT_TRACE_SAMPLING`] by default).
    pub trace_sampling: f64,
}

/// The largest message a proxy may send (a Hello, an ACK, a CSR): far
/// above any honest one, far below what would cost memory.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// The largest header block (metadata) a call may carry.
pub const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Database(#[from] loupe_db::DbError),
    #[error("loading the config failed")]
    Store(#[from] StoreError),
    #[error("cannot LISTEN for config changes on channel loupe_config")]
    Listen(#[source] sqlx::Error),
    #[error("cannot listen on {addr} (is another control plane running? choose another --listen)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the certificate authority in {dir} cannot start")]
    Ca {
        dir: std::path::PathBuf,
        #[source]
        source: CaError,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("the gRPC server failed")]
    Serve(#[source] tonic::transport::Error),
}

/// Runs the control plane until Ctrl-C or SIGTERM: opens the CA (a new
/// root on first start), connects (and migrates), serves the push stream
/// over TLS on `listen`, then ends every stream and marks the workloads
/// disconnected.
pub async fn serve(opts: Options) -> Result<(), ControlError> {
    let pool = loupe_db::connect(&opts.database_url, 8).await?;
    let control =
        ControlPlane::start_with_settings(pool, &opts.ca, opts.endpoint_grace, opts.trace_sampling)
            .await?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ControlError::Bind {
            addr: opts.listen,
            source,
        })?;
    tracing::info!(listen = %opts.listen, root = %control.ca().root_cert_path().display(), "control plane serving (TLS)");
    control.serve(listener, shutdown_signal()).await
}

/// A started control plane (config loaded, watcher running), ready to serve.
pub struct ControlPlane {
    ca: Arc<CertificateAuthority>,
    authenticator: Arc<dyn Authenticator>,
    store: ConfigStore,
    registry: Arc<Registry>,
    publisher: Arc<Publisher>,
    shutdown: watch::Sender<bool>,
    watcher: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
    debouncer: tokio::task::JoinHandle<()>,
    ca_reloader: tokio::task::JoinHandle<()>,
    /// DNS names the server certificate carries besides `localhost`.
    server_names: Vec<String>,
}

impl ControlPlane {
    /// [`ControlPlane::start_with_grace`] with [`crate::registry::ENDPOINT_GRACE`].
    pub async fn start(pool: PgPool, ca: &CaOptions) -> Result<Self, ControlError> {
        Self::start_with_grace(pool, ca, crate::registry::ENDPOINT_GRACE).await
    }

    /// Opens the CA, restores the workloads an earlier run left connected
    /// (they stay endpoints for `grace` unless they reconnect first; see
    /// [`crate::registry`]), loads the config, and starts following config
    /// changes.
    pub async fn start_with_grace(
        pool: PgPool,
        ca: &CaOptions,
        grace: Duration,
    ) -> Result<Self, ControlError> {
        Self::start_with_settings(pool, ca, grace, crate::mesh::DEFAULT_TRACE_SAMPLING).await
    }

    /// [`ControlPlane::start_with_grace`], sampling `trace_sampling` percent
    /// of new traces mesh-wide (see [`crate::mesh::settings`]).
    pub async fn start_with_settings(
        pool: PgPool,
        ca: &CaOptions,
        grace: Duration,
        trace_sampling: f64,
    ) -> Result<Self, ControlError> {
        let ca = Arc::new(
            CertificateAuthority::open(ca).map_err(|source| ControlError::Ca {
                dir: ca.dir.clone(),
                source,
            })?,
        );
        let store = ConfigStore::new(pool.clone());
        let registry = Arc::new(Registry::with_grace(pool.clone(), grace));
        let restored = registry
            .restore()
            .await
            .map_err(|source| StoreError::Database {
                action: "restoring the workloads of an earlier run",
                source,
            })?;
        if restored > 0 {
            tracing::info!(
                workloads = restored,
                ?grace,
                "workloads of an earlier run stay endpoints until they reconnect or the grace ends"
            );
        }
        let publisher = Arc::new(Publisher::new(
            store.clone(),
            registry.clone(),
            crate::mesh::settings(ca.trust_domain(), trace_sampling),
        ));
        let (shutdown, shutdown_rx) = watch::channel(false);
        // Listen before the first load, so no change falls between the two.
        let watcher = crate::config_watch::start(&pool, publisher.clone(), shutdown_rx)
            .await
            .map_err(ControlError::Listen)?;
        publisher.refresh_config().await?;
        let sweeper = tokio::spawn(sweep_departed(registry.clone(), publisher.clone()));
        let ca_reloader = tokio::spawn(reload_ca(ca.clone()));
        let debouncer = tokio::spawn(crate::debounce::run(
            publisher.clone(),
            crate::debounce::Debounce::default(),
        ));
        Ok(ControlPlane {
            ca,
            authenticator: Arc::new(BootstrapTokens::new(pool.clone())),
            store,
            registry,
            publisher,
            shutdown,
            watcher,
            sweeper,
            debouncer,
            ca_reloader,
            server_names: Vec::new(),
        })
    }

    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    pub fn store(&self) -> &ConfigStore {
        &self.store
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// What builds and publishes the snapshots (cluster mode gives it the
    /// platform's registry, see [`Publisher::set_platform`]).
    pub fn publisher(&self) -> &Arc<Publisher> {
        &self.publisher
    }

    /// The DNS names proxies dial this control plane by (cluster mode: its
    /// Service's names), put in the server certificate.
    pub fn with_server_names(mut self, names: Vec<String>) -> Self {
        self.server_names = names;
        self
    }

    /// Authenticates proxies with `authenticator` instead of local mode's
    /// bootstrap tokens (cluster mode: TokenReview).
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// The snapshot proxies get now, and every later one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.publisher.subscribe()
    }

    /// The push service, to mount in a tonic server of the caller's own.
    pub fn service(&self) -> DiscoveryServer<PushService> {
        DiscoveryServer::new(PushService::new(
            self.authenticator.clone(),
            self.registry.clone(),
            self.publisher.clone(),
            self.shutdown.subscribe(),
        ))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(loupe_push::MAX_SNAPSHOT_SIZE)
    }

    /// The CA service (CSRs from authenticated proxies).
    pub fn certificate_service(&self) -> CertificatesServer<CertificateService> {
        CertificatesServer::new(CertificateService::new(
            self.ca.clone(),
            self.authenticator.clone(),
            self.publisher.clone(),
        ))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Serves the push stream over TLS on `listener` until `signal`
    /// completes, then stops: open streams end, the watcher stops,
    /// workloads are marked disconnected. The server certificate names
    /// `localhost`, 127.0.0.1 and the listener's own IP.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), ControlError> {
        let shutdown = self.shutdown.clone();
        let ips = listener
            .local_addr()
            .map(|a| vec![a.ip()])
            .unwrap_or_default();
        let tls = crate::tls::server_config(self.ca.clone(), ips, self.server_names.clone())?;
        let result = tonic::transport::Server::builder()
            // Notice proxies that vanished without closing their stream.
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .http2_keepalive_timeout(Some(Duration::from_secs(5)))
            // Metadata is a credential and a few headers: cap it.
            .http2_max_header_list_size(Some(MAX_HEADER_LIST_SIZE))
            .add_service(self.service())
            .add_service(self.certificate_service())
            .serve_with_incoming_shutdown(crate::tls::incoming(listener, tls), async move {
                signal.await;
                tracing::info!("control plane shutting down");
                shutdown.send_replace(true);
            })
            .await;
        self.stop().await;
        result.map_err(ControlError::Serve)
    }

    /// Ends every open stream and the watcher; marks workloads disconnected.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        self.sweeper.abort();
        self.debouncer.abort();
        self.ca_reloader.abort();
        let _ = self.watcher.await;
        if let Err(error) = self.registry.mark_all_disconnected().await {
            tracing::warn!(%error, "could not mark workloads disconnected");
        }
    }
}

/// Publishes whenever a departed workload's grace runs out (its endpoints leave).
async fn sweep_departed(registry: Arc<Registry>, publisher: Arc<Publisher>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        if registry.expire(std::time::Instant::now()) {
            publisher.publish_soon();
        }
    }
}

/// Follows the CA directory: a changed file is read again (see
/// [`crate::ca`]); one that does not open keeps the last good CA.
async fn reload_ca(ca: Arc<CertificateAuthority>) {
    let mut tick = tokio::time::interval(crate::ca::RELOAD_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(error) = ca.reload() {
            tracing::error!(dir = %ca.dir().display(), %error, "the CA directory changed but does not open; still signing with the last good CA");
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM; Ctrl-C still works");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
