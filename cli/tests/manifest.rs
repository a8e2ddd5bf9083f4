//! `loupe manifest generate` prints exactly the committed manifests under
//! `deploy/kubernetes/` (regenerate them with the commands in their header).

use std::process::Command;

fn generate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["manifest", "generate"])
        .args(args)
        .output()
        .expect("loupe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn committed(name: &str) -> String {
    let path = format!("{}/../deploy/kubernetes/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn generate_prints_the_committed_demo_manifest() {
    assert!(
        generate(&["--set", "profile=demo"]) == committed("demo.yaml"),
        "deploy/kubernetes/demo.yaml is stale: run `loupe manifest generate --set profile=demo > deploy/kubernetes/demo.yaml`"
    );
}

#[test]
fn generate_prints_the_committed_default_manifest() {
    assert!(
        generate(&["--set", "profile=default"]) == committed("default.yaml"),
        "deploy/kubernetes/default.yaml is stale: run `loupe manifest generate --set profile=default > deploy/kubernetes/default.yaml`"
    );
    // No --set is the default profile.
    assert!(generate(&[]) == committed("default.yaml"));
}

#[test]
fn a_bad_set_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["manifest", "generate", "--set", "profile=huge"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected demo, default"));
}
