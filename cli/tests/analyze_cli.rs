//! `loupe analyze` as scripts use it: the built binary on real files, JSON
//! output and exit codes (0 clean or warnings only, 1 errors, 2 usage).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn loupe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loupe"))
}

fn fixture(name: &str) -> String {
    format!("{}/../model/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to a file unique to this test.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loupe-analyze-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn run_json(files: &[&str]) -> (i32, Vec<Value>) {
    let out = loupe()
        .args(["analyze", "--output", "json"])
        .args(files)
        .output()
        .expect("run loupe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let Value::Array(items) = json else {
        panic!("not an array: {stdout}")
    };
    (out.status.code().expect("exit code"), items)
}

#[test]
fn clean_config_exits_0_with_only_not_yet_enforced_notes() {
    // Clean as Istio sees it; what the proxies do not act on yet is said.
    let (code, items) = run_json(&[&fixture("bookinfo.yaml")]);
    assert_eq!(code, 0);
    for d in &items {
        assert_eq!(d["severity"], "warning", "{d}");
        assert!(
            d["message"]
                .as_str()
                .unwrap_or("")
                .contains("not yet enforced"),
            "{d}"
        );
    }
}

#[test]
fn fields_the_proxies_do_not_enforce_yet_are_stated_as_warnings() {
    let (code, items) = run_json(&[&fixture("destination_rules.yaml")]);
    assert_eq!(code, 0, "warnings only: {items:?}");
    // TLS origination (SIMPLE) is enforced now: nothing to say about it.
    assert!(
        !items
            .iter()
            .any(|d| d["path"] == "spec.trafficPolicy.tls.mode"),
        "{items:?}"
    );
    for d in &items {
        assert_eq!(d["severity"], "warning", "{d}");
        assert!(
            d["message"]
                .as_str()
                .unwrap_or("")
                .contains("not yet enforced"),
            "{d}"
        );
        assert!(
            d["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("spec.trafficPolicy."),
            "{d}"
        );
    }
}

#[test]
fn errors_exit_1_with_the_four_fields() {
    let f = temp_file(
        "bad-subset.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v9}\n",
    );
    let (code, items) = run_json(&[f.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1);
    assert_eq!(items.len(), 1, "{items:?}");
    let d = items[0].as_object().expect("object");
    let mut keys: Vec<&str> = d.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["message", "path", "resource", "severity"]);
    assert_eq!(d["severity"], "error");
    assert_eq!(d["resource"], "VirtualService/shop/reviews");
    assert_eq!(d["path"], "spec.http[0].route[0].destination.subset");
}

#[test]
fn warnings_only_exit_0() {
    let f = temp_file(
        "weights.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: a}\n      weight: 30\n    - destination: {host: b}\n      weight: 30\n",
    );
    let (code, items) = run_json(&[f.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["severity"], "warning");
    assert_eq!(items[0]["path"], "spec.http[0].route");
}

#[test]
fn a_file_that_does_not_parse_gives_one_error_naming_the_file() {
    let f = temp_file(
        "broken.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: [unclosed\n",
    );
    let name = f.to_str().expect("utf-8 path");
    let (code, items) = run_json(&[name]);
    assert_eq!(code, 1);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["severity"], "error");
    assert_eq!(items[0]["resource"], name);
    assert!(
        items[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line")),
        "{:?}",
        items[0]
    );
}

#[test]
fn references_resolve_across_files() {
    let gw = temp_file(
        "gw.yaml",
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: istio-system}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n",
    );
    let vs = temp_file(
        "vs-gw.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r.example.com]\n  gateways: [istio-system/edge]\n  http:\n  - route:\n    - destination: {host: r}\n",
    );
    let (code, items) = run_json(&[gw.to_str().expect("path"), vs.to_str().expect("path")]);
    assert_eq!((code, items.len()), (0, 0), "{items:?}");
    let (code, items) = run_json(&[vs.to_str().expect("path")]);
    assert_eq!(code, 1);
    assert_eq!(items[0]["path"], "spec.gateways[0]");
}

#[test]
fn usage_errors_exit_2() {
    let none = loupe().arg("analyze").output().expect("run");
    assert_eq!(none.status.code(), Some(2));
    let missing = loupe()
        .args(["analyze", "/nonexistent/loupe/config.yaml"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/loupe/config.yaml"));
    let bad_flag = loupe()
        .args(["analyze", "--output", "xml", &fixture("bookinfo.yaml")])
        .output()
        .expect("run");
    assert_eq!(bad_flag.status.code(), Some(2));
}

#[test]
fn text_output_names_resource_path_and_fix() {
    let f = temp_file(
        "dup.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: d\n  subsets:\n  - {name: v1}\n  - {name: v1}\n",
    );
    let out = loupe().arg("analyze").arg(&f).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("error: DestinationRule/default/d at spec.subsets[1].name"),
        "{text}"
    );
    assert!(text.contains("1 error(s)"), "{text}");
}

#[test]
fn a_directory_stands_for_its_yaml_files() {
    let dir = std::env::temp_dir().join(format!("loupe-analyze-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("a.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  subsets: [{name: v1}]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("b.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r, subset: v1}\n",
    )
    .expect("write");
    std::fs::write(dir.join("notes.txt"), "not config").expect("write");
    let (code, items) = run_json(&[dir.to_str().expect("path")]);
    assert_eq!((code, items.len()), (0, 0), "{items:?}");
}
