//! `GET /api/graph?type=versioned-app|app|workload|service&window=60s&namespaces=a,b`.
//! `namespaces` (as in Kiali) keeps the traffic with either end in one of them;
//! `inject_service_nodes=true` puts service nodes between callers and workloads.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use loupe_api::error::ErrorBody;
use loupe_api::graph::{Edge as EdgeJson, Graph as GraphJson, GraphQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{Graph, GraphType, Node};
use crate::AppState;
use crate::error::ApiError;
use crate::params;

const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(graph))
}

/// The graph's JSON: nodes and edges sorted by id, so answers are stable.
pub(super) fn response(g: &Graph) -> GraphJson {
    let mut nodes: Vec<Node> = g.graph.node_weights().cloned().collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    let mut edges: Vec<EdgeJson> = g
        .graph
        .edge_indices()
        .filter_map(|e| {
            let (from, to) = g.graph.edge_endpoints(e)?;
            let edge = &g.graph[e];
            Some(EdgeJson {
                source: g.graph[from].id.clone(),
                target: g.graph[to].id.clone(),
                protocol: "http".into(),
                rps: edge.rps,
                error_rate: edge.error_rate,
                p50_ms: edge.p50_ms,
                p95_ms: edge.p95_ms,
                p99_ms: edge.p99_ms,
                mtls: edge.mtls,
                requests: edge.traffic.requests,
                responses: edge.traffic.codes.clone(),
            })
        })
        .collect();
    edges.sort_by(|a, b| (&a.source, &a.target).cmp(&(&b.source, &b.target)));
    GraphJson {
        graph_type: g.graph_type,
        window_s: g.window.as_secs_f64(),
        nodes,
        edges,
    }
}

/// The service graph of the last `window`.
#[utoipa::path(get, path = "/graph", tag = "graph", params(GraphQuery),
    responses((status = 200, body = GraphJson), (status = 400, body = ErrorBody)))]
async fn graph(
    State(state): State<AppState>,
    query: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<GraphJson>, ApiError> {
    let Query(q) = query?;
    let graph_type = match q.graph_type.as_deref() {
        None | Some("") => GraphType::VersionedApp,
        Some(t) => GraphType::parse(t).ok_or_else(|| {
            ApiError::bad_request(format!(
                "type={t:?} is not a graph type: use versioned-app, app, workload or service"
            ))
        })?,
    };
    let window = match q.window.as_deref() {
        None | Some("") => DEFAULT_WINDOW,
        Some(w) => params::window("window", w)?,
    };
    let inject_service_nodes = match q.inject_service_nodes.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "inject_service_nodes={v:?} must be true or false"
            )));
        }
    };
    let namespaces: Vec<&str> = q
        .namespaces
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let mut rows = super::rollup::load(&state.pool, window).await?;
    if !namespaces.is_empty() {
        rows.retain(|r| {
            namespaces.contains(&r.source_workload_namespace.as_str())
                || namespaces.contains(&r.destination_workload_namespace.as_str())
        });
    }
    let started = std::time::Instant::now();
    let options = super::GraphOptions {
        graph_type,
        window,
        inject_service_nodes,
    };
    let response = super::build(options, &rows);
    tracing::debug!(
        rows = rows.len(),
        nodes = response.nodes.len(),
        edges = response.edges.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "graph built"
    );
    Ok(Json(response))
}
