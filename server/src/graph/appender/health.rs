//! Health: colours each node by the requests it served (its inbound edges)
//! — or, for a node nothing calls (the ingress, an outside client), the
//! requests it sent — judged by `loupe_api::health`'s thresholds (Kiali's
//! defaults, the same the browser uses). `error_rate` stays the 5xx share.

use loupe_api::health::RequestCounts;
use petgraph::Direction;

use crate::graph::model::Graph;

pub fn append(g: &mut Graph) {
    let nodes: Vec<_> = g.graph.node_indices().collect();
    for n in nodes {
        let totals = |dir| {
            let mut counts = RequestCounts::default();
            for edge in g.graph.edges_directed(n, dir) {
                counts.merge(&edge.weight().traffic.counts);
            }
            counts
        };
        let counts = match totals(Direction::Incoming) {
            c if c.requests == 0 => totals(Direction::Outgoing),
            inbound => inbound,
        };
        let node = &mut g.graph[n];
        node.error_rate = counts.share(loupe_api::health::ErrorClass::Http5xx);
        node.health = counts.health();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::appender::{testdata::row, traffic};
    use crate::graph::model::{GraphType, Health};

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
    fn client_errors_count_from_ten_percent() {
        let rows = vec![
            row(("a", "v1"), ("b", "v1"), "200", 91),
            row(("a", "v1"), ("b", "v1"), "404", 9),
            row(("a", "v1"), ("c", "v1"), "200", 85),
            row(("a", "v1"), ("c", "v1"), "403", 15),
        ];
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        traffic::append(&mut g, &rows);
        append(&mut g);
        let node = |id: &str| &g.graph[g.index_of(id).unwrap()];
        assert_eq!(node("default/b-v1").health, Health::Healthy);
        assert_eq!(node("default/c-v1").health, Health::Degraded);
        assert_eq!(
            node("default/c-v1").error_rate,
            0.0,
            "error_rate is the 5xx share"
        );
    }
}
