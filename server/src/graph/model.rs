//! The graph under construction: a petgraph `StableDiGraph` of nodes and
//! edges keyed by node id, plus what the appenders compute on them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};

use loupe_api::health::RequestCounts;

use super::histogram::Histogram;

pub use loupe_api::graph::{GraphType, Node, NodeType};
pub use loupe_api::health::Health;

/// Raw counts summed over the window for one edge.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    pub requests: u64,
    /// 5xx responses (the edge's `error_rate`).
    pub errors: u64,
    /// Requests by error class, which health is judged on.
    pub counts: RequestCounts,
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
