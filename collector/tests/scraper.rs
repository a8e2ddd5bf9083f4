//! The scraper against a real HTTP server serving Prometheus text this test
//! controls: baseline, growth, reset, a new series, a dead proxy.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use loupe_collector::Scraper;
use loupe_collector::writer::drops::DropRecorder;
use loupe_db::{PgPool, PrivatePostgres};

type Text = Arc<Mutex<String>>;

async fn metrics_server(text: Text) -> SocketAddr {
    let app = Router::new()
        .route(
            "/stats/prometheus",
            get(|State(t): State<Text>| async move { t.lock().unwrap().clone() }),
        )
        .with_state(text);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn labels(source: &str, code: &str) -> String {
    format!(
        r#"reporter="destination",source_workload="{source}-v1",source_workload_namespace="default",source_app="{source}",source_version="v1",destination_workload="reviews-v2",destination_workload_namespace="default",destination_app="reviews",destination_version="v2",destination_service="reviews.default.svc.cluster.local",response_code="{code}",connection_security_policy="none",request_protocol="http""#
    )
}

/// Istio's exposition for series (source, code, requests, sum_ms, ≤10ms count).
fn exposition(series: &[(&str, &str, u64, f64, u64)]) -> String {
    let mut out = String::from(
        "# HELP istio_requests_total Total requests.\n# TYPE istio_requests_total counter\n",
    );
    for (s, c, n, _, _) in series {
        out += &format!("istio_requests_total{{{}}} {n}\n", labels(s, c));
    }
    out += "# TYPE istio_request_duration_milliseconds histogram\n";
    for (s, c, n, sum, fast) in series {
        let l = labels(s, c);
        out += &format!(
            "istio_request_duration_milliseconds_bucket{{{l},le=\"10\"}} {fast}\n\
             istio_request_duration_milliseconds_bucket{{{l},le=\"+Inf\"}} {n}\n\
             istio_request_duration_milliseconds_sum{{{l}}} {sum}\n\
             istio_request_duration_milliseconds_count{{{l}}} {n}\n"
        );
    }
    out
}

async fn register(pool: &PgPool, name: &str, metrics: &str) {
    sqlx::query(
        "INSERT INTO workloads (namespace, name, service_account, inbound_address, metrics_address)
         VALUES ('default', $1, 'sa', $2, $2)",
    )
    .bind(name)
    .bind(metrics)
    .execute(pool)
    .await
    .unwrap();
}

type Row = (String, i64, f64, Vec<f64>, Vec<i64>, f32, String);

async fn rollups(pool: &PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT source_workload, requests, duration_sum_ms, bucket_bounds_ms, bucket_counts, interval_s, response_code
         FROM edge_rollups ORDER BY ts, source_workload, response_code",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn scraper_turns_counters_into_deltas() {
    let pg = PrivatePostgres::start_temporary().unwrap();
    let pool = loupe_db::connect(&pg.url(), 3).await.unwrap();
    let text: Text = Arc::new(Mutex::new(exposition(&[(
        "productpage",
        "200",
        100,
        900.0,
        80,
    )])));
    let addr = metrics_server(text.clone()).await;
    register(&pool, "reviews-v2", &addr.to_string()).await;
    let mut scraper = Scraper::new(
        pool.clone(),
        Duration::from_secs(1),
        DropRecorder::default(),
    )
    .unwrap();

    // 1: baseline — the history before the collector started is not a spike.
    let report = scraper.scrape_round().await.unwrap();
    assert_eq!(
        (report.targets, report.failed, report.rows_written),
        (1, 0, 0)
    );

    // 2: growth by 10 requests, 7 of them ≤ 10 ms.
    *text.lock().unwrap() = exposition(&[("productpage", "200", 110, 1000.0, 87)]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(scraper.scrape_round().await.unwrap().rows_written, 1);
    let rows = rollups(&pool).await;
    let (src, requests, sum, bounds, counts, interval, code) = &rows[0];
    assert_eq!(
        (src.as_str(), *requests, *sum, code.as_str()),
        ("productpage-v1", 10, 100.0, "200")
    );
    assert_eq!(bounds, &[10.0, f64::INFINITY]);
    assert_eq!(counts, &[7, 3], "per-bucket, not cumulative");
    assert!(
        *interval > 0.0 && *interval < 5.0,
        "measured interval: {interval}"
    );

    // 3: unchanged → no row.
    assert_eq!(scraper.scrape_round().await.unwrap().rows_written, 0);

    // 4: the proxy restarted (counter reset) and a new series (503s from ratings) appeared.
    *text.lock().unwrap() = exposition(&[
        ("productpage", "200", 4, 20.0, 4),
        ("ratings", "503", 2, 60.0, 0),
    ]);
    assert_eq!(scraper.scrape_round().await.unwrap().rows_written, 2);
    let rows = rollups(&pool).await;
    assert_eq!(rows.len(), 3);
    let last: Vec<_> = rows[1..]
        .iter()
        .map(|r| (r.0.as_str(), r.1, r.6.as_str(), r.4.clone()))
        .collect();
    assert_eq!(
        last,
        [
            ("productpage-v1", 4, "200", vec![4, 0]),
            ("ratings-v1", 2, "503", vec![0, 2])
        ],
        "reset → the new value; new series on a known proxy → all of it"
    );

    // 5: a dead proxy is skipped; the live one is still scraped.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    register(&pool, "details-v1", &dead.to_string()).await;
    *text.lock().unwrap() = exposition(&[
        ("productpage", "200", 5, 25.0, 5),
        ("ratings", "503", 2, 60.0, 0),
    ]);
    let report = scraper.scrape_round().await.unwrap();
    assert_eq!(
        (report.targets, report.failed, report.rows_written),
        (2, 1, 1)
    );
    let rows = rollups(&pool).await;
    assert_eq!(rows.last().unwrap().1, 1);
}

#[tokio::test]
async fn proxy_registered_after_start_counts_from_zero() {
    let pg = PrivatePostgres::start_temporary().unwrap();
    let pool = loupe_db::connect(&pg.url(), 3).await.unwrap();
    let mut scraper = Scraper::new(
        pool.clone(),
        Duration::from_secs(1),
        DropRecorder::default(),
    )
    .unwrap();
    // The collector's first round sees no proxy (as in `loupe demo`).
    assert_eq!(scraper.scrape_round().await.unwrap().targets, 0);
    let text: Text = Arc::new(Mutex::new(exposition(&[(
        "productpage",
        "200",
        3,
        30.0,
        3,
    )])));
    let addr = metrics_server(text).await;
    register(&pool, "reviews-v2", &addr.to_string()).await;
    assert_eq!(scraper.scrape_round().await.unwrap().rows_written, 1);
    let rows = rollups(&pool).await;
    assert_eq!(
        (rows[0].1, rows[0].5),
        (3, 1.0),
        "all 3 requests, over one scrape interval"
    );
}

#[tokio::test]
async fn running_collector_scrapes_registered_proxies_every_interval() {
    let h = common::start_scraping(common::fast_tuning(), Duration::from_millis(100)).await;
    // start() has done its first round (no proxies yet): this one is new.
    let text: Text = Arc::new(Mutex::new(exposition(&[(
        "productpage",
        "200",
        3,
        30.0,
        3,
    )])));
    let addr = metrics_server(text.clone()).await;
    register(&h.pool, "reviews-v2", &addr.to_string()).await;
    let sum = "SELECT coalesce(sum(requests), 0)::bigint FROM edge_rollups";
    assert_eq!(h.wait_count(sum, 3).await, 3);
    *text.lock().unwrap() = exposition(&[("productpage", "200", 8, 80.0, 8)]);
    assert_eq!(
        h.wait_count(sum, 8).await,
        8,
        "deltas add up to the counter"
    );
    // A proxy that disconnected is no longer scraped.
    sqlx::query("UPDATE workloads SET connected = false")
        .execute(&h.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    *text.lock().unwrap() = exposition(&[("productpage", "200", 20, 200.0, 20)]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.count(sum).await, 8);
}

/// A server that answers every scrape with `response`.
async fn fixed_server(response: axum::response::Response<String>) -> SocketAddr {
    let response = Arc::new(response);
    let app = Router::new().route(
        "/stats/prometheus",
        get(move || {
            let r = response.clone();
            async move {
                let mut out = axum::response::Response::new(r.body().clone());
                *out.status_mut() = r.status();
                *out.headers_mut() = r.headers().clone();
                out
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn redirects_oversized_bodies_and_malformed_labels_are_refused() {
    let pg = PrivatePostgres::start_temporary().unwrap();
    let pool = loupe_db::connect(&pg.url(), 3).await.unwrap();
    let good = exposition(&[("productpage", "200", 100, 900.0, 80)]);
    let honest = metrics_server(Arc::new(Mutex::new(good.clone()))).await;
    register(&pool, "honest", &honest.to_string()).await;

    // Sends the scraper elsewhere (here to a valid exposition).
    let redirect = axum::response::Response::builder()
        .status(302)
        .header("location", format!("http://{honest}/stats/prometheus"))
        .body(String::new())
        .unwrap();
    register(
        &pool,
        "redirects",
        &fixed_server(redirect).await.to_string(),
    )
    .await;

    // Valid text, but 5 MiB of it.
    let huge = format!("{}{good}", "# padding\n".repeat(512 * 1024));
    let huge = axum::response::Response::builder().body(huge).unwrap();
    register(&pool, "huge", &fixed_server(huge).await.to_string()).await;

    // An unescaped quote inside a label value.
    let bad = good.replacen("source_app=\"productpage\"", "source_app=\"a\"b\"", 1);
    let bad = axum::response::Response::builder().body(bad).unwrap();
    register(&pool, "malformed", &fixed_server(bad).await.to_string()).await;

    // Not a HOST:PORT: a path rides in it.
    register(&pool, "pathy", &format!("{honest}/x?")).await;

    let mut scraper = Scraper::new(
        pool.clone(),
        Duration::from_secs(1),
        DropRecorder::default(),
    )
    .unwrap();
    let report = scraper.scrape_round().await.unwrap();
    assert_eq!((report.targets, report.failed), (5, 4), "{report:?}");
}
