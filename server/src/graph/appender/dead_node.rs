//! Dead-node removal: an edge without a request in the window (a series that
//! only reported zero deltas, e.g. after a canary moved all traffic away) is
//! dropped, then every node left without edges.

use crate::graph::model::Graph;

pub fn append(g: &mut Graph) {
    g.graph.retain_edges(|gr, e| gr[e].traffic.requests > 0);
    let dead: Vec<_> = g
        .graph
        .node_indices()
        .filter(|&n| g.graph.neighbors_undirected(n).next().is_none())
        .collect();
    for n in dead {
        g.remove_node(n);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::appender::{testdata::row, traffic};
    use crate::graph::model::GraphType;

    #[test]
    fn zero_traffic_edges_and_their_lonely_nodes_go() {
        let rows = vec![
            row(("productpage", "v1"), ("reviews", "v1"), "200", 0),
            row(("productpage", "v1"), ("reviews", "v3"), "200", 4),
        ];
        let mut g = Graph::new(GraphType::VersionedApp, Duration::from_secs(60));
        traffic::append(&mut g, &rows);
        assert_eq!(g.graph.node_count(), 3);
        append(&mut g);
        assert_eq!(g.graph.edge_count(), 1);
        assert!(g.index_of("default/reviews/v1").is_none());
        assert!(g.index_of("default/reviews/v3").is_some());
        assert!(g.index_of("default/productpage/v1").is_some());
    }
}
