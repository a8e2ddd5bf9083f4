//! `GET /api/graph` over rows in a real Postgres: shapes per graph type,
//! the numbers on edges, the window, bad parameters, and golden JSON.

mod common;

use axum::http::StatusCode;
use common::{Harness, Row, insert};
use serde_json::Value;

/// A bookinfo-shaped minute of traffic (see the comments for what each row proves).
fn bookinfo() -> Vec<Row> {
    let mut rows = vec![
        // productpage → reviews-v1: 60 OK over two scrape intervals.
        Row::new(("productpage", "v1"), ("reviews", "v1"), "200", 30),
        Row {
            ago_s: 20.0,
            ..Row::new(("productpage", "v1"), ("reviews", "v1"), "200", 30)
        },
        // productpage → reviews-v2: 45 OK + 15 errors; the errors are slow (25..50ms].
        Row::new(("productpage", "v1"), ("reviews", "v2"), "200", 45),
        Row {
            buckets: [0, 0, 0, 0, 15, 15, 15],
            ..Row::new(("productpage", "v1"), ("reviews", "v2"), "503", 15)
        },
        // productpage → reviews-v3: a series that only reported zero (dead).
        Row::new(("productpage", "v1"), ("reviews", "v3"), "200", 0),
        // productpage → details: half the requests without mTLS.
        Row::new(("productpage", "v1"), ("details", "v1"), "200", 60),
        Row {
            mtls: false,
            ..Row::new(("productpage", "v1"), ("details", "v1"), "200", 60)
        },
        // reviews-v2 → ratings.
        Row::new(("reviews", "v2"), ("ratings", "v1"), "200", 45),
        // From outside the mesh: only the destination reports it.
        Row {
            reporter: "destination",
            mtls: false,
            ..Row::new(("unknown", "unknown"), ("productpage", "v1"), "200", 120)
        },
        // Old traffic, outside a 60s window.
        Row {
            ago_s: 600.0,
            ..Row::new(("productpage", "v1"), ("reviews", "v3"), "200", 600)
        },
    ];
    // Every request is reported twice, as in Istio: the destination's copy
    // must not be counted twice, and only it knows the connection's mTLS.
    let copies: Vec<Row> = rows
        .iter()
        .filter(|r| r.reporter == "source")
        .map(|r| Row {
            reporter: "destination",
            ..r.clone()
        })
        .collect();
    rows.extend(copies);
    rows
}

fn edge<'a>(graph: &'a Value, source: &str, target: &str) -> &'a Value {
    graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["source"] == source && e["target"] == target)
        .unwrap_or_else(|| panic!("no edge {source} → {target} in {graph:#}"))
}

fn node_ids(graph: &Value) -> Vec<&str> {
    graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect()
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().expect("a number") - b).abs() < 1e-9
}

#[tokio::test]
async fn versioned_app_graph_has_the_edges_and_numbers() {
    let h = Harness::start().await;
    insert(&h.pool, &bookinfo()).await;
    let (status, g) = h.get("/api/graph?type=versioned-app&window=60s").await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(
        node_ids(&g),
        [
            "default/details/v1",
            "default/productpage/v1",
            "default/ratings/v1",
            "default/reviews/v1",
            "default/reviews/v2",
            "unknown"
        ],
        "reviews-v3 had no requests in the window and must be gone"
    );
    let node = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "default/reviews/v2")
        .unwrap();
    assert_eq!(node["namespace"], "default");
    assert_eq!(node["app"], "reviews");
    assert_eq!(node["version"], "v2");
    assert_eq!(node["workload"], "reviews-v2");
    assert_eq!(node["health"], "failure", "25% 5xx is failure");

    let v1 = edge(&g, "default/productpage/v1", "default/reviews/v1");
    assert!(
        close(&v1["rps"], 1.0),
        "60 requests (source report only) / 60s: {v1}"
    );
    assert!(close(&v1["error_rate"], 0.0));
    assert!(close(&v1["p50_ms"], 7.5), "all in (5,10]: {v1}");
    assert!(close(&v1["mtls"], 1.0));

    let v2 = edge(&g, "default/productpage/v1", "default/reviews/v2");
    assert!(close(&v2["rps"], 1.0));
    assert!(close(&v2["error_rate"], 0.25), "{v2}");
    // 45 in (5,10], 15 in (25,50]: rank 30 → 5 + 5·30/45; rank 59.4 → 25 + 25·14.4/15.
    assert!(close(&v2["p50_ms"], 5.0 + 5.0 * 30.0 / 45.0), "{v2}");
    assert!(close(&v2["p99_ms"], 25.0 + 25.0 * 14.4 / 15.0), "{v2}");
    assert_eq!(v2["responses"]["503"], 15);

    let details = edge(&g, "default/productpage/v1", "default/details/v1");
    assert!(close(&details["rps"], 2.0));
    assert!(close(&details["mtls"], 0.5));

    let ingress = edge(&g, "unknown", "default/productpage/v1");
    assert!(
        close(&ingress["rps"], 2.0),
        "destination-reported traffic from outside: {ingress}"
    );
}

#[tokio::test]
async fn app_and_workload_graphs_group_differently() {
    let h = Harness::start().await;
    insert(&h.pool, &bookinfo()).await;

    let (status, app) = h.get("/api/graph?type=app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        node_ids(&app),
        [
            "default/details",
            "default/productpage",
            "default/ratings",
            "default/reviews",
            "unknown"
        ]
    );
    let reviews = edge(&app, "default/productpage", "default/reviews");
    assert!(close(&reviews["rps"], 2.0), "v1 and v2 together: {reviews}");
    assert!(close(&reviews["error_rate"], 0.125));

    let (_, wl) = h.get("/api/graph?type=workload").await;
    assert!(node_ids(&wl).contains(&"default/reviews-v2"));
    let e = edge(&wl, "default/reviews-v2", "default/ratings-v1");
    assert!(close(&e["rps"], 0.75));

    let (_, svc) = h.get("/api/graph?type=service").await;
    assert!(node_ids(&svc).contains(&"default/reviews"));
    let e = edge(&svc, "default/productpage", "default/reviews");
    assert!(close(&e["rps"], 2.0));
}

#[tokio::test]
async fn window_selects_the_rows() {
    let h = Harness::start().await;
    insert(&h.pool, &bookinfo()).await;
    let (_, short) = h.get("/api/graph?window=15s").await;
    // Only the rows 10s old: reviews-v1 has 30 (not 60) requests in 15s.
    let e = edge(&short, "default/productpage/v1", "default/reviews/v1");
    assert!(close(&e["rps"], 2.0), "{e}");
    assert_eq!(e["requests"], 30);

    let (_, long) = h.get("/api/graph?window=15m").await;
    let e = edge(&long, "default/productpage/v1", "default/reviews/v3");
    assert_eq!(e["requests"], 600, "the old row is inside 15m");
    assert!(close(&e["rps"], 600.0 / 900.0));
    // Namespaces: traffic with an end in one of them.
    let (_, other) = h.get("/api/graph?namespaces=bookinfo-other").await;
    assert_eq!(other["edges"], serde_json::json!([]));
    let (_, same) = h.get("/api/graph?namespaces=bookinfo-other,default").await;
    assert_eq!(same["edges"].as_array().map(Vec::len), Some(5));
    // Kiali's service-node injection, on request.
    let (_, injected) = h.get("/api/graph?inject_service_nodes=true").await;
    let e = edge(&injected, "svc:default/reviews", "default/reviews/v1");
    assert_eq!(e["requests"], 60);
    assert_eq!(
        h.get("/api/graph?inject_service_nodes=maybe").await.0,
        StatusCode::BAD_REQUEST
    );
    // The default is 60s.
    let (_, default) = h.get("/api/graph").await;
    assert_eq!(default["window_s"], 60.0);
    assert_eq!(default["type"], "versioned-app");
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_reason() {
    let h = Harness::start().await;
    for (uri, says) in [
        ("/api/graph?type=galaxy", "type=\"galaxy\""),
        ("/api/graph?window=soon", "window=\"soon\""),
        ("/api/graph?window=0s", "window=\"0s\""),
    ] {
        let (status, body) = h.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let msg = body["error"].as_str().expect("error message");
        assert!(msg.contains(says), "{uri}: {msg}");
    }
}

#[tokio::test]
async fn empty_database_gives_an_empty_graph() {
    let h = Harness::start().await;
    let (status, g) = h.get("/api/graph").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(g["nodes"], serde_json::json!([]));
    assert_eq!(g["edges"], serde_json::json!([]));
}

/// Pins the whole output per graph type. Regenerate after an intended
/// change with `UPDATE_GOLDEN=1 cargo test -p loupe-server --test graph`
/// and review the diff.
#[tokio::test]
async fn golden_graphs() {
    let h = Harness::start().await;
    insert(&h.pool, &bookinfo()).await;
    for t in ["versioned-app", "app", "workload", "service"] {
        let (status, got) = h.get(&format!("/api/graph?type={t}&window=60s")).await;
        assert_eq!(status, StatusCode::OK);
        let path = format!("{}/tests/golden/graph_{t}.json", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        }
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file"))
                .expect("golden JSON");
        assert_eq!(got, want, "{t} graph differs from {path}");
    }
}

#[tokio::test]
async fn rows_without_buckets_count_with_their_mean_latency() {
    let h = Harness::start().await;
    insert(
        &h.pool,
        &[Row::new(
            ("productpage", "v1"),
            ("details", "v1"),
            "200",
            10,
        )],
    )
    .await;
    // A writer that had no histogram for the series: no bounds, no counts, 20ms mean.
    sqlx::query(
        "INSERT INTO edge_rollups (ts, interval_s, reporter, source_workload, source_workload_namespace,
            source_app, source_version, destination_workload, destination_workload_namespace,
            destination_app, destination_version, destination_service, response_code,
            connection_security_policy, requests, duration_sum_ms, bucket_bounds_ms, bucket_counts)
         VALUES (now(), 5, 'source', 'reviews-v1', 'default', 'reviews', 'v1', 'ratings-v1', 'default',
                 'ratings', 'v1', 'ratings.default.svc.cluster.local', '200', 'mutual_tls', 6, 120, '{}', '{}')",
    )
    .execute(&h.pool)
    .await
    .unwrap();
    let (_, g) = h.get("/api/graph?type=workload").await;
    let e = edge(&g, "default/reviews-v1", "default/ratings-v1");
    assert_eq!(e["requests"], 6);
    assert!(close(&e["p50_ms"], 20.0), "{e}");
    let e = edge(&g, "default/productpage-v1", "default/details-v1");
    assert!(close(&e["p50_ms"], 7.5), "{e}");
}
