//! Response time: p50, p95 and p99 per edge from its summed latency buckets.
//! An edge whose rows carried no buckets falls back to the mean
//! (`duration_sum / requests`) for all three, rather than showing nothing.

use crate::graph::model::Graph;

pub fn append(g: &mut Graph) {
    for e in g.graph.edge_weights_mut() {
        let t = &e.traffic;
        let mean = if t.requests > 0 {
            t.duration_sum_ms / t.requests as f64
        } else {
            0.0
        };
        let q = |q: f64| t.histogram.quantile(q).unwrap_or(mean);
        e.p50_ms = q(0.50);
        e.p95_ms = q(0.95);
        e.p99_ms = q(0.99);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::appender::{testdata::row, traffic};
    use crate::graph::model::GraphType;

    #[test]
    fn percentiles_come_from_the_buckets() {
        // All 10 requests in (5, 10]: p50 = 7.5, p99 = 9.95.
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        traffic::append(&mut g, &[row(("a", "v1"), ("b", "v1"), "200", 10)]);
        append(&mut g);
        let e = g.graph.edge_weights().next().unwrap();
        assert_eq!(e.p50_ms, 7.5);
        assert!((e.p99_ms - 9.95).abs() < 1e-9, "{}", e.p99_ms);
    }

    #[test]
    fn no_buckets_means_the_mean() {
        let mut r = row(("a", "v1"), ("b", "v1"), "200", 4);
        r.bucket_bounds_ms.clear();
        r.bucket_counts.clear();
        r.duration_sum_ms = 100.0;
        let mut g = Graph::new(GraphType::Workload, Duration::from_secs(60));
        traffic::append(&mut g, &[r]);
        append(&mut g);
        let e = g.graph.edge_weights().next().unwrap();
        assert_eq!((e.p50_ms, e.p99_ms), (25.0, 25.0));
    }
}
