//! `GET /api/graph`: Kiali's service graph for a time window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::health::{Health, RequestCounts};

/// Kiali's graph types: what a node stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum GraphType {
    /// One node per (app, version); workloads without an `app` label stay workloads.
    #[default]
    VersionedApp,
    /// One node per app, all versions together.
    App,
    /// One node per workload (Deployment).
    Workload,
    /// One node per service: sources are their app's service, targets the `destination_service`.
    Service,
}

impl GraphType {
    pub const ALL: [GraphType; 4] = [
        GraphType::VersionedApp,
        GraphType::App,
        GraphType::Workload,
        GraphType::Service,
    ];

    /// The query-string spelling (Kiali's `versionedApp` is read too).
    pub fn parse(s: &str) -> Option<GraphType> {
        match s {
            "versionedApp" => Some(GraphType::VersionedApp),
            s => GraphType::ALL.into_iter().find(|t| t.as_str() == s),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GraphType::VersionedApp => "versioned-app",
            GraphType::App => "app",
            GraphType::Workload => "workload",
            GraphType::Service => "service",
        }
    }
}

/// What a node is, in Kiali's words (`nodeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    App,
    #[serde(rename = "versionedApp")]
    VersionedApp,
    Workload,
    Service,
    /// Traffic whose source the mesh could not identify (outside callers).
    Unknown,
}

/// Query of `GET /api/graph`; empty values take the defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct GraphQuery {
    /// `versioned-app` (default), `app`, `workload` or `service`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub graph_type: Option<String>,
    /// How far back, e.g. `60s` (default), `5m`, `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Comma-separated: keep the traffic with either end in one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<String>,
    /// `true` puts service nodes between callers and workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject_service_nodes: Option<String>,
}

/// One node. Ids: `NS/app/version`, `NS/app`, `NS/workload`, `NS/service`
/// (service graph) or `svc:NS/service` (a service no workload answered
/// for), `unknown` (callers outside the mesh).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    pub id: String,
    pub node_type: NodeType,
    pub namespace: String,
    pub app: String,
    pub version: String,
    /// The node's workload when it has exactly one, else empty (see `workloads`).
    pub workload: String,
    pub workloads: Vec<String>,
    /// Service nodes: the short service name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// By [`crate::health`]'s thresholds over the requests it served (or,
    /// for a node nothing calls, sent).
    pub health: Health,
    /// Requests per second into and out of the node (sums of its edges).
    pub rps_in: f64,
    pub rps_out: f64,
    /// 5xx share (0..1) of the traffic that decides its health.
    pub error_rate: f64,
}

/// Traffic from one node to another over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Edge {
    pub source: String,
    pub target: String,
    pub protocol: String,
    pub rps: f64,
    /// Share (0..1) of 5xx responses.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Share (0..1) of requests over mutual TLS.
    pub mtls: f64,
    /// Requests in the window, in total and per response code.
    pub requests: u64,
    pub responses: BTreeMap<String, u64>,
}

impl Edge {
    /// The edge's requests by error class, from `responses`.
    pub fn counts(&self) -> RequestCounts {
        RequestCounts::from_http_codes(self.responses.iter().map(|(c, n)| (c.as_str(), *n)))
    }

    /// By [`crate::health`]'s thresholds.
    pub fn health(&self) -> Health {
        self.counts().health()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Graph {
    #[serde(rename = "type")]
    pub graph_type: GraphType,
    pub window_s: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_types_round_trip_their_query_spelling() {
        for t in GraphType::ALL {
            assert_eq!(GraphType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(
            GraphType::parse("versionedApp"),
            Some(GraphType::VersionedApp)
        );
        assert_eq!(GraphType::parse("pods"), None);
    }
}
