//! The inbound authorization seam: Istio AuthorizationPolicies from the
//! pushed config decide before the app is called.

mod support;

use bytes::Bytes;
use loupe_push::Snapshot;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_policy_lets_gets_through_and_denies_posts() {
    let control = ControlPlane::start().await;
    let app = App::start("ratings-v1").await;
    let ratings =
        ProxySpec::sidecar("ratings-v1", "ratings", "v1", &control.url()).with_inbound(app.addr);
    ratings.spawn_task();
    let caller = ProxySpec::sidecar("reviews-v2", "reviews", "v2", &control.url()).with_outbound();
    caller.spawn_task();
    control.push(Snapshot {
        version: 1,
        resources: vec![resource(
            "AuthorizationPolicy",
            "ratings-read-only",
            json!({
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "ratings-read-only", "namespace": "default"},
                "spec": {
                    "selector": {"matchLabels": {"app": "ratings"}},
                    "action": "ALLOW",
                    "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}],
                },
            }),
        )],
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
    let outbound = caller.outbound.expect("outbound");
    let (status, body) = get(outbound, "ratings:9080", "/ratings/0")
        .await
        .expect("get");
    assert_eq!((status, body.as_str()), (200, "ratings-v1"));
    let (status, body) = post(
        outbound,
        "ratings:9080",
        "/ratings/0",
        Bytes::from_static(b"5"),
    )
    .await
    .expect("post");
    assert_eq!(status, 403);
    assert_eq!(body, Bytes::from_static(b"RBAC: access denied\n"));
    assert_eq!(app.count(), 1, "the denied request never reached the app");
    let m = eventually(
        "the 403 at the destination",
        std::time::Duration::from_secs(5),
        || async {
            let m = ratings.metrics().await;
            (requests_total(&m, &[("reporter", "destination"), ("response_code", "403")]) == 1)
                .then_some(m)
        },
    )
    .await;
    assert!(m.contains("source_workload=\"reviews-v2\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_the_proxy_cannot_compile_fails_closed_for_what_it_selects() {
    let control = ControlPlane::start().await;
    let app = App::start("ratings-v1").await;
    let ratings =
        ProxySpec::sidecar("ratings-v1", "ratings", "v1", &control.url()).with_inbound(app.addr);
    ratings.spawn_task();
    let caller = ProxySpec::sidecar("reviews-v2", "reviews", "v2", &control.url()).with_outbound();
    caller.spawn_task();
    let services = vec![service(
        "ratings",
        vec![sidecar_endpoint(
            ratings.inbound.expect("inbound"),
            "ratings-v1",
            "ratings",
            "v1",
        )],
    )];
    // A DENY that this proxy cannot read (`methods` is not a list, as a
    // newer control plane's field might be to an older proxy).
    let policy = |app: &str| {
        resource(
            "AuthorizationPolicy",
            "deny-deletes",
            json!({
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "deny-deletes", "namespace": "default"},
                "spec": {
                    "selector": {"matchLabels": {"app": app}},
                    "action": "DENY",
                    "rules": [{"to": [{"operation": {"methods": "DELETE"}}]}],
                },
            }),
        )
    };
    let snapshot = |version, app: &str| Snapshot {
        version,
        resources: vec![policy(app)],
        services: services.clone(),
        mesh: None,
        jwks: Default::default(),
    };
    // Selecting another workload: ratings is untouched.
    control.push(snapshot(1, "details"));
    control.wait_ack(1, 2).await;
    let outbound = caller.outbound.expect("outbound");
    let (status, _) = get(outbound, "ratings:9080", "/ratings/0")
        .await
        .expect("get");
    assert_eq!(status, 200);

    // Selecting ratings: every request is denied, not let through.
    control.push(snapshot(2, "ratings"));
    control.wait_ack(2, 2).await;
    let before = app.count();
    let (status, body) = get(outbound, "ratings:9080", "/ratings/0")
        .await
        .expect("get");
    assert_eq!((status, body.as_str()), (403, "RBAC: access denied\n"));
    assert_eq!(app.count(), before, "the app was not called");
    let metrics = ratings.metrics().await;
    assert!(
        metrics.contains("loupe_proxy_security_resources_failed_closed 1"),
        "{metrics}"
    );
    let admin = ratings.admin;
    let (_, dump) = get(admin, "localhost", "/config_dump").await.expect("dump");
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(
        dump["failedClosed"][0]["resource"],
        "AuthorizationPolicy/default/deny-deletes"
    );
}
