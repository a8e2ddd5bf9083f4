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
    /// How far back from now the trace started (`30s`, `5m`, `1h`; Jaeger's
    /// lookback); `start` wins when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<String>,
    /// The order of the results, [`TraceSort`] (default `most_recent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    // A graph edge the trace crossed (see [`EdgeCrossing`]). Names as
    // Istio's metric labels; workloads comma-separated (an app node of
    // several versions has several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_workload: Option<String>,
    /// The source's canonical service (its `app`), for a source known only
    /// as a service (service graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_workload: Option<String>,
    /// `reviews` (with `destination_namespace`) or `reviews.default.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_namespace: Option<String>,
}

/// Jaeger's "Sort" of search results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TraceSort {
    /// Newest start first.
    #[default]
    MostRecent,
    /// Longest duration first: the slowest traces.
    LongestFirst,
    ShortestFirst,
    MostSpans,
    LeastSpans,
}

impl TraceSort {
    pub const ALL: [TraceSort; 5] = [
        TraceSort::MostRecent,
        TraceSort::LongestFirst,
        TraceSort::ShortestFirst,
        TraceSort::MostSpans,
        TraceSort::LeastSpans,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TraceSort::MostRecent => "most_recent",
            TraceSort::LongestFirst => "longest_first",
            TraceSort::ShortestFirst => "shortest_first",
            TraceSort::MostSpans => "most_spans",
            TraceSort::LeastSpans => "least_spans",
        }
    }

    /// As Jaeger's sort menu says it.
    pub fn words(self) -> &'static str {
        match self {
            TraceSort::MostRecent => "Most recent",
            TraceSort::LongestFirst => "Longest first",
            TraceSort::ShortestFirst => "Shortest first",
            TraceSort::MostSpans => "Most spans",
            TraceSort::LeastSpans => "Least spans",
        }
    }

    pub fn parse(s: &str) -> Option<TraceSort> {
        TraceSort::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A graph edge a trace crossed: a CLIENT span of the source's proxy whose
/// call the destination's proxy answered with a SERVER span (its child).
/// Without a source (callers outside the mesh), a span of the destination
/// whose parent is not in the trace; without a destination workload, a
/// CLIENT span of the source towards `destination_service`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeCrossing {
    pub source_workloads: Vec<String>,
    pub source_app: Option<String>,
    pub source_namespace: Option<String>,
    pub destination_workloads: Vec<String>,
    pub destination_service: Option<String>,
    pub destination_namespace: Option<String>,
}

impl EdgeCrossing {
    /// The query parameters that ask for this edge.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let mut push = |k, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                q.push((k, v));
            }
        };
        push("source_workload", Some(self.source_workloads.join(",")));
        push("source_app", self.source_app.clone());
        push("source_namespace", self.source_namespace.clone());
        push(
            "destination_workload",
            Some(self.destination_workloads.join(",")),
        );
        push("destination_service", self.destination_service.clone());
        push("destination_namespace", self.destination_namespace.clone());
        q
    }

    pub fn has_source(&self) -> bool {
        !self.source_workloads.is_empty() || self.source_app.is_some()
    }

    /// The destination service's FQDN, as in an Envoy cluster name.
    pub fn destination_fqdn(&self) -> Option<String> {
        let svc = self.destination_service.as_deref()?;
        Some(match (svc.contains('.'), &self.destination_namespace) {
            (false, Some(ns)) => format!("{svc}.{ns}.svc.cluster.local"),
            _ => svc.to_string(),
        })
    }
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
    /// OTLP `SpanKind`s.
    pub const KIND_SERVER: i16 = 2;
    pub const KIND_CLIENT: i16 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_round_trip_their_query_spelling() {
        for s in TraceSort::ALL {
            assert_eq!(TraceSort::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(TraceSort::parse("slowest"), None);
    }

    #[test]
    fn an_edge_asks_with_istio_label_names() {
        let e = EdgeCrossing {
            source_workloads: vec!["productpage-v1".into()],
            source_namespace: Some("default".into()),
            destination_workloads: vec!["reviews-v1".into(), "reviews-v2".into()],
            destination_namespace: Some("default".into()),
            ..EdgeCrossing::default()
        };
        assert_eq!(
            e.to_query(),
            [
                ("source_workload", "productpage-v1".to_string()),
                ("source_namespace", "default".into()),
                ("destination_workload", "reviews-v1,reviews-v2".into()),
                ("destination_namespace", "default".into()),
            ]
        );
        let svc = EdgeCrossing {
            destination_service: Some("reviews".into()),
            destination_namespace: Some("default".into()),
            ..EdgeCrossing::default()
        };
        assert_eq!(
            svc.destination_fqdn().as_deref(),
            Some("reviews.default.svc.cluster.local")
        );
        assert!(!svc.has_source());
    }
}
