//! Throughput and error rate: per edge, requests per second over the window
//! and the share of 5xx responses (0..1); per node, the rates in and out.

use petgraph::Direction;

use crate::graph::model::Graph;

pub fn append(g: &mut Graph) {
    let secs = g.window.as_secs_f64();
    for e in g.graph.edge_weights_mut() {
        let t = &e.traffic;
        e.rps = t.requests as f64 / secs;
        e.error_rate = if t.requests > 0 {
            t.errors as f64 / t.requests as f64
        } else {
            0.0
        };
    }
    let nodes: Vec<_> = g.graph.node_indices().collect();
    for n in nodes {
        let sum = |dir| -> f64 { g.graph.edges_directed(n, dir).map(|e| e.weight().rps).sum() };
        let (rps_in, rps_out) = (sum(Direction::Incoming), sum(Direction::Outgoing));
        let node = &mut g.graph[n];
        node.rps_in = rps_in;
        node.rps_out = rps_out;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::appender::{testdata::row, traffic};
    use crate::graph::model::GraphType;

    #[test]
    fn rates_over_the_window() {
        let rows = vec![
            row(("a", "v1"), ("b", "v1"), "200", 90),
            row(("a", "v1"), ("b", "v1"), "503", 30),
            row(("a", "v1"), ("b", "v1"), "404", 0),
        ];
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        traffic::append(&mut g, &rows);
        append(&mut g);
        let e = g.graph.edge_weights().next().unwrap();
        assert_eq!(e.rps, 2.0);
        assert_eq!(e.error_rate, 0.25);
        let b = &g.graph[g.index_of("default/b-v1").unwrap()];
        assert_eq!((b.rps_in, b.rps_out), (2.0, 0.0));
    }
}
