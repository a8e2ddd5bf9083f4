//! An expression over one graph: which nodes and edges it selects, and the
//! graph with the hidden ones taken out (a hidden node takes its edges).
//! Text compares case-insensitively, as a user typing `reviews` expects.

use std::collections::{HashMap, HashSet};

use loupe_api::graph::{Edge, Graph, Node, NodeType};

use super::lex::Op;
use super::operand::{Field, Flag, Target};
use super::parse::{Clause, Criterion, Expr};
use crate::graph::health::Health;

/// An edge's key: (source id, target id).
pub type EdgeKey = (String, String);

/// What an expression selected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selected {
    pub nodes: HashSet<String>,
    pub edges: HashSet<EdgeKey>,
}

impl Selected {
    pub fn has_edge(&self, e: &Edge) -> bool {
        self.edges.contains(&(e.source.clone(), e.target.clone()))
    }
}

/// What the node-level operands need beyond the node itself.
struct Context<'g> {
    has_inbound: HashSet<&'g str>,
    rps_out: HashMap<&'g str, f64>,
}

impl<'g> Context<'g> {
    fn of(graph: &'g Graph) -> Context<'g> {
        Context {
            has_inbound: graph.edges.iter().map(|e| e.target.as_str()).collect(),
            rps_out: graph
                .nodes
                .iter()
                .map(|n| (n.id.as_str(), n.rps_out))
                .collect(),
        }
    }
}

pub fn select(expr: &Expr, graph: &Graph) -> Selected {
    let cx = Context::of(graph);
    let nodes = graph
        .nodes
        .iter()
        .filter(|n| expr.clauses.iter().any(|c| clause_node(c, n, &cx)))
        .map(|n| n.id.clone())
        .collect();
    let edges = graph
        .edges
        .iter()
        .filter(|e| expr.clauses.iter().any(|c| clause_edge(c, e, &cx)))
        .map(|e| (e.source.clone(), e.target.clone()))
        .collect();
    Selected { nodes, edges }
}

/// The graph without what `expr` selects: hidden nodes go with every edge
/// that touches them.
pub fn hide(expr: &Expr, graph: &Graph) -> Graph {
    let hidden = select(expr, graph);
    Graph {
        graph_type: graph.graph_type,
        window_s: graph.window_s,
        nodes: graph
            .nodes
            .iter()
            .filter(|n| !hidden.nodes.contains(&n.id))
            .cloned()
            .collect(),
        edges: graph
            .edges
            .iter()
            .filter(|e| {
                !hidden.has_edge(e)
                    && !hidden.nodes.contains(&e.source)
                    && !hidden.nodes.contains(&e.target)
            })
            .cloned()
            .collect(),
    }
}

fn clause_node(c: &Clause, n: &Node, cx: &Context<'_>) -> bool {
    c.target != Target::Edge && c.criteria.iter().all(|k| node_holds(k, n, cx))
}

fn clause_edge(c: &Clause, e: &Edge, cx: &Context<'_>) -> bool {
    c.target != Target::Node && c.criteria.iter().all(|k| edge_holds(k, e, cx))
}

/// The name Kiali matches `name` against: the app, else workload, else service.
fn node_name(n: &Node) -> &str {
    [&n.app, &n.workload, &n.service]
        .into_iter()
        .find(|s| !s.is_empty())
        .map_or(n.id.as_str(), String::as_str)
}

fn node_type(n: &Node) -> &'static str {
    match n.node_type {
        NodeType::App | NodeType::VersionedApp => "app",
        NodeType::Workload => "workload",
        NodeType::Service => "service",
        NodeType::Unknown => "unknown",
    }
}

fn node_holds(k: &Criterion, n: &Node, cx: &Context<'_>) -> bool {
    match k {
        Criterion::Text { field, op, value } => {
            let have = match field {
                Field::Name => node_name(n),
                Field::App => &n.app,
                Field::Version => &n.version,
                Field::Namespace => &n.namespace,
                Field::Workload => {
                    // A node of several workloads matches by any of them.
                    return if n.workloads.is_empty() {
                        text(op, &n.workload, value)
                    } else if is_negative(*op) {
                        n.workloads.iter().all(|w| text(op, w, value))
                    } else {
                        n.workloads.iter().any(|w| text(op, w, value))
                    };
                }
                Field::Service => &n.service,
                Field::NodeType => node_type(n),
                Field::Protocol => return false,
                _ => return false,
            };
            text(op, have, value)
        }
        Criterion::Number { field, op, value } => {
            let have = match field {
                Field::HttpIn | Field::Rps => n.rps_in,
                Field::HttpOut => n.rps_out,
                Field::HttpErr => n.error_rate * 100.0,
                _ => return false,
            };
            number(*op, have, *value)
        }
        Criterion::Flag { flag, negated } => {
            let health = Health::of_node(n);
            let holds = match flag {
                Flag::Sidecar => n.node_type != NodeType::Unknown && !n.id.starts_with("svc:"),
                Flag::TrafficSource => !cx.has_inbound.contains(n.id.as_str()),
                Flag::Healthy => health == Health::Healthy,
                Flag::Degraded => health == Health::Degraded,
                Flag::Failure => health == Health::Failure,
                Flag::Idle => health == Health::Idle,
                Flag::Mtls | Flag::Traffic => return false,
            };
            holds != *negated
        }
    }
}

fn edge_holds(k: &Criterion, e: &Edge, cx: &Context<'_>) -> bool {
    match k {
        Criterion::Text { field, op, value } => match field {
            Field::Protocol => text(op, &e.protocol, value),
            _ => false,
        },
        Criterion::Number { field, op, value } => {
            let have = match field {
                Field::Rps => e.rps,
                Field::HttpErr => e.error_rate * 100.0,
                Field::ResponseTime => e.p95_ms,
                Field::HttpTraffic => {
                    let out = cx.rps_out.get(e.source.as_str()).copied().unwrap_or(0.0);
                    if out > 0.0 { e.rps / out * 100.0 } else { 0.0 }
                }
                _ => return false,
            };
            number(*op, have, *value)
        }
        Criterion::Flag { flag, negated } => {
            let health = Health::of_edge(e);
            let holds = match flag {
                Flag::Mtls => e.mtls > 0.0,
                Flag::Traffic => e.rps > 0.0,
                Flag::Healthy => health == Health::Healthy,
                Flag::Degraded => health == Health::Degraded,
                Flag::Failure => health == Health::Failure,
                Flag::Idle => health == Health::Idle,
                Flag::Sidecar | Flag::TrafficSource => return false,
            };
            holds != *negated
        }
    }
}

fn is_negative(op: Op) -> bool {
    matches!(
        op,
        Op::Ne | Op::NotStartsWith | Op::NotEndsWith | Op::NotContains
    )
}

fn text(op: &Op, have: &str, want: &str) -> bool {
    let (have, want) = (have.to_lowercase(), want.to_lowercase());
    match op {
        Op::Eq => have == want,
        Op::Ne => have != want,
        Op::StartsWith => have.starts_with(&want),
        Op::EndsWith => have.ends_with(&want),
        Op::Contains => have.contains(&want),
        Op::NotStartsWith => !have.starts_with(&want),
        Op::NotEndsWith => !have.ends_with(&want),
        Op::NotContains => !have.contains(&want),
        // The parser refuses ordering operators on text.
        Op::Lt | Op::Gt | Op::Le | Op::Ge => false,
    }
}

fn number(op: Op, have: f64, want: f64) -> bool {
    match op {
        Op::Eq => have == want,
        Op::Ne => have != want,
        Op::Lt => have < want,
        Op::Gt => have > want,
        Op::Le => have <= want,
        Op::Ge => have >= want,
        // The parser refuses text operators on numbers.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;
    use loupe_api::health::Health as Judged;
    use std::collections::BTreeMap;

    fn node(id: &str, app: &str, version: &str, rps_in: f64, rps_out: f64) -> Node {
        Node {
            id: id.into(),
            node_type: if app.is_empty() {
                NodeType::Unknown
            } else {
                NodeType::VersionedApp
            },
            namespace: "default".into(),
            app: app.into(),
            version: version.into(),
            workload: format!("{app}-{version}"),
            workloads: vec![format!("{app}-{version}")],
            service: String::new(),
            health: Judged::Healthy,
            rps_in,
            rps_out,
            error_rate: 0.0,
        }
    }

    fn edge(s: &str, t: &str, rps: f64, codes: &[(&str, u64)], p95: f64, mtls: f64) -> Edge {
        Edge {
            source: s.into(),
            target: t.into(),
            protocol: "http".into(),
            rps,
            error_rate: {
                let all: u64 = codes.iter().map(|c| c.1).sum();
                let bad: u64 = codes
                    .iter()
                    .filter(|c| c.0.starts_with('5'))
                    .map(|c| c.1)
                    .sum();
                if all == 0 {
                    0.0
                } else {
                    bad as f64 / all as f64
                }
            },
            p95_ms: p95,
            mtls,
            responses: codes
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect::<BTreeMap<_, _>>(),
            ..Edge::default()
        }
    }

    /// unknown → productpage v1 → reviews v1 / v2 (v2 erring, slow), reviews v2 → ratings v1.
    fn bookinfo() -> Graph {
        Graph {
            nodes: vec![
                node("unknown", "", "", 0.0, 10.0),
                node("default/productpage/v1", "productpage", "v1", 10.0, 10.0),
                node("default/reviews/v1", "reviews", "v1", 4.0, 0.0),
                node("default/reviews/v2", "reviews", "v2", 6.0, 6.0),
                node("default/ratings/v1", "ratings", "v1", 6.0, 0.0),
            ],
            edges: vec![
                edge(
                    "unknown",
                    "default/productpage/v1",
                    10.0,
                    &[("200", 100)],
                    20.0,
                    0.0,
                ),
                edge(
                    "default/productpage/v1",
                    "default/reviews/v1",
                    4.0,
                    &[("200", 40)],
                    8.0,
                    1.0,
                ),
                edge(
                    "default/productpage/v1",
                    "default/reviews/v2",
                    6.0,
                    &[("200", 50), ("503", 1)],
                    250.0,
                    1.0,
                ),
                edge(
                    "default/reviews/v2",
                    "default/ratings/v1",
                    6.0,
                    &[("200", 60)],
                    3.0,
                    1.0,
                ),
            ],
            ..Graph::default()
        }
    }

    fn nodes(expr: &str) -> Vec<String> {
        let mut v: Vec<String> = select(&parse(expr).unwrap().unwrap(), &bookinfo())
            .nodes
            .into_iter()
            .collect();
        v.sort();
        v
    }

    fn edges(expr: &str) -> Vec<(String, String)> {
        let mut v: Vec<_> = select(&parse(expr).unwrap().unwrap(), &bookinfo())
            .edges
            .into_iter()
            .collect();
        v.sort();
        v
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn text_operators_on_nodes() {
        assert_eq!(
            nodes("app = reviews"),
            ids(&["default/reviews/v1", "default/reviews/v2"])
        );
        assert_eq!(
            nodes("app = REVIEWS and version != v1"),
            ids(&["default/reviews/v2"])
        );
        assert_eq!(nodes("name ^= rat"), ids(&["default/ratings/v1"]));
        assert_eq!(nodes("name $= page"), ids(&["default/productpage/v1"]));
        assert_eq!(
            nodes("name *= view"),
            ids(&["default/reviews/v1", "default/reviews/v2"])
        );
        assert_eq!(nodes("app !*= e and sidecar"), ids(&["default/ratings/v1"]));
        assert_eq!(
            nodes("app !^= r and sidecar"),
            ids(&["default/productpage/v1"])
        );
        assert_eq!(
            nodes("app !$= s and sidecar"),
            ids(&["default/productpage/v1"])
        );
        assert_eq!(nodes("wl = reviews-v2"), ids(&["default/reviews/v2"]));
        assert_eq!(nodes("ns = default").len(), 5);
        assert_eq!(nodes("node = unknown"), ids(&["unknown"]));
    }

    #[test]
    fn number_operators_on_nodes() {
        assert_eq!(nodes("httpin > 6"), ids(&["default/productpage/v1"]));
        assert_eq!(nodes("httpin >= 6").len(), 3);
        assert_eq!(nodes("httpin < 4"), ids(&["unknown"]));
        assert_eq!(
            nodes("httpin <= 4"),
            ids(&["default/reviews/v1", "unknown"])
        );
        assert_eq!(nodes("httpout = 0").len(), 2);
        assert_eq!(nodes("httpout != 0").len(), 3);
    }

    #[test]
    fn flags_on_nodes() {
        assert_eq!(nodes("!sidecar"), ids(&["unknown"]));
        assert_eq!(nodes("trafficsource"), ids(&["unknown"]));
        assert_eq!(nodes("sidecar").len(), 4);
    }

    #[test]
    fn edge_operands() {
        assert_eq!(
            edges("rt > 100"),
            [(
                "default/productpage/v1".to_string(),
                "default/reviews/v2".to_string()
            )]
        );
        assert_eq!(edges("%httperr > 1").len(), 1);
        assert!(edges("%httperr > 2").is_empty());
        assert_eq!(
            edges("!mtls"),
            [("unknown".to_string(), "default/productpage/v1".to_string())]
        );
        assert_eq!(edges("protocol = http").len(), 4);
        assert_eq!(edges("%httptraffic >= 60").len(), 3);
        assert_eq!(edges("degraded").len(), 1);
        assert_eq!(edges("traffic and rps < 5").len(), 1);
        // A node clause selects no edges, and the other way round.
        assert!(edges("app = reviews").is_empty());
        assert!(nodes("rt > 0").is_empty());
    }

    #[test]
    fn or_unions_node_and_edge_clauses() {
        let s = select(
            &parse("app = ratings or rt > 100").unwrap().unwrap(),
            &bookinfo(),
        );
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.edges.len(), 1);
    }

    #[test]
    fn hiding_a_node_takes_its_edges() {
        let g = hide(
            &parse("app = reviews and version = v2").unwrap().unwrap(),
            &bookinfo(),
        );
        assert_eq!(g.nodes.len(), 4);
        // productpage → reviews v2 and reviews v2 → ratings go with it.
        assert_eq!(g.edges.len(), 2);
        let g = hide(&parse("!mtls").unwrap().unwrap(), &bookinfo());
        assert_eq!((g.nodes.len(), g.edges.len()), (5, 3));
    }
}
