//! The graph under construction: a petgraph `StableDiGraph` of nodes and
//! edges keyed by node id, plus what the appenders compute on them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use serde::Serialize;

use super::histogram::Histogram;

/// Kiali's graph types: what a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphType {
    /// One node per (app, version); workloads without an `app` label stay workloads.
    VersionedApp,
    /// One node per app, all versions together.
    App,
    /// One node per workload (Deployment).
    Workload,
    /// One node per service: sources are their app's service, targets the `destination_service`.
    Service,
}

impl GraphType {
    pub fn parse(s: &str) -> Option<GraphType> {
        Some(match s {
            "versioned-app" | "versionedApp" => GraphType::VersionedApp,
            "app" => GraphType::App,
            "workload" => GraphType::Workload,
            "service" => GraphType::Service,
            _ => return None,
        })
    }
}

/// What a node is, in Kiali's words (`nodeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

/// Node colour, by error rate (see `appender::health`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Healthy,
    Degraded,
    Failure,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
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
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service: String,
    pub health: Health,
    /// Requests per second into and out of the node (sums of its edges).
    pub rps_in: f64,
    pub rps_out: f64,
    /// Error share (0..1) of the traffic that decides its health.
    pub error_rate: f64,
}

/// Raw counts summed over the window for one edge.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    pub requests: u64,
    pub errors: u64,
    /// Requests the destination's proxy reported, and how many of them
    /// arrived over mutual TLS: only the server side of a connection knows
    /// (the source reports `connection_security_policy="unknown"`, as in
    /// Istio), so the mTLS share is taken from these, as Kiali does.
    pub destination_requests: u64,
    pub mtls_requests: u64,
    pub duration_sum_ms: f64,
    pub histogram: Histogram,
    /// Requests per response code ("200", "503", …).
    pub codes: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edge {
    pub traffic: Traffic,
    pub rps: f64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mtls: f64,
}

/// The graph with its id index, passed through every appender.
pub struct Graph {
    pub graph_type: GraphType,
    pub window: Duration,
    /// Put a service node between a caller and the workloads behind the
    /// service (Kiali's option of the same name); off by default.
    pub inject_service_nodes: bool,
    pub graph: StableDiGraph<Node, Edge>,
    ids: HashMap<String, NodeIndex>,
}

impl Graph {
    pub fn new(graph_type: GraphType, window: Duration) -> Graph {
        Graph {
            graph_type,
            window,
            inject_service_nodes: false,
            graph: StableDiGraph::new(),
            ids: HashMap::new(),
        }
    }

    /// The node with `node.id`, added if new; a new workload joins the list.
    pub fn node(&mut self, node: Node) -> NodeIndex {
        if let Some(&i) = self.ids.get(&node.id) {
            let existing = &mut self.graph[i];
            for w in node.workloads {
                if !existing.workloads.contains(&w) {
                    existing.workloads.push(w);
                    existing.workloads.sort();
                }
            }
            existing.workload = match existing.workloads.as_slice() {
                [only] => only.clone(),
                _ => String::new(),
            };
            return i;
        }
        let id = node.id.clone();
        let i = self.graph.add_node(node);
        self.ids.insert(id, i);
        i
    }

    /// The edge `from → to`, added empty if new.
    pub fn edge(&mut self, from: NodeIndex, to: NodeIndex) -> EdgeIndex {
        match self.graph.find_edge(from, to) {
            Some(e) => e,
            None => self.graph.add_edge(from, to, Edge::default()),
        }
    }

    pub fn remove_node(&mut self, i: NodeIndex) {
        if let Some(n) = self.graph.remove_node(i) {
            self.ids.remove(&n.id);
        }
    }

    pub fn index_of(&self, id: &str) -> Option<NodeIndex> {
        self.ids.get(id).copied()
    }
}
