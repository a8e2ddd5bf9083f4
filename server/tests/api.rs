//! The parts around the APIs: health, unknown API paths, server-sent events
//! over a real socket, the built frontend with its client-route fallback.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{Harness, Row, insert};

#[tokio::test]
async fn health_reports_the_database() {
    let h = Harness::start().await;
    let (status, body) = h.get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");

    h.pg.stop();
    h.pool.close().await;
    let (status, body) = h.get("/api/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

/// Sends `signal` (`-STOP`, `-CONT`) to the private Postgres: its
/// postmaster and every backend, so pooled connections hang too.
fn signal_postgres(h: &Harness, signal: &str) {
    let pid_file = h.pg.data_dir().join("postmaster.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("postmaster.pid");
    let pid = pid.lines().next().expect("a pid").trim().to_string();
    let children = std::process::Command::new("pkill")
        .args([signal, "-P", &pid])
        .status()
        .expect("pkill");
    assert!(children.success(), "pkill {signal} -P {pid}");
    let postmaster = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill");
    assert!(postmaster.success(), "kill {signal} {pid}");
}

/// `GET /api/health` as the banner asks it: without credentials.
async fn anonymous_health(h: &Harness) -> (StatusCode, serde_json::Value) {
    let req = axum::http::Request::get("/api/health")
        .body(axum::body::Body::empty())
        .expect("request");
    h.send_raw(req).await
}

/// A Postgres that hangs (not one that refuses) is reported unreachable
/// within the check's bound, and healthy again once it answers: what the
/// console's degraded banner shows and clears.
#[tokio::test]
async fn health_is_bounded_when_postgres_hangs_and_recovers() {
    let h = Harness::start().await;
    assert_eq!(anonymous_health(&h).await.0, StatusCode::OK);

    signal_postgres(&h, "-STOP");
    let asked = std::time::Instant::now();
    let (status, body) = anonymous_health(&h).await;
    let took = asked.elapsed();
    signal_postgres(&h, "-CONT");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"], "unreachable");
    assert!(
        took < loupe_server::health::CHECK_TIMEOUT + Duration::from_secs(2),
        "the check took {took:?}"
    );

    let mut healthy = false;
    for _ in 0..40 {
        if anonymous_health(&h).await.0 == StatusCode::OK {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(healthy, "health did not come back after Postgres resumed");
}

#[tokio::test]
async fn unknown_api_path_is_json_404() {
    let h = Harness::start().await;
    let (status, body) = h.get("/api/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("/api/nothing/here")
    );
}

/// Reads SSE frames until one of `event` arrives; returns its data.
async fn next_event(stream: &mut reqwest::Response, buf: &mut String, event: &str) -> String {
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let name = frame
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            if name == Some(event) {
                return frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {event} event within 10s"))
            .expect("chunk")
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn events_announce_graph_data_and_config_changes() {
    let h = Harness::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app();
    let state = h.state.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { state.shutdown_signal().await })
            .await
    });

    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/api/events"))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp;
    let mut buf = String::new();

    // On connect: the current state of both.
    let first = next_event(&mut stream, &mut buf, "config").await;
    assert!(first.contains("\"version\":0"), "{first}");

    // New rollups → a graph event naming the newer data.
    insert(
        &h.pool,
        &[Row::new(("productpage", "v1"), ("reviews", "v1"), "200", 5)],
    )
    .await;
    let graph = next_event(&mut stream, &mut buf, "graph").await;
    let graph: serde_json::Value = serde_json::from_str(&graph).unwrap();
    assert!(graph["latest"].is_string(), "{graph}");

    // A config revision → a config event with the new version.
    sqlx::query(
        "INSERT INTO config_revisions (kind, namespace, name, revision, yaml, object, author)
         VALUES ('VirtualService', 'default', 'reviews', 1, '', '{}', 'test')",
    )
    .execute(&h.pool)
    .await
    .unwrap();
    let config = next_event(&mut stream, &mut buf, "config").await;
    assert!(!config.contains("\"version\":0"), "{config}");

    // Shutdown ends the stream, so the server can stop.
    h.state.shut_down();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("graceful shutdown with an open event stream")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn static_frontend_with_client_route_fallback() {
    let h = Harness::start().await;
    let dir = tempfile_dir();
    std::fs::write(dir.join("index.html"), "<html>loupe</html>").unwrap();
    std::fs::write(dir.join("app.js"), "console.log(1)").unwrap();
    let app = loupe_server::app_with_static(h.state.clone(), &dir);
    let get = |uri: &'static str| {
        let app = app.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let resp = app
                .oneshot(
                    axum::http::Request::get(uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(
        get("/").await,
        (StatusCode::OK, "<html>loupe</html>".into())
    );
    assert_eq!(
        get("/app.js").await,
        (StatusCode::OK, "console.log(1)".into())
    );
    assert_eq!(
        get("/traces/abc").await,
        (StatusCode::OK, "<html>loupe</html>".into())
    );
    let (status, body) = get("/api/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Unknown API paths are behind the login like the rest of /api.
    assert_eq!(get("/api/nope").await.0, StatusCode::UNAUTHORIZED);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("loupe-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn serve_refuses_a_static_dir_without_index_html() {
    let dir = std::env::temp_dir().join(format!("loupe-empty-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = loupe_server::serve(loupe_server::Options {
        static_dir: Some(dir.clone()),
        ..loupe_server::Options::new(
            "postgres://nobody@localhost/none",
            "127.0.0.1:0".parse().unwrap(),
        )
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("index.html"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn serve_answers_on_a_real_socket_and_stops_when_told() {
    let h = Harness::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(loupe_server::serve_until(
        loupe_server::Options::new(h.pg.url(), format!("127.0.0.1:{port}").parse().unwrap()),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let url = format!("http://127.0.0.1:{port}/api/health");
    let mut health = None;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await {
            health = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health.expect("the server answers")["status"], "ok");

    // An open event stream must not hold the shutdown up.
    let events = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/events"))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops within 10s")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(&url).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn database_errors_map_to_409_or_an_opaque_500() {
    use axum::response::IntoResponse;
    use loupe_server::ApiError;
    let h = Harness::start().await;
    let insert =
        "INSERT INTO config_revisions (kind, namespace, name, revision, yaml, object, author)
                  VALUES ('VirtualService', 'default', 'reviews', 1, '', '{}', 'test')";
    sqlx::query(insert).execute(&h.pool).await.unwrap();
    let duplicate = sqlx::query(insert).execute(&h.pool).await.unwrap_err();
    let resp = ApiError::from_sqlx("writing a revision", duplicate).into_response();
    assert_eq!(resp.status(), StatusCode::CONFLICT);

    let broken = sqlx::query("SELECT no_such_column FROM config_revisions")
        .execute(&h.pool)
        .await
        .unwrap_err();
    let resp = ApiError::from_sqlx("reading revisions", broken).into_response();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("no_such_column"),
        "internals must not leak: {text}"
    );
}

#[tokio::test]
async fn proxy_status_says_who_runs_the_newest_config() {
    let h = Harness::start().await;
    let store = loupe_control::ConfigStore::new(h.pool.clone());
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n";
    store.apply("vs.yaml", vs, "alice").await.expect("apply");
    let revision = store.version().await.expect("version");
    assert!(revision > 0);
    let m = 1_000_000i64;
    for (name, connected, acked, nacked) in [
        ("reviews-v1", true, Some(revision * m + 2), None),
        (
            "reviews-v2",
            true,
            Some((revision - 1) * m),
            Some(revision * m),
        ),
        ("ratings-v1", false, Some(revision * m), None),
    ] {
        sqlx::query(
            "INSERT INTO workloads (namespace, name, service_account, labels, services, inbound_address,
                                    metrics_address, gateway, connected, acked_version, nacked_version, nack_error, last_seen)
             VALUES ('default', $1, 'sa', '{}', '{}', '127.0.0.1:1', '127.0.0.1:2', FALSE, $2, $3, $4, $5, now())",
        )
        .bind(name)
        .bind(connected)
        .bind(acked)
        .bind(nacked)
        .bind(nacked.map(|_| "unknown field"))
        .execute(&h.pool)
        .await
        .expect("insert workload");
    }
    let (status, body) = h.get("/api/proxy-status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config_revision"], revision);
    assert_eq!(
        (body["connected"].as_u64(), body["synced"].as_u64()),
        (Some(2), Some(1)),
        "{body}"
    );
    let sync_of = |name: &str| {
        body["proxies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["workload"] == name)
            .map(|p| p["sync"].as_str().unwrap().to_string())
    };
    assert_eq!(sync_of("reviews-v1").as_deref(), Some("SYNCED"));
    assert_eq!(sync_of("reviews-v2").as_deref(), Some("NACKED"));
    assert_eq!(sync_of("ratings-v1").as_deref(), Some("DISCONNECTED"));
}

#[tokio::test]
async fn event_streams_share_one_poller_and_are_capped() {
    let h = Harness::start().await;
    let limits = loupe_server::Limits {
        max_event_streams: 40,
        ..Default::default()
    };
    let state = h.state.clone().with_limits(limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = loupe_server::app(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { state.shutdown_signal().await })
            .await
    });
    let client = reqwest::Client::new();
    let open = || async {
        client
            .get(format!("http://{addr}/api/events"))
            .bearer_auth(&h.token)
            .send()
            .await
            .unwrap()
    };
    let mut streams = Vec::new();
    for _ in 0..40 {
        let s = open().await;
        assert_eq!(s.status(), 200);
        streams.push(s);
    }
    let refused = open().await;
    assert_eq!(refused.status(), 503, "the 41st stream is refused");

    // Forty open streams cost the database what one does: one poller
    // (a config read each second, a rollup read every two).
    let commits = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&h.pool)
        .await
        .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = commits().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let per_second = (commits().await - before) as f64 / 5.0;
    assert!(
        per_second < 10.0,
        "{per_second} transactions/s with 40 streams open (one poller makes ~2)"
    );

    // A closed stream frees its place.
    streams.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(open().await.status(), 200);
}

/// A console on a real socket with at most `max_connections` connections.
async fn serve_capped(h: &Harness, max_connections: usize) -> std::net::SocketAddr {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut options = loupe_server::Options::new(h.pg.url(), addr);
    options.max_connections = max_connections;
    tokio::spawn(loupe_server::serve_until(options, std::future::pending()));
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    addr
}

/// A raw `GET /api/health` on `s`; the status line, if one comes within `wait`.
async fn health_on(s: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(wait, s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().map(str::to_string)
}

#[tokio::test]
async fn past_its_connection_cap_the_console_serves_no_one_new_until_a_place_frees() {
    let h = Harness::start().await;
    let addr = serve_capped(&h, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        health_on(&mut first, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        health_on(&mut second, Duration::from_secs(5))
            .await
            .is_some()
    );
    // The third waits in the backlog: no answer while both places are held.
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        health_on(&mut third, Duration::from_millis(800)).await,
        None
    );
    drop(first);
    // Its request was sent already; once a place frees, it is answered.
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("answered once a place freed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start().await;
    let addr = serve_capped(&h, 16).await;
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let wait = loupe_server::HEADER_READ_TIMEOUT + Duration::from_secs(5);
    loop {
        match tokio::time::timeout(wait, slow.read(&mut buf)).await {
            Err(_) => panic!("still open after {wait:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => continue, // a 408 before the close is fine
        }
    }
    assert!(started.elapsed() >= loupe_server::HEADER_READ_TIMEOUT - Duration::from_secs(1));
}
