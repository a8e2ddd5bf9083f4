//! The appenders, run in this order by [`super::build`]:
//!
//! 1. [`traffic`]: rollup rows → nodes and edges with summed counts. First,
//!    because everything else reads the counts.
//! 2. [`dead_node`]: drops edges without requests in the window and nodes
//!    left without edges. Before the rates, so nothing is computed (or
//!    coloured) for traffic that is gone.
//! 3. [`response_time`]: p50/p95/p99 from the summed latency histograms.
//! 4. [`throughput`]: requests per second and error rate per edge, rates in
//!    and out per node.
//! 5. [`security`]: the mTLS share per edge.
//! 6. [`health`]: node colour from the error rates of step 4. Last, because
//!    it reads what the others computed.

pub mod dead_node;
pub mod health;
pub mod response_time;
pub mod security;
pub mod throughput;
pub mod traffic;

#[cfg(test)]
pub(crate) mod testdata {
    use crate::graph::rollup::Rollup;

    /// A source-reported row `src → dst` (workload names `APP-VERSION`).
    pub fn row(src: (&str, &str), dst: (&str, &str), code: &str, requests: i64) -> Rollup {
        Rollup {
            reporter: "source".into(),
            source_workload: format!("{}-{}", src.0, src.1),
            source_workload_namespace: "default".into(),
            source_app: src.0.into(),
            source_version: src.1.into(),
            destination_workload: format!("{}-{}", dst.0, dst.1),
            destination_workload_namespace: "default".into(),
            destination_app: dst.0.into(),
            destination_version: dst.1.into(),
            destination_service: format!("{}.default.svc.cluster.local", dst.0),
            response_code: code.into(),
            connection_security_policy: "mutual_tls".into(),
            requests,
            duration_sum_ms: 10.0 * requests as f64,
            bucket_bounds_ms: vec![5.0, 10.0, 25.0, f64::INFINITY],
            bucket_counts: vec![0, requests, requests, requests],
        }
    }
}
