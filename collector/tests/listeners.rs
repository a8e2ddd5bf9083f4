//! What a client may hold of the OTLP listeners: a connection that sends no
//! headers is closed; connections past the cap wait; requests past the
//! concurrency limit wait for a turn.

mod common;

use std::time::Duration;

use common::*;
use loupe_collector::listen::ListenerLimits;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn tuning(limits: ListenerLimits) -> loupe_collector::Tuning {
    loupe_collector::Tuning {
        listener_limits: limits,
        ..fast_tuning()
    }
}

fn body() -> Vec<u8> {
    request(vec![resource_spans(
        "s",
        vec![span(1, 1, None, "op", now_ns(), 1, false)],
    )])
    .encode_to_vec()
}

async fn post(h: &Harness) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!(
            "http://{}/v1/traces",
            h.collector().otlp_http_addr()
        ))
        .header("content-type", "application/x-protobuf")
        .body(body())
        .timeout(Duration::from_millis(800))
        .send()
        .await
}

#[tokio::test]
async fn a_client_that_sends_no_headers_is_cut_off() {
    let h = start(tuning(ListenerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ListenerLimits::default()
    }))
    .await;
    let mut slow = TcpStream::connect(h.collector().otlp_http_addr())
        .await
        .unwrap();
    slow.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server ends the connection (with or without a 408) well before 5 s.
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let h = start(tuning(ListenerLimits {
        max_connections: 2,
        ..ListenerLimits::default()
    }))
    .await;
    for addr in [
        h.collector().otlp_http_addr(),
        h.collector().otlp_grpc_addr(),
    ] {
        let a = TcpStream::connect(addr).await.unwrap();
        let b = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let third = async {
            if addr == h.collector().otlp_http_addr() {
                post(&h).await.map(|_| ()).map_err(|e| e.to_string())
            } else {
                let mut client = TraceServiceClient::connect(format!("http://{addr}"))
                    .await
                    .map_err(|e| e.to_string())?;
                client
                    .export(request(vec![]))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        };
        let waited = tokio::time::timeout(Duration::from_millis(700), third).await;
        assert!(
            waited.is_err() || waited.as_ref().unwrap().is_err(),
            "a third connection was served on {addr}: {waited:?}"
        );
        drop(a);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let served = if addr == h.collector().otlp_http_addr() {
            post(&h)
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        } else {
            let mut client = TraceServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            client
                .export(request(vec![]))
                .await
                .map(|_| 200)
                .map_err(|e| e.to_string())
        };
        assert_eq!(served, Ok(200), "once a slot is free, {addr} serves again");
        drop(b);
    }
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_wait_for_a_turn() {
    let h = start(tuning(ListenerLimits {
        max_concurrent_requests: 1,
        ..ListenerLimits::default()
    }))
    .await;
    // A request whose body is still arriving holds the one turn.
    let body = body();
    let mut slow = TcpStream::connect(h.collector().otlp_http_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body[..1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        post(&h).await.is_err(),
        "a second request was served at once"
    );

    slow.write_all(&body[1..]).await.unwrap();
    let mut answer = [0u8; 12];
    slow.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    drop(slow);
    assert_eq!(post(&h).await.unwrap().status(), 200, "its turn came");
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_and_one_too_large_refused() {
    let mut t = tuning(ListenerLimits {
        body_read_timeout: Duration::from_millis(300),
        ..ListenerLimits::default()
    });
    t.max_request_bytes = 64 * 1024;
    let h = start(t).await;
    let mut slow = TcpStream::connect(h.collector().otlp_http_addr())
        .await
        .unwrap();
    slow.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: 100\r\n\r\nab",
    )
    .await
    .unwrap();
    let mut answer = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), slow.read_exact(&mut answer))
        .await
        .expect("answered within 5 s")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 408");

    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/traces",
            h.collector().otlp_http_addr()
        ))
        .header("content-type", "application/x-protobuf")
        .body(vec![0u8; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}
