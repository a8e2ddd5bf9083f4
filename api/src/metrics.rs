//! `GET /api/metrics`: request rate, errors by response code and latency
//! quantiles over time, per workload, app, service or edge, from the
//! stored rollups (Kiali's inbound/outbound metrics tabs).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the metrics are of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Workload,
    App,
    /// A service by its short name in `namespace` (inbound only).
    Service,
    /// From the workload `source_namespace/source_name` to `namespace/name`.
    Edge,
}

/// Traffic the entity receives, or sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Inbound,
    Outbound,
}

/// Whose proxy reported the requests (Istio's `reporter` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Reporter {
    Source,
    Destination,
}

impl Reporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

/// Query of `GET /api/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct MetricsQuery {
    /// `workload`, `app`, `service` or `edge`.
    pub entity: String,
    pub namespace: String,
    /// The workload, app or service; for an edge, its destination workload.
    pub name: String,
    /// An edge's source workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// `inbound` (default) or `outbound` (workloads and apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// `source` or `destination`; default: the destination's report for
    /// inbound and services, the source's for outbound and edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<String>,
    /// How far back, e.g. `10m` (default), `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// The width of one point, e.g. `30s`; default: a 60th of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// One step of the series: rates are per second over the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsPoint {
    /// The step's start.
    pub at: DateTime<Utc>,
    pub request_rate: f64,
    /// Share (0..1) of 5xx responses; 0 without requests.
    pub error_rate: f64,
    /// Requests per second by response code (`"200"`, `"503"`, …).
    pub responses: BTreeMap<String, f64>,
    /// Latency quantiles from the histogram buckets; `None` without requests.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metrics {
    pub entity: Entity,
    pub namespace: String,
    pub name: String,
    pub direction: Direction,
    pub reporter: Reporter,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub step_s: f64,
    /// Oldest first, one per step, steps without traffic included.
    pub points: Vec<MetricsPoint>,
}
