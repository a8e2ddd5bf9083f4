//! `loupe route` as scripts use it: the built binary, the JSON contract of
//! the decision, `--gateway`, and exit codes (0 answer, 1 config does not
//! parse, 2 usage).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

fn loupe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loupe"))
}

fn fixture(name: &str) -> String {
    format!("{}/../model/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loupe-route-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn route(config: &str, request: &Value, extra: &[&str]) -> (i32, Value) {
    // Tests run in parallel: each request gets its own file.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("req-{}.json", NEXT.fetch_add(1, Ordering::Relaxed));
    let req = temp_file(&name, &request.to_string());
    let out = loupe()
        .args(["route", "--output", "json", "-f", config, "--request"])
        .arg(&req)
        .args(extra)
        .output()
        .expect("run loupe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code().expect("exit code");
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (code, json)
}

fn sidecar(host: &str, path: &str, headers: Value) -> Value {
    json!({
        "source": {"principal": "cluster.local/ns/default/sa/productpage", "namespace": "default", "ip": "10.0.0.5"},
        "destination": {"namespace": "default", "labels": {"app": "reviews"}, "port": 9080},
        "request": {"method": "GET", "path": path, "host": host, "headers": headers}
    })
}

#[test]
fn header_route_json_contract() {
    let (code, d) = route(
        &fixture("routing.yaml"),
        &sidecar("reviews:9080", "/", json!({"end-user": "jason"})),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(
        d["routes"],
        json!([{"host": "reviews.default.svc.cluster.local", "subset": "v2", "port": 9080, "weight": 100}])
    );
    for key in [
        "fault",
        "timeout_ms",
        "retries",
        "rewrite",
        "redirect",
        "mirror",
    ] {
        assert_eq!(d[key], Value::Null, "{key}");
    }
    assert!(d["reason"].as_str().is_some_and(|r| r.contains("jason")));
}

#[test]
fn weighted_split_and_retries() {
    let (_, d) = route(
        &fixture("routing.yaml"),
        &sidecar("reviews", "/", json!({})),
        &[],
    );
    assert_eq!(d["routes"][0]["weight"], 75);
    assert_eq!(d["routes"][1]["weight"], 25);
    let (_, d) = route(
        &fixture("routing.yaml"),
        &sidecar("ratings", "/r?version=v2", json!({})),
        &[],
    );
    assert_eq!(d["timeout_ms"], 1500);
    assert_eq!(
        d["retries"],
        json!({"attempts": 3, "per_try_timeout_ms": 2000, "retry_on": "gateway-error,connect-failure,refused-stream"})
    );
}

#[test]
fn fault_uses_istio_field_names() {
    let (_, d) = route(
        &fixture("routing.yaml"),
        &sidecar("ratings", "/faulty", json!({})),
        &[],
    );
    assert_eq!(
        d["fault"],
        json!({"abort": {"httpStatus": 503, "percentage": {"value": 50}}})
    );
}

#[test]
fn no_route_matches_gives_empty_routes_with_reason() {
    let (code, d) = route(
        &fixture("routing.yaml"),
        &sidecar("ratings:9091", "/x", json!({})),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(d["routes"], json!([]));
    assert!(d["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[test]
fn gateway_flag_selects_gateway_virtual_services() {
    let req = sidecar("shop.bookinfo.com", "/api/v1/products/2", json!({}));
    let (_, gw) = route(
        &fixture("routing.yaml"),
        &req,
        &["--gateway", "istio-system/bookinfo-gateway"],
    );
    assert_eq!(
        gw["routes"][0]["host"],
        "productpage.default.svc.cluster.local"
    );
    let (_, mesh) = route(&fixture("routing.yaml"), &req, &[]);
    assert_eq!(mesh["routes"][0]["host"], "reviews.prod.svc.cluster.local");
}

#[test]
fn no_virtual_service_is_the_default_route() {
    let (_, d) = route(
        &fixture("routing.yaml"),
        &sidecar("productpage:9080", "/", json!({})),
        &[],
    );
    assert_eq!(
        d["routes"],
        json!([{"host": "productpage.default.svc.cluster.local", "subset": null, "port": 9080, "weight": 100}])
    );
}

#[test]
fn config_that_does_not_parse_exits_1_naming_the_file() {
    let bad = temp_file(
        "bad.yaml",
        "kind: VirtualService\napiVersion: networking.istio.io/v1\nmetadata: {name: [x\n",
    );
    let req = temp_file("r.json", &sidecar("reviews", "/", json!({})).to_string());
    let out = loupe()
        .args(["route", "-f"])
        .arg(&bad)
        .arg("--request")
        .arg(&req)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));
}

#[test]
fn usage_errors_exit_2() {
    let req = temp_file("u.json", &sidecar("reviews", "/", json!({})).to_string());
    let no_config = loupe()
        .args(["route", "--request"])
        .arg(&req)
        .output()
        .expect("run");
    assert_eq!(no_config.status.code(), Some(2));
    let missing = loupe()
        .args(["route", "-f", "/nonexistent/vs.yaml", "--request"])
        .arg(&req)
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    let no_request = loupe()
        .args(["route", "-f", &fixture("routing.yaml")])
        .output()
        .expect("run");
    assert_eq!(no_request.status.code(), Some(2));
}

#[test]
fn text_output_says_which_route_matched() {
    let req = temp_file(
        "t.json",
        &sidecar("reviews", "/", json!({"end-user": "jason"})).to_string(),
    );
    let out = loupe()
        .args(["route", "-f", &fixture("routing.yaml"), "--request"])
        .arg(&req)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("http[0] (\"jason\")"), "{text}");
    assert!(
        text.contains("reviews.default.svc.cluster.local:9080 subset v2"),
        "{text}"
    );
}
