//! The console's hot-path queries and the indexes that serve them, checked
//! against a real Postgres: with sequential scans priced out, each plan must
//! reach its table through an index. A query change that loses its index (or
//! a migration that drops one) fails here, not in production.

use loupe_db::PrivatePostgres;
use sqlx::{Connection, PgConnection};

use loupe_api::traces::TraceQuery;

use crate::traces::{Search, TRACE_SQL, search_query};

async fn explain(conn: &mut PgConnection, sql: &str, bind: Option<f64>) -> String {
    let explain = format!("EXPLAIN {sql}");
    let q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(explain));
    let q = match bind {
        Some(b) => q.bind(b),
        None => q,
    };
    q.fetch_all(&mut *conn).await.expect("EXPLAIN").join("\n")
}

fn assert_indexed(plan: &str, table: &str, what: &str) {
    assert!(
        !plan
            .lines()
            .any(|l| l.contains("Seq Scan") && l.contains(table)),
        "{what}: sequential scan of {table}:\n{plan}"
    );
    assert!(plan.contains("Index"), "{what}: no index used:\n{plan}");
}

#[tokio::test]
async fn hot_path_queries_are_served_by_indexes() {
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start_temporary)
        .await
        .expect("join")
        .expect("private Postgres");
    let pool = loupe_db::connect(&pg.url(), 2).await.expect("connect");
    drop(pool);
    let mut conn = PgConnection::connect(&pg.url()).await.expect("connect");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .expect("SET");

    let graph = explain(&mut conn, &crate::graph::rollup::load_sql(), Some(60.0)).await;
    assert_indexed(&graph, "edge_rollups", "graph window");

    for (name, query) in [
        ("newest traces", TraceQuery::default()),
        (
            "traces of a service",
            TraceQuery {
                service: Some("reviews".into()),
                ..TraceQuery::default()
            },
        ),
        (
            "an edge's slowest traces",
            TraceQuery {
                source_workload: Some("productpage-v1".into()),
                source_namespace: Some("default".into()),
                destination_workload: Some("reviews-v1,reviews-v2".into()),
                destination_namespace: Some("default".into()),
                lookback: Some("5m".into()),
                sort: Some("longest_first".into()),
                ..TraceQuery::default()
            },
        ),
        (
            "traces into the mesh from outside",
            TraceQuery {
                destination_workload: Some("istio-ingressgateway".into()),
                lookback: Some("5m".into()),
                ..TraceQuery::default()
            },
        ),
    ] {
        let search = Search::parse(query).expect("search");
        let mut q = search_query("EXPLAIN ", search);
        let plan: Vec<String> = q
            .build_query_scalar::<String>()
            .fetch_all(&mut conn)
            .await
            .expect("EXPLAIN search");
        assert_indexed(&plan.join("\n"), "trace_summaries", name);
        // The edge's spans are read by trace id, never by scanning spans.
        assert_indexed(&plan.join("\n"), "spans", name);
    }

    let trace =
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("EXPLAIN {TRACE_SQL}")))
            .bind("abc")
            .fetch_all(&mut conn)
            .await
            .expect("EXPLAIN trace")
            .join("\n");
    assert_indexed(&trace, "spans", "trace view");

    for sql in [
        crate::events::LATEST_ROLLUP_SQL,
        crate::events::CONFIG_VERSION_SQL,
    ] {
        let plan = explain(&mut conn, sql, None).await;
        assert_indexed(&plan, "", sql);
    }
}
