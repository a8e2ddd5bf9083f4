//! Load balancing and upstream failure handling on the outbound path:
//! retries on connect failures and retriable statuses, bodies streamed
//! through, failures answered the way Envoy answers them.

mod support;

use bytes::Bytes;
use loupe_push::Snapshot;
use support::*;

const HOST: &str = "reviews:9080";

async fn sidecar(control: &ControlPlane) -> ProxySpec {
    let proxy =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    proxy.spawn_task();
    proxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_are_retried_on_the_next_endpoint() {
    let control = ControlPlane::start().await;
    let live = App::start("reviews-v1").await;
    let dead = addr(free_port());
    let proxy = sidecar(&control).await;
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "reviews",
            vec![
                endpoint(dead, "reviews-v0", "reviews", "v0"),
                endpoint(live.addr, "reviews-v1", "reviews", "v1"),
            ],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 1).await;
    let outbound = proxy.outbound.expect("outbound");
    for _ in 0..6 {
        let (status, body) = get(outbound, HOST, "/").await.expect("request");
        assert_eq!((status, body.as_str()), (200, "reviews-v1"));
    }
    assert_eq!(live.count(), 6);
    let m = proxy.metrics().await;
    assert_eq!(
        requests_total(
            &m,
            &[
                ("destination_workload", "reviews-v1"),
                ("response_code", "200")
            ]
        ),
        6,
        "{m}"
    );

    // Only the dead endpoint: retries run out, 503 says why.
    control.push(Snapshot {
        version: 2,
        resources: vec![],
        services: vec![service(
            "reviews",
            vec![endpoint(dead, "reviews-v0", "reviews", "v0")],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(2, 1).await;
    let (status, body) = get(outbound, HOST, "/").await.expect("request");
    assert_eq!(status, 503);
    assert!(body.contains("connection failure"), "{body}");
    let m = proxy.metrics().await;
    assert_eq!(
        requests_total(
            &m,
            &[
                ("destination_workload", "reviews-v0"),
                ("response_code", "503"),
                ("response_flags", "URX")
            ]
        ),
        1,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_from_one_endpoint_is_retried_and_bodies_are_resent() {
    let control = ControlPlane::start().await;
    let failing = App::start_with("reviews-v2", 503).await;
    let healthy = App::start("reviews-v1").await;
    let proxy = sidecar(&control).await;
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "reviews",
            vec![
                endpoint(failing.addr, "reviews-v2", "reviews", "v2"),
                endpoint(healthy.addr, "reviews-v1", "reviews", "v1"),
            ],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 1).await;
    let outbound = proxy.outbound.expect("outbound");
    for i in 0..4 {
        let payload = Bytes::from(format!("rating {i}"));
        let (status, body) = post(outbound, HOST, "/echo", payload.clone())
            .await
            .expect("post");
        assert_eq!((status, body), (200, payload));
    }
    assert_eq!(healthy.count(), 4);
    assert!(
        failing.count() >= 2,
        "round robin sent some first attempts to the failing endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_streams_through_both_proxies() {
    let control = ControlPlane::start().await;
    let app = App::start("ratings-v1").await;
    let ratings =
        ProxySpec::sidecar("ratings-v1", "ratings", "v1", &control.url()).with_inbound(app.addr);
    ratings.spawn_task();
    let proxy = sidecar(&control).await;
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "ratings",
            vec![sidecar_endpoint(
                ratings.inbound.expect("inbound"),
                "ratings-v1",
                "ratings",
                "v1",
            )],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 2).await;
    let payload = Bytes::from(vec![b'x'; 1 << 20]);
    let (status, body) = post(
        proxy.outbound.expect("outbound"),
        "ratings:9080",
        "/echo",
        payload.clone(),
    )
    .await
    .expect("post");
    assert_eq!(status, 200);
    assert_eq!(body.len(), payload.len());
    let m = eventually(
        "request bytes recorded",
        std::time::Duration::from_secs(5),
        || async {
            let m = ratings.metrics().await;
            m.contains("istio_request_bytes_count{").then_some(m)
        },
    )
    .await;
    assert!(m.contains("istio_response_bytes_bucket{"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_and_a_dead_app_are_answered_with_reasons() {
    let control = ControlPlane::start().await;
    let dead_app = addr(free_port());
    let details =
        ProxySpec::sidecar("details-v1", "details", "v1", &control.url()).with_inbound(dead_app);
    details.spawn_task();
    let proxy = sidecar(&control).await;
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "details",
            vec![sidecar_endpoint(
                details.inbound.expect("inbound"),
                "details-v1",
                "details",
                "v1",
            )],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 2).await;
    let outbound = proxy.outbound.expect("outbound");
    let (status, body) = get(outbound, "nosuch:9080", "/").await.expect("request");
    assert_eq!(status, 503);
    assert!(body.contains("nosuch.default.svc.cluster.local"), "{body}");

    let (status, body) = get(outbound, "details:9080", "/").await.expect("request");
    assert_eq!(status, 503, "{body}");
    let m = eventually(
        "the inbound UF series",
        std::time::Duration::from_secs(5),
        || async {
            let m = details.metrics().await;
            (requests_total(&m, &[("reporter", "destination"), ("response_flags", "UF")]) > 0)
                .then_some(m)
        },
    )
    .await;
    assert!(m.contains("source_workload=\"productpage-v1\""), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_never_affects_requests() {
    let control = ControlPlane::start().await;
    let app = App::start("reviews-v1").await;
    let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .with_outbound()
        .with_otlp(addr(free_port()));
    proxy.spawn_task();
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
    control.wait_ack(1, 1).await;
    for _ in 0..50 {
        let (status, _) = get(proxy.outbound.expect("outbound"), HOST, "/")
            .await
            .expect("request");
        assert_eq!(status, 200);
    }
    eventually(
        "a failed span export to be counted",
        std::time::Duration::from_secs(10),
        || async {
            let m = proxy.metrics().await;
            let failures = m
                .lines()
                .find_map(|l| l.strip_prefix("loupe_proxy_span_export_failures_total "))
                .and_then(|v| v.parse::<u64>().ok())?;
            (failures >= 1).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_is_counted_as_downstream_termination() {
    let control = ControlPlane::start().await;
    let app = App::start("reviews-v1").await;
    let proxy = sidecar(&control).await;
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
    control.wait_ack(1, 1).await;
    let outbound = proxy.outbound.expect("outbound");
    // `/slow` answers after 500 ms; the client leaves after 100 ms.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(100),
        get(outbound, HOST, "/slow"),
    )
    .await;
    assert!(gave_up.is_err());
    eventually(
        "the abandoned request counted",
        std::time::Duration::from_secs(5),
        || async {
            let m = proxy.metrics().await;
            (requests_total(&m, &[("response_code", "0"), ("response_flags", "DC")]) == 1)
                .then_some(())
        },
    )
    .await;
}
