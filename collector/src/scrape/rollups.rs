//! Writing `edge_rollups` rows with one COPY per scrape round.

use sqlx::PgPool;

use super::delta::EdgeRollup;
use crate::writer::copy_text::CopyText;

const COPY_ROLLUPS: &str = "COPY edge_rollups (ts, interval_s, reporter, source_workload, \
     source_workload_namespace, source_app, source_version, destination_workload, \
     destination_workload_namespace, destination_app, destination_version, destination_service, \
     response_code, connection_security_policy, requests, duration_sum_ms, bucket_bounds_ms, \
     bucket_counts) FROM STDIN";

pub async fn write(pool: &PgPool, rows: &[EdgeRollup]) -> Result<u64, sqlx::Error> {
    let mut copy = CopyText::with_capacity(rows.len() * 400);
    for row in rows {
        copy.timestamp(row.ts).float(f64::from(row.interval_s));
        for label in &row.edge {
            copy.text(label);
        }
        copy.int(row.requests)
            .float(row.duration_sum_ms)
            .float_array(&row.bucket_bounds_ms)
            .int_array(&row.bucket_counts);
        copy.end_row();
    }
    let mut conn = pool.acquire().await?;
    let mut copy_in = conn.copy_in_raw(COPY_ROLLUPS).await?;
    copy_in.send(copy.as_bytes()).await?;
    copy_in.finish().await
}
