//! `GET /api/events`: the server-sent events' names and payloads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The event sent when the collector has written newer rollups.
pub const GRAPH_EVENT: &str = "graph";
/// The event sent when a config revision is written.
pub const CONFIG_EVENT: &str = "config";

/// Payload of a `graph` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphEvent {
    pub at: DateTime<Utc>,
    /// The newest rollup's time; `None` before the first.
    pub latest: Option<DateTime<Utc>>,
}

/// Payload of a `config` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigEvent {
    pub at: DateTime<Utc>,
    /// The newest config revision's id (0 before the first).
    pub version: i64,
}
