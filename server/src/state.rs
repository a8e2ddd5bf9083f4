//! The one state every handler shares.

use std::future::Future;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::config::ConfigStore;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Every config read and write goes through the control plane's store.
    pub store: ConfigStore,
    /// Flipped once on shutdown so endless responses (SSE) end and the
    /// graceful shutdown does not wait for them forever.
    shutdown: Arc<watch::Sender<bool>>,
}

impl AppState {
    /// State over an already migrated pool (`loupe_db::connect`).
    pub fn new(pool: PgPool) -> AppState {
        AppState {
            store: ConfigStore::new(pool.clone()),
            pool,
            shutdown: Arc::new(watch::channel(false).0),
        }
    }

    /// Ends every open event stream.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Completes once [`AppState::shut_down`] was called.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }
}
