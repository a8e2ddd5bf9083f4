//! Every listener's limits against slow and greedy clients: a client that
//! never finishes its headers (or, over HTTP/2, never sends a request) is
//! disconnected after the header-read timeout (slowloris), and past the connection cap new connections are
//! closed on arrival and counted while the open ones are still served.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes; how long that took (`None`: still open after `wait`).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

async fn up(proxy: &ProxySpec) {
    let admin = proxy.admin;
    eventually("admin up", Duration::from_secs(5), || async move {
        get(admin, "localhost", "/ready").await.ok().map(|(s, _)| s)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let control = ControlPlane::start().await;
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .without_identity()
        .with_outbound()
        .with_flags(&["--header-read-timeout", "500ms"]);
    let _task = proxy.spawn_task();
    up(&proxy).await;
    let outbound = proxy.outbound.expect("outbound");

    let mut slow = TcpStream::connect(outbound).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: reviews:9080\r\nX-Slow: ")
        .await
        .unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(5))
        .await
        .expect("the slow client was disconnected");
    assert!(
        closed >= Duration::from_millis(400),
        "closed after {closed:?}: before the timeout"
    );

    // A client that finishes in time is served (503: no config yet).
    let (status, _) = get(outbound, "reviews:9080", "/").await.expect("answer");
    assert_eq!(status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_that_never_sends_a_request_is_disconnected() {
    let control = ControlPlane::start().await;
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .without_identity()
        .with_outbound()
        .with_flags(&["--header-read-timeout", "500ms"]);
    let _task = proxy.spawn_task();
    up(&proxy).await;
    let outbound = proxy.outbound.expect("outbound");

    // The HTTP/2 preface and an empty SETTINGS frame, then silence.
    let mut slow = TcpStream::connect(outbound).await.unwrap();
    slow.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(5))
        .await
        .expect("the silent HTTP/2 client was disconnected");
    assert!(
        closed >= Duration::from_millis(400),
        "closed after {closed:?}: before the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_closed_and_counted() {
    let control = ControlPlane::start().await;
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .without_identity()
        .with_outbound()
        .with_flags(&["--max-connections", "3"]);
    let _task = proxy.spawn_task();
    up(&proxy).await;
    let outbound = proxy.outbound.expect("outbound");

    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(TcpStream::connect(outbound).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(outbound).await.unwrap();
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2))
            .await
            .is_some(),
        "the fourth connection is closed at once"
    );
    // The open ones are still served.
    let first = &mut open[0];
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains("loupe_proxy_connections_over_limit_total 1\n"),
        "{metrics}"
    );

    // A connection that closes frees its place.
    open.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = get(outbound, "reviews:9080", "/").await.expect("answer");
    assert_eq!(status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_host_headers_do_not_grow_the_metrics() {
    let control = ControlPlane::start().await;
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .without_identity()
        .with_outbound();
    let _task = proxy.spawn_task();
    up(&proxy).await;
    let outbound = proxy.outbound.expect("outbound");
    // The first unknown host makes the one `unknown` edge; later ones add nothing.
    get(outbound, "first.example.com", "/")
        .await
        .expect("answer");
    let before = proxy.metrics().await.len();
    for i in 0..3_000 {
        let (status, _) = get(outbound, &format!("h{i}.example.com"), "/")
            .await
            .expect("answer");
        assert_eq!(status, 503);
    }
    let after = proxy.metrics().await;
    assert!(!after.contains("h1.example.com"), "a Host became a label");
    assert!(
        after.len() < before + 1024,
        "{} bytes of metrics after 3,000 distinct hosts (from {before})",
        after.len()
    );
}

/// A mirror that accepts connections and never answers.
async fn silent_listener() -> std::net::SocketAddr {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    addr
}

/// A proxy routing reviews to v1 (`v1`) and mirroring every request to v2
/// (`mirror`), with the route's `timeout` if given.
async fn mirroring_proxy(
    control: &ControlPlane,
    v1: std::net::SocketAddr,
    mirror: std::net::SocketAddr,
    timeout: Option<&str>,
) -> (ProxySpec, tokio::task::JoinHandle<()>) {
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .without_identity()
        .with_outbound();
    let task = proxy.spawn_task();
    let mut route = serde_json::json!({
        "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
        "mirror": {"host": "reviews", "subset": "v2"},
        "mirrorPercentage": {"value": 100.0}});
    if let Some(t) = timeout {
        route["timeout"] = t.into();
    }
    let vs = resource(
        "VirtualService",
        "reviews",
        serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "default"},
            "spec": {"hosts": ["reviews"], "http": [route]},
        }),
    );
    control.push(loupe_push::Snapshot {
        version: 1,
        resources: vec![destination_rule("reviews", &["v1", "v2"]), vs],
        services: vec![service(
            "reviews",
            vec![
                endpoint(v1, "reviews-v1", "reviews", "v1"),
                endpoint(mirror, "reviews-v2", "reviews", "v2"),
            ],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    proxy.wait_ready().await;
    (proxy, task)
}

/// A counter or gauge without labels from `/stats/prometheus`.
fn value(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_never_answers_holds_at_most_a_thousand_copies() {
    let control = ControlPlane::start().await;
    let v1 = App::start("reviews-v1").await;
    let (proxy, _task) = mirroring_proxy(&control, v1.addr, silent_listener().await, None).await;
    let outbound = proxy.outbound.expect("outbound");
    for _ in 0..1_100 {
        let (status, body) = get(outbound, "reviews:9080", "/").await.expect("answer");
        assert_eq!((status, body.as_str()), (200, "reviews-v1"));
    }
    let metrics = proxy.metrics().await;
    assert_eq!(value(&metrics, "loupe_proxy_mirrors_in_flight"), 1_000);
    assert_eq!(value(&metrics, "loupe_proxy_mirrors_skipped_total"), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirrored_copy_is_abandoned_after_the_route_timeout() {
    let control = ControlPlane::start().await;
    let v1 = App::start("reviews-v1").await;
    let silent = silent_listener().await;
    let (proxy, _task) = mirroring_proxy(&control, v1.addr, silent, Some("1s")).await;
    let outbound = proxy.outbound.expect("outbound");
    for _ in 0..50 {
        let (status, _) = get(outbound, "reviews:9080", "/").await.expect("answer");
        assert_eq!(status, 200);
    }
    let held = value(&proxy.metrics().await, "loupe_proxy_mirrors_in_flight");
    assert!(
        held > 0,
        "the copies are outstanding while the mirror is silent"
    );
    let started = Instant::now();
    eventually("mirrored copies abandoned", Duration::from_secs(4), || {
        let proxy = &proxy;
        async move {
            let n = value(&proxy.metrics().await, "loupe_proxy_mirrors_in_flight");
            (n == 0).then_some(())
        }
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "abandoned after {:?}: the route's 1 s timeout bounds each copy",
        started.elapsed()
    );
}
