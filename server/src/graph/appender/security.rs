//! Security: the share (0..1) of an edge's requests that the destination
//! reported with `connection_security_policy="mutual_tls"` (only the server
//! side knows; Kiali reads the destination reporter too). A number rather
//! than a flag, because during a migration to STRICT an edge is partly
//! plaintext.

use crate::graph::model::Graph;

pub fn append(g: &mut Graph) {
    for e in g.graph.edge_weights_mut() {
        let t = &e.traffic;
        e.mtls = if t.destination_requests > 0 {
            t.mtls_requests as f64 / t.destination_requests as f64
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
    fn mtls_is_the_mutual_tls_share_the_destination_reports() {
        let report = |reporter: &str, policy: &str, n| {
            let mut r = row(("a", "v1"), ("b", "v1"), "200", n);
            r.reporter = reporter.into();
            r.connection_security_policy = policy.into();
            r
        };
        let rows = vec![
            // The source never knows: Istio reports "unknown" there.
            report("source", "unknown", 4),
            report("destination", "mutual_tls", 3),
            report("destination", "none", 1),
        ];
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        traffic::append(&mut g, &rows);
        append(&mut g);
        assert_eq!(g.graph.edge_weights().next().unwrap().mtls, 0.75);
    }
}
