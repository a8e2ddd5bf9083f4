//! OTLP/HTTP: protobuf and JSON bodies become rows; malformed bodies get a
//! 400 with a google.rpc.Status that says what was wrong, and write nothing.

mod common;

use common::*;
use loupe_collector::otlp::rpc_status::RpcStatus;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

fn url(h: &Harness) -> String {
    format!("http://{}/v1/traces", h.collector().otlp_http_addr())
}

#[tokio::test]
async fn http_protobuf_export_writes_rows() {
    let h = start(fast_tuning()).await;
    let t0 = now_ns();
    let body = request(vec![resource_spans(
        "details",
        vec![
            span(7, 1, None, "GET /details", t0, 3_000_000, false),
            span(7, 2, Some(1), "SELECT", t0 + 1_000, 1_000_000, false),
        ],
    )])
    .encode_to_vec();
    let response = reqwest::Client::new()
        .post(url(&h))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let decoded = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(decoded.partial_success, None);
    assert_eq!(
        h.wait_count("SELECT count(*) FROM spans WHERE service = 'details'", 2)
            .await,
        2
    );
    assert_eq!(
        h.wait_count(
            "SELECT span_count::bigint FROM trace_summaries WHERE root_operation = 'GET /details'",
            2
        )
        .await,
        2
    );
}

/// A body as an OpenTelemetry SDK's OTLP/JSON exporter sends it: hex ids,
/// integer enums, 64-bit integers as strings, lowerCamelCase names.
fn sdk_json(start_ns: u64) -> String {
    let end_ns = start_ns + 2_500_000;
    format!(
        r#"{{"resourceSpans":[{{
            "resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}},
                                       {{"key":"telemetry.sdk.language","value":{{"stringValue":"python"}}}}]}},
            "scopeSpans":[{{
                "scope":{{"name":"opentelemetry.instrumentation.flask","version":"0.48b0"}},
                "spans":[
                  {{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
                    "name":"POST /checkout","kind":2,
                    "startTimeUnixNano":"{start_ns}","endTimeUnixNano":"{end_ns}",
                    "attributes":[{{"key":"http.status_code","value":{{"intValue":"500"}}}},
                                  {{"key":"http.route","value":{{"stringValue":"/checkout"}}}},
                                  {{"key":"retry.ratio","value":{{"doubleValue":0.5}}}}],
                    "events":[{{"timeUnixNano":"{start_ns}","name":"exception",
                               "attributes":[{{"key":"exception.type","value":{{"stringValue":"KeyError"}}}}]}}],
                    "status":{{"code":2,"message":"boom"}}}},
                  {{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000000","name":"bad id",
                    "startTimeUnixNano":"{start_ns}","endTimeUnixNano":"{end_ns}"}}
                ]}}]}}]}}"#
    )
}

#[tokio::test]
async fn http_json_export_writes_rows_and_reports_invalid_spans() {
    let h = start(fast_tuning()).await;
    let response = reqwest::Client::new()
        .post(url(&h))
        .header("content-type", "application/json")
        .body(sdk_json(now_ns()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["partialSuccess"]["rejectedSpans"], 1,
        "the all-zero span id is rejected: {body}"
    );
    assert!(
        body["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("spanId")
    );

    assert_eq!(h.wait_count("SELECT count(*) FROM spans", 1).await, 1);
    let (trace_id, span_id, service, kind, duration_us, status, attrs): (
        String,
        String,
        String,
        i16,
        i64,
        i16,
        serde_json::Value,
    ) = sqlx::query_as(
        "SELECT trace_id, span_id, service, kind, duration_us, status_code, attributes FROM spans_with_resource",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(
        trace_id, "5b8efff798038103d269b633813fc60c",
        "stored lowercase"
    );
    assert_eq!(span_id, "eee19b7ec3c1b174");
    assert_eq!(service, "checkout");
    assert_eq!((kind, duration_us, status), (2, 2_500, 2));
    assert_eq!(attrs["http.status_code"], 500);
    assert_eq!(attrs["retry.ratio"], 0.5);
    assert_eq!(attrs["resource.telemetry.sdk.language"], "python");
    assert_eq!(
        attrs["otel.scope.name"],
        "opentelemetry.instrumentation.flask"
    );
    assert_eq!(attrs["otel.status_description"], "boom");
    assert_eq!(
        attrs["otel.events"][0]["attributes"]["exception.type"],
        "KeyError"
    );
    assert_eq!(
        h.wait_count(
            "SELECT coalesce(sum(count), 0)::bigint FROM telemetry_drops WHERE reason = 'invalid_span'",
            1
        )
        .await,
        1
    );
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_message_and_write_nothing() {
    let h = start(fast_tuning()).await;
    let client = reqwest::Client::new();

    let response = client
        .post(url(&h))
        .header("content-type", "application/x-protobuf")
        .body("this is not protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let status =
        RpcStatus::decode(response.bytes().await.unwrap()).expect("a google.rpc.Status body");
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(status.message.contains("protobuf"), "{}", status.message);

    let response = client
        .post(url(&h))
        .header("content-type", "application/json")
        .body(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"not-hex"}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 3);
    assert!(
        body["message"].as_str().unwrap().contains("OTLP JSON"),
        "{body}"
    );

    let response = client
        .post(url(&h))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("application/x-protobuf")
    );

    // An empty export is valid: 200 with an empty response.
    let response = client
        .post(url(&h))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"resourceSpans":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{}");

    // Nothing queued, nothing written, even after a batch interval.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(h.count("SELECT count(*) FROM spans").await, 0);
    assert_eq!(h.count("SELECT count(*) FROM trace_summaries").await, 0);
}

#[tokio::test]
async fn gzip_bodies_are_inflated_and_bad_gzip_is_400() {
    use std::io::Write;
    let h = start(fast_tuning()).await;
    let body = request(vec![resource_spans(
        "ratings",
        vec![span(9, 1, None, "GET /ratings", now_ns(), 1_000_000, false)],
    )])
    .encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let client = reqwest::Client::new();
    let response = client
        .post(url(&h))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        h.wait_count("SELECT count(*) FROM spans WHERE service = 'ratings'", 1)
            .await,
        1
    );

    let response = client
        .post(url(&h))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let status: serde_json::Value = response.json().await.unwrap();
    assert!(
        status["message"].as_str().unwrap().contains("gzip"),
        "{status}"
    );
}
