//! Daily partitions of the time-series tables (`spans` by `start_time`,
//! `edge_rollups` by `ts`), named `<table>_YYYYMMDD` (UTC days), and
//! retention by dropping whole partitions.
//!
//! Partitions are created ahead (today and tomorrow) so rows rarely land in
//! the DEFAULT partition. If they did (the collector was down at midnight),
//! Postgres refuses to create the day's partition while DEFAULT holds rows of
//! that range; then the rows are moved out of DEFAULT into a new table that
//! is attached as the day's partition, in one transaction.

use chrono::{Days, NaiveDate};
use sqlx::{AssertSqlSafe, PgPool};

// Every dynamic statement here is built from a table name of [`TABLES`]
// and dates, never from outside input.

use crate::error::CollectorError;

/// The partitioned tables and their partition key column.
pub const TABLES: [(&str, &str); 2] = [("spans", "start_time"), ("edge_rollups", "ts")];

/// SQLSTATE check_violation: "updated partition constraint for default
/// partition would be violated by some row".
const CHECK_VIOLATION: &str = "23514";

/// Makes sure `day` and the day after have partitions in every table.
pub async fn ensure_ahead(pool: &PgPool, day: NaiveDate) -> Result<(), CollectorError> {
    for (table, column) in TABLES {
        for d in [day, day + Days::new(1)] {
            ensure_partition(pool, table, column, d).await?;
        }
    }
    Ok(())
}

pub fn partition_name(table: &str, day: NaiveDate) -> String {
    format!("{table}_{}", day.format("%Y%m%d"))
}

/// Creates the partition of `table` for `day` if it is missing. Returns
/// whether it had to be created.
pub async fn ensure_partition(
    pool: &PgPool,
    table: &'static str,
    column: &'static str,
    day: NaiveDate,
) -> Result<bool, CollectorError> {
    let err = |source| CollectorError::Partition { table, source };
    let name = partition_name(table, day);
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&name)
        .fetch_one(pool)
        .await
        .map_err(err)?;
    if exists.is_some() {
        return Ok(false);
    }
    let from = format!("{} 00:00:00+00", day.format("%Y-%m-%d"));
    let to = format!("{} 00:00:00+00", (day + Days::new(1)).format("%Y-%m-%d"));
    // Names and bounds are built from a date, never from outside input.
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES FROM ('{from}') TO ('{to}')"
    );
    match sqlx::query(AssertSqlSafe(create)).execute(pool).await {
        Ok(_) => {
            tracing::info!(partition = %name, "partition created");
            Ok(true)
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(CHECK_VIOLATION) => {
            tracing::warn!(
                partition = %name,
                "rows of this day are in {table}_default; moving them into the new partition"
            );
            let mut tx = pool.begin().await.map_err(err)?;
            let statements = [
                format!("LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE"),
                format!(
                    "CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                ),
                format!(
                    "WITH moved AS (DELETE FROM {table}_default WHERE {column} >= '{from}' AND {column} < '{to}' RETURNING *) \
                     INSERT INTO {name} SELECT * FROM moved"
                ),
                format!(
                    "ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{from}') TO ('{to}')"
                ),
            ];
            for statement in &statements {
                sqlx::query(AssertSqlSafe(statement.as_str()))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            tracing::info!(partition = %name, "partition created from rows of the default partition");
            Ok(true)
        }
        Err(e) => Err(err(e)),
    }
}

/// Drops every daily partition older than `retention_days` before `today`
/// (the partitions of the last `retention_days` days and today are kept),
/// deletes older rows left in the DEFAULT partitions, older trace
/// summaries, span resources and drop counts. Returns the dropped partitions.
pub async fn apply_retention(
    pool: &PgPool,
    today: NaiveDate,
    retention_days: u32,
) -> Result<Vec<String>, CollectorError> {
    let oldest_kept = today - Days::new(u64::from(retention_days));
    let cutoff = format!("{} 00:00:00+00", oldest_kept.format("%Y-%m-%d"));
    let mut dropped = Vec::new();
    for (table, column) in TABLES {
        let err = |source| CollectorError::Partition { table, source };
        let partitions: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = $1",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .map_err(err)?;
        for name in partitions {
            let Some(day) = name
                .strip_prefix(table)
                .and_then(|s| s.strip_prefix('_'))
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
            else {
                continue;
            };
            if day < oldest_kept {
                sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
                    .execute(pool)
                    .await
                    .map_err(err)?;
                tracing::info!(partition = %name, retention_days, "partition dropped (retention)");
                dropped.push(name);
            }
        }
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table}_default WHERE {column} < '{cutoff}'"
        )))
        .execute(pool)
        .await
        .map_err(err)?;
    }
    let cutoff_time = oldest_kept.and_time(chrono::NaiveTime::MIN).and_utc();
    sqlx::query("DELETE FROM trace_summaries WHERE end_time < $1")
        .bind(cutoff_time)
        .execute(pool)
        .await
        .map_err(CollectorError::sql("deleting expired trace summaries"))?;
    // A day more than the spans: a resource's `last_seen` is refreshed hourly.
    sqlx::query("DELETE FROM span_resources WHERE last_seen < $1")
        .bind(cutoff_time - chrono::Duration::days(1))
        .execute(pool)
        .await
        .map_err(CollectorError::sql("deleting expired span resources"))?;
    sqlx::query("DELETE FROM telemetry_drops WHERE at < $1")
        .bind(cutoff_time)
        .execute(pool)
        .await
        .map_err(CollectorError::sql(
            "deleting expired telemetry drop counts",
        ))?;
    Ok(dropped)
}
