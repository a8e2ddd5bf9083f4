//! OTLP/gRPC: a real tonic client exports to the running collector; spans
//! land in Postgres with a correct trace summary; a burst is written in
//! full; a stalled writer makes the collector answer RESOURCE_EXHAUSTED with
//! RetryInfo and count the refused spans.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

async fn client(h: &Harness) -> TraceServiceClient<tonic::transport::Channel> {
    TraceServiceClient::connect(format!("http://{}", h.collector().otlp_grpc_addr()))
        .await
        .expect("connect to OTLP/gRPC")
}

#[tokio::test]
async fn grpc_export_writes_spans_and_a_trace_summary() {
    let h = start(fast_tuning()).await;
    let mut client = client(&h).await;
    let t0 = now_ns();
    let ms = 1_000_000;
    let response = client
        .export(request(vec![
            resource_spans(
                "istio-ingressgateway",
                vec![span(1, 1, None, "GET /productpage", t0, 50 * ms, false)],
            ),
            resource_spans(
                "productpage",
                vec![span(
                    1,
                    2,
                    Some(1),
                    "GET /productpage",
                    t0 + ms,
                    45 * ms,
                    false,
                )],
            ),
            resource_spans(
                "reviews",
                vec![span(
                    1,
                    3,
                    Some(2),
                    "GET /reviews",
                    t0 + 5 * ms,
                    20 * ms,
                    true,
                )],
            ),
        ]))
        .await
        .expect("export accepted")
        .into_inner();
    assert_eq!(response.partial_success, None);

    let n = h
        .wait_count("SELECT count(*) FROM trace_summaries", 1)
        .await;
    assert_eq!(n, 1);
    let (root_service, root_operation, span_count, error_count, services, duration_us): (
        Option<String>,
        Option<String>,
        i32,
        i32,
        Vec<String>,
        f64,
    ) = sqlx::query_as(
        "SELECT root_service, root_operation, span_count, error_count, services,
                EXTRACT(EPOCH FROM end_time - start_time)::float8 * 1e6
         FROM trace_summaries",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(root_service.as_deref(), Some("istio-ingressgateway"));
    assert_eq!(root_operation.as_deref(), Some("GET /productpage"));
    assert_eq!((span_count, error_count), (3, 1));
    assert_eq!(services, ["istio-ingressgateway", "productpage", "reviews"]);
    assert_eq!(duration_us.round() as i64, 50_000);

    type SpanRow = (
        String,
        String,
        Option<String>,
        String,
        i16,
        i64,
        i16,
        serde_json::Value,
    );
    let rows: Vec<SpanRow> = sqlx::query_as(
        "SELECT trace_id, span_id, parent_span_id, service, kind, duration_us, status_code, attributes
         FROM spans_with_resource ORDER BY start_time",
    )
    .fetch_all(&h.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    let trace = format!("{}{:016x}", "aa".repeat(8), 1);
    assert!(
        rows.iter().all(|r| r.0 == trace),
        "lowercase hex trace ids: {rows:?}"
    );
    assert_eq!(rows[0].1, "0000000000000002");
    assert_eq!(rows[0].2, None);
    assert_eq!(rows[2].2.as_deref(), Some("0000000000000003"));
    assert_eq!(rows[2].3, "reviews");
    assert_eq!((rows[2].4, rows[2].5, rows[2].6), (2, 20_000, 2));
    assert_eq!(rows[2].7["http.method"], "GET");
    assert_eq!(rows[2].7["resource.service.name"], "reviews");
    // Spans went to today's partition, not the default one.
    assert_eq!(h.count("SELECT count(*) FROM ONLY spans_default").await, 0);

    // A late span of the same trace updates the summary.
    client
        .export(request(vec![resource_spans(
            "ratings",
            vec![span(
                1,
                4,
                Some(3),
                "GET /ratings",
                t0 + 10 * ms,
                60 * ms,
                false,
            )],
        )]))
        .await
        .expect("second export");
    let n = h
        .wait_count("SELECT span_count::bigint FROM trace_summaries", 4)
        .await;
    assert_eq!(n, 4);
    let (root, services, duration_us): (Option<String>, Vec<String>, f64) = sqlx::query_as(
        "SELECT root_service, services, EXTRACT(EPOCH FROM end_time - start_time)::float8 * 1e6 FROM trace_summaries",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(root.as_deref(), Some("istio-ingressgateway"), "root kept");
    assert_eq!(
        services,
        ["istio-ingressgateway", "productpage", "ratings", "reviews"]
    );
    assert_eq!(duration_us.round() as i64, 70_000, "end = greatest end");
}

#[tokio::test]
async fn grpc_burst_of_10000_spans_is_written_in_full() {
    let h = start(fast_tuning()).await;
    let t0 = now_ns();
    let mut tasks = Vec::new();
    for r in 0..10u64 {
        let mut client = client(&h).await;
        tasks.push(tokio::spawn(async move {
            // 200 traces × 5 spans per request.
            let spans = (0..1000u64)
                .map(|i| {
                    let trace = r * 200 + i / 5;
                    let parent = (i % 5 != 0).then(|| i - 1);
                    span(trace, i, parent, "op", t0 + i * 1000, 500, i % 7 == 0)
                })
                .collect();
            client
                .export(request(vec![resource_spans("burst", spans)]))
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("export accepted");
    }
    assert_eq!(
        h.wait_count("SELECT count(*) FROM spans", 10_000).await,
        10_000
    );
    assert_eq!(h.count("SELECT count(*) FROM trace_summaries").await, 2_000);
    assert_eq!(
        h.count("SELECT sum(span_count)::bigint FROM trace_summaries")
            .await,
        10_000
    );
    assert_eq!(
        h.count(
            "SELECT count(*) FROM trace_summaries WHERE root_service = 'burst' AND span_count = 5"
        )
        .await,
        2_000
    );
}

#[tokio::test]
async fn stalled_writer_answers_resource_exhausted_with_retry_info_and_counts_drops() {
    let mut tuning = fast_tuning();
    tuning.queue_capacity = 10;
    let h = start(tuning).await;
    let mut client = client(&h).await;
    let t0 = now_ns();

    // Another session holds `spans`: the writer's COPY waits, the queue fills.
    let mut lock = h.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let batch = |first: u64| {
        request(vec![resource_spans(
            "svc",
            (first..first + 4)
                .map(|i| span(i, i, None, "op", t0, 1000, false))
                .collect(),
        )])
    };
    // Each export is answered once its spans are committed: these wait.
    let waiting: Vec<_> = [0, 4]
        .map(|first| {
            let mut c = client.clone();
            let b = batch(first);
            tokio::spawn(async move { c.export(b).await })
        })
        .into_iter()
        .collect();
    // Both are queued (and wait) well within this.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = client.export(batch(8)).await.expect_err("12 > 10: refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let details = loupe_collector::otlp::rpc_status::RpcStatus::decode(status.details())
        .expect("grpc-status-details-bin is a google.rpc.Status");
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    let retry =
        loupe_collector::otlp::rpc_status::RetryInfo::decode(details.details[0].value.as_slice())
            .unwrap();
    assert_eq!(retry.retry_delay.unwrap().seconds, 1);

    // OTLP/HTTP gets its own retry signal from the same full queue.
    let http = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/traces",
            h.collector().otlp_http_addr()
        ))
        .header("content-type", "application/x-protobuf")
        .body(batch(12).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(http.status(), 429);
    assert_eq!(http.headers()["retry-after"], "1");

    lock.rollback().await.unwrap();
    for w in waiting {
        w.await.unwrap().expect("answered once committed");
    }
    assert_eq!(h.count("SELECT count(*) FROM spans").await, 8);
    let refused = h
        .wait_count(
            "SELECT coalesce(sum(count), 0)::bigint FROM telemetry_drops WHERE signal = 'spans' AND reason = 'queue_full_refused_for_retry'",
            8,
        )
        .await;
    assert_eq!(refused, 8, "4 refused over gRPC + 4 over HTTP, all counted");
    // Room again: the retry is accepted.
    client
        .export(batch(8))
        .await
        .expect("accepted after the writer caught up");
    assert_eq!(h.wait_count("SELECT count(*) FROM spans", 12).await, 12);
}

#[tokio::test]
async fn shutdown_writes_every_queued_span() {
    let mut tuning = fast_tuning();
    // A batch would wait a minute to fill: only shutdown can flush it.
    tuning.batch_timeout = std::time::Duration::from_secs(60);
    let mut h = start(tuning).await;
    let mut client = client(&h).await;
    let t0 = now_ns();
    let export = tokio::spawn(async move {
        client
            .export(request(vec![resource_spans(
                "svc",
                (0..7)
                    .map(|i| span(1, i, None, "op", t0, 1000, false))
                    .collect(),
            )]))
            .await
    });
    // Queued, waiting for a batch that would take a minute to fill.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        h.count("SELECT count(*) FROM spans").await,
        0,
        "not written before shutdown"
    );
    h.collector
        .take()
        .unwrap()
        .shutdown()
        .await
        .expect("clean shutdown");
    assert_eq!(h.count("SELECT count(*) FROM spans").await, 7);
    export
        .await
        .unwrap()
        .expect("the export is answered once shutdown wrote its spans");
}

#[tokio::test]
async fn grpc_gzip_export_is_accepted() {
    let h = start(fast_tuning()).await;
    let mut client = client(&h)
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    client
        .export(request(vec![resource_spans(
            "gzipped",
            vec![span(3, 1, None, "op", now_ns(), 1000, false)],
        )]))
        .await
        .expect("gzip export accepted");
    assert_eq!(
        h.wait_count("SELECT count(*) FROM spans WHERE service = 'gzipped'", 1)
            .await,
        1
    );
}

#[tokio::test]
async fn spans_accepted_while_postgres_restarts_are_written_when_it_is_back() {
    let root = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pg = loupe_db::PrivatePostgres::start_in(root.path(), port).unwrap();
    let mut options = loupe_collector::Options::new(pg.url());
    options.otlp_grpc = "127.0.0.1:0".parse().unwrap();
    options.otlp_http = "127.0.0.1:0".parse().unwrap();
    options.scrape_interval = std::time::Duration::from_secs(3600);
    let mut tuning = fast_tuning();
    tuning.ack_timeout = std::time::Duration::from_secs(1);
    let collector = loupe_collector::Collector::start(options, tuning)
        .await
        .unwrap();
    let mut client = TraceServiceClient::connect(format!("http://{}", collector.otlp_grpc_addr()))
        .await
        .unwrap();

    pg.stop();
    let t0 = now_ns();
    let status = client
        .export(request(vec![resource_spans(
            "svc",
            (0..5)
                .map(|i| span(i, i, None, "op", t0, 1000, false))
                .collect(),
        )]))
        .await
        .expect_err("not acknowledged while the database is down");
    // Retryable, and the spans stay queued meanwhile.
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("not committed"),
        "{}",
        status.message()
    );
    // Longer than the refusal budget (5 attempts ≈ 3 s of backoff).
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let pg = loupe_db::PrivatePostgres::start_in(root.path(), port).unwrap();
    let pool = loupe_db::connect(&pg.url(), 2).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut n = 0;
    while n < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        n = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM spans")
            .fetch_one(&pool)
            .await
            .unwrap();
    }
    assert_eq!(n, 5, "nothing lost across the restart");
    collector.shutdown().await.unwrap();
    let failed: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(count), 0)::bigint FROM telemetry_drops WHERE reason = 'write_failed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(failed, 0);
}
