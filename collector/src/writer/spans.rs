//! The span writer: takes spans off the queue in batches (up to
//! `batch_size` spans or `batch_timeout` after the first one), writes each
//! batch with one `COPY spans FROM STDIN` and one `trace_summaries` upsert
//! (one row per trace) in a single transaction, so a summary never counts
//! spans that are not stored.
//!
//! A failed batch is retried with backoff while its spans keep their room in
//! the queue, so a slow or absent database turns into backpressure on the
//! senders; after the last attempt the batch is counted as dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::Instant;

use super::copy_text::CopyText;
use super::drops::DropRecorder;
use super::queue::SpanQueueReceiver;
use crate::otlp::span_row::SpanRow;

const COPY_SPANS: &str = "COPY spans (trace_id, span_id, parent_span_id, service, operation, \
     kind, start_time, duration_us, status_code, attributes) FROM STDIN";

const UPSERT_SUMMARIES: &str = "
INSERT INTO trace_summaries AS t
    (trace_id, root_service, root_operation, start_time, end_time, span_count, error_count, services)
SELECT u.trace_id, u.root_service, u.root_operation, u.start_time, u.end_time,
       u.span_count, u.error_count, string_to_array(u.services, chr(31))
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
            $6::int[], $7::int[], $8::text[])
     AS u(trace_id, root_service, root_operation, start_time, end_time, span_count, error_count, services)
ON CONFLICT (trace_id) DO UPDATE SET
    root_service   = COALESCE(EXCLUDED.root_service, t.root_service),
    root_operation = COALESCE(EXCLUDED.root_operation, t.root_operation),
    start_time     = LEAST(t.start_time, EXCLUDED.start_time),
    end_time       = GREATEST(t.end_time, EXCLUDED.end_time),
    span_count     = t.span_count + EXCLUDED.span_count,
    error_count    = t.error_count + EXCLUDED.error_count,
    services       = ARRAY(SELECT DISTINCT s FROM unnest(t.services || EXCLUDED.services) AS s ORDER BY s)";

/// Attempts per batch before its spans are counted as dropped.
const MAX_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub batch_size: usize,
    pub batch_timeout: Duration,
}

/// Runs until `stop` turns true, then writes what is still queued and returns.
pub async fn run(
    pool: PgPool,
    mut receiver: SpanQueueReceiver,
    drops: DropRecorder,
    config: BatchConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut closing = false;
    loop {
        let first = if closing {
            receiver.rx.recv().await
        } else {
            tokio::select! {
                v = receiver.rx.recv() => v,
                _ = stop.wait_for(|s| *s) => {
                    // Refuse new spans, then drain what is queued.
                    receiver.rx.close();
                    closing = true;
                    continue;
                }
            }
        };
        let Some(mut batch) = first else { break };
        let deadline = Instant::now() + config.batch_timeout;
        while batch.len() < config.batch_size {
            let more = tokio::select! {
                v = receiver.rx.recv() => v,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            match more {
                Some(rows) => batch.extend(rows),
                None => break,
            }
        }
        write_with_retries(&pool, &batch, &drops, closing).await;
        receiver.release(batch.len());
    }
    tracing::info!("span writer stopped: queue drained");
}

async fn write_with_retries(pool: &PgPool, batch: &[SpanRow], drops: &DropRecorder, closing: bool) {
    let copy = encode(batch);
    let summaries = TraceSummaries::of(batch);
    let mut backoff = Duration::from_millis(200);
    let attempts = if closing { 2 } else { MAX_ATTEMPTS };
    for attempt in 1..=attempts {
        let started = std::time::Instant::now();
        match write_batch(pool, &copy, &summaries).await {
            Ok(()) => {
                tracing::debug!(
                    spans = batch.len(),
                    traces = summaries.trace_ids.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "span batch written"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(%error, attempt, spans = batch.len(), "writing span batch failed");
                if attempt < attempts {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
    drops.record("spans", "write_failed", batch.len());
}

/// Writes one batch (COPY + trace summaries, one transaction), no retries.
pub async fn write(pool: &PgPool, batch: &[SpanRow]) -> Result<(), sqlx::Error> {
    write_batch(pool, &encode(batch), &TraceSummaries::of(batch)).await
}

async fn write_batch(
    pool: &PgPool,
    copy: &CopyText,
    summaries: &TraceSummaries,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut copy_in = tx.copy_in_raw(COPY_SPANS).await?;
    copy_in.send(copy.as_bytes()).await?;
    copy_in.finish().await?;
    sqlx::query(UPSERT_SUMMARIES)
        .bind(&summaries.trace_ids)
        .bind(&summaries.root_services)
        .bind(&summaries.root_operations)
        .bind(&summaries.starts)
        .bind(&summaries.ends)
        .bind(&summaries.span_counts)
        .bind(&summaries.error_counts)
        .bind(&summaries.services)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The COPY text of `batch`.
pub fn encode(batch: &[SpanRow]) -> CopyText {
    let mut copy = CopyText::with_capacity(batch.len() * 256);
    for row in batch {
        copy.text(&row.trace_id)
            .text(&row.span_id)
            .opt_text(row.parent_span_id.as_deref())
            .text(&row.service)
            .text(&row.operation)
            .int(row.kind.into())
            .timestamp(row.start_time)
            .int(row.duration_us)
            .int(row.status_code.into())
            .json(&row.attributes);
        copy.end_row();
    }
    copy
}

/// One summary row per trace of a batch, as columns for `UNNEST`.
#[derive(Debug, Default, PartialEq)]
pub struct TraceSummaries {
    pub trace_ids: Vec<String>,
    pub root_services: Vec<Option<String>>,
    pub root_operations: Vec<Option<String>>,
    pub starts: Vec<DateTime<Utc>>,
    pub ends: Vec<DateTime<Utc>>,
    pub span_counts: Vec<i32>,
    pub error_counts: Vec<i32>,
    /// Service names joined by U+001F (split again in SQL): arrays of
    /// arrays do not pass through `UNNEST`.
    pub services: Vec<String>,
}

impl TraceSummaries {
    pub fn of(batch: &[SpanRow]) -> Self {
        struct Acc<'a> {
            root: Option<&'a SpanRow>,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
            spans: i32,
            errors: i32,
            services: BTreeSet<&'a str>,
        }
        // Sorted by trace id: concurrent writers then lock rows in one order.
        let mut traces: BTreeMap<&str, Acc<'_>> = BTreeMap::new();
        for row in batch {
            let acc = traces.entry(&row.trace_id).or_insert_with(|| Acc {
                root: None,
                start: row.start_time,
                end: row.end_time(),
                spans: 0,
                errors: 0,
                services: BTreeSet::new(),
            });
            if row.parent_span_id.is_none()
                && acc.root.is_none_or(|r| row.start_time < r.start_time)
            {
                acc.root = Some(row);
            }
            acc.start = acc.start.min(row.start_time);
            acc.end = acc.end.max(row.end_time());
            acc.spans += 1;
            acc.errors += i32::from(row.is_error());
            acc.services.insert(&row.service);
        }
        let mut out = TraceSummaries::default();
        for (trace_id, acc) in traces {
            out.trace_ids.push(trace_id.to_string());
            out.root_services.push(acc.root.map(|r| r.service.clone()));
            out.root_operations
                .push(acc.root.map(|r| r.operation.clone()));
            out.starts.push(acc.start);
            out.ends.push(acc.end);
            out.span_counts.push(acc.spans);
            out.error_counts.push(acc.errors);
            let services: Vec<&str> = acc.services.into_iter().collect();
            out.services.push(services.join("\u{1f}"));
        }
        out
    }
}
