//! The whole mesh, as a user runs it: `loupe demo` (real Postgres, control
//! plane, collector, console, sidecars, sample app, load, all separate
//! processes), then the acceptance: traffic in the graph and in
//! traces, a canary shift through the config API that the sidecars obey,
//! and nothing left running after SIGTERM.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const BASE: u16 = 24000;

#[tokio::test(flavor = "multi_thread")]
async fn demo_carries_traffic_shifts_canary_and_stops_cleanly() {
    let mut demo = start_demo(BASE, &["--rps", "20"]);
    let console = demo.console.clone();
    let client = demo.client();
    let started = Instant::now();

    // Within 60 s: ≥ 6 workload nodes, productpage → reviews edges with traffic.
    let mut ok = false;
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(60) {
        if let (Some(workloads), Some(versioned)) = (
            get_json(&client, &console, "/api/graph?type=workload&window=60s").await,
            get_json(
                &client,
                &console,
                "/api/graph?type=versioned-app&window=60s",
            )
            .await,
        ) {
            let n = workloads["nodes"].as_array().map_or(0, |n| n.len());
            let rps = edge_rps(&versioned, "productpage", "reviews", None);
            last = versioned;
            if n >= 6 && rps > 0.0 {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(ok, "graph within 60 s: {last:#}");

    // Traces: one of them spans at least 3 services.
    let mut wide = false;
    while started.elapsed() < Duration::from_secs(90) && !wide {
        if let Some(traces) = get_json(&client, &console, "/api/traces?limit=50").await {
            wide = traces
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["services"].as_array().is_some_and(|s| s.len() >= 3));
        }
        if !wide {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    assert!(wide, "a trace with spans from ≥ 3 services");

    // Canary: 100 % to v3 through the config API.
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n  hosts:\n  - reviews\n  http:\n  - route:\n    - destination:\n        host: reviews\n        subset: v3\n      weight: 100\n";
    let put = client
        .put(format!(
            "http://{console}/api/config/VirtualService/default/reviews"
        ))
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert!(
        put.status().is_success(),
        "PUT config: {}",
        put.text().await.unwrap_or_default()
    );
    let state = demo.state();
    let admin = |w: &str| state["workloads"][w]["admin"].as_str().unwrap().to_string();
    for w in ["productpage-v1", "reviews-v3", "istio-ingressgateway"] {
        for field in ["inbound", "outbound", "admin"] {
            assert!(
                state["workloads"][w][field].is_string(),
                "{w}.{field}: {state}"
            );
        }
    }
    assert!(
        state["workloads"]["reviews-v3"]["app"].is_string(),
        "{state}"
    );
    // Let in-flight requests finish, then v1 and v2 must get nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = (
        inbound_requests(&client, &admin("reviews-v1")).await,
        inbound_requests(&client, &admin("reviews-v2")).await,
        inbound_requests(&client, &admin("reviews-v3")).await,
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = (
        inbound_requests(&client, &admin("reviews-v1")).await,
        inbound_requests(&client, &admin("reviews-v2")).await,
        inbound_requests(&client, &admin("reviews-v3")).await,
    );
    assert_eq!(after.0, before.0, "reviews-v1 got no new requests");
    assert_eq!(after.1, before.1, "reviews-v2 got no new requests");
    assert!(
        after.2 > before.2,
        "reviews-v3 keeps serving: {before:?} → {after:?}"
    );

    // The store's URL (it may hold a password) is on no command line.
    let url = state["database_url"].as_str().unwrap().to_string();
    let running = demo.processes();
    assert!(running.len() > 5, "the demo's processes: {running:#?}");
    let leaked: Vec<&String> = running
        .iter()
        .filter(|cmd| cmd.contains(&url) || cmd.contains("--database-url"))
        .collect();
    assert!(
        leaked.is_empty(),
        "DATABASE_URL on a command line: {leaked:#?}"
    );

    // Ctrl-C (SIGTERM) stops everything the demo started, Postgres included.
    terminate(&mut demo.child);
    std::thread::sleep(Duration::from_secs(1));
    let left = demo.processes();
    assert!(left.is_empty(), "processes left running: {left:#?}");
}
