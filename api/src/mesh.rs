//! The mesh's own state: `GET /api/proxy-status` (as `istioctl
//! proxy-status`), `GET /api/components` (`loupe demo`'s supervised
//! parts) and `GET /api/health` (the console itself).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether a proxy runs the newest config revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sync {
    /// Connected and ACKed the newest revision.
    Synced,
    /// Connected, newest revision neither ACKed nor NACKed yet.
    Stale,
    /// Connected, refused the newest revision (see `nack_error`).
    Nacked,
    Disconnected,
}

impl Sync {
    pub fn as_str(self) -> &'static str {
        match self {
            Sync::Synced => "SYNCED",
            Sync::Stale => "STALE",
            Sync::Nacked => "NACKED",
            Sync::Disconnected => "DISCONNECTED",
        }
    }
}

/// One proxy the control plane has seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProxyStatus {
    pub namespace: String,
    pub workload: String,
    pub service_account: String,
    pub address: String,
    pub gateway: bool,
    pub connected: bool,
    /// The newest config revision it applied.
    pub acked_revision: Option<i64>,
    /// The newest config revision it refused, and why.
    pub nacked_revision: Option<i64>,
    pub nack_error: Option<String>,
    pub last_seen: DateTime<Utc>,
    pub sync: Sync,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProxyStatusList {
    /// The newest config revision.
    pub config_revision: i64,
    /// How many proxies run it ("applied by N of M").
    pub synced: usize,
    pub connected: usize,
    pub proxies: Vec<ProxyStatus>,
}

/// One supervised process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Part {
    pub name: String,
    /// Its process while it runs.
    pub pid: Option<u32>,
    pub running: bool,
    /// Restarts so far (0: still its first run).
    pub restarts: u32,
    /// When its current (or last) run started.
    pub started_at: DateTime<Utc>,
    /// How its last run ended (`signal: 9 (SIGKILL)`, `exit status: 1`).
    pub last_exit: Option<String>,
    pub last_exit_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Components {
    /// Whether a supervisor (`loupe demo`) reports its parts.
    pub supervised: bool,
    pub parts: Vec<Part>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Ok,
    Unavailable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DatabaseStatus {
    Ok,
    Unreachable,
}

/// `GET /api/health`: 200 with `ok`/`ok`, or 503 with `unavailable`/`unreachable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerHealth {
    pub status: ServiceStatus,
    pub database: DatabaseStatus,
}
