//! End to end through real sidecars: the control plane pushes a
//! VirtualService to running `loupe-proxy` sidecars (in-process tasks, real
//! sockets), and changing the VirtualService changes where productpage's
//! requests to `reviews` go. Each workload is declared (WorkloadEntry,
//! ServiceEntry) and has a token, as in `loupe demo`: each sidecar reaches
//! the control plane over TLS with its token, gets a certificate, and the
//! sidecars speak mTLS to each other.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{REVIEWS_DR, control, db, reviews_vs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A port nothing listens on right now.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// A tiny HTTP/1.1 app that answers every request with its own name.
async fn app(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
    let addr = listener.local_addr().expect("app addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // Requests carry no body here: one ends at the blank line.
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                    buf.drain(..end);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{name}",
                        name.len()
                    );
                    if conn.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Declares a workload (WorkloadEntry + ServiceEntry, as `loupe demo`
/// does), gives it a token, and starts its sidecar as a task; returns its
/// (inbound, outbound) addresses.
async fn sidecar(
    cp: &common::Running,
    workload: &str,
    app_label: &str,
    version: &str,
    app: Option<SocketAddr>,
) -> (Option<SocketAddr>, SocketAddr) {
    let inbound = app.map(|_| free_port());
    let outbound = free_port();
    let labels = vec![
        ("app".to_string(), app_label.to_string()),
        ("version".to_string(), version.to_string()),
    ];
    cp.declare(&loupe_push::Hello {
        workload: workload.into(),
        namespace: "default".into(),
        service_account: format!("bookinfo-{app_label}"),
        labels: labels.iter().cloned().collect(),
        inbound_address: inbound.map(|a| a.to_string()).unwrap_or_default(),
        metrics_address: String::new(),
        services: vec![app_label.into()],
        gateway: false,
    })
    .await;
    let token = cp.ca_dir.path().join(format!("{workload}.token"));
    std::fs::write(&token, cp.token("default", workload).await).expect("write token");
    let args = loupe_proxy::cli::Args {
        workload: workload.into(),
        namespace: "default".into(),
        service_account: format!("bookinfo-{app_label}"),
        labels,
        services: vec![app_label.into()],
        inbound,
        app: app.map(|a| a.to_string()),
        outbound: Some(outbound),
        admin: Some(free_port()),
        capture: false,
        pod_ip: None,
        outbound_traffic_policy: Default::default(),
        dns_upstream: None,
        control: format!("https://{}", cp.addr),
        otlp: None,
        gateway: false,
        listen: None,
        ca_root: Some(cp.ca_dir.path().join("root-cert.pem")),
        token_file: Some(token),
        trust_domain: "cluster.local".into(),
        cert_ttl: None,
        header_read_timeout: std::time::Duration::from_secs(10),
        max_connections: 10_000,
        concurrency: 2,
    };
    tokio::spawn(async move {
        if let Err(error) = loupe_proxy::run(args, std::future::pending::<()>()).await {
            panic!("sidecar failed to start: {error}");
        }
    });
    (inbound, outbound)
}

/// productpage's app calling `reviews` through its sidecar's outbound listener.
async fn call_reviews(outbound: SocketAddr) -> Option<String> {
    let mut conn = TcpStream::connect(outbound).await.ok()?;
    conn.write_all(b"GET /reviews/0 HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    response.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// Calls until `want` answers (fails the test after `within`); returns when it did.
async fn until_answered_by(outbound: SocketAddr, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if call_reviews(outbound).await.as_deref() == Some(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{want} did not answer within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_change_moves_traffic_between_running_sidecars() {
    let db = db().await;
    let cp = control(&db.pool).await;
    let all_v1 = format!("{REVIEWS_DR}---\n{}", reviews_vs(100, 0));
    cp.store
        .apply("bookinfo.yaml", &all_v1, "alice")
        .await
        .unwrap();

    let v1 = app("reviews-v1").await;
    let v3 = app("reviews-v3").await;
    sidecar(&cp, "reviews-v1", "reviews", "v1", Some(v1)).await;
    sidecar(&cp, "reviews-v3", "reviews", "v3", Some(v3)).await;
    let (_, outbound) = sidecar(&cp, "productpage-v1", "productpage", "v1", None).await;

    // Everything to v1 once the sidecars are up and have their config.
    until_answered_by(outbound, "reviews-v1", Duration::from_secs(20)).await;
    for _ in 0..20 {
        assert_eq!(call_reviews(outbound).await.as_deref(), Some("reviews-v1"));
    }
    // Both reviews workloads are registered endpoints.
    common::eventually(
        Duration::from_secs(5),
        "both reviews sidecars connected",
        || {
            let published = cp.published_endpoints("reviews.default.svc.cluster.local");
            async move { published.len() == 2 }
        },
    )
    .await;

    // The canary flip: 100 % to v3.
    let started = Instant::now();
    cp.store
        .apply("canary.yaml", &reviews_vs(0, 100), "alice")
        .await
        .unwrap();
    until_answered_by(outbound, "reviews-v3", Duration::from_secs(1)).await;
    println!(
        "apply → productpage's requests reach reviews-v3 after {:?}",
        started.elapsed()
    );
    for _ in 0..20 {
        assert_eq!(call_reviews(outbound).await.as_deref(), Some("reviews-v3"));
    }
    cp.shutdown().await;
}
