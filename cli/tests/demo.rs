//! The whole mesh, as a user runs it: `loupe demo` (real Postgres, control
//! plane, collector, console, sidecars, sample app, load, all separate
//! processes), then the acceptance: traffic in the graph and in
//! traces, a canary shift through the config API that the sidecars obey,
//! and nothing left running after SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BASE: u16 = 24000;
const CONSOLE: &str = "127.0.0.1:24101";

struct Demo {
    child: Child,
    home: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn start_demo() -> Demo {
    let home = tempfile::Builder::new()
        .prefix("loupe-demo-test-")
        .tempdir()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["demo", "--home"])
        .arg(home.path())
        .args([
            "--port-base",
            &BASE.to_string(),
            "--console",
            CONSOLE,
            "--control",
            "127.0.0.1:24102",
            "--otlp-grpc",
            "127.0.0.1:24103",
            "--otlp-http",
            "127.0.0.1:24104",
            "--postgres-port",
            "24105",
            "--rps",
            "20",
            "--scrape-interval",
            "2s",
        ])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start loupe demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("demo| {line}");
            if line.contains("console:") {
                let _ = tx.send(());
            }
        }
    });
    let demo = Demo { child, home };
    rx.recv_timeout(Duration::from_secs(180))
        .expect("loupe demo printed the console URL");
    demo
}

async fn get_json(client: &reqwest::Client, path: &str) -> Option<Value> {
    let r = client
        .get(format!("http://{CONSOLE}{path}"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Sum of `istio_requests_total{reporter="destination"}` on a sidecar's admin endpoint.
async fn inbound_requests(client: &reqwest::Client, admin: &str) -> f64 {
    let text = client
        .get(format!("http://{admin}/stats/prometheus"))
        .send()
        .await
        .expect("scrape sidecar")
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("istio_requests_total{") && l.contains("reporter=\"destination\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn edge_rps(graph: &Value, from_app: &str, to_app: &str, to_version: Option<&str>) -> f64 {
    let nodes = graph["nodes"].as_array().cloned().unwrap_or_default();
    let node = |id: &Value| {
        nodes
            .iter()
            .find(|n| &n["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    graph["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            let (s, t) = (node(&e["source"]), node(&e["target"]));
            s["app"] == from_app
                && t["app"] == to_app
                && to_version.is_none_or(|v| t["version"] == v)
        })
        .map(|e| e["rps"].as_f64().unwrap_or(0.0))
        .sum()
}

fn demo_processes(marker: &str) -> Vec<String> {
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker)
                || cmd.contains("127.0.0.1:240")
                || cmd.contains("127.0.0.1:241")
            {
                left.push(cmd);
            }
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_carries_traffic_shifts_canary_and_stops_cleanly() {
    let mut demo = start_demo();
    let marker = demo.home.path().to_string_lossy().into_owned();
    let client = reqwest::Client::new();
    let started = Instant::now();

    // Within 60 s: ≥ 6 workload nodes, productpage → reviews edges with traffic.
    let mut ok = false;
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(60) {
        if let (Some(workloads), Some(versioned)) = (
            get_json(&client, "/api/graph?type=workload&window=60s").await,
            get_json(&client, "/api/graph?type=versioned-app&window=60s").await,
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
        if let Some(traces) = get_json(&client, "/api/traces?limit=50").await {
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
            "http://{CONSOLE}/api/config/VirtualService/default/reviews"
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
    let state: Value =
        serde_json::from_slice(&std::fs::read(demo.home.path().join("demo.json")).unwrap())
            .unwrap();
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

    // Ctrl-C (SIGTERM) stops everything the demo started, Postgres included.
    terminate(&mut demo.child);
    std::thread::sleep(Duration::from_secs(1));
    let left = demo_processes(&marker);
    assert!(left.is_empty(), "processes left running: {left:#?}");
}
