//! `GET /api/graph?type=versioned-app|app|workload|service&window=60s&namespaces=a,b`.
//! `namespaces` (as in Kiali) keeps the traffic with either end in one of them;
//! `inject_service_nodes=true` puts service nodes between callers and workloads.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::model::{Graph, GraphType, Node};
use crate::AppState;
use crate::error::ApiError;
use crate::params;

const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new().route("/graph", get(graph))
}

#[derive(Deserialize)]
struct GraphQuery {
    #[serde(rename = "type")]
    graph_type: Option<String>,
    window: Option<String>,
    namespaces: Option<String>,
    inject_service_nodes: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct GraphResponse {
    #[serde(rename = "type")]
    pub graph_type: String,
    pub window_s: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<EdgeJson>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct EdgeJson {
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

impl GraphResponse {
    pub(super) fn from_graph(g: &Graph) -> GraphResponse {
        let mut nodes: Vec<&Node> = g.graph.node_weights().collect();
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
        GraphResponse {
            graph_type: match g.graph_type {
                GraphType::VersionedApp => "versioned-app",
                GraphType::App => "app",
                GraphType::Workload => "workload",
                GraphType::Service => "service",
            }
            .into(),
            window_s: g.window.as_secs_f64(),
            nodes: nodes.into_iter().cloned().collect(),
            edges,
        }
    }
}

async fn graph(
    State(state): State<AppState>,
    query: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<GraphResponse>, ApiError> {
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
