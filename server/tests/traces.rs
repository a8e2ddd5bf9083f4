//! `GET /api/traces` and `GET /api/traces/{id}` over rows in a real Postgres.

mod common;

use axum::http::StatusCode;
use common::Harness;
use loupe_db::PgPool;
use serde_json::{Value, json};

/// One span: (service, operation, parent index, start offset ms, duration ms, attributes).
type SpanSpec<'a> = (&'a str, &'a str, Option<usize>, f64, f64, Value);

/// A trace whose first span is the root.
async fn trace(pool: &PgPool, id: &str, ago_s: f64, spans: &[SpanSpec<'_>]) {
    for (i, (service, operation, parent, offset, duration, attrs)) in spans.iter().enumerate() {
        sqlx::query(
            "INSERT INTO spans (trace_id, span_id, parent_span_id, service, operation, kind,
                                start_time, duration_us, status_code, attributes)
             VALUES ($1, $2, $3, $4, $5, 2,
                     now() - make_interval(secs => $6) + make_interval(secs => $7 / 1000.0),
                     ($8 * 1000)::bigint, 0, $9)",
        )
        .bind(id)
        .bind(format!("{i:016x}"))
        .bind(parent.map(|p| format!("{p:016x}")))
        .bind(service)
        .bind(operation)
        .bind(ago_s)
        .bind(offset)
        .bind(duration)
        .bind(attrs)
        .execute(pool)
        .await
        .expect("insert span");
    }
    let services: Vec<String> = {
        let mut s: Vec<String> = spans.iter().map(|s| s.0.to_string()).collect();
        s.sort();
        s.dedup();
        s
    };
    let (root, root_op, _, _, root_duration, _) = &spans[0];
    sqlx::query(
        "INSERT INTO trace_summaries (trace_id, root_service, root_operation, start_time, end_time,
                                      span_count, services)
         VALUES ($1, $2, $3, now() - make_interval(secs => $4),
                 now() - make_interval(secs => $4) + make_interval(secs => $5 / 1000.0), $6, $7)",
    )
    .bind(id)
    .bind(root)
    .bind(root_op)
    .bind(ago_s)
    .bind(root_duration)
    .bind(spans.len() as i32)
    .bind(services)
    .execute(pool)
    .await
    .expect("insert trace summary");
}

async fn bookinfo(pool: &PgPool) {
    // Newest: productpage → reviews → ratings, 3 services, 40ms.
    trace(
        pool,
        "aaaa0000000000000000000000000001",
        5.0,
        &[
            (
                "productpage",
                "GET /productpage",
                None,
                0.0,
                40.0,
                json!({"http.status_code": 200}),
            ),
            (
                "reviews",
                "GET /reviews/0",
                Some(0),
                5.0,
                30.0,
                json!({"http.status_code": 200}),
            ),
            (
                "ratings",
                "GET /ratings/0",
                Some(1),
                10.0,
                10.0,
                json!({"http.status_code": 200}),
            ),
        ],
    )
    .await;
    // Middle: productpage → details, 12ms.
    trace(
        pool,
        "aaaa0000000000000000000000000002",
        10.0,
        &[
            (
                "productpage",
                "GET /productpage",
                None,
                0.0,
                12.0,
                json!({}),
            ),
            (
                "details",
                "GET /details/0",
                Some(0),
                1.0,
                8.0,
                json!({"http.status_code": "500"}),
            ),
        ],
    )
    .await;
    // Oldest: productpage alone, 200ms.
    trace(
        pool,
        "aaaa0000000000000000000000000003",
        60.0,
        &[("productpage", "GET /health", None, 0.0, 200.0, json!({}))],
    )
    .await;
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|t| t["trace_id"].as_str().expect("trace_id"))
        .collect()
}

#[tokio::test]
async fn list_is_newest_first_with_summaries() {
    let h = Harness::start().await;
    bookinfo(&h.pool).await;
    let (status, list) = h.get("/api/traces").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        ids(&list),
        [
            "aaaa0000000000000000000000000001",
            "aaaa0000000000000000000000000002",
            "aaaa0000000000000000000000000003"
        ]
    );
    let first = &list[0];
    assert_eq!(first["root_service"], "productpage");
    assert_eq!(first["root_operation"], "GET /productpage");
    assert_eq!(first["span_count"], 3);
    assert_eq!(
        first["services"],
        json!(["productpage", "ratings", "reviews"])
    );
    assert!(
        (first["duration_ms"].as_f64().unwrap() - 40.0).abs() < 1e-6,
        "{first}"
    );
    assert!(
        first["start"].as_str().is_some_and(|s| s.contains('T')),
        "RFC 3339 start: {first}"
    );

    let (_, limited) = h.get("/api/traces?limit=2").await;
    assert_eq!(ids(&limited).len(), 2);
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let h = Harness::start().await;
    bookinfo(&h.pool).await;
    let cases = [
        ("service=ratings", vec!["aaaa0000000000000000000000000001"]),
        ("service=details", vec!["aaaa0000000000000000000000000002"]),
        (
            "service=productpage&operation=GET%20/health",
            vec!["aaaa0000000000000000000000000003"],
        ),
        (
            "min_duration_ms=30",
            vec![
                "aaaa0000000000000000000000000001",
                "aaaa0000000000000000000000000003",
            ],
        ),
        (
            "max_duration_ms=20",
            vec!["aaaa0000000000000000000000000002"],
        ),
        (
            "min_duration_ms=30&max_duration_ms=100",
            vec!["aaaa0000000000000000000000000001"],
        ),
        // Tags compare as text: the number 200 and the string "500" both match.
        (
            "tags=http.status_code:500",
            vec!["aaaa0000000000000000000000000002"],
        ),
        (
            "service=ratings&tags=http.status_code:200",
            vec!["aaaa0000000000000000000000000001"],
        ),
        ("service=nobody", vec![]),
    ];
    for (query, want) in cases {
        let (status, list) = h.get(&format!("/api/traces?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {list}");
        assert_eq!(ids(&list), want, "{query}");
    }
    // A time range: only traces that started in the last 30s.
    let start = (chrono::Utc::now() - chrono::Duration::seconds(30)).timestamp_millis();
    let (_, recent) = h.get(&format!("/api/traces?start={start}")).await;
    assert_eq!(ids(&recent).len(), 2);
}

#[tokio::test]
async fn trace_view_has_its_spans() {
    let h = Harness::start().await;
    bookinfo(&h.pool).await;
    let (status, t) = h.get("/api/traces/AAAA0000000000000000000000000001").await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let spans = t["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[0]["service"], "productpage");
    assert_eq!(spans[0]["parent_span_id"], Value::Null);
    assert_eq!(spans[1]["parent_span_id"], spans[0]["span_id"]);
    assert_eq!(spans[2]["operation"], "GET /ratings/0");
    assert!((spans[1]["duration_ms"].as_f64().unwrap() - 30.0).abs() < 1e-9);
    assert_eq!(spans[2]["attributes"]["http.status_code"], 200);
    for field in ["span_id", "start", "duration_ms", "attributes"] {
        assert!(spans[0].get(field).is_some(), "{field} missing");
    }
}

#[tokio::test]
async fn unknown_trace_is_404_and_bad_input_400() {
    let h = Harness::start().await;
    let (status, body) = h.get("/api/traces/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("no trace"),
        "{body}"
    );

    for (uri, says) in [
        ("/api/traces/not-a-trace", "not a trace id"),
        ("/api/traces?limit=lots", "limit="),
        ("/api/traces?limit=0", "limit="),
        ("/api/traces?min_duration_ms=-1", "min_duration_ms="),
        ("/api/traces?start=yesterday", "start="),
        ("/api/traces?tags=oops", "tags"),
        ("/api/traces?min_duration_ms=10&max_duration_ms=5", "above"),
    ] {
        let (status, body) = h.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{uri}: {body}"
        );
    }
}
