//! What bad or hostile OTLP input may cost: a NUL in one sender's span does
//! not lose the others' spans; a batch Postgres refuses is split so only the
//! refused rows are dropped (and counted); resource attributes are stored
//! once however many spans share them; attribute counts and value lengths
//! are capped and counted; oversized requests and gzip bombs are refused.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;

async fn client(h: &Harness) -> TraceServiceClient<tonic::transport::Channel> {
    TraceServiceClient::connect(format!("http://{}", h.collector().otlp_grpc_addr()))
        .await
        .expect("connect to OTLP/gRPC")
}

fn http_url(h: &Harness) -> String {
    format!("http://{}/v1/traces", h.collector().otlp_http_addr())
}

async fn drops(h: &Harness, signal: &str, reason: &str, want: i64) -> i64 {
    h.wait_count(
        &format!(
            "SELECT coalesce(sum(count), 0)::bigint FROM telemetry_drops \
             WHERE signal = '{signal}' AND reason = '{reason}'"
        ),
        want,
    )
    .await
}

#[tokio::test]
async fn a_nul_in_one_senders_span_costs_no_one_their_spans() {
    let h = start(fast_tuning()).await;
    let t0 = now_ns();
    let mut bad = span(1, 1, None, "GET /\0bad", t0, 1000, false);
    bad.attributes.push(kv("user.agent", "curl\0/8"));
    let good = span(2, 2, None, "GET /good", t0, 1000, false);
    // One request, so both are in one COPY batch.
    client(&h)
        .await
        .export(request(vec![
            resource_spans("mallory\0", vec![bad]),
            resource_spans("alice", vec![good]),
        ]))
        .await
        .expect("accepted");
    assert_eq!(h.wait_count("SELECT count(*) FROM spans", 2).await, 2);
    let (operation, agent): (String, String) = sqlx::query_as(
        "SELECT operation, attributes->>'user.agent' FROM spans WHERE service = 'mallory'",
    )
    .fetch_one(&h.pool)
    .await
    .expect("the NUL was removed, the span kept");
    assert_eq!((operation.as_str(), agent.as_str()), ("GET /bad", "curl/8"));
}

#[tokio::test]
async fn a_batch_postgres_refuses_is_split_and_only_the_refused_rows_are_dropped() {
    let mut tuning = fast_tuning();
    tuning.batch_timeout = std::time::Duration::from_millis(200);
    let h = start(tuning).await;
    // Postgres refuses these rows for its own reasons (here: a constraint).
    sqlx::query("ALTER TABLE spans ADD CONSTRAINT no_poison CHECK (operation <> 'poison')")
        .execute(&h.pool)
        .await
        .unwrap();
    let t0 = now_ns();
    let spans = |service: &str, trace: u64, poison: &[u64]| {
        let spans = (0..10u64)
            .map(|i| {
                let name = if poison.contains(&i) { "poison" } else { "op" };
                span(trace, trace * 100 + i, None, name, t0 + i, 1000, false)
            })
            .collect();
        resource_spans(service, spans)
    };
    let response = client(&h)
        .await
        .export(request(vec![
            spans("alice", 1, &[]),
            spans("mallory", 2, &[3, 7]),
            spans("bob", 3, &[]),
        ]))
        .await
        .expect("accepted")
        .into_inner();
    // Answered after the commit: the sender learns which part was not stored.
    let partial = response.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("refused by the database"),
        "{partial:?}"
    );
    assert_eq!(h.count("SELECT count(*) FROM spans").await, 28);
    assert_eq!(drops(&h, "spans", "refused_by_database", 2).await, 2);
    // The summaries count exactly the stored spans.
    assert_eq!(
        h.count("SELECT sum(span_count)::bigint FROM trace_summaries")
            .await,
        28
    );
    assert_eq!(
        h.count("SELECT count(*) FROM spans WHERE service IN ('alice', 'bob')")
            .await,
        20
    );
}

fn any_string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

#[tokio::test]
async fn resource_attributes_are_stored_once_however_many_spans_share_them() {
    use std::io::Write;
    let h = start(fast_tuning()).await;
    let t0 = now_ns();
    // 100 resource attributes of 4000 bytes: 400 KB, that gzip makes small.
    let mut attributes = vec![kv("service.name", "wide")];
    attributes.extend((0..100).map(|i| KeyValue {
        key: format!("host.tag{i}"),
        value: any_string(&"x".repeat(4000)),
        ..Default::default()
    }));
    let spans = (0..1000u64)
        .map(|i| span(7, i, None, "op", t0 + i, 1000, false))
        .collect();
    let body = request(vec![ResourceSpans {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }])
    .encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 64 * 1024, "a small request: {} bytes", gz.len());
    let response = reqwest::Client::new()
        .post(http_url(&h))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.wait_count("SELECT count(*) FROM spans", 1000).await, 1000);
    assert_eq!(h.count("SELECT count(*) FROM span_resources").await, 1);
    // Copied into each span it would be 400 MB; stored once it is 400 KB.
    let span_bytes = h
        .count("SELECT sum(octet_length(attributes::text))::bigint FROM spans")
        .await;
    assert!(
        span_bytes < 200_000,
        "spans hold {span_bytes} bytes of attributes"
    );
    // Read through the view, every span still has its resource's attributes.
    assert_eq!(
        h.count(
            "SELECT count(*) FROM spans_with_resource \
             WHERE attributes->>'resource.service.name' = 'wide' \
               AND length(attributes->>'resource.host.tag99') = 4000 \
               AND attributes->>'http.method' = 'GET'"
        )
        .await,
        1000
    );
}

#[tokio::test]
async fn attribute_count_and_value_length_are_capped_and_counted() {
    let h = start(fast_tuning()).await;
    let mut s = span(5, 1, None, "op", now_ns(), 1000, false);
    s.attributes = (0..200).map(|i| kv(&format!("k{i:03}"), "v")).collect();
    s.attributes[0] = kv("long", &"y".repeat(10_000));
    client(&h)
        .await
        .export(request(vec![resource_spans("capped", vec![s])]))
        .await
        .expect("accepted");
    assert_eq!(h.wait_count("SELECT count(*) FROM spans", 1).await, 1);
    let (keys, long): (i64, i32) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jsonb_object_keys(attributes)), \
                length(attributes->>'long') FROM spans",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!((keys, long), (128, 4096));
    assert_eq!(
        drops(&h, "span_attributes", "over_count_limit", 72).await,
        72
    );
    assert_eq!(
        drops(&h, "attribute_values", "truncated_over_length_limit", 1).await,
        1
    );
    // The same counts on the collector's own /metrics.
    let metrics = reqwest::get(format!("http://{}/metrics", h.collector().otlp_http_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"loupe_collector_telemetry_dropped_total{signal="span_attributes",reason="over_count_limit"} 72"#,
        r#"loupe_collector_telemetry_dropped_total{signal="attribute_values",reason="truncated_over_length_limit"} 1"#,
        "loupe_collector_span_queue_spans 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_request_with_too_many_spans_is_refused_on_both_protocols() {
    let mut tuning = fast_tuning();
    tuning.span_limits.max_spans_per_request = 10;
    let h = start(tuning).await;
    let t0 = now_ns();
    let eleven = request(vec![resource_spans(
        "many",
        (0..11u64)
            .map(|i| span(1, i, None, "op", t0, 1, false))
            .collect(),
    )]);
    let status = client(&h)
        .await
        .export(eleven.clone())
        .await
        .expect_err("11 > 10");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("at most 10"),
        "{}",
        status.message()
    );
    let response = reqwest::Client::new()
        .post(http_url(&h))
        .header("content-type", "application/x-protobuf")
        .body(eleven.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(drops(&h, "spans", "too_many_in_request", 22).await, 22);
    assert_eq!(h.count("SELECT count(*) FROM spans").await, 0);
}

#[tokio::test]
async fn gzip_bombs_are_refused_at_the_size_limit_on_both_protocols() {
    use std::io::Write;
    let mut tuning = fast_tuning();
    tuning.max_request_bytes = 256 * 1024;
    let h = start(tuning).await;
    // One span whose attribute is 4 MB of one letter: 4 KB gzipped.
    let mut s = span(3, 1, None, "op", now_ns(), 1, false);
    s.attributes = vec![kv("bomb", &"z".repeat(4 * 1024 * 1024))];
    let bomb = request(vec![resource_spans("bomb", vec![s])]);

    let status = client(&h)
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .export(bomb.clone())
        .await
        .expect_err("inflates past the limit");
    assert!(
        status.message().contains("size limit"),
        "{:?}: {}",
        status.code(),
        status.message()
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bomb.encode_to_vec()).unwrap();
    let response = reqwest::Client::new()
        .post(http_url(&h))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(h.count("SELECT count(*) FROM spans").await, 0);
}
