//! The one state every handler shares.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::auth::{AuthConfig, LoginThrottle, Users};
use crate::config::ConfigStore;

/// Bounds on every API request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body read (413 past it).
    pub max_body_bytes: usize,
    /// Longest a handler may take to start its answer (408 past it; an
    /// event stream's body runs on after its start).
    pub request_timeout: Duration,
    /// Server-sent event streams open at once (503 past it).
    pub max_event_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_event_streams: 256,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Every config read and write goes through the control plane's store.
    pub store: ConfigStore,
    /// Console users, sessions and API tokens.
    pub users: Users,
    pub auth: Arc<AuthConfig>,
    pub login_throttle: Arc<LoginThrottle>,
    /// What [`crate::app`] allows per request (body size, time).
    pub limits: Limits,
    /// The supervisor's record of the mesh's parts, if any ([`crate::components`]).
    pub components_file: crate::components::ComponentsFile,
    /// The one poller behind every event stream, and their cap.
    pub events: Arc<crate::events::EventsHub>,
    /// Flipped once on shutdown so endless responses (SSE) end and the
    /// graceful shutdown does not wait for them forever.
    shutdown: Arc<watch::Sender<bool>>,
}

impl AppState {
    /// State over an already migrated pool (`loupe_db::connect`), with
    /// logins required and the default limits.
    pub fn new(pool: PgPool) -> AppState {
        AppState {
            store: ConfigStore::new(pool.clone()),
            users: Users::new(pool.clone()),
            auth: Arc::new(AuthConfig::default()),
            login_throttle: Arc::new(LoginThrottle::default()),
            limits: Limits::default(),
            components_file: Default::default(),
            events: Arc::new(crate::events::EventsHub::new(
                Limits::default().max_event_streams,
            )),
            pool,
            shutdown: Arc::new(watch::channel(false).0),
        }
    }

    pub fn with_auth(mut self, auth: AuthConfig) -> AppState {
        self.auth = Arc::new(auth);
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> AppState {
        self.limits = limits;
        self.events = Arc::new(crate::events::EventsHub::new(limits.max_event_streams));
        self
    }

    /// Where `loupe demo`'s supervisor keeps its record of the parts.
    pub fn with_components_file(mut self, path: Option<std::path::PathBuf>) -> AppState {
        self.components_file = crate::components::ComponentsFile(path);
        self
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
