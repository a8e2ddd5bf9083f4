//! productpage, run as its real binary, calls details and reviews through
//! its "sidecar" (here a recording HTTP server on a real socket) by service
//! name and forwards the trace headers.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// (Host, path, traceparent) of each request the sidecar saw.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn productpage_calls_dependencies_by_name_and_forwards_traceparent() {
    let seen: Seen = Arc::default();
    let sidecar = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sidecar_addr = sidecar.local_addr().unwrap();
    let recorded = seen.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = sidecar.accept().await.unwrap();
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let recorded = recorded.clone();
                    async move {
                        let host = req
                            .headers()
                            .get("host")
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .to_string();
                        let tp = req
                            .headers()
                            .get("traceparent")
                            .map(|v| v.to_str().unwrap().to_string());
                        recorded
                            .lock()
                            .unwrap()
                            .push((host, req.uri().path().to_string(), tp));
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            "{\"ok\":true}",
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });

    let app = free_addr();
    let _child = Kill(
        Command::new(env!("CARGO_BIN_EXE_loupe-sample"))
            .args([
                "serve",
                "productpage",
                "--listen",
                &app.to_string(),
                "--proxy",
                &sidecar_addr.to_string(),
            ])
            .spawn()
            .unwrap(),
    );
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = tokio::net::TcpStream::connect(app).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream.expect("productpage up")))
            .await
            .unwrap();
    tokio::spawn(conn);
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let resp = send
        .send_request(
            Request::get("/productpage")
                .header("host", "productpage:9080")
                .header("traceparent", tp)
                .header("cookie", "do-not-forward")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["details"]["ok"], true);

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("details:9080".into(), "/details/0".into(), Some(tp.into())),
            ("reviews:9080".into(), "/reviews/0".into(), Some(tp.into())),
        ]
    );
}
