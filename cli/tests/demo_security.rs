//! Zero trust on the README's demo, as the acceptance states it:
//! after `loupe apply -f deploy/demo/security.yaml` (mesh-wide STRICT,
//! allow-nothing in `default`, ALLOWs by principal for gateway →
//! productpage, productpage → reviews, reviews → ratings, none for
//! productpage → details), every inbound sidecar reports mutual TLS with
//! the caller's real principal, the allowed edges keep answering 200,
//! details' sidecar counts 403, plaintext sent straight to any inbound
//! listener gets no 2xx, and the graph marks every sidecar-to-sidecar edge
//! mTLS.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BASE: u16 = 25000;

/// `istio_requests_total{reporter="destination"}` series: labels → value.
fn destination_series(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| {
            l.starts_with("istio_requests_total{") && l.contains("reporter=\"destination\"")
        })
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn label<'a>(series: &'a str, name: &str) -> &'a str {
    let key = format!(",{name}=\"");
    series
        .find(&key)
        .map(|i| &series[i + key.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

/// A plaintext HTTP/1.1 request straight to `addr`; the status line's code,
/// or `None` when the connection closed without an answer.
async fn plaintext_status(addr: &str, host: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chapters_security_set_holds_on_the_demo() {
    let demo = start_demo(BASE, &["--rps", "20"]);
    let client = reqwest::Client::new();
    let state = demo.state();
    let admin = |w: &str| state["workloads"][w]["admin"].as_str().unwrap().to_string();
    let inbound = |w: &str| {
        state["workloads"][w]["inbound"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Traffic flows before the policies.
    let started = Instant::now();
    while inbound_requests(&client, &admin("details-v1")).await < 5.0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no traffic");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let apply = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["apply", "-f"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/demo/security.yaml"
        ))
        .env("LOUPE_HOME", demo.home.path())
        .env_remove("DATABASE_URL")
        .output()
        .expect("loupe apply");
    assert!(
        apply.status.success(),
        "loupe apply: {}{}",
        String::from_utf8_lossy(&apply.stdout),
        String::from_utf8_lossy(&apply.stderr)
    );
    // The push reaches every sidecar within a few seconds; measure after it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sidecars = [
        "productpage-v1",
        "details-v1",
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
        "ratings-v1",
    ];
    let mut before = HashMap::new();
    for w in sidecars {
        before.insert(w, destination_series(&scrape(&client, &admin(w)).await));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;

    let expected_callers = HashMap::from([
        (
            "productpage-v1",
            "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        ),
        (
            "details-v1",
            "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        ),
        (
            "reviews-v1",
            "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        ),
        (
            "reviews-v2",
            "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        ),
        (
            "reviews-v3",
            "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        ),
        (
            "ratings-v1",
            "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        ),
    ]);
    for w in sidecars {
        let now = destination_series(&scrape(&client, &admin(w)).await);
        let mut by_code: HashMap<String, f64> = HashMap::new();
        for (series, value) in &now {
            let delta = value - before[w].get(series).copied().unwrap_or(0.0);
            if delta <= 0.0 {
                continue;
            }
            assert_eq!(
                label(series, "connection_security_policy"),
                "mutual_tls",
                "{w}: {series}"
            );
            assert_eq!(
                label(series, "source_principal"),
                expected_callers[w],
                "{w}: {series}"
            );
            *by_code
                .entry(label(series, "response_code").to_string())
                .or_default() += delta;
        }
        if w == "details-v1" {
            assert!(
                by_code.get("403").copied().unwrap_or(0.0) > 0.0,
                "details counts 403: {by_code:?}"
            );
            assert_eq!(
                by_code.get("200"),
                None,
                "details allows nothing: {by_code:?}"
            );
        } else {
            assert_eq!(
                by_code.keys().filter(|c| *c != "200").count(),
                0,
                "{w} answers only 200: {by_code:?}"
            );
            // reviews-v1 is one of three versions; every sidecar saw traffic.
            assert!(
                by_code.get("200").copied().unwrap_or(0.0) > 0.0,
                "{w} serves: {by_code:?}"
            );
        }
    }

    // Plaintext straight to every inbound listener: no 2xx.
    for w in sidecars {
        let status = plaintext_status(&inbound(w), "details:9080").await;
        assert!(
            !status.is_some_and(|s| (200..300).contains(&s)),
            "{w}'s inbound answered plaintext with {status:?}"
        );
    }

    // The graph: every sidecar-to-sidecar edge is mTLS.
    let graph = get_json(
        &demo.client(),
        &demo.console,
        "/api/graph?type=workload&window=30s",
    )
    .await
    .expect("graph");
    let nodes: HashMap<String, Value> = graph["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| (n["id"].as_str().unwrap_or("").to_string(), n.clone()))
        .collect();
    let meshed = |id: &Value| {
        nodes
            .get(id.as_str().unwrap_or(""))
            .is_some_and(|n| n["workload"] != "unknown" && !n["workload"].is_null())
    };
    let mut checked = 0;
    for e in graph["edges"].as_array().into_iter().flatten() {
        if meshed(&e["source"])
            && meshed(&e["target"])
            && e["requests"].as_f64().unwrap_or(0.0) > 0.0
        {
            checked += 1;
            assert!(
                e["mtls"].as_f64().unwrap_or(0.0) >= 0.99,
                "edge not mTLS: {e}"
            );
        }
    }
    assert!(
        checked >= 5,
        "sidecar-to-sidecar edges in the graph: {graph:#}"
    );
}
