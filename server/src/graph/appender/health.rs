//! Health: colours each node by the 5xx share of the requests it served
//! (its inbound edges) — or, for a node nothing calls (the ingress, an
//! outside client), of the requests it sent. Thresholds are Kiali's defaults
//! for 5xx: any error is `degraded`, 10 % or more is `failure`.

use petgraph::Direction;

use crate::graph::model::{Graph, Health};

pub const FAILURE_AT: f64 = 0.10;

pub fn classify(error_rate: f64) -> Health {
    if error_rate >= FAILURE_AT {
        Health::Failure
    } else if error_rate > 0.0 {
        Health::Degraded
    } else {
        Health::Healthy
    }
}

pub fn append(g: &mut Graph) {
    let nodes: Vec<_> = g.graph.node_indices().collect();
    for n in nodes {
        let totals = |dir| {
            g.graph
                .edges_directed(n, dir)
                .fold((0u64, 0u64), |(r, e), edge| {
                    let t = &edge.weight().traffic;
                    (r + t.requests, e + t.errors)
                })
        };
        let (requests, errors) = match totals(Direction::Incoming) {
            (0, _) => totals(Direction::Outgoing),
            inbound => inbound,
        };
        let rate = if requests > 0 {
            errors as f64 / requests as f64
        } else {
            0.0
        };
        let node = &mut g.graph[n];
        node.error_rate = rate;
        node.health = classify(rate);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::appender::{testdata::row, traffic};
    use crate::graph::model::GraphType;

    #[test]
    fn nodes_are_coloured_by_inbound_errors() {
        let rows = vec![
            row(("a", "v1"), ("b", "v1"), "200", 99),
            row(("a", "v1"), ("b", "v1"), "500", 1),
            row(("a", "v1"), ("c", "v1"), "200", 8),
            row(("a", "v1"), ("c", "v1"), "503", 2),
            row(("a", "v1"), ("d", "v1"), "200", 5),
        ];
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        traffic::append(&mut g, &rows);
        append(&mut g);
        let health = |id: &str| g.graph[g.index_of(id).unwrap()].health;
        assert_eq!(health("default/b-v1"), Health::Degraded);
        assert_eq!(health("default/c-v1"), Health::Failure);
        assert_eq!(health("default/d-v1"), Health::Healthy);
        // `a` serves nothing: its outbound 3 errors in 115 requests decide.
        assert_eq!(health("default/a-v1"), Health::Degraded);
    }

    #[test]
    fn thresholds() {
        assert_eq!(classify(0.0), Health::Healthy);
        assert_eq!(classify(0.001), Health::Degraded);
        assert_eq!(classify(0.1), Health::Failure);
    }
}
