//! The span writers (`Tuning::writers` tasks, so that one gathers a batch
//! while another writes) take spans off the queue in batches (up to
//! `batch_size` spans or `batch_timeout` after the first one) and write each
//! batch with one `COPY spans FROM STDIN` and one `trace_summaries` upsert
//! (one row per trace) in a single transaction, so a summary never counts
//! spans that are not stored.
//!
//! The resources and scopes the batch's spans were sent under are upserted
//! into `span_resources` in the same transaction, once each.
//!
//! A failed batch is retried with backoff while its spans keep their room in
//! the queue, so a slow or absent database turns into backpressure on the
//! senders. While the database is unreachable the writer waits for it. A
//! batch the database refuses (bad data) is split in halves, and each half
//! written (or split again), so only the rows Postgres refuses on their own
//! are dropped — counted as `refused_by_database` — and other senders'
//! spans in the same batch are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;

use super::copy_text::CopyText;
use super::drops::DropRecorder;
use super::queue::SpanQueueReceiver;
use crate::otlp::span_row::SpanRow;

const COPY_SPANS: &str = "COPY spans (trace_id, span_id, parent_span_id, service, operation, \
     kind, start_time, duration_us, status_code, attributes, resource_id, scope_id) FROM STDIN";

/// `last_seen` is refreshed at most hourly, so a busy resource is not
/// rewritten by every batch; retention deletes resources not seen for days.
const UPSERT_RESOURCES: &str = "
INSERT INTO span_resources AS r (resource_id, attributes)
SELECT u.id, u.attributes::jsonb FROM UNNEST($1::text[], $2::text[]) AS u(id, attributes)
ON CONFLICT (resource_id) DO UPDATE SET last_seen = now()
    WHERE r.last_seen < now() - interval '1 hour'";

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

#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub batch_size: usize,
    pub batch_timeout: Duration,
}

/// One writer task: runs until `stop` turns true and the queue is drained.
/// Several may share one receiver.
pub async fn run(
    pool: PgPool,
    receiver: Arc<SpanQueueReceiver>,
    drops: DropRecorder,
    config: BatchConfig,
    mut stop: watch::Receiver<bool>,
) {
    while let Some(mut batch) = receiver
        .next_batch(config.batch_size, config.batch_timeout, &mut stop)
        .await
    {
        let not_stored = write_bisecting(&pool, &batch.rows, &drops, receiver.is_closing()).await;
        batch.acknowledge(&not_stored);
        receiver.release(&batch);
    }
    tracing::debug!("span writer stopped: queue drained");
}

/// Writes `batch`; the parts Postgres refuses are halved until each refused
/// row stands alone, and those rows are dropped and counted. Returns the
/// indices (ascending) of the rows not stored.
pub async fn write_bisecting(
    pool: &PgPool,
    batch: &[SpanRow],
    drops: &DropRecorder,
    closing: bool,
) -> Vec<usize> {
    let mut not_stored = Vec::new();
    // (index of the first row in `batch`, rows), first half on top.
    let mut pending = vec![(0, batch)];
    while let Some((at, rows)) = pending.pop() {
        match write_with_retries(pool, rows, closing).await {
            Outcome::Written => {}
            Outcome::Refused(error) if rows.len() > 1 => {
                tracing::debug!(%error, spans = rows.len(), "span batch refused; splitting it");
                let half = rows.len() / 2;
                let (first, second) = rows.split_at(half);
                pending.push((at + half, second));
                pending.push((at, first));
            }
            Outcome::Refused(error) => {
                let row = &rows[0];
                tracing::warn!(%error, trace_id = %row.trace_id, span_id = %row.span_id,
                    service = %row.service, "Postgres refused a span; dropped");
                drops.record("spans", "refused_by_database", 1);
                not_stored.push(at);
            }
            Outcome::GaveUp(error) => {
                tracing::error!(%error, spans = rows.len(), "giving up on a span batch");
                drops.record("spans", "write_failed", rows.len());
                not_stored.extend(at..at + rows.len());
            }
        }
    }
    not_stored
}

enum Outcome {
    Written,
    /// The database refused this data.
    Refused(sqlx::Error),
    /// The database stayed unreachable while shutting down.
    GaveUp(sqlx::Error),
}

async fn write_with_retries(pool: &PgPool, batch: &[SpanRow], closing: bool) -> Outcome {
    let copy = encode(batch);
    let summaries = TraceSummaries::of(batch);
    let resources = Resources::of(batch);
    let mut backoff = Duration::from_millis(200);
    let mut outages = 0;
    loop {
        let started = std::time::Instant::now();
        let error = match write_batch(pool, &copy, &summaries, &resources).await {
            Ok(()) => {
                tracing::debug!(
                    spans = batch.len(),
                    traces = summaries.trace_ids.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "span batch written"
                );
                return Outcome::Written;
            }
            Err(error) => error,
        };
        // An unreachable or restarting database is waited for (the queue
        // fills and senders are told to retry); at shutdown not for long.
        if !is_transient(&error) {
            return Outcome::Refused(error);
        }
        outages += 1;
        if closing && outages >= 2 {
            return Outcome::GaveUp(error);
        }
        tracing::warn!(%error, spans = batch.len(), retry_in_ms = backoff.as_millis() as u64,
            "writing span batch failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Whether retrying can help: the database is unreachable, restarting or
/// overloaded (SQLSTATE classes 08, 40, 53, 57, 58), as opposed to refusing
/// this data.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| matches!(c.get(..2), Some("08" | "40" | "53" | "57" | "58"))),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        _ => false,
    }
}

/// Writes one batch (COPY + trace summaries, one transaction), no retries.
pub async fn write(pool: &PgPool, batch: &[SpanRow]) -> Result<(), sqlx::Error> {
    write_batch(
        pool,
        &encode(batch),
        &TraceSummaries::of(batch),
        &Resources::of(batch),
    )
    .await
}

async fn write_batch(
    pool: &PgPool,
    copy: &CopyText,
    summaries: &TraceSummaries,
    resources: &Resources,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !resources.ids.is_empty() {
        sqlx::query(UPSERT_RESOURCES)
            .bind(&resources.ids)
            .bind(&resources.attributes)
            .execute(&mut *tx)
            .await?;
    }
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
            .text(&row.attributes)
            .opt_text(row.resource.as_ref().map(|r| r.id.as_str()))
            .opt_text(row.scope.as_ref().map(|r| r.id.as_str()));
        copy.end_row();
    }
    copy
}

/// The distinct resources and scopes of a batch, sorted by id (concurrent writers then
/// lock rows in one order), as columns for `UNNEST`.
#[derive(Debug, Default, PartialEq)]
pub struct Resources {
    pub ids: Vec<String>,
    pub attributes: Vec<String>,
}

impl Resources {
    pub fn of(batch: &[SpanRow]) -> Self {
        let distinct: BTreeMap<&str, &str> = batch
            .iter()
            .flat_map(|row| [row.resource.as_deref(), row.scope.as_deref()])
            .flatten()
            .map(|r| (r.id.as_str(), r.attributes.as_str()))
            .collect();
        let mut out = Resources::default();
        for (id, attributes) in distinct {
            out.ids.push(id.to_string());
            out.attributes.push(attributes.to_string());
        }
        out
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        trace: &str,
        span: &str,
        parent: Option<&str>,
        service: &str,
        start_s: i64,
        dur_us: i64,
        status: i16,
    ) -> SpanRow {
        SpanRow {
            trace_id: trace.into(),
            span_id: span.into(),
            parent_span_id: parent.map(Into::into),
            service: service.into(),
            operation: format!("op-{span}"),
            kind: 2,
            start_time: DateTime::from_timestamp(start_s, 0).unwrap(),
            duration_us: dur_us,
            status_code: status,
            attributes: "{}".into(),
            resource: None,
            scope: None,
        }
    }

    #[test]
    fn summaries_group_by_trace_with_root_bounds_errors_and_services() {
        let batch = [
            row("b", "2", Some("1"), "reviews", 101, 5_000_000, 2),
            row("b", "1", None, "productpage", 100, 2_000_000, 0),
            row("a", "9", Some("8"), "ratings", 50, 1_000_000, 0),
            row("b", "3", Some("2"), "reviews", 102, 1_000_000, 0),
        ];
        let s = TraceSummaries::of(&batch);
        assert_eq!(s.trace_ids, ["a", "b"], "sorted by trace id");
        assert_eq!(
            s.root_services,
            [None, Some("productpage".to_string())],
            "no root seen yet for a"
        );
        assert_eq!(s.root_operations[1].as_deref(), Some("op-1"));
        assert_eq!(s.span_counts, [1, 3]);
        assert_eq!(s.error_counts, [0, 1]);
        assert_eq!(s.starts[1], DateTime::from_timestamp(100, 0).unwrap());
        assert_eq!(
            s.ends[1],
            DateTime::from_timestamp(106, 0).unwrap(),
            "latest end, not latest start"
        );
        assert_eq!(s.services[1], "productpage\u{1f}reviews");
    }

    #[test]
    fn copy_rows_have_twelve_tab_separated_fields_and_null_parent() {
        let copy = encode(&[row("t", "s", None, "svc\tx", 0, 7, 0)]);
        let text = std::str::from_utf8(copy.as_bytes()).unwrap();
        let fields: Vec<&str> = text.trim_end_matches('\n').split('\t').collect();
        assert_eq!(fields.len(), 12, "{text:?}");
        assert_eq!(fields[2], "\\N");
        assert_eq!(fields[3], "svc\\tx", "a tab in a value is escaped");
        assert_eq!(fields[9], "{}");
        assert_eq!(fields[10], "\\N", "no resource");
        assert_eq!(fields[11], "\\N", "no scope");
    }
}
