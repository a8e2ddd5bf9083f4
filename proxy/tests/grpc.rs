//! gRPC across the mesh, as a gRPC client and server (tonic) see it: the
//! client speaks h2c to its sidecar's outbound listener, the sidecars
//! speak HTTP/2 over mesh mTLS, the destination sidecar speaks h2c to the
//! server. Unary calls carry their trailers (`grpc-status`), errors keep
//! their code and message, and a bidirectional stream stays open and
//! interleaved through both proxies.

mod support;

use std::pin::Pin;
use std::time::Duration;

use loupe_push::certificates_client::CertificatesClient;
use loupe_push::certificates_server::{Certificates, CertificatesServer};
use loupe_push::discovery_client::DiscoveryClient;
use loupe_push::discovery_server::{Discovery, DiscoveryServer};
use loupe_push::proxy_message::Message;
use loupe_push::{Ack, CertificateRequest, CertificateResponse, Hello, ProxyMessage, Snapshot};
use support::*;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// The gRPC app: echoes CSRs, refuses "deny", and answers every stream
/// message with a snapshot (Hello → 1, Ack v → v + 1).
struct Echo;

#[tonic::async_trait]
impl Certificates for Echo {
    async fn create_certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let csr = request.into_inner().csr;
        if csr == "deny" {
            return Err(Status::permission_denied("the echo app says no"));
        }
        Ok(Response::new(CertificateResponse {
            cert_chain: vec![format!("echo:{csr}")],
            trust_bundle: vec![],
        }))
    }
}

#[tonic::async_trait]
impl Discovery for Echo {
    type StreamStream = Pin<Box<dyn Stream<Item = Result<Snapshot, Status>> + Send>>;

    async fn stream(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(Ok(message)) = inbound.next().await {
                let version = match message.message {
                    Some(Message::Hello(_)) => 1,
                    Some(Message::Ack(a)) => a.version + 1,
                    _ => continue,
                };
                let snapshot = Snapshot {
                    version,
                    ..Default::default()
                };
                if tx.send(Ok(snapshot)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_errors_and_streams_cross_the_mesh_over_mtls() {
    let control = ControlPlane::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(CertificatesServer::new(Echo))
            .add_service(DiscoveryServer::new(Echo))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let server = ProxySpec::sidecar("echo-v1", "echo", "v1", &control.url()).with_inbound(app);
    server.spawn_task();
    let caller =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    caller.spawn_task();
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "echo",
            vec![sidecar_endpoint(
                server.inbound.expect("inbound"),
                "echo-v1",
                "echo",
                "v1",
            )],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 2).await;
    server.wait_ready().await;
    caller.wait_ready().await;

    // The app calls `echo:9080` through its sidecar, as a gRPC client does.
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "http://{}",
        caller.outbound.expect("outbound")
    ))
    .unwrap()
    .origin("http://echo:9080".parse().unwrap())
    .timeout(Duration::from_secs(5))
    .connect()
    .await
    .expect("h2c to the sidecar");

    let mut unary = CertificatesClient::new(channel.clone());
    let answer = unary
        .create_certificate(CertificateRequest {
            csr: "hello".into(),
            validity_duration: 0,
        })
        .await
        .expect("unary call through the mesh");
    assert_eq!(answer.into_inner().cert_chain, ["echo:hello"]);

    let refused = unary
        .create_certificate(CertificateRequest {
            csr: "deny".into(),
            validity_duration: 0,
        })
        .await
        .expect_err("the app's error comes back");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(refused.message(), "the echo app says no");

    // A bidirectional stream: each reply arrives before the next request is sent.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut stream = DiscoveryClient::new(channel)
        .stream(ReceiverStream::new(rx))
        .await
        .expect("stream opened")
        .into_inner();
    tx.send(ProxyMessage {
        message: Some(Message::Hello(Hello::default())),
    })
    .await
    .unwrap();
    for expected in 1..=5u64 {
        let snapshot = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("reply in time")
            .expect("stream healthy")
            .expect("a message");
        assert_eq!(snapshot.version, expected);
        tx.send(ProxyMessage {
            message: Some(Message::Ack(Ack { version: expected })),
        })
        .await
        .unwrap();
    }
    drop(tx);

    // Both sidecars counted the calls, each as a 200 over mTLS.
    let m = server.metrics().await;
    assert!(
        requests_total(
            &m,
            &[
                ("reporter", "destination"),
                ("source_workload", "productpage-v1"),
                ("connection_security_policy", "mutual_tls"),
                ("response_code", "200"),
            ]
        ) >= 2,
        "{m}"
    );
    // Istio's gRPC label: the unary success is OK (0), the refusal
    // PERMISSION_DENIED (7), both with HTTP 200 — on both sides.
    let client_side = caller.metrics().await;
    for (metrics, reporter) in [(&m, "destination"), (&client_side, "source")] {
        for status in ["0", "7"] {
            assert!(
                requests_total(
                    metrics,
                    &[
                        ("reporter", reporter),
                        ("grpc_response_status", status),
                        ("response_code", "200"),
                    ]
                ) >= 1,
                "grpc_response_status={status} ({reporter}) in\n{metrics}"
            );
        }
    }
}
