//! Certificate rotation under load on the demo mesh: 20 s workload
//! certificates, 3 minutes at 200 requests/s through the gateway; not one
//! request fails, and every proxy (sidecars and gateway) rotated at least
//! 6 times, as its admin `/certs` shows.

mod support;

use std::time::Duration;

use support::*;

const BASE: u16 = 26000;

/// Requests of `reporter` a proxy answered or saw answered with anything
/// but 2xx, and all of them.
fn failures_and_total(text: &str, reporter: &str) -> (f64, f64) {
    let mut failed = 0.0;
    let mut total = 0.0;
    for l in text.lines().filter(|l| {
        l.starts_with("istio_requests_total{") && l.contains(&format!("reporter=\"{reporter}\""))
    }) {
        let Some(v) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        total += v;
        if !l.contains("response_code=\"2") {
            failed += v;
        }
    }
    (failed, total)
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_rotate_under_load_without_a_failed_request() {
    let demo = start_demo(BASE, &["--rps", "200", "--cert-ttl", "20s"]);
    let client = reqwest::Client::new();
    let state = demo.state();
    let proxies: Vec<(String, String)> = state["workloads"]
        .as_object()
        .expect("workloads")
        .iter()
        .map(|(name, w)| (name.clone(), w["admin"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(proxies.len(), 7, "{state}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rotations = async |admin: &str| -> u64 {
        let certs: serde_json::Value = client
            .get(format!("http://{admin}/certs"))
            .send()
            .await
            .expect("/certs")
            .json()
            .await
            .expect("/certs JSON");
        certs["rotations"].as_u64().unwrap_or(0)
    };
    let mut start = Vec::new();
    for (_, admin) in &proxies {
        let text = scrape(&client, admin).await;
        start.push((failures_and_total(&text, "source"), rotations(admin).await));
    }

    tokio::time::sleep(Duration::from_secs(180)).await;

    let mut gateway_requests = 0.0;
    for ((name, admin), ((failed0, total0), rotations0)) in proxies.iter().zip(&start) {
        let text = scrape(&client, admin).await;
        let (failed, total) = failures_and_total(&text, "source");
        assert_eq!(
            failed - failed0,
            0.0,
            "{name}: failed requests during rotation"
        );
        if name == "istio-ingressgateway" {
            gateway_requests = total - total0;
        }
        let rotated = rotations(admin).await - rotations0;
        assert!(rotated >= 6, "{name} rotated {rotated} times in 3 minutes");
    }
    // 200/s for 180 s; the load generator on a shared 2-core machine gets
    // at least most of that through.
    assert!(
        gateway_requests >= 20_000.0,
        "{gateway_requests} requests through the gateway"
    );
}
