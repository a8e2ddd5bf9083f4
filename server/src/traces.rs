//! Trace search and trace view, Jaeger-style:
//! `GET /api/traces?service=&operation=&tags=k:v&min_duration_ms=&max_duration_ms=&start=&end=&limit=`
//! reads `trace_summaries` (one row per trace, newest first; the GIN index
//! on `services` serves the service filter), touching `spans` only by trace
//! id for the operation and tag filters. A graph edge (`source_workload=…&
//! destination_workload=…`, [`EdgeCrossing`]) is matched on the candidate
//! trace's spans too: the source's CLIENT span joined to the destination's
//! SERVER span by parent id. `sort=longest_first` gives an edge's slowest
//! traces. `GET /api/traces/{trace_id}` returns
//! the trace's spans in start order.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use std::collections::BTreeMap;

use axum::Json;
use chrono::{DateTime, Utc};
use loupe_api::error::ErrorBody;
use loupe_api::traces::{EdgeCrossing, Span, Trace, TraceQuery, TraceSort, TraceSummary};
use sqlx::{Postgres, QueryBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::params;

const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(trace))
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Search {
    service: Option<String>,
    operation: Option<String>,
    tags: serde_json::Map<String, serde_json::Value>,
    limit: u64,
    min_duration_ms: Option<f64>,
    max_duration_ms: Option<f64>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    sort: TraceSort,
    edge: Option<EdgeCrossing>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Search {
    pub(crate) fn parse(q: TraceQuery) -> Result<Search, ApiError> {
        let limit = match non_empty(q.limit) {
            Some(l) => params::bounded("limit", &l, 1, MAX_LIMIT)?,
            None => DEFAULT_LIMIT,
        };
        let millis =
            |name, v: Option<String>| non_empty(v).map(|v| params::millis(name, &v)).transpose();
        let time = |name, v: Option<String>| {
            non_empty(v)
                .map(|v| params::timestamp(name, &v))
                .transpose()
        };
        let sort = match non_empty(q.sort) {
            Some(v) => TraceSort::parse(&v).ok_or_else(|| {
                let all: Vec<&str> = TraceSort::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!("sort={v:?}: expected one of {}", all.join(", ")))
            })?,
            None => TraceSort::default(),
        };
        let lookback = non_empty(q.lookback)
            .map(|v| params::window("lookback", &v))
            .transpose()?;
        let list = |v: Option<String>| -> Vec<String> {
            non_empty(v)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let edge = EdgeCrossing {
            source_workloads: list(q.source_workload),
            source_app: non_empty(q.source_app),
            source_namespace: non_empty(q.source_namespace),
            destination_workloads: list(q.destination_workload),
            destination_service: non_empty(q.destination_service),
            destination_namespace: non_empty(q.destination_namespace),
        };
        let edge = (edge != EdgeCrossing::default()).then_some(edge);
        if let Some(e) = &edge
            && e.destination_workloads.is_empty()
            && e.destination_service.is_none()
        {
            return Err(ApiError::bad_request(
                "an edge needs its destination: destination_workload or destination_service",
            ));
        }
        let start = match time("start", q.start)? {
            Some(t) => Some(t),
            None => lookback
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| Utc::now() - d),
        };
        let s = Search {
            sort,
            edge,
            service: non_empty(q.service),
            operation: non_empty(q.operation),
            tags: parse_tags(q.tags.as_deref().unwrap_or(""))?,
            limit,
            min_duration_ms: millis("min_duration_ms", q.min_duration_ms)?,
            max_duration_ms: millis("max_duration_ms", q.max_duration_ms)?,
            start,
            end: time("end", q.end)?,
        };
        if let (Some(min), Some(max)) = (s.min_duration_ms, s.max_duration_ms)
            && min > max
        {
            return Err(ApiError::bad_request(format!(
                "min_duration_ms={min} is above max_duration_ms={max}"
            )));
        }
        if let (Some(start), Some(end)) = (s.start, s.end)
            && start > end
        {
            return Err(ApiError::bad_request(format!(
                "start={start} is after end={end}"
            )));
        }
        Ok(s)
    }
}

/// `k:v` pairs separated by commas or spaces (`http.status_code:500,error:true`),
/// all matched on one span of the trace, values compared as text.
fn parse_tags(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let mut tags = serde_json::Map::new();
    for pair in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match pair.split_once(':').or_else(|| pair.split_once('=')) {
            Some((k, v)) if !k.trim().is_empty() => {
                tags.insert(
                    k.trim().to_string(),
                    serde_json::Value::String(v.trim().to_string()),
                );
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "tags: {pair:?} is not key:value (e.g. tags=http.status_code:500)"
                )));
            }
        }
    }
    Ok(tags)
}

/// A row of [`search_query`]; the API's `TraceSummary` without sqlx.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    trace_id: String,
    root_service: String,
    root_operation: String,
    start: DateTime<Utc>,
    duration_ms: f64,
    span_count: i32,
    error_count: i32,
    services: Vec<String>,
}

impl From<SummaryRow> for TraceSummary {
    fn from(r: SummaryRow) -> Self {
        TraceSummary {
            trace_id: r.trace_id,
            root_service: r.root_service,
            root_operation: r.root_operation,
            start: r.start,
            duration_ms: r.duration_ms,
            span_count: r.span_count,
            error_count: r.error_count,
            services: r.services,
        }
    }
}

/// Traces that match, newest first.
#[utoipa::path(get, path = "/traces", tag = "traces", params(TraceQuery),
    responses((status = 200, body = Vec<TraceSummary>), (status = 400, body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    query: Result<Query<TraceQuery>, QueryRejection>,
) -> Result<Json<Vec<TraceSummary>>, ApiError> {
    let Query(q) = query?;
    let s = Search::parse(q)?;
    let rows = search_query("", s)
        .build_query_as::<SummaryRow>()
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::internal("searching trace_summaries"))?;
    Ok(Json(rows.into_iter().map(TraceSummary::from).collect()))
}

/// The search as SQL with only the filters asked for, so each plan can use
/// the index that serves it (`services` GIN, `start_time`) — a catch-all
/// `($1 IS NULL OR …)` query would get a generic plan that uses neither.
pub(crate) fn search_query(prefix: &'static str, s: Search) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(prefix);
    q.push(
        "SELECT t.trace_id, coalesce(t.root_service, '') AS root_service,
                coalesce(t.root_operation, '') AS root_operation, t.start_time AS start,
                EXTRACT(EPOCH FROM (t.end_time - t.start_time))::float8 * 1000.0 AS duration_ms,
                t.span_count, t.error_count, t.services
           FROM trace_summaries t WHERE true",
    );
    if let Some(service) = &s.service {
        q.push(" AND t.services @> ARRAY[")
            .push_bind(service.clone())
            .push("::text]");
    }
    if let Some(start) = s.start {
        q.push(" AND t.start_time >= ").push_bind(start);
    }
    if let Some(end) = s.end {
        q.push(" AND t.start_time <= ").push_bind(end);
    }
    if let Some(min) = s.min_duration_ms {
        q.push(" AND t.end_time - t.start_time >= make_interval(secs => ")
            .push_bind(min / 1000.0)
            .push(")");
    }
    if let Some(max) = s.max_duration_ms {
        q.push(" AND t.end_time - t.start_time <= make_interval(secs => ")
            .push_bind(max / 1000.0)
            .push(")");
    }
    // Operation and tags need the spans: only those of the candidate trace
    // (the `spans_trace` index), and of the asked-for service if any.
    let span_of_service = |q: &mut QueryBuilder<Postgres>| {
        q.push(" SELECT 1 FROM spans_with_resource s WHERE s.trace_id = t.trace_id");
        if let Some(service) = &s.service {
            q.push(" AND s.service = ").push_bind(service.clone());
        }
    };
    if let Some(operation) = &s.operation {
        q.push(" AND EXISTS (");
        span_of_service(&mut q);
        q.push(" AND s.operation = ")
            .push_bind(operation.clone())
            .push(")");
    }
    if !s.tags.is_empty() {
        // Every tag on the same span, compared as text (500 matches "500").
        q.push(" AND EXISTS (");
        span_of_service(&mut q);
        q.push(" AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(")
            .push_bind(serde_json::Value::Object(s.tags.clone()))
            .push(") w WHERE s.attributes ->> w.key IS DISTINCT FROM w.value))");
    }
    if let Some(edge) = &s.edge {
        push_edge(&mut q, edge);
    }
    q.push(match s.sort {
        TraceSort::MostRecent => " ORDER BY t.start_time DESC",
        TraceSort::LongestFirst => " ORDER BY t.end_time - t.start_time DESC, t.start_time DESC",
        TraceSort::ShortestFirst => " ORDER BY t.end_time - t.start_time, t.start_time DESC",
        TraceSort::MostSpans => " ORDER BY t.span_count DESC, t.start_time DESC",
        TraceSort::LeastSpans => " ORDER BY t.span_count, t.start_time DESC",
    });
    q.push(" LIMIT ").push_bind(s.limit as i64);
    q
}

/// `AND {alias} is a span of one of these workloads (in that namespace)`,
/// by the resource attributes Loupe's proxies (and Kubernetes-aware OTel
/// SDKs) send.
fn push_workloads(
    q: &mut QueryBuilder<Postgres>,
    alias: &str,
    workloads: &[String],
    app: Option<&String>,
    namespace: Option<&String>,
) {
    if !workloads.is_empty() {
        q.push(format!(
            " AND {alias}.attributes ->> 'resource.k8s.workload.name' = ANY("
        ))
        .push_bind(workloads.to_vec())
        .push(")");
    }
    if let Some(app) = app {
        q.push(format!(" AND {alias}.service = "))
            .push_bind(app.clone());
    }
    if let Some(ns) = namespace {
        q.push(format!(
            " AND coalesce({alias}.attributes ->> 'resource.k8s.namespace.name', \
                           {alias}.attributes ->> 'resource.service.namespace') = "
        ))
        .push_bind(ns.clone());
    }
}

/// The trace crossed `edge` ([`EdgeCrossing`]): spans of the candidate
/// trace only (the `spans_trace` index), joined on their parent.
fn push_edge(q: &mut QueryBuilder<Postgres>, edge: &EdgeCrossing) {
    let towards_service = |q: &mut QueryBuilder<Postgres>| {
        if let Some(fqdn) = edge.destination_fqdn() {
            // Envoy's cluster name: `outbound|9080|v1|reviews.default.svc.cluster.local`.
            q.push(" AND split_part(c.attributes ->> 'upstream_cluster', '|', 4) = ")
                .push_bind(fqdn);
        }
    };
    let source = |q: &mut QueryBuilder<Postgres>| {
        push_workloads(
            q,
            "c",
            &edge.source_workloads,
            edge.source_app.as_ref(),
            edge.source_namespace.as_ref(),
        );
    };
    let destination = |q: &mut QueryBuilder<Postgres>| {
        push_workloads(
            q,
            "d",
            &edge.destination_workloads,
            None,
            edge.destination_namespace.as_ref(),
        );
    };
    q.push(" AND EXISTS (");
    match (edge.has_source(), edge.destination_workloads.is_empty()) {
        // The source's CLIENT span answered by the destination's SERVER span.
        (true, false) => {
            q.push(
                "SELECT 1 FROM spans_with_resource c JOIN spans_with_resource d
                   ON d.trace_id = c.trace_id AND d.parent_span_id = c.span_id
                 WHERE c.trace_id = t.trace_id AND d.trace_id = t.trace_id",
            );
            q.push(format!(
                " AND c.kind = {} AND d.kind = {}",
                Span::KIND_CLIENT,
                Span::KIND_SERVER
            ));
            source(q);
            towards_service(q);
            destination(q);
        }
        // The source's CLIENT span towards the destination service.
        (true, true) => {
            q.push("SELECT 1 FROM spans_with_resource c WHERE c.trace_id = t.trace_id");
            q.push(format!(" AND c.kind = {}", Span::KIND_CLIENT));
            source(q);
            towards_service(q);
        }
        // From outside the mesh: the destination's span whose parent is
        // not in the trace (or that has none).
        (false, _) => {
            q.push("SELECT 1 FROM spans_with_resource d WHERE d.trace_id = t.trace_id");
            destination(q);
            if edge.destination_workloads.is_empty() {
                // Only a service is known: spans named after it (Envoy's
                // operation is `host:port/*`).
                if let Some(fqdn) = edge.destination_fqdn() {
                    q.push(" AND d.operation LIKE ").push_bind(format!(
                        "{}:%",
                        fqdn.replace('%', "\\%").replace('_', "\\_")
                    ));
                }
            }
            q.push(
                " AND NOT EXISTS (SELECT 1 FROM spans p
                    WHERE p.trace_id = t.trace_id AND p.span_id = d.parent_span_id)",
            );
        }
    }
    q.push(")");
}

/// The spans of one trace (`$1`), served by the `spans_trace` index.
pub(crate) const TRACE_SQL: &str =
    "SELECT span_id, NULLIF(parent_span_id, '') AS parent_span_id, service, operation, kind,
                start_time AS start, duration_us::float8 / 1000.0 AS duration_ms,
                status_code, attributes
           FROM spans_with_resource WHERE trace_id = $1
          ORDER BY start_time, span_id";

/// A row of [`TRACE_SQL`]; the API's `Span` without sqlx.
#[derive(sqlx::FromRow)]
struct SpanRow {
    span_id: String,
    parent_span_id: Option<String>,
    service: String,
    operation: String,
    kind: i16,
    start: DateTime<Utc>,
    duration_ms: f64,
    status_code: i16,
    attributes: sqlx::types::Json<BTreeMap<String, serde_json::Value>>,
}

impl From<SpanRow> for Span {
    fn from(r: SpanRow) -> Self {
        Span {
            span_id: r.span_id,
            parent_span_id: r.parent_span_id,
            service: r.service,
            operation: r.operation,
            kind: r.kind,
            start: r.start,
            duration_ms: r.duration_ms,
            status_code: r.status_code,
            attributes: r.attributes.0,
        }
    }
}

/// Every span of one trace, by start time.
#[utoipa::path(get, path = "/traces/{trace_id}", tag = "traces",
    params(("trace_id" = String, Path, description = "up to 32 hex digits")),
    responses((status = 200, body = Trace), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn trace(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    let id = trace_id.trim().to_ascii_lowercase();
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "{trace_id:?} is not a trace id: expected up to 32 hex digits"
        )));
    }
    let spans: Vec<Span> = sqlx::query_as::<_, SpanRow>(TRACE_SQL)
        .bind(&id)
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::internal("reading spans"))?
        .into_iter()
        .map(Span::from)
        .collect();
    if spans.is_empty() {
        return Err(ApiError::NotFound(format!("no trace with id {id}")));
    }
    Ok(Json(Trace {
        trace_id: id,
        spans,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_as_pairs() {
        let t = parse_tags("http.status_code:500, error=true").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["http.status_code"], "500");
        assert!(parse_tags("nocolon").is_err());
        assert!(parse_tags("").unwrap().is_empty());
    }

    #[test]
    fn inverted_ranges_are_refused() {
        let q = TraceQuery {
            min_duration_ms: Some("10".into()),
            max_duration_ms: Some("5".into()),
            ..TraceQuery::default()
        };
        assert!(Search::parse(q).is_err());
    }
}
