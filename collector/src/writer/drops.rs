//! Accounting of telemetry the collector could not keep: every drop is
//! logged when it happens and written to `telemetry_drops` (aggregated per
//! signal and reason) by [`DropRecorder::flush`], which the collector runs
//! every second and once more at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;

/// Shared drop counters (cheap to clone).
#[derive(Clone, Default)]
pub struct DropRecorder {
    pending: Arc<Mutex<HashMap<(&'static str, &'static str), i64>>>,
}

impl DropRecorder {
    /// Counts `count` items of `signal` ("spans", "edge_rollups") lost for `reason`.
    pub fn record(&self, signal: &'static str, reason: &'static str, count: usize) {
        if count == 0 {
            return;
        }
        tracing::warn!(signal, reason, count, "telemetry dropped");
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry((signal, reason)).or_default() += count as i64;
    }

    /// Writes the counts gathered since the last flush. On failure the counts
    /// are kept for the next flush.
    pub async fn flush(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let taken: Vec<_> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if taken.is_empty() {
            return Ok(());
        }
        let signals: Vec<&str> = taken.iter().map(|((s, _), _)| *s).collect();
        let reasons: Vec<&str> = taken.iter().map(|((_, r), _)| *r).collect();
        let counts: Vec<i64> = taken.iter().map(|(_, c)| *c).collect();
        let result = sqlx::query(
            "INSERT INTO telemetry_drops (signal, reason, count)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[])",
        )
        .bind(&signals)
        .bind(&reasons)
        .bind(&counts)
        .execute(pool)
        .await;
        if let Err(e) = result {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (key, count) in taken {
                *pending.entry(key).or_default() += count;
            }
            return Err(e);
        }
        Ok(())
    }
}
