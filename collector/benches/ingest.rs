//! Ingest throughput harness (no criterion: the unit of work is a database
//! round trip). Prints spans/s into a private Postgres for:
//! 1. baseline — one `INSERT` per span (autocommit), spans only;
//! 2. the batch writer — `COPY` of 1000-span batches plus the per-trace
//!    `trace_summaries` upsert, in one transaction per batch;
//! 3. end to end — OTLP/gRPC exports (4 concurrent clients, 500 spans per
//!    request) into a running collector, until every span is in Postgres;
//!
//! and the ratios of 2 and 3 to the baseline measured in the same run.
//! Run: `cargo bench -p loupe-collector --bench ingest` (add `-- N` to
//! change the span count of 2 and 3, default 100000).
//!
//! One run (release, 2 shared cores under load ≈ 12, private Postgres):
//! INSERT 1 950 spans/s; COPY + summaries 36 700 spans/s (18.8×);
//! OTLP/gRPC end to end 34 800 spans/s (17.9×).

use std::time::{Duration, Instant};

use chrono::Utc;
use loupe_collector::otlp::span_row::SpanRow;
use loupe_collector::{Collector, Options, Tuning};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

const BASELINE_SPANS: usize = 5_000;
const SPANS_PER_TRACE: usize = 5;

fn row(i: usize, run: &str) -> SpanRow {
    SpanRow {
        trace_id: format!("{run}{:030x}", i / SPANS_PER_TRACE),
        span_id: format!("{:016x}", i + 1),
        parent_span_id: (!i.is_multiple_of(SPANS_PER_TRACE)).then(|| format!("{:016x}", i)),
        service: format!("service-{}", i % SPANS_PER_TRACE),
        operation: "GET /api/v1/reviews".into(),
        kind: 2,
        start_time: Utc::now(),
        duration_us: 1234,
        status_code: 0,
        attributes: serde_json::json!({
            "http.method": "GET", "http.status_code": 200,
            "upstream_cluster": "outbound|9080|v1|reviews.default.svc.cluster.local",
        })
        .to_string(),
        resource: None,
        scope: None,
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn export(first: usize, n: usize) -> ExportTraceServiceRequest {
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let spans = (first..first + n)
        .map(|i| {
            let mut trace = vec![0xee; 8];
            trace.extend_from_slice(&((i / SPANS_PER_TRACE) as u64).to_be_bytes());
            Span {
                trace_id: trace,
                span_id: ((i + 1) as u64).to_be_bytes().to_vec(),
                parent_span_id: if i.is_multiple_of(SPANS_PER_TRACE) {
                    vec![]
                } else {
                    (i as u64).to_be_bytes().to_vec()
                },
                name: "GET /api/v1/reviews".into(),
                kind: 2,
                start_time_unix_nano: now,
                end_time_unix_nano: now + 1_234_000,
                attributes: vec![
                    kv("http.method", "GET"),
                    kv("upstream_cluster", "outbound|9080|v1|reviews"),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "reviews")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM spans")
        .fetch_one(pool)
        .await
        .expect("count spans")
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let pg = loupe_db::PrivatePostgres::start_temporary().expect("private postgres");
    let pool = loupe_db::connect(&pg.url(), 4).await.expect("connect");
    loupe_collector::partitions::ensure_ahead(&pool, Utc::now().date_naive())
        .await
        .expect("partitions");

    // 1. Baseline: row by row.
    let rows: Vec<SpanRow> = (0..BASELINE_SPANS).map(|i| row(i, "aa")).collect();
    let started = Instant::now();
    for r in &rows {
        sqlx::query(
            "INSERT INTO spans (trace_id, span_id, parent_span_id, service, operation, kind,
                                start_time, duration_us, status_code, attributes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)",
        )
        .bind(&r.trace_id)
        .bind(&r.span_id)
        .bind(&r.parent_span_id)
        .bind(&r.service)
        .bind(&r.operation)
        .bind(r.kind)
        .bind(r.start_time)
        .bind(r.duration_us)
        .bind(r.status_code)
        .bind(&r.attributes)
        .execute(&pool)
        .await
        .expect("insert");
    }
    let baseline = BASELINE_SPANS as f64 / started.elapsed().as_secs_f64();

    // 2. The batch writer.
    let rows: Vec<SpanRow> = (0..n).map(|i| row(i, "bb")).collect();
    let started = Instant::now();
    for batch in rows.chunks(1000) {
        loupe_collector::writer::spans::write(&pool, batch)
            .await
            .expect("copy batch");
    }
    let copy = n as f64 / started.elapsed().as_secs_f64();

    // 3. End to end over OTLP/gRPC.
    let before = count(&pool).await;
    let mut options = Options::new(pg.url());
    options.otlp_grpc = "127.0.0.1:0".parse().expect("addr");
    options.otlp_http = "127.0.0.1:0".parse().expect("addr");
    options.scrape_interval = Duration::from_secs(3600);
    let collector = Collector::start(options, Tuning::default())
        .await
        .expect("collector");
    let endpoint = format!("http://{}", collector.otlp_grpc_addr());
    let started = Instant::now();
    let per_client = n / 4;
    let mut clients = Vec::new();
    for c in 0..4 {
        let endpoint = endpoint.clone();
        clients.push(tokio::spawn(async move {
            let mut client = TraceServiceClient::connect(endpoint)
                .await
                .expect("connect");
            let mut sent = 0;
            while sent < per_client {
                let k = 500.min(per_client - sent);
                let first = c * per_client + sent;
                // A refused export is retried, as an SDK would.
                while client.export(export(first, k)).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                sent += k;
            }
        }));
    }
    for c in clients {
        c.await.expect("client");
    }
    let want = before + (per_client * 4) as i64;
    while count(&pool).await < want {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e2e = (per_client * 4) as f64 / started.elapsed().as_secs_f64();
    collector.shutdown().await.expect("shutdown");

    println!(
        "ingest into Postgres ({} spans per trace):",
        SPANS_PER_TRACE
    );
    println!(
        "  baseline row-by-row INSERT ({BASELINE_SPANS} spans):          {baseline:>10.0} spans/s  1.0x"
    );
    println!(
        "  {:<52} {copy:>8.0} spans/s  {:.1}x",
        format!("COPY batches of 1000 + trace_summaries ({n} spans)"),
        copy / baseline
    );
    println!(
        "  {:<52} {e2e:>8.0} spans/s  {:.1}x",
        format!("OTLP/gRPC end to end, 4 clients ({} spans)", per_client * 4),
        e2e / baseline
    );
}
