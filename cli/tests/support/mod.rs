//! Running `loupe demo` from tests: start it on a port range of its own,
//! read its state file and its sidecars' metrics, stop it, and find what
//! it left running.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `loupe demo`, stopped when dropped.
pub struct Demo {
    pub child: Child,
    pub home: tempfile::TempDir,
    /// `127.0.0.1:BASE+101`.
    pub console: String,
    /// The first port of its range (every port it uses is BASE..BASE+200).
    pub base: u16,
}

impl Drop for Demo {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

pub fn terminate(child: &mut Child) {
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

/// Starts `loupe demo` on ports `base..base+200`, with `extra` flags.
pub fn start_demo(base: u16, extra: &[&str]) -> Demo {
    let console = format!("127.0.0.1:{}", base + 101);
    let home = tempfile::Builder::new()
        .prefix("loupe-demo-test-")
        .tempdir()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["demo", "--home"])
        .arg(home.path())
        .args([
            "--port-base",
            &base.to_string(),
            "--console",
            &console,
            "--control",
            &format!("127.0.0.1:{}", base + 102),
            "--otlp-grpc",
            &format!("127.0.0.1:{}", base + 103),
            "--otlp-http",
            &format!("127.0.0.1:{}", base + 104),
            "--postgres-port",
            &(base + 105).to_string(),
            "--scrape-interval",
            "2s",
        ])
        .args(extra)
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
    let demo = Demo {
        child,
        home,
        console,
        base,
    };
    rx.recv_timeout(Duration::from_secs(180))
        .expect("loupe demo printed the console URL");
    demo
}

impl Demo {
    /// `demo.json`, what scripts read to find every address.
    pub fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.home.path().join("demo.json")).unwrap()).unwrap()
    }

    /// A client that sends the demo admin's API token (from `demo.json`),
    /// as the CLI does: the console answers 401 without credentials.
    pub fn client(&self) -> reqwest::Client {
        let token = self.state()["token"]
            .as_str()
            .expect("demo.json has the admin's API token")
            .to_string();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// The processes of this demo still running.
    pub fn processes(&self) -> Vec<String> {
        demo_processes(&self.home.path().to_string_lossy(), self.base)
    }
}

pub async fn get_json(client: &reqwest::Client, console: &str, path: &str) -> Option<Value> {
    let r = client
        .get(format!("http://{console}{path}"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// A sidecar's Prometheus text.
pub async fn scrape(client: &reqwest::Client, admin: &str) -> String {
    client
        .get(format!("http://{admin}/stats/prometheus"))
        .send()
        .await
        .expect("scrape sidecar")
        .text()
        .await
        .unwrap()
}

/// Sum of `istio_requests_total{reporter="destination"}` on a sidecar's admin endpoint.
pub async fn inbound_requests(client: &reqwest::Client, admin: &str) -> f64 {
    scrape(client, admin)
        .await
        .lines()
        .filter(|l| {
            l.starts_with("istio_requests_total{") && l.contains("reporter=\"destination\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn edge_rps(graph: &Value, from_app: &str, to_app: &str, to_version: Option<&str>) -> f64 {
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

fn demo_processes(marker: &str, base: u16) -> Vec<String> {
    let ports = [
        format!("127.0.0.1:{}", base / 100),
        format!("127.0.0.1:{}", base / 100 + 1),
    ];
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
            if cmd.contains(marker) || ports.iter().any(|p| cmd.contains(p.as_str())) {
                left.push(cmd);
            }
        }
    }
    left
}
