//! Accounting of telemetry the collector could not keep. Every drop is
//! counted per signal and reason; [`DropRecorder::flush`] (run every second
//! and once more at shutdown) logs one warning per signal and reason with
//! the count since the last flush — one line per second at most, however
//! many requests were refused — and writes the counts to `telemetry_drops`.
//! The same counts, since the collector started, are the counter
//! `loupe_collector_telemetry_dropped_total{signal,reason}` of its
//! `/metrics` ([`crate::metrics`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;

type Counts = HashMap<(&'static str, &'static str), i64>;

#[derive(Default)]
struct Pending {
    /// Not yet logged.
    log: Counts,
    /// Not yet in `telemetry_drops` (kept across failed writes).
    db: Counts,
}

/// The labels of one drop counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct DropLabels {
    pub signal: &'static str,
    pub reason: &'static str,
}

pub type DropCounters = prometheus_client::metrics::family::Family<
    DropLabels,
    prometheus_client::metrics::counter::Counter,
>;

/// Shared drop counters (cheap to clone).
#[derive(Clone, Default)]
pub struct DropRecorder {
    pending: Arc<Mutex<Pending>>,
    totals: DropCounters,
}

impl DropRecorder {
    /// Counts `count` items of `signal` ("spans", "edge_rollups") lost for `reason`.
    pub fn record(&self, signal: &'static str, reason: &'static str, count: usize) {
        if count == 0 {
            return;
        }
        tracing::debug!(signal, reason, count, "telemetry dropped");
        self.totals
            .get_or_create(&DropLabels { signal, reason })
            .inc_by(count as u64);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.log.entry((signal, reason)).or_default() += count as i64;
        *pending.db.entry((signal, reason)).or_default() += count as i64;
    }

    /// Every count since the start, for `/metrics`.
    pub fn totals(&self) -> DropCounters {
        self.totals.clone()
    }

    /// Logs and writes the counts gathered since the last flush. On a failed
    /// write the counts are kept for the next flush.
    pub async fn flush(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let (to_log, to_write): (Counts, Counts) = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            (
                std::mem::take(&mut pending.log),
                std::mem::take(&mut pending.db),
            )
        };
        for ((signal, reason), count) in &to_log {
            tracing::warn!(signal, reason, count, "telemetry dropped");
        }
        if to_write.is_empty() {
            return Ok(());
        }
        let signals: Vec<&str> = to_write.keys().map(|(s, _)| *s).collect();
        let reasons: Vec<&str> = to_write.keys().map(|(_, r)| *r).collect();
        let counts: Vec<i64> = to_write.values().copied().collect();
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
            for (key, count) in to_write {
                *pending.db.entry(key).or_default() += count;
            }
            return Err(e);
        }
        Ok(())
    }
}
