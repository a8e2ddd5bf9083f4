//! `GET /api/traces` with a graph edge (`source_workload`, …,
//! `destination_workload`) and `sort=longest_first`: the traces that
//! crossed the edge, slowest first — over spans in a real Postgres, shaped
//! as Loupe's proxies send them (a CLIENT span on the caller's side, the
//! callee's SERVER span its child, resource attributes naming workloads).

mod common;

use axum::http::StatusCode;
use common::Harness;
use loupe_db::PgPool;
use serde_json::{Value, json};

const CLIENT: i16 = 3;
const SERVER: i16 = 2;

/// (span id, parent, kind, workload, start offset ms, duration ms, upstream cluster).
type SpanSpec = (
    &'static str,
    Option<&'static str>,
    i16,
    &'static str,
    f64,
    f64,
    &'static str,
);

/// A trace that started `ago_s` ago; the first span is the root.
async fn trace(pool: &PgPool, id: &str, ago_s: f64, spans: &[SpanSpec]) {
    for (span, parent, kind, workload, offset, duration, cluster) in spans {
        let app = workload.split('-').next().unwrap_or(workload);
        let mut attrs = json!({
            "resource.k8s.workload.name": workload,
            "resource.k8s.namespace.name": "default",
            "resource.service.name": app,
        });
        if !cluster.is_empty() {
            attrs["upstream_cluster"] = json!(cluster);
        }
        sqlx::query(
            "INSERT INTO spans (trace_id, span_id, parent_span_id, service, operation, kind,
                                start_time, duration_us, status_code, attributes)
             VALUES ($1, $2, $3, $4, 'op', $5,
                     now() - make_interval(secs => $6) + make_interval(secs => $7 / 1000.0),
                     ($8 * 1000)::bigint, 0, $9)",
        )
        .bind(id)
        .bind(span)
        .bind(parent)
        .bind(app)
        .bind(kind)
        .bind(ago_s)
        .bind(offset)
        .bind(duration)
        .bind(attrs)
        .execute(pool)
        .await
        .expect("insert span");
    }
    let root = spans[0];
    sqlx::query(
        "INSERT INTO trace_summaries (trace_id, root_service, root_operation, start_time, end_time,
                                      span_count, services)
         VALUES ($1, 'gateway', 'op', now() - make_interval(secs => $2),
                 now() - make_interval(secs => $2) + make_interval(secs => $3 / 1000.0), $4, '{}')",
    )
    .bind(id)
    .bind(ago_s)
    .bind(root.5)
    .bind(spans.len() as i32)
    .execute(pool)
    .await
    .expect("insert summary");
}

const REVIEWS: &str = "outbound|9080||reviews.default.svc.cluster.local";
const DETAILS: &str = "outbound|9080||details.default.svc.cluster.local";

/// gateway → productpage → reviews (v1 or v2), or → details.
async fn bookinfo(pool: &PgPool) {
    let via = |reviews: &'static str, total: f64| -> Vec<SpanSpec> {
        vec![
            ("a1", None, CLIENT, "ingressgateway", 0.0, total, ""),
            (
                "a2",
                Some("a1"),
                SERVER,
                "productpage-v1",
                1.0,
                total - 2.0,
                "",
            ),
            (
                "a3",
                Some("a2"),
                CLIENT,
                "productpage-v1",
                2.0,
                total - 4.0,
                REVIEWS,
            ),
            ("a4", Some("a3"), SERVER, reviews, 3.0, total - 6.0, ""),
        ]
    };
    trace(pool, "01", 5.0, &via("reviews-v2", 300.0)).await;
    trace(pool, "02", 4.0, &via("reviews-v1", 50.0)).await;
    trace(pool, "03", 3.0, &via("reviews-v2", 120.0)).await;
    trace(
        pool,
        "04",
        2.0,
        &[
            ("b1", None, CLIENT, "ingressgateway", 0.0, 900.0, ""),
            ("b2", Some("b1"), SERVER, "productpage-v1", 1.0, 800.0, ""),
            (
                "b3",
                Some("b2"),
                CLIENT,
                "productpage-v1",
                2.0,
                700.0,
                DETAILS,
            ),
            ("b4", Some("b3"), SERVER, "details-v1", 3.0, 600.0, ""),
        ],
    )
    .await;
    // reviews v2 called by ratings, not by productpage: not the edge's.
    trace(
        pool,
        "05",
        1.0,
        &[
            ("c1", None, CLIENT, "ratings-v1", 0.0, 1000.0, REVIEWS),
            ("c2", Some("c1"), SERVER, "reviews-v2", 1.0, 990.0, ""),
        ],
    )
    .await;
    // An old slow one, outside a short lookback.
    trace(pool, "06", 600.0, &via("reviews-v2", 2000.0)).await;
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list, got {list}"))
        .iter()
        .map(|t| t["trace_id"].as_str().expect("trace_id"))
        .collect()
}

async fn search(h: &Harness, query: &str) -> Vec<String> {
    let (status, list) = h.get(&format!("/api/traces?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {list}");
    ids(&list).into_iter().map(str::to_string).collect()
}

const PRODUCTPAGE: &str = "source_workload=productpage-v1&source_namespace=default";

#[tokio::test]
async fn an_edge_lists_the_traces_that_crossed_it_slowest_first() {
    let h = Harness::start().await;
    bookinfo(&h.pool).await;
    // productpage v1 → reviews (both versions, an app node): 01, 03, 02 by duration.
    let both = format!(
        "{PRODUCTPAGE}&destination_workload=reviews-v1,reviews-v2&destination_namespace=default&lookback=5m&sort=longest_first"
    );
    assert_eq!(search(&h, &both).await, ["01", "03", "02"]);
    // One version: reviews v2 only; the ratings → reviews v2 trace is another edge.
    let v2 =
        format!("{PRODUCTPAGE}&destination_workload=reviews-v2&lookback=5m&sort=longest_first");
    assert_eq!(search(&h, &v2).await, ["01", "03"]);
    // Without the lookback the old slow one is first.
    let all = format!("{PRODUCTPAGE}&destination_workload=reviews-v2&sort=longest_first");
    assert_eq!(search(&h, &all).await, ["06", "01", "03"]);
    // The limit keeps the slowest.
    assert_eq!(search(&h, &format!("{all}&limit=1")).await, ["06"]);
    // Newest first by default.
    let newest = format!("{PRODUCTPAGE}&destination_workload=reviews-v2&lookback=5m");
    assert_eq!(search(&h, &newest).await, ["03", "01"]);
    // Another namespace of the same names is another edge.
    let elsewhere = format!("{v2}&destination_namespace=staging");
    assert!(search(&h, &elsewhere).await.is_empty());
}

#[tokio::test]
async fn an_edge_to_a_service_and_from_outside_the_mesh() {
    let h = Harness::start().await;
    bookinfo(&h.pool).await;
    // Service graph: productpage → the details service, by the client span's cluster.
    let details = format!(
        "{PRODUCTPAGE}&destination_service=details&destination_namespace=default&sort=longest_first"
    );
    assert_eq!(search(&h, &details).await, ["04"]);
    // A source known as a service (its app) works the same.
    let by_app = "source_app=productpage&destination_service=reviews.default.svc.cluster.local&lookback=5m&sort=longest_first";
    assert_eq!(search(&h, by_app).await, ["01", "03", "02"]);
    // From outside the mesh into the gateway: its root span.
    let outside = "destination_workload=ingressgateway&lookback=5m&sort=longest_first";
    assert_eq!(search(&h, outside).await, ["04", "01", "03", "02"]);
    // productpage's server span has a parent in the trace: not entered from outside.
    assert!(
        search(&h, "destination_workload=productpage-v1&lookback=5m")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn sorts_apply_without_an_edge_and_bad_input_is_400() {
    let h = Harness::start().await;
    bookinfo(&h.pool).await;
    assert_eq!(
        search(&h, "lookback=5m&sort=longest_first").await,
        ["05", "04", "01", "03", "02"]
    );
    assert_eq!(
        search(&h, "lookback=5m&sort=shortest_first").await,
        ["02", "03", "01", "04", "05"]
    );
    assert_eq!(search(&h, "lookback=5m&sort=least_spans").await[0], "05");
    for (query, says) in [
        ("sort=slowest", "longest_first"),
        ("lookback=forever", "lookback="),
        ("source_workload=productpage-v1", "destination_workload"),
    ] {
        let (status, body) = h.get(&format!("/api/traces?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(says),
            "{query}: {body}"
        );
    }
}
