//! Trace sampling as Istio does it, across two real sidecar processes: the
//! mesh default (`MeshSettings.trace_sampling_basis_points`), a Telemetry
//! resource's `randomSamplingPercentage` over it, a caller's decision kept
//! whatever the policy, and `disableSpanReporting` for one side only.

mod support;

use std::time::Duration;

use loupe_push::{MeshSettings, Resource, Snapshot};
use support::*;

const HOST: &str = "reviews:9080";

fn telemetry(name: &str, namespace: &str, spec: serde_json::Value) -> Resource {
    Resource {
        kind: "Telemetry".into(),
        namespace: namespace.into(),
        name: name.into(),
        json: serde_json::json!({
            "apiVersion": "telemetry.istio.io/v1",
            "kind": "Telemetry",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        })
        .to_string(),
    }
}

/// The `sampled` flag of the traceparent the app received last.
fn app_saw_sampled(app: &App) -> bool {
    let tp = app
        .last()
        .and_then(|s| s.headers.get("traceparent").cloned())
        .expect("the app got a traceparent");
    tp.to_str().expect("ascii").ends_with("-01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_follows_the_mesh_default_telemetry_and_the_callers_decision() {
    let control = ControlPlane::start().await;
    let (collector, collector_addr) = Collector::start().await;
    let app = App::start("reviews-v1").await;
    let reviews = ProxySpec::sidecar("reviews-v1", "reviews", "v1", &control.url())
        .with_inbound(app.addr)
        .with_otlp(collector_addr);
    let productpage = ProxySpec::sidecar("productpage-v1", "productpage", "v1", &control.url())
        .with_outbound()
        .with_otlp(collector_addr);
    let _processes = [reviews.spawn_binary(), productpage.spawn_binary()];
    let endpoints = vec![sidecar_endpoint(
        reviews.inbound.expect("inbound"),
        "reviews-v1",
        "reviews",
        "v1",
    )];
    let mesh = |basis_points| {
        Some(MeshSettings {
            trust_domain: "cluster.local".into(),
            root_namespace: "istio-system".into(),
            h2_upgrade: true,
            trace_sampling_basis_points: Some(basis_points),
        })
    };
    let push = |version, resources, mesh| {
        control.push(Snapshot {
            version,
            resources,
            services: vec![service("reviews", endpoints.clone())],
            mesh,
            jwks: Default::default(),
        })
    };
    let outbound = productpage.outbound.expect("outbound");
    let spans = || collector.spans.lock().expect("spans").len();

    // 1. The mesh default samples nothing: no spans, and the next hop is
    // told so (`-00`), so the trace is absent everywhere rather than torn.
    push(1, vec![], mesh(0));
    productpage.wait_ready().await;
    control.wait_ack(1, 2).await;
    for _ in 0..20 {
        let (status, body) = get(outbound, HOST, "/r").await.expect("request");
        assert_eq!(status, 200, "{body}");
        assert!(!app_saw_sampled(&app), "unsampled context propagated");
    }
    // A caller that sampled keeps its decision.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, _, _) = request(
        outbound,
        HOST,
        "/traced",
        &[("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01"))],
    )
    .await
    .expect("traced request");
    assert_eq!(status, 200);
    let caller = hex(trace_id);
    eventually(
        "the caller's sampled trace: both spans",
        Duration::from_secs(10),
        || async { (collector.of_trace(&caller).len() == 2).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(spans(), 2, "only the caller's trace was recorded");

    // 2. A mesh-wide Telemetry in the root namespace overrides the mesh
    // default: everything is sampled.
    push(
        2,
        vec![telemetry(
            "mesh-default",
            "istio-system",
            serde_json::json!({"tracing": [{"randomSamplingPercentage": 100.0}]}),
        )],
        mesh(0),
    );
    control.wait_ack(2, 2).await;
    for _ in 0..10 {
        get(outbound, HOST, "/r").await.expect("request");
        assert!(app_saw_sampled(&app));
    }
    eventually("20 more spans", Duration::from_secs(10), || async {
        (spans() >= 22).then_some(())
    })
    .await;

    // 3. A workload-level Telemetry turns off reviews' SERVER spans only:
    // productpage's client spans still come, reviews' never.
    push(
        3,
        vec![
            telemetry(
                "mesh-default",
                "istio-system",
                serde_json::json!({"tracing": [{"randomSamplingPercentage": 100.0}]}),
            ),
            telemetry(
                "reviews-quiet",
                "default",
                serde_json::json!({
                    "selector": {"matchLabels": {"app": "reviews"}},
                    "tracing": [{"match": {"mode": "SERVER"}, "disableSpanReporting": true}],
                }),
            ),
        ],
        mesh(0),
    );
    control.wait_ack(3, 2).await;
    let before = collector.spans.lock().expect("spans").clone();
    for _ in 0..10 {
        get(outbound, HOST, "/r").await.expect("request");
        assert!(app_saw_sampled(&app), "the context still propagates");
    }
    eventually("10 client spans", Duration::from_secs(10), || async {
        (spans() >= before.len() + 10).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = collector.spans.lock().expect("spans").clone();
    let new = &all[before.len()..];
    assert_eq!(new.len(), 10, "client spans only: {}", new.len());
    assert!(
        new.iter()
            .all(|(service, s)| service == "productpage" && s.kind == 3)
    );

    // /config_dump shows what applies.
    let (status, body) = get(reviews.admin, "localhost", "/config_dump")
        .await
        .expect("config_dump");
    assert_eq!(status, 200, "{body}");
    let dump: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(dump["tracing"]["server"]["reportSpans"], false, "{dump}");
    assert_eq!(
        dump["tracing"]["client"]["samplingPercent"], 100.0,
        "{dump}"
    );
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
