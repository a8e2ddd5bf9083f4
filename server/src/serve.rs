//! Running the console server: connect (and migrate), bind, serve until
//! Ctrl-C or SIGTERM, then finish in-flight requests and close event streams.
//!
//! The listener is hyper-util's, not `axum::serve`, for two bounds a public
//! console needs: at most [`Options::max_connections`] connections at once
//! (past that, new ones wait in the kernel's backlog) and a deadline for a
//! request's headers ([`HEADER_READ_TIMEOUT`]), so slow clients cannot hold
//! connections open forever. With [`Options::tls`] it serves HTTPS
//! ([`crate::tls`]); the handshake must finish within the same deadline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use crate::AppState;
use crate::auth::AuthConfig;
use crate::state::Limits;

/// How long a client may take to send a request's headers (HTTP/1).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What `loupe console` passes in.
#[derive(Clone, Debug)]
pub struct Options {
    pub database_url: String,
    pub listen: SocketAddr,
    /// The built frontend (`frontend/dist`); without it only `/api` is served.
    pub static_dir: Option<PathBuf>,
    pub auth: AuthConfig,
    pub limits: Limits,
    /// Connections served at once.
    pub max_connections: usize,
    /// The supervisor's record of the mesh's parts (`loupe demo` passes it).
    pub components_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate and key (cookies become `Secure`).
    pub tls: Option<crate::tls::TlsFiles>,
}

impl Options {
    /// Logins required, default limits, no frontend.
    pub fn new(database_url: impl Into<String>, listen: SocketAddr) -> Options {
        Options {
            database_url: database_url.into(),
            listen,
            static_dir: None,
            auth: AuthConfig::default(),
            limits: Limits::default(),
            max_connections: 1024,
            components_file: None,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Database(#[from] loupe_db::DbError),
    #[error(
        "cannot listen on {addr}: {source} (is another console running? pick another --listen)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--static-dir {}: no index.html there (build the frontend first, e.g. `trunk build` in frontend/)",
        path.display()
    )]
    StaticDir { path: PathBuf },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(options: Options) -> Result<(), ServerError> {
    serve_until(options, stop_requested()).await
}

/// Serves until `stop` completes (how an embedding process or a test stops
/// it), then lets in-flight requests finish and ends the event streams.
pub async fn serve_until(
    options: Options,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if let Some(dir) = &options.static_dir
        && !dir.join("index.html").is_file()
    {
        return Err(ServerError::StaticDir { path: dir.clone() });
    }
    let tls = match &options.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            files,
        )?)),
        None => None,
    };
    let mut auth = options.auth.clone();
    auth.secure_cookies |= tls.is_some();
    let pool = loupe_db::connect(&options.database_url, 16).await?;
    let state = AppState::new(pool)
        .with_auth(auth)
        .with_limits(options.limits)
        .with_components_file(options.components_file.clone());
    let app = match &options.static_dir {
        Some(dir) => crate::app_with_static(state.clone(), dir),
        None => crate::app(state.clone()),
    };
    let addr = options.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        listen = %local,
        static_dir = ?options.static_dir,
        anonymous_viewer = options.auth.anonymous_viewer,
        "console serving on {}://{local}",
        if tls.is_some() { "https" } else { "http" }
    );

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let slot = tokio::select! {
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // Out of file descriptors and the like: pause, not die.
                    tracing::warn!(%error, "accepting a console connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Handlers see the client's address (`ConnectInfo`), e.g. the login throttle.
        let service = TowerToHyperService::new(tower::Layer::layer(
            &axum::Extension(axum::extract::ConnectInfo(peer)),
            app.clone(),
        ));
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let conn =
                                builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(error)) => Err(error.into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "console connection ended with an error");
            }
            drop(slot);
        });
    }
    tracing::info!("console shutting down");
    state.shut_down();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("console connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}

/// Ctrl-C or SIGTERM (what `loupe demo` and Kubernetes send).
async fn stop_requested() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot watch Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
