//! Running the console server: connect (and migrate), bind, serve until
//! Ctrl-C or SIGTERM, then finish in-flight requests and close event streams.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::AppState;

/// What `loupe console` passes in.
#[derive(Clone, Debug)]
pub struct Options {
    pub database_url: String,
    pub listen: SocketAddr,
    /// The built frontend (`frontend/dist`); without it only `/api` is served.
    pub static_dir: Option<PathBuf>,
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
    #[error("serving HTTP on {addr} failed: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
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
    let pool = loupe_db::connect(&options.database_url, 16).await?;
    let state = AppState::new(pool);
    let app = match &options.static_dir {
        Some(dir) => crate::app_with_static(state.clone(), dir),
        None => crate::app(state.clone()),
    };
    let addr = options.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(listen = %local, static_dir = ?options.static_dir, "console serving on http://{local}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("console shutting down");
            state.shut_down();
        })
        .await
        .map_err(|source| ServerError::Serve { addr, source })
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
