//! The whole data path with real `loupe-proxy` processes: the test plays
//! productpage's app, sending to its sidecar's outbound listener; reviews
//! workloads sit behind their own sidecars; a Discovery server pushes the
//! config and an OTLP collector receives spans.

mod support;

use std::time::Duration;

use loupe_push::Snapshot;
use support::*;

const HOST: &str = "reviews:9080";
const FQDN: &str = "reviews.default.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_flows_through_sidecars_with_metrics_spans_and_live_config() {
    let control = ControlPlane::start().await;
    let (collector, collector_addr) = Collector::start().await;

    let apps = [
        App::start("reviews-v1").await,
        App::start("reviews-v2a").await,
        App::start("reviews-v2b").await,
        App::start("reviews-v3").await,
    ];
    let versions = ["v1", "v2", "v2", "v3"];
    let sidecars: Vec<ProxySpec> = apps
        .iter()
        .zip(versions)
        .map(|(app, v)| {
            ProxySpec::sidecar(&app.name, "reviews", v, &control.url())
                .with_inbound(app.addr)
                .with_otlp(collector_addr)
        })
        .collect();
    let productpage = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .with_outbound()
        .with_otlp(collector_addr);
    let _processes: Vec<ProxyProcess> = sidecars
        .iter()
        .chain([&productpage])
        .map(ProxySpec::spawn_binary)
        .collect();

    let endpoints: Vec<_> = sidecars
        .iter()
        .zip(versions)
        .map(|(s, v)| sidecar_endpoint(s.inbound.expect("inbound"), &s.workload, "reviews", v))
        .collect();
    control.push(Snapshot {
        version: 1,
        resources: vec![destination_rule("reviews", &["v1", "v2", "v3"])],
        services: vec![service("reviews", endpoints.clone())],
        mesh: None,
        jwks: Default::default(),
    });
    productpage.wait_ready().await;
    control.wait_ack(1, 5).await;

    // Each sidecar introduced itself.
    {
        let seen = control.seen.lock().expect("seen");
        let hello = seen
            .hellos
            .iter()
            .find(|h| h.workload == "reviews-v1")
            .expect("hello from reviews-v1");
        assert_eq!(hello.namespace, "default");
        assert_eq!(hello.service_account, "bookinfo-reviews");
        assert_eq!(hello.services, vec!["reviews".to_string()]);
        assert_eq!(
            hello.inbound_address,
            sidecars[0].inbound.expect("inbound").to_string()
        );
        assert_eq!(hello.metrics_address, sidecars[0].admin.to_string());
        assert_eq!(hello.labels.get("version").map(String::as_str), Some("v1"));
        assert!(!hello.gateway);
    }

    // Round robin over the service's four endpoints (no VirtualService:
    // the whole service).
    let outbound = productpage.outbound.expect("outbound");
    for _ in 0..8 {
        let (status, body) = get(outbound, HOST, "/reviews/1").await.expect("request");
        assert_eq!(status, 200, "{body}");
    }
    for app in &apps {
        assert_eq!(
            app.count(),
            2,
            "{} got {} of 8 requests",
            app.name,
            app.count()
        );
    }
    // The app never sees the peer-metadata header.
    let seen = apps[0].last().expect("a request");
    assert!(!seen.headers.contains_key("x-loupe-peer"));
    let request_id = seen
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(request_id.len(), 36, "a UUID x-request-id: {request_id:?}");
    assert_eq!(seen.path, "/reviews/1");

    // Trace context: the caller's trace continues through both proxies.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let (status, _, body) = request(
        outbound,
        HOST,
        "/reviews/traced",
        &[("traceparent", &format!("00-{trace_id}-{caller_span}-01"))],
    )
    .await
    .expect("traced request");
    assert_eq!(status, 200, "{body}");
    let app = apps.iter().find(|a| a.name == body).expect("answering app");
    let tp = app
        .last()
        .and_then(|s| s.headers.get("traceparent").cloned())
        .expect("app got a traceparent");
    let tp = tp.to_str().expect("ascii").to_string();
    assert!(tp.starts_with(&format!("00-{trace_id}-")), "{tp}");
    let server_span_id = tp.split('-').nth(2).expect("span id").to_string();

    let trace_bytes = hex(trace_id);
    let spans = eventually(
        "both spans of the trace at the collector",
        Duration::from_secs(10),
        || async {
            let spans = collector.of_trace(&trace_bytes);
            (spans.len() >= 2).then_some(spans)
        },
    )
    .await;
    let (client_service, client) = spans
        .iter()
        .find(|(_, s)| s.kind == 3)
        .expect("a CLIENT span");
    let (server_service, server) = spans
        .iter()
        .find(|(_, s)| s.kind == 2)
        .expect("a SERVER span");
    assert_eq!(client_service, "productpage");
    assert_eq!(server_service, "reviews");
    assert_eq!(
        client.parent_span_id,
        hex(caller_span),
        "client span continues the caller"
    );
    assert_eq!(
        server.parent_span_id, client.span_id,
        "server span is the client span's child"
    );
    assert_eq!(
        server.span_id,
        hex(&server_span_id),
        "the app's parent is the server span"
    );
    assert_eq!(client.name, format!("{FQDN}:9080/*"));
    assert_eq!(attr(client, "http.status_code").as_deref(), Some("200"));
    assert_eq!(attr(client, "http.method").as_deref(), Some("GET"));
    assert_eq!(attr(client, "component").as_deref(), Some("proxy"));
    assert_eq!(
        attr(client, "istio.canonical_service").as_deref(),
        Some("productpage")
    );
    assert!(
        attr(client, "upstream_cluster").is_some_and(|c| c.starts_with("outbound|9080||reviews"))
    );
    assert!(attr(server, "peer.address").is_some());

    // Metrics on both sides, with Istio's labels.
    let pp_metrics = eventually(
        "source metrics for 9 requests",
        Duration::from_secs(5),
        || async {
            let m = productpage.metrics().await;
            (requests_total(&m, &[("reporter", "source"), ("response_code", "200")]) == 9)
                .then_some(m)
        },
    )
    .await;
    assert_eq!(
        requests_total(
            &pp_metrics,
            &[
                ("reporter", "source"),
                ("source_workload", "productpage-v1"),
                ("source_app", "productpage"),
                ("source_version", "v1"),
                ("destination_workload", "reviews-v1"),
                ("destination_app", "reviews"),
                ("destination_version", "v1"),
                ("destination_service", FQDN),
                ("destination_service_name", "reviews"),
                ("response_code", "200"),
                ("response_flags", "-"),
                ("connection_security_policy", "unknown"),
            ]
        ),
        app_count(&apps, "reviews-v1") as u64
    );
    assert!(pp_metrics.contains("istio_request_duration_milliseconds_bucket{"));
    assert!(pp_metrics.contains("le=\"3600000\""));
    let v1_metrics = eventually(
        "destination metrics at reviews-v1",
        Duration::from_secs(5),
        || async {
            let m = sidecars[0].metrics().await;
            let n = requests_total(&m, &[("reporter", "destination")]);
            (n == app_count(&apps, "reviews-v1") as u64).then_some(m)
        },
    )
    .await;
    assert!(
        requests_total(
            &v1_metrics,
            &[
                ("reporter", "destination"),
                ("source_workload", "productpage-v1"),
                ("source_workload_namespace", "default"),
                ("source_app", "productpage"),
                ("destination_workload", "reviews-v1"),
                ("destination_service", FQDN),
                ("connection_security_policy", "mutual_tls"),
                (
                    "source_principal",
                    "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
                ),
                ("response_code", "200"),
            ]
        ) >= 2
    );

    // A new snapshot with a VirtualService sending 100 % to v3 changes
    // routing without a restart.
    let dr = destination_rule("reviews", &["v1", "v2", "v3"]);
    control.push(Snapshot {
        version: 2,
        resources: vec![
            dr.clone(),
            weighted_virtual_service("reviews", &[("v1", 0), ("v2", 0), ("v3", 100)]),
        ],
        services: vec![service("reviews", endpoints.clone())],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(2, 5).await;
    let before: Vec<usize> = apps.iter().map(App::count).collect();
    for _ in 0..10 {
        let (status, body) = get(outbound, HOST, "/after-swap").await.expect("request");
        assert_eq!((status, body.as_str()), (200, "reviews-v3"));
    }
    assert_eq!(apps[3].count(), before[3] + 10);
    assert_eq!(
        apps[0].count() + apps[1].count() + apps[2].count(),
        before[0] + before[1] + before[2]
    );

    // A subset without endpoints: 503 saying which, counted with the UH flag.
    control.push(Snapshot {
        version: 3,
        resources: vec![dr, weighted_virtual_service("reviews", &[("v2", 100)])],
        services: vec![service(
            "reviews",
            vec![endpoints[0].clone(), endpoints[3].clone()],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(3, 5).await;
    let (status, body) = get(outbound, HOST, "/").await.expect("request");
    assert_eq!(status, 503);
    assert!(
        body.contains(&format!("no healthy upstream for {FQDN} subset v2")),
        "{body}"
    );
    let m = productpage.metrics().await;
    assert_eq!(
        requests_total(
            &m,
            &[
                ("response_code", "503"),
                ("response_flags", "UH"),
                ("destination_workload", "unknown"),
                ("destination_service", FQDN)
            ]
        ),
        1,
        "{m}"
    );
}

fn app_count(apps: &[App], name: &str) -> usize {
    apps.iter()
        .find(|a| a.name == name)
        .map(App::count)
        .unwrap_or(0)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_then_exits() {
    let control = ControlPlane::start().await;
    let app = App::start("reviews-v1").await;
    let proxy =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    let mut process = proxy.spawn_binary();
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "reviews",
            vec![endpoint(app.addr, "reviews-v1", "reviews", "v1")],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    proxy.wait_ready().await;
    let outbound = proxy.outbound.expect("outbound");
    // `/slow` answers after 500 ms; SIGTERM arrives while it is in flight.
    let in_flight = tokio::spawn(async move { get(outbound, HOST, "/slow").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    process.terminate();
    let (status, body) = in_flight
        .await
        .expect("join")
        .expect("the request in flight completes");
    assert_eq!((status, body.as_str()), (200, "reviews-v1"));
    let exit = tokio::task::spawn_blocking(move || process.wait_exit(Duration::from_secs(10)))
        .await
        .expect("join");
    assert!(
        exit.is_some_and(|s| s.success()),
        "exits cleanly after draining: {exit:?}"
    );
    assert!(
        get(outbound, HOST, "/").await.is_err(),
        "no new connections after the drain"
    );
}
