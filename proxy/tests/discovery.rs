//! The control-plane client: readiness, ACK/NACK, last good config kept,
//! and reconnection when the control plane goes away.

mod support;

use std::time::Duration;

use loupe_push::Snapshot;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_snapshot_is_nacked_and_the_last_good_routes_stay() {
    let control = ControlPlane::start().await;
    let good = App::start("reviews-v1").await;
    let other = App::start("reviews-v2").await;
    let proxy =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    let _task = proxy.spawn_task();

    // Not ready before the first snapshot.
    let admin = proxy.admin;
    eventually("admin up", Duration::from_secs(5), || async move {
        get(admin, "localhost", "/ready").await.ok().map(|(s, _)| s)
    })
    .await;
    assert_eq!(
        get(admin, "localhost", "/ready").await.map(|r| r.0),
        Ok(503)
    );
    let outbound = proxy.outbound.expect("outbound");
    let (status, body) = get(outbound, "reviews:9080", "/").await.expect("request");
    assert_eq!(status, 503);
    assert!(body.contains("no configuration"), "{body}");

    control.push(Snapshot {
        version: 1,
        resources: vec![destination_rule("reviews", &["v1"])],
        services: vec![service(
            "reviews",
            vec![endpoint(good.addr, "reviews-v1", "reviews", "v1")],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    proxy.wait_ready().await;
    control.wait_ack(1, 1).await;

    // Version 2 moves reviews elsewhere but carries a resource that is not JSON.
    let mut broken = destination_rule("reviews", &["v2"]);
    broken.json = "{\"kind\": \"DestinationRule\", ".to_string();
    control.push(Snapshot {
        version: 2,
        resources: vec![broken],
        services: vec![service(
            "reviews",
            vec![endpoint(other.addr, "reviews-v2", "reviews", "v2")],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    let error = eventually("a NACK of version 2", Duration::from_secs(5), || async {
        control.nack(2)
    })
    .await;
    assert!(
        error.contains("DestinationRule/default/reviews"),
        "the NACK names the resource: {error}"
    );
    assert!(!control.acked(2));

    for _ in 0..3 {
        let (status, body) = get(outbound, "reviews:9080", "/").await.expect("request");
        assert_eq!((status, body.as_str()), (200, "reviews-v1"));
    }
    assert_eq!(other.count(), 0);
    let (_, dump) = get(admin, "localhost", "/config_dump")
        .await
        .expect("config dump");
    let dump: serde_json::Value = serde_json::from_str(&dump).expect("config_dump is JSON");
    assert_eq!(dump["version"], 1);
    assert!(
        dump["services"]["reviews.default.svc.cluster.local"]["endpoints"][0]["address"]
            .as_str()
            .is_some_and(|a| a == good.addr.to_string())
    );
    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains("loupe_proxy_config_nacks_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("loupe_proxy_config_version 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_keeps_serving_without_a_control_plane_and_reconnects() {
    let control = ControlPlane::start().await;
    let v1 = App::start("reviews-v1").await;
    let v2 = App::start("reviews-v2").await;
    let proxy =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    let _task = proxy.spawn_task();
    control.push(Snapshot {
        version: 1,
        resources: vec![],
        services: vec![service(
            "reviews",
            vec![endpoint(v1.addr, "reviews-v1", "reviews", "v1")],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    control.wait_ack(1, 1).await;

    control.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outbound = proxy.outbound.expect("outbound");
    let (status, body) = get(outbound, "reviews:9080", "/").await.expect("request");
    assert_eq!(
        (status, body.as_str()),
        (200, "reviews-v1"),
        "last good config serves"
    );

    // The control plane comes back with new endpoints; the proxy
    // reconnects, says hello again and applies them.
    control.push(Snapshot {
        version: 2,
        resources: vec![],
        services: vec![service(
            "reviews",
            vec![endpoint(v2.addr, "reviews-v2", "reviews", "v2")],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    let control = control.restart();
    control.wait_ack(2, 1).await;
    assert_eq!(control.seen.lock().expect("seen").hellos.len(), 2);
    let (status, body) = get(outbound, "reviews:9080", "/").await.expect("request");
    assert_eq!((status, body.as_str()), (200, "reviews-v2"));
    control.stop();
}

/// `n` DestinationRules for other hosts, each with an annotation of
/// `bytes` bytes (each resource stays under the config parser's own caps).
fn padding(n: usize, bytes: usize) -> Vec<loupe_push::Resource> {
    (0..n)
        .map(|i| {
            let mut rule = destination_rule(&format!("padding-{i}"), &[]);
            let mut object: serde_json::Value = serde_json::from_str(&rule.json).expect("JSON");
            object["metadata"]["annotations"] = serde_json::json!({ "padding": "x".repeat(bytes) });
            rule.json = object.to_string();
            rule
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_past_the_size_cap_is_refused_and_the_last_good_routes_stay() {
    let control = ControlPlane::start().await;
    let v1 = App::start("reviews-v1").await;
    let v2 = App::start("reviews-v2").await;
    let proxy =
        ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url()).with_outbound();
    let _task = proxy.spawn_task();
    let snapshot = |version, bytes: usize, app: &App, subset| Snapshot {
        version,
        resources: [destination_rule("reviews", &[subset])]
            .into_iter()
            .chain(padding(bytes / (64 << 10), 64 << 10))
            .collect(),
        services: vec![service(
            "reviews",
            vec![endpoint(
                app.addr,
                &format!("reviews-{subset}"),
                "reviews",
                subset,
            )],
        )],
        mesh: None,
        jwks: Default::default(),
    };
    // 8 MiB: past gRPC's 4 MiB default, within the 64 MiB cap: applied.
    control.push(snapshot(1, 8 << 20, &v1, "v1"));
    proxy.wait_ready().await;
    control.wait_ack(1, 1).await;

    // 65 MiB: refused before it is decoded; the last good config stays.
    control.push(snapshot(
        2,
        loupe_push::MAX_SNAPSHOT_SIZE + (1 << 20),
        &v2,
        "v2",
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !control.acked(2),
        "a snapshot past the cap is never applied"
    );
    let outbound = proxy.outbound.expect("outbound");
    for _ in 0..3 {
        let (status, body) = get(outbound, "reviews:9080", "/").await.expect("request");
        assert_eq!((status, body.as_str()), (200, "reviews-v1"));
    }
    assert_eq!(v2.count(), 0);
}
