//! `GET /api/audit`: who changed which resource when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Query of `GET /api/audit`; empty values do not filter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A kind (`VirtualService`, `vs`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// 1..=1000, default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One line of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `created`, `configured` or `deleted`.
    pub action: String,
    /// `Kind/namespace/name`.
    pub resource: String,
    /// The revision the change wrote.
    pub revision: Option<i32>,
}
