//! Daily partitions: created ahead at start, recovered from rows stranded
//! in DEFAULT, dropped by retention.

mod common;

use chrono::{Days, NaiveDate, Utc};
use common::*;
use loupe_collector::partitions::{apply_retention, ensure_partition, partition_name};

#[tokio::test]
async fn partitions_are_created_ahead_recovered_from_default_and_expired() {
    let h = start(fast_tuning()).await;
    let today = Utc::now().date_naive();
    for table in ["spans", "edge_rollups"] {
        for day in [today, today + Days::new(1)] {
            let name = partition_name(table, day);
            let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(&name)
                .fetch_one(&h.pool)
                .await
                .unwrap();
            assert_eq!(exists.as_deref(), Some(name.as_str()), "created at start");
        }
    }

    // A row for a day without a partition lands in DEFAULT …
    let day = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
    sqlx::query(
        "INSERT INTO spans (trace_id, span_id, service, operation, start_time, duration_us)
         VALUES ('t', 's', 'svc', 'op', '2030-01-01 12:00:00+00', 5)",
    )
    .execute(&h.pool)
    .await
    .unwrap();
    assert_eq!(h.count("SELECT count(*) FROM ONLY spans_default").await, 1);
    // … and creating that day's partition moves it instead of failing.
    assert!(
        ensure_partition(&h.pool, "spans", "start_time", day)
            .await
            .unwrap()
    );
    assert_eq!(h.count("SELECT count(*) FROM ONLY spans_default").await, 0);
    assert_eq!(h.count("SELECT count(*) FROM spans_20300101").await, 1);
    assert_eq!(
        h.count("SELECT count(*) FROM spans WHERE trace_id = 't'")
            .await,
        1
    );
    assert!(
        !ensure_partition(&h.pool, "spans", "start_time", day)
            .await
            .unwrap(),
        "idempotent"
    );

    // Retention: a partition 30 days old goes, the last 7 days and today stay.
    let old = today - Days::new(30);
    let kept = today - Days::new(7);
    for d in [old, kept] {
        ensure_partition(&h.pool, "edge_rollups", "ts", d)
            .await
            .unwrap();
    }
    let dropped = apply_retention(&h.pool, today, 7).await.unwrap();
    assert_eq!(dropped, vec![partition_name("edge_rollups", old)]);
    let remaining: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'edge_rollups' ORDER BY 1",
    )
    .fetch_all(&h.pool)
    .await
    .unwrap();
    assert!(remaining.contains(&partition_name("edge_rollups", kept)));
    assert!(remaining.contains(&partition_name("edge_rollups", today)));
    assert!(!remaining.contains(&partition_name("edge_rollups", old)));
}
