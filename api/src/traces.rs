//! `GET /api/traces` (search) and `GET /api/traces/{trace_id}`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Query of `GET /api/traces`, Jaeger's search; empty values do not filter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct TraceQuery {
    /// A service the trace passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// An operation of that service's spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `key:value` (or `key=value`) pairs separated by commas or spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration_ms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_ms: Option<String>,
    /// RFC 3339 bounds of the trace's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// 1..=1000, default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// One search result, from the per-trace summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceSummary {
    pub trace_id: String,
    /// Empty until the root span has arrived.
    pub root_service: String,
    pub root_operation: String,
    pub start: DateTime<Utc>,
    pub duration_ms: f64,
    pub span_count: i32,
    pub error_count: i32,
    pub services: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trace {
    pub trace_id: String,
    pub spans: Vec<Span>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Span {
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub service: String,
    pub operation: String,
    /// OTLP `SpanKind` (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i16,
    pub start: DateTime<Utc>,
    pub duration_ms: f64,
    /// OTLP status (0 unset, 1 ok, 2 error).
    pub status_code: i16,
    /// The span's attributes, OTLP values as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Span {
    pub const STATUS_ERROR: i16 = 2;
}
