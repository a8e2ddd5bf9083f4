//! Security: the share (0..1) of an edge's requests that carried
//! `connection_security_policy="mutual_tls"`. A number rather than a flag,
//! because during a migration to STRICT an edge is partly plaintext.

use crate::graph::model::Graph;

pub fn append(g: &mut Graph) {
    for e in g.graph.edge_weights_mut() {
        let t = &e.traffic;
        e.mtls = if t.requests > 0 {
            t.mtls_requests as f64 / t.requests as f64
        } else {
            0.0
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::appender::{testdata::row, traffic};
    use crate::graph::model::GraphType;

    #[test]
    fn mtls_is_the_mutual_tls_share() {
        let mut plain = row(("a", "v1"), ("b", "v1"), "200", 1);
        plain.connection_security_policy = "none".into();
        let rows = vec![row(("a", "v1"), ("b", "v1"), "200", 3), plain];
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        traffic::append(&mut g, &rows);
        append(&mut g);
        assert_eq!(g.graph.edge_weights().next().unwrap().mtls, 0.75);
    }
}
