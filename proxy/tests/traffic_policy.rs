//! VirtualService traffic policies on the outbound path, as Istio users
//! write them: weights, header matches, faults, timeouts, retries,
//! rewrites, redirects, and the 404 of a route that matches nothing.

mod support;

use std::time::{Duration, Instant};

use loupe_push::{Resource, Snapshot};
use serde_json::json;
use support::*;

const HOST: &str = "reviews:9080";

fn virtual_service(http: serde_json::Value) -> Resource {
    resource(
        "VirtualService",
        "reviews",
        json!({
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "default"},
            "spec": {"hosts": ["reviews"], "http": http},
        }),
    )
}

/// reviews v1 and v2 apps, a productpage sidecar, and `http` as the
/// reviews VirtualService's routes.
struct Mesh {
    control: ControlPlane,
    v1: App,
    v2: App,
    proxy: ProxySpec,
}

impl Mesh {
    async fn start(v2_status: u16) -> Mesh {
        let control = ControlPlane::start().await;
        let v1 = App::start("reviews-v1").await;
        let v2 = App::start_with("reviews-v2", v2_status).await;
        let proxy = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
            .with_outbound();
        proxy.spawn_task();
        Mesh {
            control,
            v1,
            v2,
            proxy,
        }
    }

    async fn routes(&self, version: u64, http: serde_json::Value) {
        self.control.push(Snapshot {
            version,
            resources: vec![
                destination_rule("reviews", &["v1", "v2"]),
                virtual_service(http),
            ],
            services: vec![service(
                "reviews",
                vec![
                    endpoint(self.v1.addr, "reviews-v1", "reviews", "v1"),
                    endpoint(self.v2.addr, "reviews-v2", "reviews", "v2"),
                ],
            )],
            mesh: None,
            jwks: Default::default(),
        });
        self.control.wait_ack(version, 1).await;
    }

    fn outbound(&self) -> std::net::SocketAddr {
        self.proxy.outbound.expect("outbound")
    }
}

fn to(subset: &str) -> serde_json::Value {
    json!({"destination": {"host": "reviews", "subset": subset}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_traffic_between_subsets() {
    let mesh = Mesh::start(200).await;
    mesh.routes(
        1,
        json!([{"route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": 75},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": 25}]}]),
    )
    .await;
    for _ in 0..200 {
        let (status, _) = get(mesh.outbound(), HOST, "/").await.expect("request");
        assert_eq!(status, 200);
    }
    let v1 = mesh.v1.count();
    assert_eq!(v1 + mesh.v2.count(), 200);
    assert!(
        (120..=180).contains(&v1),
        "75 % of 200 expected at v1, got {v1}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_matches_route_before_the_default_route() {
    let mesh = Mesh::start(200).await;
    mesh.routes(
        1,
        json!([
            {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [to("v2")]},
            {"route": [to("v1")]}
        ]),
    )
    .await;
    let (_, _, body) = request(mesh.outbound(), HOST, "/", &[("end-user", "jason")])
        .await
        .expect("request");
    assert_eq!(body, "reviews-v2");
    let (_, body) = get(mesh.outbound(), HOST, "/").await.expect("request");
    assert_eq!(body, "reviews-v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_abort_and_delay_before_any_upstream() {
    let mesh = Mesh::start(200).await;
    mesh.routes(
        1,
        json!([
            {"match": [{"uri": {"prefix": "/abort"}}], "route": [to("v1")],
             "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}}},
            {"route": [to("v1")], "fault": {"delay": {"fixedDelay": "300ms", "percentage": {"value": 100.0}}}}
        ]),
    )
    .await;
    let (status, body) = get(mesh.outbound(), HOST, "/abort").await.expect("request");
    assert_eq!((status, body.trim()), (418, "fault filter abort"));
    assert_eq!(mesh.v1.count(), 0);

    let started = Instant::now();
    let (status, _) = get(mesh.outbound(), HOST, "/delayed")
        .await
        .expect("request");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let m = mesh.proxy.metrics().await;
    assert_eq!(
        requests_total(&m, &[("response_code", "418"), ("response_flags", "FI")]),
        1,
        "{m}"
    );
    assert_eq!(
        requests_total(&m, &[("response_code", "200"), ("response_flags", "DI")]),
        1,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_answer_504_and_explicit_retries_govern_5xx() {
    let mesh = Mesh::start(500).await;
    mesh.routes(
        1,
        json!([
            {"match": [{"uri": {"prefix": "/slow"}}], "route": [to("v1")], "timeout": "100ms"},
            {"match": [{"uri": {"prefix": "/no-retry"}}], "route": [to("v2")], "retries": {"attempts": 0}},
            {"route": [to("v2")], "retries": {"attempts": 3, "retryOn": "5xx"}}
        ]),
    )
    .await;
    let started = Instant::now();
    let (status, body) = get(mesh.outbound(), HOST, "/slow").await.expect("request");
    assert_eq!((status, body.trim()), (504, "upstream request timeout"));
    assert!(started.elapsed() < Duration::from_millis(450));

    let (status, _) = get(mesh.outbound(), HOST, "/no-retry")
        .await
        .expect("request");
    assert_eq!(status, 500);
    assert_eq!(mesh.v2.count(), 1, "attempts: 0 means no retry");

    let (status, _) = get(mesh.outbound(), HOST, "/retried")
        .await
        .expect("request");
    assert_eq!(status, 500);
    assert_eq!(mesh.v2.count(), 1 + 4, "one try and three retries on 5xx");
    let m = mesh.proxy.metrics().await;
    assert_eq!(
        requests_total(&m, &[("response_code", "504"), ("response_flags", "UT")]),
        1,
        "{m}"
    );
    assert_eq!(
        requests_total(&m, &[("response_code", "500"), ("response_flags", "URX")]),
        1,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_redirects_and_unmatched_routes() {
    let mesh = Mesh::start(200).await;
    mesh.routes(
        1,
        json!([
            {"match": [{"uri": {"prefix": "/api/v1/"}}], "rewrite": {"uri": "/"}, "route": [to("v1")]},
            {"match": [{"uri": {"exact": "/old"}}], "redirect": {"uri": "/new", "authority": "reviews.example.com"}},
            {"match": [{"uri": {"prefix": "/v2"}}], "route": [to("v2")]}
        ]),
    )
    .await;
    let (status, _) = get(mesh.outbound(), HOST, "/api/v1/reviews/7?x=1")
        .await
        .expect("request");
    assert_eq!(status, 200);
    assert_eq!(
        mesh.v1.last().map(|s| s.path).as_deref(),
        Some("/reviews/7")
    );

    let (status, headers, _) = request(mesh.outbound(), HOST, "/old", &[])
        .await
        .expect("request");
    assert_eq!(status, 301);
    assert_eq!(
        headers.get("location").and_then(|l| l.to_str().ok()),
        Some("http://reviews.example.com/new")
    );

    let (status, body) = get(mesh.outbound(), HOST, "/elsewhere")
        .await
        .expect("request");
    assert_eq!(status, 404);
    assert!(body.contains("VirtualService default/reviews"), "{body}");
    let m = mesh.proxy.metrics().await;
    assert_eq!(
        requests_total(&m, &[("response_code", "404"), ("response_flags", "NR")]),
        1,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_requests_reach_the_mirror_with_a_shadow_host() {
    let mesh = Mesh::start(500).await;
    mesh.routes(
        1,
        json!([{"route": [to("v1")],
                "mirror": {"host": "reviews", "subset": "v2"},
                "mirrorPercentage": {"value": 100.0}}]),
    )
    .await;
    let (status, body) = get(mesh.outbound(), HOST, "/mirrored")
        .await
        .expect("request");
    assert_eq!(
        (status, body.as_str()),
        (200, "reviews-v1"),
        "the mirror's 500 never shows"
    );
    let host = eventually("the mirrored copy", Duration::from_secs(5), || async {
        mesh.v2.last().and_then(|s| {
            s.headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
    })
    .await;
    assert_eq!(host, "reviews-shadow:9080");
    assert_eq!(mesh.v2.last().map(|s| s.path).as_deref(), Some("/mirrored"));
}
