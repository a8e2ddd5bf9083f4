//! `GET /api/metrics` over rollups written as the collector writes them,
//! in a private Postgres: steps, rates, error shares, quantiles, and which
//! rows each entity and reporter selects.

mod common;

use axum::http::StatusCode;
use common::{Harness, Row, insert};
use loupe_api::metrics::{Metrics, Reporter};

fn at(ago_s: f64, reporter: &'static str, row: Row) -> Row {
    Row {
        ago_s,
        reporter,
        ..row
    }
}

async fn seeded() -> Harness {
    let h = Harness::start().await;
    let pp = ("productpage", "v1");
    let rv = ("reviews", "v1");
    insert(
        &h.pool,
        &[
            // The destination's reports of productpage → reviews-v1.
            at(45.0, "destination", Row::new(pp, rv, "200", 30)),
            at(15.0, "destination", Row::new(pp, rv, "200", 50)),
            at(15.0, "destination", Row::new(pp, rv, "503", 50)),
            // The source's reports of the same traffic, a little different.
            at(15.0, "source", Row::new(pp, rv, "200", 60)),
            // Other traffic, and traffic older than the range.
            at(
                15.0,
                "destination",
                Row::new(pp, ("ratings", "v1"), "200", 999),
            ),
            at(300.0, "destination", Row::new(pp, rv, "200", 999)),
        ],
    )
    .await;
    h
}

async fn metrics(h: &Harness, query: &str) -> Metrics {
    let (status, body) = h.get(&format!("/api/metrics?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    serde_json::from_value(body).expect("a loupe_api::metrics::Metrics")
}

#[tokio::test]
async fn a_workloads_inbound_series_per_step() {
    let h = seeded().await;
    let m = metrics(
        &h,
        "entity=workload&namespace=default&name=reviews-v1&range=60s&step=30s",
    )
    .await;
    assert_eq!(m.reporter, Reporter::Destination);
    assert_eq!(m.step_s, 30.0);
    assert_eq!(m.points.len(), 2);
    let (older, newer) = (&m.points[0], &m.points[1]);
    assert!(older.at < newer.at);
    assert!((older.request_rate - 1.0).abs() < 1e-9, "{older:?}");
    assert_eq!(older.error_rate, 0.0);
    assert!(
        (newer.request_rate - 100.0 / 30.0).abs() < 1e-9,
        "{newer:?}"
    );
    assert_eq!(newer.error_rate, 0.5);
    assert!((newer.responses["503"] - 50.0 / 30.0).abs() < 1e-9);
    // Every seeded request took (5, 10] ms.
    for p in [newer.p50_ms, newer.p95_ms, newer.p99_ms] {
        let p = p.expect("a quantile");
        assert!(p > 5.0 && p <= 10.0, "{p}");
    }
}

#[tokio::test]
async fn entities_and_reporters_select_their_rows() {
    let h = seeded().await;
    let total = |m: &Metrics| {
        m.points
            .iter()
            .map(|p| p.request_rate * m.step_s)
            .sum::<f64>()
    };
    let q = "range=60s&step=60s";
    // The edge defaults to the source's report.
    let edge = metrics(
        &h,
        &format!("entity=edge&namespace=default&name=reviews-v1&source_namespace=default&source_name=productpage-v1&{q}"),
    )
    .await;
    assert_eq!(edge.reporter, Reporter::Source);
    assert!((total(&edge) - 60.0).abs() < 1e-6, "{edge:?}");
    let service = metrics(
        &h,
        &format!("entity=service&namespace=default&name=reviews&{q}"),
    )
    .await;
    assert!((total(&service) - 130.0).abs() < 1e-6, "{service:?}");
    let outbound = metrics(
        &h,
        &format!("entity=app&namespace=default&name=productpage&direction=outbound&reporter=destination&{q}"),
    )
    .await;
    assert!((total(&outbound) - 1129.0).abs() < 1e-6, "{outbound:?}");
    let (status, body) = h
        .get("/api/metrics?entity=edge&namespace=default&name=x")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("source_namespace"),
        "{body}"
    );
}
