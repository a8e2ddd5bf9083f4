//! Reading `edge_rollups` for a window: the raw material of every graph.

use std::time::Duration;

use sqlx::PgPool;

use crate::error::ApiError;

/// The workload name Istio reports for a peer it cannot identify (traffic
/// from outside the mesh, or a destination that was never reached).
pub const UNKNOWN: &str = "unknown";

/// One row of `edge_rollups`, as the collector wrote it: the delta of one
/// `istio_requests_total` series (and its duration histogram) over one
/// scrape interval.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Rollup {
    pub reporter: String,
    pub source_workload: String,
    pub source_workload_namespace: String,
    pub source_app: String,
    pub source_version: String,
    pub destination_workload: String,
    pub destination_workload_namespace: String,
    pub destination_app: String,
    pub destination_version: String,
    pub destination_service: String,
    pub response_code: String,
    pub connection_security_policy: String,
    pub requests: i64,
    pub duration_sum_ms: f64,
    pub bucket_bounds_ms: Vec<f64>,
    pub bucket_counts: Vec<i64>,
}

/// The rollups of the last `window` (served by the `edge_rollups_ts` index).
pub async fn load(pool: &PgPool, window: Duration) -> Result<Vec<Rollup>, ApiError> {
    sqlx::query_as::<_, Rollup>(
        "SELECT reporter, source_workload, source_workload_namespace, source_app, source_version,
                destination_workload, destination_workload_namespace, destination_app,
                destination_version, destination_service, response_code,
                connection_security_policy, requests, duration_sum_ms,
                bucket_bounds_ms, bucket_counts
           FROM edge_rollups
          WHERE ts > now() - make_interval(secs => $1)",
    )
    .bind(window.as_secs_f64())
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal("reading edge_rollups"))
}
