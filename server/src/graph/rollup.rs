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

/// The edge labels a rollup series is identified by.
const LABELS: &str =
    "reporter, source_workload, source_workload_namespace, source_app, source_version,
    destination_workload, destination_workload_namespace, destination_app, destination_version,
    destination_service, response_code, connection_security_policy, bucket_bounds_ms";

/// The rollups of the last `window`, summed per series in Postgres so a long
/// window moves one row per series instead of one per scrape interval. The
/// `edge_rollups_ts` index selects the rows; bucket arrays are summed element
/// by element (a row without buckets keeps its requests through the LEFT JOIN).
pub async fn load(pool: &PgPool, window: Duration) -> Result<Vec<Rollup>, ApiError> {
    // Built only from constants: nothing from the request is in it.
    sqlx::query_as::<_, Rollup>(sqlx::AssertSqlSafe(load_sql()))
        .bind(window.as_secs_f64())
        .fetch_all(pool)
        .await
        .map_err(ApiError::internal("reading edge_rollups"))
}

/// The query of [`load`]; `$1` is the window in seconds.
pub(crate) fn load_sql() -> String {
    format!(
        "WITH per_bucket AS (
            SELECT {LABELS}, u.i,
                   sum(u.c) AS c,
                   sum(r.requests) FILTER (WHERE u.i IS NULL OR u.i = 1) AS requests,
                   sum(r.duration_sum_ms) FILTER (WHERE u.i IS NULL OR u.i = 1) AS duration_sum_ms
              FROM edge_rollups r
              LEFT JOIN LATERAL unnest(r.bucket_counts) WITH ORDINALITY AS u(c, i) ON true
             WHERE r.ts > now() - make_interval(secs => $1)
             GROUP BY {LABELS}, u.i)
         SELECT {LABELS},
                coalesce(sum(requests), 0)::int8 AS requests,
                coalesce(sum(duration_sum_ms), 0)::float8 AS duration_sum_ms,
                coalesce(array_agg(c::int8 ORDER BY i) FILTER (WHERE i IS NOT NULL), '{{}}') AS bucket_counts
           FROM per_bucket
          GROUP BY {LABELS}"
    )
}
