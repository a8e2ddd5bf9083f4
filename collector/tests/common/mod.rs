//! Shared test harness: a private Postgres, a running collector on
//! ephemeral ports, and OTLP span builders.
#![allow(dead_code)]

use std::time::Duration;

use loupe_collector::{Collector, Options, Tuning};
use loupe_db::{PgPool, PrivatePostgres};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

pub struct Harness {
    pub collector: Option<Collector>,
    pub pool: PgPool,
    // Last: the server outlives the pools.
    pub pg: PrivatePostgres,
}

pub fn fast_tuning() -> Tuning {
    Tuning {
        batch_timeout: Duration::from_millis(20),
        drop_flush_interval: Duration::from_millis(100),
        ..Tuning::default()
    }
}

pub async fn start(tuning: Tuning) -> Harness {
    // The OTLP tests register no workloads; scraping is tested on its own.
    start_scraping(tuning, Duration::from_secs(3600)).await
}

pub async fn start_scraping(tuning: Tuning, scrape_interval: Duration) -> Harness {
    let pg = PrivatePostgres::start_temporary().expect("start private postgres");
    let mut options = Options::new(pg.url());
    options.otlp_grpc = "127.0.0.1:0".parse().unwrap();
    options.otlp_http = "127.0.0.1:0".parse().unwrap();
    options.scrape_interval = scrape_interval;
    let collector = Collector::start(options, tuning)
        .await
        .expect("collector starts");
    let pool = loupe_db::connect(&pg.url(), 4).await.expect("test pool");
    Harness {
        collector: Some(collector),
        pool,
        pg,
    }
}

impl Harness {
    pub fn collector(&self) -> &Collector {
        self.collector.as_ref().expect("collector running")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&self.pool)
            .await
            .expect("count query")
    }

    /// Polls `sql` (a count) until it equals `want` or 10 s pass.
    pub async fn wait_count(&self, sql: &str, want: i64) -> i64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.count(sql).await;
            if n == want || tokio::time::Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub fn trace_id(n: u64) -> Vec<u8> {
    let mut id = vec![0xaa; 8];
    id.extend_from_slice(&n.to_be_bytes());
    id
}

pub fn span_id(n: u64) -> Vec<u8> {
    (n + 1).to_be_bytes().to_vec()
}

/// A span of trace `trace`, id `id`, child of `parent`, `[start, start+dur)` ns.
pub fn span(
    trace: u64,
    id: u64,
    parent: Option<u64>,
    name: &str,
    start_ns: u64,
    dur_ns: u64,
    error: bool,
) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + dur_ns,
        attributes: vec![kv("http.method", "GET")],
        status: Some(Status {
            code: if error { 2 } else { 0 },
            message: String::new(),
        }),
        ..Default::default()
    }
}

pub fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn request(resource_spans: Vec<ResourceSpans>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest { resource_spans }
}

/// Now, in Unix nanoseconds (so rows land in today's partition).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}
